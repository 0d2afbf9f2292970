"""Where threads are checkpointed: the store's own database (SQLite file or PostgreSQL).

The graph runs on asyncio, but the savers used here are the synchronous ones with their
async methods run in worker threads. A synchronous SQLite connection or psycopg pool is
not tied to an event loop, so one saver serves every loop in the process (a notebook
kernel's background loop, the Jupyter server's loop, `asyncio.run` in a script).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver

from ..errors import BadInput


class _ThreadedAsync:
    """Async methods of a synchronous saver, each run in a worker thread."""

    async def aget_tuple(self, config: Any) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)  # type: ignore[attr-defined]

    async def alist(
        self,
        config: Any,
        *,
        filter: dict[str, Any] | None = None,
        before: Any = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        items = await asyncio.to_thread(
            lambda: list(self.list(config, filter=filter, before=before, limit=limit))  # type: ignore[attr-defined]
        )
        for item in items:
            yield item

    async def aput(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)  # type: ignore[attr-defined]

    async def aput_writes(
        self, config: Any, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)  # type: ignore[attr-defined]

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)  # type: ignore[attr-defined]

    async def aget_delta_channel_history(
        self, *, config: Any, channels: Sequence[str]
    ) -> Mapping[str, Any]:
        return await asyncio.to_thread(
            lambda: self.get_delta_channel_history(config=config, channels=channels)  # type: ignore[attr-defined]
        )


class ThreadedSqliteSaver(_ThreadedAsync, SqliteSaver):
    """`SqliteSaver` usable from any event loop."""

    def close(self) -> None:
        self.conn.close()


def sqlite_checkpoint_path(store_path: str | Path) -> Path:
    """The checkpoint file that sits beside a SQLite store: `aigis.sqlite` ->
    `aigis.checkpoints.sqlite` (LangGraph's tables stay out of the store's migrations)."""
    p = Path(store_path).expanduser()
    return p.with_name(f"{p.stem}.checkpoints.sqlite")


def open_sqlite(path: str | Path) -> ThreadedSqliteSaver:
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")  # the kernel and the server share the file
    conn.execute("PRAGMA busy_timeout=30000")
    saver = ThreadedSqliteSaver(conn)
    saver.setup()
    return saver


def open_postgres(url: str) -> BaseCheckpointSaver:
    """A pooled `PostgresSaver` on the store's database (tables created on first use)."""
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool
    from sqlalchemy.engine import make_url

    class ThreadedPostgresSaver(_ThreadedAsync, PostgresSaver):
        def close(self) -> None:
            self.conn.close()  # the pool

    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    pool = ConnectionPool(
        conninfo,
        min_size=1,
        max_size=4,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        # a connection the server dropped (a restart) is replaced before use, not handed out
        check=ConnectionPool.check_connection,
        open=True,
    )
    saver = ThreadedPostgresSaver(pool)
    saver.setup()
    return saver


def open_checkpointer(target: str | BaseCheckpointSaver | None) -> BaseCheckpointSaver:
    """A saver for a store URL (`sqlite:///…`, `postgresql+psycopg://…`), an existing saver,
    or memory (`None`, `":memory:"`, `sqlite://`) for throwaway threads."""
    if isinstance(target, BaseCheckpointSaver):
        return target
    if target is None or target in (":memory:", "memory", "sqlite://", "sqlite:///:memory:"):
        return InMemorySaver()
    url = str(target)
    scheme = url.split(":", 1)[0].lower()
    if scheme.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        path = path.split("?", 1)[0]
        if not path or path == ":memory:":
            return InMemorySaver()
        return open_sqlite(sqlite_checkpoint_path(path))
    if scheme.startswith("postgres"):
        return open_postgres(url)
    if scheme.endswith((".sqlite", ".db")) or url.endswith((".sqlite", ".db")):
        return open_sqlite(url)
    raise BadInput(
        f"Cannot keep chat threads in '{scheme}': use a sqlite:/// or postgresql:// store URL."
    )
