"""Turns across processes and on a shared event loop.

The kernel, the Jupyter server and hub replicas are separate processes on one store, and
a Jupyter server runs every user's turns on one event loop. These tests use real processes,
a real store and a real PostgreSQL query; only the model is scripted.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from test_agent_support import ScriptedChatModel

from aigis_jupyter.errors import Conflict
from aigis_jupyter.models import ModelInfo
from aigis_jupyter.service.core import AigisService
from aigis_jupyter.settings import Settings

WORKER = Path(__file__).resolve().parent / "turn_worker.py"
#: A read the guard lets through that keeps PostgreSQL busy for minutes (no pg_sleep).
HEAVY_SQL = "SELECT COUNT(*) AS n FROM generate_series(1, 3000000000) AS g"
MARK = "generate_series(1, 3000000000)"


class Worker:
    """A child process running one turn; its events arrive as JSON lines."""

    def __init__(self, settings: Settings, user: str, thread_id: str, sql: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), settings.store_url, str(settings.data_dir), user,
             thread_id, sql, str(settings.turn_lease_s)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(WORKER.parent)})
        self.events: list[dict[str, Any]] = []

    def wait_for(self, kind: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline() if self.proc.stdout else ""
            if not line:
                if self.proc.poll() is not None:
                    break
                continue
            event = json.loads(line)
            self.events.append(event)
            if event["type"] == kind:
                return event
        err = self.proc.stderr.read() if self.proc.stderr and self.proc.poll() is not None else ""
        raise AssertionError(f"no {kind!r} event from the worker; got {self.events}\n{err}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@contextmanager
def worker(*args: Any) -> Iterator[Worker]:
    w = Worker(*args)
    try:
        yield w
    finally:
        w.stop()


def heavy_queries(pg_url: str) -> int:
    """HEAVY_SQL at work on the database of `pg_url`. It runs through a server-side cursor:
    its query text is `DECLARE ... FOR <sql>`, then `FETCH ... FROM "aigis_result"` for as
    long as it works, so it is found as a product session doing either."""
    eng = sa.create_engine(pg_url)
    try:
        with eng.connect() as c:
            return int(c.execute(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
                "AND application_name = 'aigis-jupyter' AND datname = current_database() "
                "AND pid <> pg_backend_pid() AND (query LIKE 'FETCH %' OR query LIKE :q)"),
                {"q": f"%{MARK}%"}).scalar())
    finally:
        eng.dispose()


@pytest.fixture
def shared(tmp_path: Path, pg_db: str) -> Iterator[tuple[AigisService, str, str]]:
    """A store on disk, alice's thread on a PostgreSQL connection, and this process's service."""
    settings = Settings(data_dir=tmp_path / "data", master_keys=["turn tests"], turn_lease_s=2.0)
    svc = AigisService(settings)
    alice = svc.user("alice")
    url = sa.engine.make_url(pg_db)
    alice.create_connection({"name": "pg", "db_type": "postgres", "host": url.host,
                             "port": url.port, "database": url.database,
                             "username": url.username})
    thread = alice.create_thread("shared", connection="pg")
    yield svc, thread["id"], pg_db
    svc.close()


def script(svc: AigisService, replies: list[str]) -> None:
    """Register a scripted model called `scripted` in the service's registry."""
    model = ScriptedChatModel(messages=iter(replies))
    svc.models.register(ModelInfo(name="scripted", provider="fake", supports_tools=False),
                        lambda: model)


def _drain(stream: Any) -> list[dict[str, Any]]:
    async def go() -> list[dict[str, Any]]:
        return [e async for e in stream]

    return asyncio.run(go())


@pytest.mark.postgres
@pytest.mark.slow
def test_a_busy_thread_refuses_a_second_turn_and_a_cancel_from_here_stops_its_sql(
        shared: tuple[AigisService, str, str]) -> None:
    """One running turn per thread across processes; cancel reaches the other process's SQL."""
    svc, tid, pg_url = shared
    alice = svc.user("alice")
    with worker(svc.settings, "alice", tid, HEAVY_SQL) as w:
        w.wait_for("sql")
        deadline = time.monotonic() + 20
        while heavy_queries(pg_url) == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert heavy_queries(pg_url) == 1, "the worker's query never started"
        assert alice.get_thread(tid)["running"] is True
        with pytest.raises(Conflict, match="already running"):
            _drain(alice.chat(tid, "another question"))
        t0 = time.monotonic()
        assert alice.cancel(tid) is True
        while heavy_queries(pg_url) and time.monotonic() - t0 < 10:  # give up after 10 s
            time.sleep(0.05)
        assert heavy_queries(pg_url) == 0, "the query outlived the cancel"
        err = w.wait_for("error")
        assert err["reason"] == "cancelled"
        w.wait_for("_done")
    assert alice.get_thread(tid)["running"] is False
    last = alice.get_messages(tid)[-1]
    assert last["role"] == "assistant" and last["payload"]["error"]["reason"] == "cancelled"


@pytest.mark.postgres
@pytest.mark.slow
def test_a_killed_process_lease_expires(shared: tuple[AigisService, str, str]) -> None:
    """A process that dies mid-turn blocks its thread only until its lease runs out."""
    svc, tid, _pg = shared
    alice = svc.user("alice")
    with worker(svc.settings, "alice", tid, HEAVY_SQL) as w:
        w.wait_for("sql")
        os.kill(w.proc.pid, signal.SIGKILL)
        w.proc.wait(10)
    with pytest.raises(Conflict):
        _drain(alice.chat(tid, "right after the crash"))
    time.sleep(svc.settings.turn_lease_s + 0.5)
    script(svc, ["SELECT 1 AS one", "One."])
    events = _drain(alice.chat(tid, "and now?", model="scripted"))
    assert [e for e in events if e["type"] == "error"] == []
    assert events[-1]["type"] == "end" and any(e["type"] == "table" for e in events)


@pytest.mark.postgres
@pytest.mark.slow
def test_a_second_process_is_refused_while_this_one_runs(
        shared: tuple[AigisService, str, str]) -> None:
    """The refusal holds the other way round too: a turn here blocks the other process."""
    svc, tid, _pg = shared
    alice = svc.user("alice")
    script(svc, [HEAVY_SQL, "done"])

    async def go() -> dict[str, Any]:
        stream = alice.chat(tid, "count a lot", model="scripted")
        async for event in stream:
            if event["type"] == "sql":
                refused = await asyncio.to_thread(_other_process_refusal, svc, tid)
                await asyncio.to_thread(alice.cancel, tid)
                async for _ in stream:
                    pass
                return refused
        raise AssertionError("no sql event")

    refused = asyncio.run(go())
    assert refused["type"] == "_refused" and refused["reason"] == "conflict"


def _other_process_refusal(svc: AigisService, tid: str) -> dict[str, Any]:
    with worker(svc.settings, "alice", tid, "SELECT 1") as w:
        return w.wait_for("_refused")


#: Deliberate stalls: every store session, and every query on the user's database.
STORE_DELAY_S = 0.3
DB_DELAY_S = 1.0
#: The largest pause the event loop may see meanwhile: a third of the smallest stall. Any
#: stall run on the loop would show as a gap of at least STORE_DELAY_S; the margin below
#: it absorbs thread switching (the GIL hands over every 5 ms) on a busy 2-core machine.
MAX_LOOP_GAP_S = STORE_DELAY_S / 3


def test_a_chat_turn_never_blocks_the_event_loop(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Store, database and model work of a turn run in worker threads, off the loop."""
    from aigis_jupyter.databases import execute
    from aigis_jupyter.demo import build_demo_sqlite

    svc = AigisService(settings)
    alice = svc.user("alice")
    alice.create_connection({"name": "demo", "db_type": "sqlite",
                             "host": str(build_demo_sqlite(tmp_path / "demo.sqlite"))})
    tid = alice.create_thread("loop", connection="demo")["id"]
    script(svc, ["SELECT COUNT(*) AS n FROM customers", "There are 430 customers."])
    # as a server does at start: C extensions initialise holding the interpreter lock,
    # even in a worker thread, so they load before the loop serves anyone
    svc.warm_up()

    real_session, real_run = svc.store.session, execute.run_query
    stalls: list[str] = []

    @contextmanager
    def slow_session() -> Iterator[Any]:
        stalls.append("store")
        time.sleep(STORE_DELAY_S)
        with real_session() as s:
            yield s

    def slow_run(*args: Any, **kwargs: Any) -> Any:
        stalls.append("database")
        time.sleep(DB_DELAY_S)
        return real_run(*args, **kwargs)

    monkeypatch.setattr(svc.store, "session", slow_session)
    monkeypatch.setattr(execute, "run_query", slow_run)

    async def turn_with_watchdog() -> tuple[list[dict[str, Any]], float]:
        loop = asyncio.get_running_loop()
        gaps: list[float] = []
        done = asyncio.Event()

        async def watchdog() -> None:
            last = loop.time()
            while not done.is_set():
                await asyncio.sleep(0.005)
                now = loop.time()
                gaps.append(now - last)
                last = now

        dog = asyncio.create_task(watchdog())
        await asyncio.sleep(0.05)  # the watchdog ticks before the turn starts
        events = [e async for e in alice.chat(tid, "How many customers?", model="scripted")]
        done.set()
        await dog
        return events, max(gaps)

    events, worst = asyncio.run(turn_with_watchdog())
    svc.close()
    assert [e for e in events if e["type"] == "error"] == []
    assert any(e["type"] == "table" for e in events) and events[-1]["type"] == "end"
    assert "database" in stalls and stalls.count("store") >= 3, stalls
    assert worst < MAX_LOOP_GAP_S, f"the loop stalled for {worst:.3f} s during a turn"
