"""Faults on real services: the store's PostgreSQL restarted, a user's database that goes
away mid-query, a kernel interrupted during `%%aigis`. Nothing is lost or stored twice,
the user is told what happened and what to do, and no process has to be restarted.

The store and the user's database live on PostgreSQL servers of the test's own
(`pg_cluster.py`), so they can be stopped and started without touching the shared server
the other tests use. The server is a real `jupyter server` with the extension; its model,
`echo` (`echo_model.py`), runs the SQL each question carries, so the test chooses what the
database is doing when the fault strikes.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from conftest import missing
from kernel_util import ECHO_SETUP, failed, kernel, text
from live_server import live_server, log_tail
from pg_cluster import PgCluster, pg_cluster
from sqlalchemy.pool import NullPool

TESTS = Path(__file__).resolve().parent
#: A query that runs for minutes unless stopped, and that the guard lets through.
ENDLESS = "SELECT count(*) AS n FROM generate_series(1, 4000000000) AS g"


def until(check: Callable[[], Any], what: str, limit_s: float = 30.0) -> Any:
    """Wait for a state (never a measure of speed): fails naming what never happened."""
    deadline = time.monotonic() + limit_s
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {limit_s:.0f} s")
        time.sleep(0.1)


def active(url: str, fragment: str = "aigis_result") -> list[str]:
    """States of the sessions on `url`'s server whose query holds `fragment` (by default,
    the product's result cursor: a query runs as `DECLARE aigis_result CURSOR` and `FETCH`)."""
    eng = sa.create_engine(url, poolclass=NullPool)
    try:
        with eng.connect() as c:
            return list(c.execute(sa.text(
                "SELECT state FROM pg_stat_activity WHERE query LIKE :q AND pid <> "
                "pg_backend_pid()"), {"q": f"%{fragment}%"}).scalars())
    finally:
        eng.dispose()


class Api:
    """alice's REST + SSE calls on the live server."""

    def __init__(self, url: str, token: str) -> None:
        self.http = httpx.Client(base_url=url + "aigis/", timeout=120,
                                 headers={"Authorization": f"token {token}"})

    def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        return self.http.request(method, path, json=body)

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        r = self.call(method, path, body)
        assert r.status_code < 300, (r.status_code, r.text)
        return r.json() if r.content else None

    def chat(self, thread: str, text: str) -> tuple[int, list[dict[str, Any]], Any]:
        """(status, events, the JSON error when refused before the stream began)."""
        with self.http.stream("POST", f"chat/{thread}/message", json={"text": text}) as r:
            if r.status_code != 200:
                r.read()
                return r.status_code, [], r.json()
            events = [json.loads(line[5:]) for line in r.iter_lines()
                      if line.startswith("data:")]
            return 200, events, None

    def messages(self, thread: str) -> list[tuple[str, str]]:
        """(role, first line): an answer may go on with a sentence stating the result."""
        return [(m["role"], m["content"].split("\n")[0]) for m in self.ok("GET", f"chat/{thread}")]


@pytest.fixture(scope="module")
def clusters() -> Iterator[tuple[PgCluster, PgCluster]]:
    """Two private servers: one holds the store, the other the user's database."""
    try:
        with pg_cluster() as store, pg_cluster() as warehouse:
            yield store, warehouse
    except (FileNotFoundError, RuntimeError) as exc:
        missing(f"a private PostgreSQL server ({exc})")


@pytest.fixture(scope="module")
def server(clusters: tuple[PgCluster, PgCluster], tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Api, Path, PgCluster, PgCluster]]:
    store, warehouse = clusters
    for cluster, db in ((store, "aigis"), (warehouse, "warehouse")):
        eng = sa.create_engine(cluster.url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        with eng.connect() as c:
            c.execute(sa.text(f"CREATE DATABASE {db}"))
        eng.dispose()
    wh = sa.create_engine(warehouse.url.rsplit("/", 1)[0] + "/warehouse", poolclass=NullPool)
    with wh.begin() as c:
        c.execute(sa.text("CREATE TABLE t (id int PRIMARY KEY)"))
        c.execute(sa.text("INSERT INTO t SELECT g FROM generate_series(1, 7) g"))
    wh.dispose()
    tmp = tmp_path_factory.mktemp("faults")
    token = secrets.token_hex(16)
    env = {"AIGIS_DATABASE_URL": store.url.rsplit("/", 1)[0] + "/aigis",
           "MASTER_ENCRYPTION_KEY": "faults", "PYTHONPATH": str(TESTS),
           "AIGIS_STATEMENT_TIMEOUT": "300"}
    with live_server(tmp, token, env=env,
                     args=["--ServerApp.jpserver_extensions=echo_model=True"]) as url:
        api = Api(url, token)
        until(lambda: "echo" in {m["name"] for m in api.ok("GET", "models")},
              "the echo model registered")
        api.ok("POST", "connections", {
            "name": "warehouse", "db_type": "postgres", "host": "127.0.0.1",
            "port": warehouse.port, "database": "warehouse", "username": "postgres"})
        yield api, tmp / "server.log", store, warehouse


def new_thread(api: Api) -> str:
    return str(api.ok("POST", "chat/thread", {"connection": "warehouse", "model": "echo"})
               ["thread_id"])


def answered(events: list[dict[str, Any]], marker: str) -> bool:
    return (not [e for e in events if e["type"] == "error"]
            and events[-1]["type"] == "end"
            and events[-1]["full_response"].startswith(f"Answer to {marker}."))


def test_a_store_restart_fails_requests_clearly_then_recovers_losing_nothing(
        server: tuple[Api, Path, PgCluster, PgCluster]) -> None:
    """A store restart between and during turns: 503s that say what to do, then recovery
    without restarting Jupyter, and every turn stored exactly once."""
    api, log, store, _ = server
    tid = new_thread(api)
    status, events, _ = api.chat(tid, "q1 sql: SELECT count(*) AS n FROM t")
    assert status == 200 and answered(events, "q1"), events

    store.stop()
    try:
        for method, path in (("GET", "chat/threads"), ("GET", f"chat/{tid}"),
                             ("GET", "connections")):
            r = api.call(method, path)
            assert r.status_code == 503, (path, r.status_code, r.text)
            body = r.json()
            assert body["reason"] == "store_unavailable" and "Retry" in body["message"]
            assert body["action"] == {"kind": "retry"}
            assert str(store.port) not in r.text  # the store's address stays in the log
        status, events, err = api.chat(tid, "q2 sql: SELECT 2 AS two")
        assert status == 503 and err["reason"] == "store_unavailable", (status, events, err)
    finally:
        store.start()
    # recovered: the same server, the same thread
    status, events, _ = api.chat(tid, "q3 sql: SELECT count(*) AS n FROM t")
    assert status == 200 and answered(events, "q3"), events

    # a restart while a turn runs: the answer the user saw is kept once the store is back
    done: dict[str, Any] = {}
    turn = threading.Thread(target=lambda: done.update(
        r=api.chat(tid, "q4 sql: SELECT count(*) AS n FROM generate_series(1, 30000000) g")))
    turn.start()
    until(lambda: "active" in active(server[3].url) or done,
          "the slow query running")
    assert not done, done  # the turn must still be running
    store.stop()
    store.start()
    turn.join(120)
    assert not turn.is_alive()
    status, events, _ = done["r"]
    assert status == 200 and answered(events, "q4"), events
    assert api.messages(tid) == [
        ("user", "q1 sql: SELECT count(*) AS n FROM t"), ("assistant", "Answer to q1."),
        ("user", "q3 sql: SELECT count(*) AS n FROM t"), ("assistant", "Answer to q3."),
        ("user", "q4 sql: SELECT count(*) AS n FROM generate_series(1, 30000000) g"),
        ("assistant", "Answer to q4."),
    ]
    assert api.ok("GET", "health")["store"]["ok"] is True
    assert "Traceback" not in log.read_text(), log_tail(log)


def test_a_database_that_goes_away_mid_query_is_an_error_event_and_the_thread_goes_on(
        server: tuple[Api, Path, PgCluster, PgCluster]) -> None:
    """The user's database stopped while its query runs: an `error` event then `end`, the
    question stored, and the next turn on the same thread answers once it is back."""
    api, log, _, warehouse = server
    tid = new_thread(api)
    done: dict[str, Any] = {}
    turn = threading.Thread(target=lambda: done.update(r=api.chat(tid, f"q1 sql: {ENDLESS}")))
    turn.start()
    until(lambda: "active" in active(warehouse.url) or done,
          "the query running")
    assert not done, done  # the turn must still be running
    warehouse.stop()
    try:
        turn.join(120)
        assert not turn.is_alive()
        status, events, _ = done["r"]
        errors = [e for e in events if e["type"] == "error"]
        assert status == 200 and len(errors) == 1 and events[-1]["type"] == "end", events
        # said at once, not after rewriting a query that was never the problem
        assert errors[0]["reason"] == "unreachable", errors
        assert "rephras" not in errors[0]["message"] and "running" in errors[0]["message"]
        # while it is down: asked again, the same clear error, nothing hangs
        status, events, _ = api.chat(tid, "q2 sql: SELECT count(*) AS n FROM t")
        assert [e["reason"] for e in events if e["type"] == "error"] == ["unreachable"]
    finally:
        warehouse.start()
    status, events, _ = api.chat(tid, "q3 sql: SELECT count(*) AS n FROM t")
    assert status == 200 and answered(events, "q3"), events
    table = next(e for e in events if e["type"] == "table")
    assert table["rows"] == [[7]]
    assert [m for m in api.messages(tid) if m[0] == "user"] == [
        ("user", f"q1 sql: {ENDLESS}"), ("user", "q2 sql: SELECT count(*) AS n FROM t"),
        ("user", "q3 sql: SELECT count(*) AS n FROM t")]
    assert "Traceback" not in log.read_text(), log_tail(log)


def test_a_kernel_interrupt_during_a_question_cancels_its_sql_on_the_database(
        server: tuple[Api, Path, PgCluster, PgCluster], tmp_path: Path) -> None:
    """Interrupting the kernel while `%%aigis` waits on a query stops that query on the
    server (pg_stat_activity), says so in the cell, and the kernel asks the next one."""
    warehouse = server[3]
    add = ('_m.scope.create_connection({"name": "wh", "db_type": "postgres", '
           f'"host": "127.0.0.1", "port": {warehouse.port}, "database": "warehouse", '
           '"username": "postgres"})')
    with kernel(tmp_path, MASTER_ENCRYPTION_KEY="faults kernel",
                AIGIS_STATEMENT_TIMEOUT="300") as k:
        setup = k.run(ECHO_SETUP + add)
        assert not failed(setup), text(setup)
        cell = k.start(f"%%aigis --conn wh --model echo\nq1 sql: {ENDLESS}")
        until(lambda: "active" in active(warehouse.url), "the query running on the server")
        k.interrupt()
        out = text(k.wait(cell))
        # the query is gone from the server at once, long before its 300 s timeout
        until(lambda: "active" not in active(warehouse.url), f"the query cancelled ({out})", 20)
        assert "Cancelled" in out and "KeyboardInterrupt" not in out, out
        after = k.run("%%aigis --conn wh --model echo\nq2 sql: SELECT count(*) AS n FROM t")
        assert "Answer to q2" in text(after) and not failed(after), text(after)
