"""Steps both paths of a turn share: the fixed graph (`graph.py`) and the tool loop of
models with native tool calling (`explore.py`). One rule, one place: what a failure, a
statement run, a chart or the suggestions look like in the stream is decided here."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import replace
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.config import get_stream_writer

from .. import charts
from ..errors import AigisError, ModelError, QueryCancelled
from . import events, prompts
from .turn import TurnContext, call_model, text_of

log = logging.getLogger(__name__)

#: Database failures no rewritten query can fix (the server went away, the login was
#: refused): the user hears at once what happened instead of after futile repairs.
NOT_THE_QUERY = frozenset({"unreachable", "auth_failed", "unknown_database"})


def turns(messages: list[BaseMessage]) -> list[dict[str, Any]]:
    """Earlier turns as {question, sql, answer} (sql None when the turn failed)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if isinstance(m, HumanMessage):
            out.append({"question": text_of(m.content), "sql": None, "answer": None})
        elif out and isinstance(m, ToolMessage) and m.name == "ask_database":
            art = m.artifact if isinstance(m.artifact, dict) else {}
            if art.get("sql") and m.status != "error":
                out[-1]["sql"] = art["sql"]
        elif out and isinstance(m, AIMessage) and not m.tool_calls:
            out[-1]["answer"] = text_of(m.content)
    return out


def fail(exc: AigisError, ctx: TurnContext) -> dict[str, Any]:
    """End the turn with an error event; the thread stays usable for the next question."""
    message = ctx.scrub(exc.message)
    get_stream_writer()(events.error(message, exc.reason, exc.action))
    return {
        "error": {"message": message, "reason": exc.reason},
        "messages": [AIMessage(message, additional_kwargs={"aigis_error": exc.reason})],
    }


def learn(ctx: TurnContext, conn: str, question: str, snap: Any) -> None:
    """What people taught the connection, as it bears on this question (blocking)."""
    from .linking import link
    from .verified import similar

    ctx.dialect = ctx.deps.dialect(conn)
    ctx.teaching = ctx.deps.teaching(conn)
    index = None
    if getattr(ctx.settings, "value_hints", True):
        try:
            index = ctx.deps.values(conn, snap)
        except AigisError:  # hints help; a question never fails for want of them
            index = None
    examples = similar(question, ctx.teaching.examples,
                       how=getattr(ctx.settings, "example_ranker", None))
    ctx.values = index
    ctx.verified = examples
    ctx.link = link(question, snap, values=index,
                    synonyms=getattr(ctx.settings, "schema_synonyms", None))
    if getattr(ctx.info, "prompt_style", "") == "completion" and ctx.schema is not None:
        # a small model sees the tables the question needs and the joins between them
        chosen = ctx.link.chosen() if ctx.link.ranked_tables() else []
        if chosen:
            ctx.schema = replace(ctx.schema, tables=[
                t for t in snap.tables if any(t is c for c in chosen)])
    ctx.lessons = prompts.Lessons(
        examples=[(e.question, e.sql) for e in examples], notes=ctx.teaching.notes,
        hints=[h.text() for h in ctx.link.hints])


def verified(ctx: TurnContext, statement: str, dialect: str) -> bool:
    from .verified import is_verified

    examples = ctx.teaching.examples if ctx.teaching is not None else ()
    return is_verified(statement, examples, dialect)


def suggest(ctx: TurnContext, question: str, preview: dict[str, Any] | None,
             sql: str | None, *, charted: bool = False) -> None:
    """The `suggestions` event: follow-ups from the schema and the result (never fails)."""
    from .followups import starters, suggestions

    try:
        if sql:
            found = suggestions(question, preview, sql, ctx.snapshot, dialect=ctx.dialect,
                                values=ctx.values, charted=charted)
        else:
            found = starters(ctx.snapshot) if ctx.snapshot is not None else []
    except Exception:  # a suggestion is a courtesy: it never costs the answer
        log.debug("no suggestions", exc_info=True)
        return
    if found:
        get_stream_writer()(events.suggestions(found))


def announce(ctx: TurnContext, statement: str, dialect: str) -> None:
    """The `sql` event of the statement that answers (marked when verified)."""
    write = get_stream_writer()
    write(events.sql(statement, verified=verified(ctx, statement, dialect)))
    write(events.status("executing"))


async def execute(ctx: TurnContext, conn: str, statement: str, dialect: str) -> Any:
    """Announce a statement, then guard, run and audit it."""
    announce(ctx, statement, dialect)
    return await asyncio.to_thread(ctx.deps.run_sql, conn, statement, ctx.cancel)


def show_result(ctx: TurnContext, result: Any, statement: str) -> tuple[dict[str, Any], str]:
    """The `table` and `tool_result` events of a result; (state's sql_result, summary)."""
    write = get_stream_writer()
    ctx.result = result
    preview = result.preview(int(ctx.settings.preview_rows))
    write(events.table(preview))
    more = "+" if result.truncated else ""
    noun = "row" if result.row_count == 1 and not more else "rows"
    summary = f"Executed query successfully! {result.row_count}{more} {noun}."
    write(events.tool_result(summary))
    return {
        "sql": result.sql or statement,
        "columns": list(preview.get("columns") or []),
        "rows": list(preview.get("rows") or []),
        "row_count": int(result.row_count),
        "truncated": bool(result.truncated),
        "duration_ms": float(getattr(result, "duration_ms", 0.0) or 0.0),
    }, summary


def wants_chart(ctx: TurnContext, question: str) -> bool:
    """Whether this turn's result gets a chart: asked for, or worth one (and allowed)."""
    return bool(ctx.chart_enabled and ctx.result is not None and (
        charts.wants_chart(question) or charts.chart_worthy(ctx.result.df)))


async def chart(ctx: TurnContext, question: str) -> tuple[dict[str, Any] | None, str]:
    """A validated Vega-Lite spec of this turn's result: (the chart or None, a note).

    Raises QueryCancelled and ModelError; a result with nothing to chart is a note."""
    write = get_stream_writer()
    write(events.status("charting"))
    df = ctx.result.df
    proposal = None
    try:
        ctx.check_cancel()
        if charts.wants_chart(question) and ctx.info.prompt_style == "chat" and len(df.columns):
            msgs = prompts.chart_messages(
                question, charts.describe_columns(df), charts.requested_mark(question))
            proposal = await call_model(ctx, msgs, node="ask_analyst")
        out = await asyncio.to_thread(
            charts.build_chart, df, ctx.chart_title or question, proposal,
            charts.requested_mark(question))
    except (QueryCancelled, ModelError):
        raise
    except AigisError as exc:  # nothing chartable: say so, and still answer in words
        note = f"No chart: {exc.message}"
        write(events.tool_result(note))
        return None, note
    spec = out["spec"]
    write(events.chart(spec))
    write(events.tool_result(json.dumps(out, default=str)))
    mark = spec.get("mark")
    kind = mark.get("type") if isinstance(mark, dict) else mark
    return out, f"Chart ready ({kind})."
