"""`AgentRunner`: one chat turn in, one ordered stream of events out.

The runner picks the thread's model and connection (from the call, else from the thread's
checkpoint), refuses early with an actionable `error` event when either is missing, and
runs the graph with a per-turn context (model, database access, cancel token). Threads
live in the store's database, so a thread resumes after a restart.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from ..errors import AigisError, action
from ..models import ModelRegistry
from . import events
from .checkpoint import open_checkpointer
from .deps import AgentDeps
from .graph import build_graph
from .tracing import tracing_callbacks
from .turn import TurnContext, secrets_from_env, text_of

__all__ = ["AgentDeps", "AgentRunner", "message_dict"]


def message_dict(m: BaseMessage) -> dict[str, Any]:
    """A checkpointed message as plain JSON (for the thread-state view of every door)."""
    d: dict[str, Any] = {"role": m.type, "content": text_of(m.content)}
    if isinstance(m, AIMessage) and m.tool_calls:
        d["tool_calls"] = [{"name": c["name"], "args": c["args"]} for c in m.tool_calls]
    if isinstance(m, ToolMessage):
        d["name"] = m.name
        d["status"] = m.status
        if isinstance(m.artifact, dict) and m.artifact.get("sql"):
            d["sql"] = m.artifact["sql"]
    if isinstance(m, AIMessage) and m.additional_kwargs.get("aigis_error"):
        d["error"] = m.additional_kwargs["aigis_error"]
    return d


class AgentRunner:
    """Runs chat turns for every thread of a process (one compiled graph, one saver)."""

    def __init__(
        self,
        *,
        registry: ModelRegistry,
        checkpointer_url_or_saver: Any = None,
        deps: AgentDeps | None = None,
        settings: Any = None,
    ) -> None:
        from ..settings import Settings

        self.registry = registry
        self.deps = deps
        self.settings = settings or getattr(registry, "settings", None) or Settings()
        self._target = checkpointer_url_or_saver
        self._lock = threading.Lock()
        self._saver: Any = None
        self._graph: Any = None

    def __repr__(self) -> str:
        return f"<AgentRunner saver={type(self._saver).__name__ if self._saver else None}>"

    @property
    def graph(self) -> Any:
        """The compiled graph (its checkpointer is opened on first use)."""
        with self._lock:
            if self._graph is None:
                self._saver = open_checkpointer(self._target)
                self._graph = build_graph(self._saver)
            return self._graph

    @property
    def checkpointer(self) -> Any:
        _ = self.graph
        return self._saver

    @staticmethod
    def _config(thread_id: str) -> dict[str, Any]:
        return {"configurable": {"thread_id": str(thread_id)}}

    # -- turns ----------------------------------------------------------------------------

    async def run_turn(
        self,
        thread_id: str,
        text: str,
        *,
        connection_id: str | None = None,
        model_name: str | None = None,
        chart: bool = True,
        cancel: Any | None = None,
        sql_only: bool = False,
        deps: AgentDeps | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """One question -> events (`status`, `sql`, `table`, `chart`, `tool_result`, `chunk`,
        `error`), always ending with `end`. Missing model or connection -> an `error` whose
        action says what to pick; the thread is left unchanged. `sql_only` writes and checks
        the SQL (guard) without running it: one model call, no table, no answer.

        `deps` is the acting user's access to data for this turn (the runner's own, set at
        construction, only serves single-user embeddings such as tests and benchmarks).
        Everything that blocks (opening the checkpointer, building a model) runs in a
        worker thread: the caller's event loop may serve other users meanwhile."""
        deps = deps or self.deps
        if deps is None:
            raise ValueError("run_turn needs the acting user's deps")
        graph = await asyncio.to_thread(lambda: self.graph)
        config = self._config(thread_id)
        snapshot = await graph.aget_state(config)
        prev = dict(snapshot.values or {}) if snapshot else {}
        model_name = model_name or prev.get("model_name") or self.settings.default_model
        connection = connection_id or prev.get("connection")

        refusal = await asyncio.to_thread(self._refusal, text, model_name, connection)
        if refusal is not None:
            yield refusal
            yield events.end("")
            return
        try:
            info, model = await asyncio.to_thread(self._model, str(model_name))
        except AigisError as exc:
            yield events.error(exc.message, exc.reason, exc.action)
            yield events.end("")
            return
        if cancel is not None and getattr(cancel, "cancelled", False):
            yield events.error("The question was cancelled before it started.", "cancelled")
            yield events.end("")
            return

        ctx = TurnContext(
            deps=deps,
            model=model,
            info=info,
            settings=self.settings,
            thread_id=str(thread_id),
            cancel=cancel,
            chart_enabled=chart,
            callbacks=tracing_callbacks(),
            secrets=secrets_from_env(self.registry),
            choices=tuple(n for n in await asyncio.to_thread(self.registry.available_names)
                          if n != info.name),
        )
        config = {
            **config,
            "callbacks": tracing_callbacks(graph),
            "run_name": "aigis.turn",
            "tags": ["aigis"],
            "metadata": {"thread_id": str(thread_id), "model": info.name},
        }
        graph_input = {
            "messages": [HumanMessage(text)],
            "model_name": info.name,
            "connection": str(connection),
            "question": text,
            "want_chart": False,
            "sql_only": bool(sql_only),
            "about_schema": False,
            "explore": False,
            "intent": "data",
            "error": None,
            "chart": None,
            "sql_result": None,
        }
        async for event in events.turn_events(graph, graph_input, config, ctx):
            yield event

    def _model(self, name: str) -> tuple[Any, Any]:
        info = self.registry.resolve(name)
        return info, self.registry.chat_model(info.name)

    def _refusal(
        self, text: str, model_name: str | None, connection: str | None
    ) -> dict[str, Any] | None:
        if not isinstance(text, str) or not text.strip():
            return events.error("Ask a question: the message is empty.", "bad_input")
        if not model_name:
            names = self.registry.available_names()
            listing = (
                "Available here: " + ", ".join(names) + "."
                if names
                else "No model is available here yet: set LM_STUDIO_ENDPOINT, DEEPSEEK_API_KEY, "
                "GOOGLE_API_KEY or OPENAI_API_KEY, or install the `local` extra."
            )
            return events.error(
                f"No model selected for this thread. {listing}", "no_model",
                self.registry.pick_action(),
            )
        if not connection:
            return events.error(
                "No database connection selected for this thread.", "no_connection",
                action("pick_connection"),
            )
        return None

    # -- thread state -----------------------------------------------------------------------

    @staticmethod
    def _state_dict(thread_id: str, snapshot: Any) -> dict[str, Any]:
        values = dict(snapshot.values or {}) if snapshot else {}
        return {
            "thread_id": str(thread_id),
            "model_name": values.get("model_name"),
            "connection": values.get("connection"),
            "db_schema": values.get("db_schema"),
            "sql_result": values.get("sql_result"),
            "chart": values.get("chart"),
            "error": values.get("error"),
            "messages": [message_dict(m) for m in values.get("messages") or []],
        }

    def state(self, thread_id: str) -> dict[str, Any]:
        """The thread's checkpointed state as JSON (empty values for an unknown thread)."""
        return self._state_dict(thread_id, self.graph.get_state(self._config(thread_id)))

    async def astate(self, thread_id: str) -> dict[str, Any]:
        snapshot = await self.graph.aget_state(self._config(thread_id))
        return self._state_dict(thread_id, snapshot)

    def delete_thread(self, thread_id: str) -> None:
        """Forget a thread's checkpoints (the store deletes its own rows)."""
        self.checkpointer.delete_thread(str(thread_id))

    def close(self) -> None:
        closer = getattr(self._saver, "close", None)
        if callable(closer):
            closer()
