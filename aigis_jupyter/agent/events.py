"""The event stream of one chat turn (DESIGN.md), the same for SSE and the magics.

`chunk`, `tool_result` and `end` keep the original product's shape exactly; `status`,
`sql`, `table`, `chart`, `error` and `suggestions` are additions. Nodes of the graph emit
events through LangGraph's custom stream writer as things happen; `turn_events` forwards
them and always finishes with one `end` carrying the whole answer.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from ..errors import AigisError

log = logging.getLogger(__name__)

PHASES = ("schema", "sql", "executing", "charting", "answering")


def status(phase: str) -> dict[str, Any]:
    return {"type": "status", "phase": phase}


def sql(statement: str, *, verified: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "sql", "sql": statement}
    if verified:  # the statement is one a person confirmed (a verified query)
        out["verified"] = True
    return out


def table(preview: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "table",
        "columns": list(preview.get("columns") or []),
        "rows": list(preview.get("rows") or []),
        "row_count": int(preview.get("row_count") or 0),
        "truncated": bool(preview.get("truncated")),
    }


def chart(spec: dict[str, Any]) -> dict[str, Any]:
    return {"type": "chart", "spec": spec}


def tool_result(content: Any) -> dict[str, Any]:
    return {"type": "tool_result", "content": content}


def chunk(content: str) -> dict[str, Any]:
    return {"type": "chunk", "content": content}


def error(message: str, reason: str, action: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "error", "message": message, "reason": reason}
    if action:
        out["action"] = action
    return out


def suggestions(questions: list[str]) -> dict[str, Any]:
    return {"type": "suggestions", "suggestions": list(questions)}


def end(full_response: str) -> dict[str, Any]:
    return {"type": "end", "full_response": full_response}


async def turn_events(
    graph: Any, graph_input: dict[str, Any], config: dict[str, Any], context: Any
) -> AsyncIterator[dict[str, Any]]:
    """Run one turn of `graph` and yield its events; `end` is always last.

    Nodes report their own failures as `error` events and end the turn cleanly; anything
    that still escapes (a checkpointer failure, a bug) becomes one `error` event here, so
    a client never waits for an `end` that does not come.
    """
    parts: list[str] = []
    try:
        async for event in graph.astream(
            # one checkpoint per turn, not per node: a turn is the unit a user resumes
            graph_input, config, context=context, stream_mode="custom", durability="exit"
        ):
            if not isinstance(event, dict) or "type" not in event:
                continue
            if event["type"] == "chunk":
                parts.append(str(event.get("content") or ""))
            yield event
    except AigisError as exc:
        yield error(exc.message, exc.reason, exc.action)
    except Exception as exc:
        log.exception("chat turn failed")
        yield error(
            f"The assistant failed unexpectedly ({type(exc).__name__}: {exc}). "
            "Try again; if it keeps failing, start a new thread.",
            "agent_error", {"kind": "retry"},
        )
    yield end("".join(parts))
