"""A user's chat threads: their messages, model and connection, and the turns run in them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..errors import BadInput, QueryCancelled
from . import validation
from .contract import (
    Event,
    MessageInfo,
    ModelEntry,
    ResultPreview,
    ThreadInfo,
    ThreadModel,
    TurnRecord,
)
from .examples import ExampleOps
from .rows import jsonable, message_info, model_entry, thread_info
from .turns import PROCESS, RunningTurn

if TYPE_CHECKING:
    import pandas as pd

    from ..store.models import Thread


def _now() -> datetime:
    return datetime.now(timezone.utc)


class ThreadOps(ExampleOps):
    def _thread_out(self, s: Any, t: Thread) -> ThreadInfo:
        name = None
        if t.connection_id:
            conn = next((c for c in self._repo(s).connections() if c.id == t.connection_id),
                        None)
            name = conn.name if conn else None
        running = t.id in self._repo(s).running_threads(time.time())
        return thread_info(t, name, running=running)

    def create_thread(self, title: str | None = None, *, connection: str | None = None,
                      model: str | None = None) -> ThreadInfo:
        """A new chat thread, optionally with its connection and model already picked."""
        from ..store.models import Thread

        title = validation.opt_str({"title": title}, "title")
        model_name = self.service.models.resolve(model).name if model else None
        with self._session() as s:
            repo = self._repo(s)
            conn_id = repo.connection(connection).id if connection else None
            t = repo.add_thread(Thread(title=title, connection_id=conn_id,
                                       model_name=model_name))
            return self._thread_out(s, t)

    def list_threads(self) -> list[ThreadInfo]:
        """Your threads, most recently active first."""
        running = self.service.turns.running_threads(self.user_id)
        with self._session() as s:
            repo = self._repo(s)
            names = {c.id: c.name for c in repo.connections()}
            return [thread_info(t, names.get(t.connection_id or ""), running=t.id in running)
                    for t in repo.threads()]

    def get_thread(self, thread_id: str) -> ThreadInfo:
        with self._session() as s:
            return self._thread_out(s, self._repo(s).thread(thread_id))

    def rename_thread(self, thread_id: str, title: str | None) -> ThreadInfo:
        title = validation.opt_str({"title": title}, "title")
        with self._session() as s:
            t = self._repo(s).thread(thread_id)
            t.title, t.updated_at = title, _now()
            return self._thread_out(s, t)

    def delete_thread(self, thread_id: str) -> None:
        """Delete a thread with its messages and checkpoints; a running turn is stopped."""
        self.get_thread(thread_id)
        self.service.turns.cancel(self.user_id, thread_id)
        with self._session() as s:
            repo = self._repo(s)
            repo.delete_thread(repo.thread(thread_id))
        self.service.turns.forget(self.user_id, thread_id)
        self.service.forget_thread(thread_id)

    def get_messages(self, thread_id: str) -> list[MessageInfo]:
        with self._session() as s:
            return [message_info(m) for m in self._repo(s).messages(thread_id)]

    def add_message(self, thread_id: str, role: str, content: str,
                    payload: Mapping[str, Any] | None = None) -> MessageInfo:
        """Store one chat message; the first user message also names an untitled thread."""
        if role not in validation.MESSAGE_ROLES:
            raise BadInput(f"Unknown message role {role!r}; use one of "
                           f"{', '.join(validation.MESSAGE_ROLES)}.")
        if not isinstance(content, str):
            raise BadInput("A message's content must be text.")
        data: dict[str, Any] | None = None
        if payload is not None:
            try:
                data = jsonable(dict(payload))
            except (TypeError, ValueError) as exc:
                raise BadInput(f"The message payload is not JSON-serialisable: {exc}") from None
        with self._session() as s:
            repo = self._repo(s)
            m = repo.add_message(thread_id, role, content, data)
            if role == "user":
                t = repo.thread(thread_id)
                if not t.title:
                    t.title = " ".join(content.split())[:80] or None
            return message_info(m)

    def set_thread_connection(self, thread_id: str, ref: str | None) -> ThreadInfo:
        """Pick the connection a thread asks (None clears it)."""
        with self._session() as s:
            repo = self._repo(s)
            t = repo.thread(thread_id)
            t.connection_id = repo.connection(ref).id if ref else None
            t.updated_at = _now()
            s.flush()
            return self._thread_out(s, t)

    def thread_state(self, thread_id: str) -> dict[str, Any]:
        """The agent's checkpointed state of a thread (schema used, last SQL result...)."""
        self.get_thread(thread_id)
        return dict(self.service.runner().state(thread_id))

    # -- models ---------------------------------------------------------------------------
    def list_models(self) -> list[ModelEntry]:
        """Every model this deployment knows, with availability and how to enable it."""
        reg = self.service.models
        return [model_entry(m, reg) for m in reg.list()]

    def get_thread_model(self, thread_id: str) -> ThreadModel:
        """The thread's model and every known model with its availability."""
        thread = self.get_thread(thread_id)
        infos = self.list_models()
        return {"thread_id": thread["id"], "model": thread["model_name"], "models": infos,
                "available": {m["name"]: m["available"] for m in infos}}

    def set_thread_model(self, thread_id: str, name: str | None) -> ThreadModel:
        """Pick the thread's model by name or alias (None clears it)."""
        self._pick_model(thread_id, name)
        return self.get_thread_model(thread_id)

    def _pick_model(self, thread_id: str, name: str | None) -> ThreadInfo:
        with self._session() as s:
            t = self._repo(s).thread(thread_id)  # NotFound first: nothing of others' threads
            t.model_name = self.service.models.resolve(name).name if name else None
            t.updated_at = _now()
            return self._thread_out(s, t)

    # -- chat -----------------------------------------------------------------------------
    def _start_turn(self, thread_id: str, text: str, connection: str | None,
                    model: str | None) -> tuple[ThreadInfo, str | None, RunningTurn, Any]:
        """Everything blocking before the first event (run in a worker thread)."""
        validation.question(text)
        if connection is not None:
            thread = self.set_thread_connection(thread_id, connection)
        else:
            thread = self.get_thread(thread_id)
        if model is not None:
            thread = self._pick_model(thread_id, model)
        runner = self.service.runner()  # before storing anything: it may fail to import
        running = self.service.turns.acquire(self.user_id, thread_id)
        try:
            self.add_message(thread_id, "user", text)
        except BaseException:
            self.service.turns.release(running)
            raise
        return thread, thread["model_name"] or self.settings.default_model, running, runner

    def _end_turn(self, running: RunningTurn, record: TurnRecord,
                  head: dict[str, Any]) -> None:
        try:
            if record.has_content:
                payload = {**head, **record.payload()}
                if record.table:
                    payload["process"] = PROCESS
                self._keep_answer(running.thread_id, record.answer, payload)
        finally:
            self.service.turns.release(running)

    def _keep_answer(self, thread_id: str, text: str, payload: dict[str, Any]) -> None:
        """Store an answer the user has already seen, waiting out a store restart: retried
        with backoff for one lease period, then the store's error reaches the user."""
        from ..store import StoreUnavailable

        deadline, delay = time.monotonic() + self.service.turns.lease_s, 0.25
        while True:
            try:
                self.add_message(thread_id, "assistant", text, payload)
                return
            except StoreUnavailable:
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 4.0)

    async def chat(self, thread_id: str, text: str, *, connection: str | None = None,
                   model: str | None = None, chart: bool = True,
                   sql_only: bool = False) -> AsyncIterator[Event]:
        """One chat turn as a stream of events (DESIGN.md); both sides are stored.

        Store, database and model work happen in worker threads, never on the caller's
        event loop: in a Jupyter server every user shares that loop.
        """
        from .deps import TurnDeps

        thread, model_name, running, runner = await asyncio.to_thread(
            self._start_turn, thread_id, text, connection, model)
        record = TurnRecord()  # the process's lease watcher renews and cancels it meanwhile
        end: Event | None = None
        try:
            async for event in runner.run_turn(
                    thread_id, text, connection_id=thread["connection_id"],
                    model_name=model_name, chart=chart, sql_only=sql_only,
                    cancel=running.token, deps=TurnDeps(self, thread_id)):  # type: ignore[arg-type]
                record.feed(event)
                if event["type"] == "end":  # sent once the turn is stored and the thread free,
                    end = event  # so a client may ask again the moment it sees it
                    continue
                yield event
        except (GeneratorExit, asyncio.CancelledError):
            # closed or cancelled by its consumer (an interrupted kernel): the SQL still
            # running in a worker thread is stopped too, and the turn is kept as cancelled
            running.token.cancel()
            record.feed({"type": "error", **QueryCancelled("Cancelled.").to_dict()})
            raise
        finally:
            head = {"model": model_name, "connection_id": thread["connection_id"]}
            await asyncio.shield(asyncio.to_thread(self._end_turn, running, record, head))
        if end is not None:
            yield end

    def cancel(self, thread_id: str) -> bool:
        """Stop the running turn of a thread (its SQL too), in whichever process it runs;
        False if nothing was running."""
        self.get_thread(thread_id)
        return self.service.turns.cancel(self.user_id, thread_id)

    def last_result(self, thread_id: str) -> pd.DataFrame | None:
        """The full DataFrame of the thread's last query, if this process ran it."""
        self.get_thread(thread_id)
        return self.service.turns.last_frame(self.user_id, thread_id)

    def result_preview(self, thread_id: str) -> ResultPreview | None:
        """The stored preview of the thread's last result (any process)."""
        with self._session() as s:
            payload, _msg = self._repo(s).last_assistant_payload(thread_id)
        if payload is None:
            return None
        table = payload["table"]
        return {"thread_id": thread_id, "sql": payload.get("sql"),
                "columns": list(table.get("columns") or []),
                "rows": list(table.get("rows") or []),
                "row_count": int(table.get("row_count") or 0),
                "truncated": bool(table.get("truncated")), "process": payload.get("process"),
                "connection_id": payload.get("connection_id")}
