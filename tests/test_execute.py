"""Layers 2 and 3 against the real servers: read-only enforcement, timeouts, cancel, caps.

The hostile statements of `dbutil.HOSTILE` run twice on every engine, as the test logins
(superusers): with the parser on every one is refused; with it off (`guard=False`) no data
may change and no file may appear, but a few of them run (reading server files, for one),
which a superuser is allowed to do in a read-only transaction. Which layer stops which
statement, for which kind of account, is tests/test_guard_truth.py's table, with causes.
Timeouts and cancels are asserted by their effect: the exception, and the statement gone
from the server (pg_stat_activity, the PROCESSLIST), never by elapsed seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from dbutil import (
    HARMLESS_WHEN_RUN,
    checksum,
    engine_for,
    hostile,
    one_connection_engine,
    spec_for,
)

from aigis_jupyter.databases.engines import ConnectionSpec, EngineCache
from aigis_jupyter.databases.execute import CancelToken, run_query
from aigis_jupyter.demo import demo_rows
from aigis_jupyter.errors import (
    DatabaseError,
    QueryCancelled,
    QueryTimeout,
    SQLRefused,
)


@dataclass
class Target:
    kind: str  # postgres | sqlite | mysql
    url: str
    spec: ConnectionSpec
    engine: sa.Engine

    def run(self, sql: str, **kw: Any) -> Any:
        kw.setdefault("max_rows", 1000)
        kw.setdefault("timeout_s", 5)
        return run_query(self.engine, self.spec, sql, **kw)


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def target(request: pytest.FixtureRequest, cache: EngineCache) -> Target:
    url = request.getfixturevalue({"sqlite": "sqlite_demo", "postgres": "pg_demo",
                                   "mysql": "mysql_demo"}[request.param])
    spec = spec_for(url, id=f"demo-{request.param}")
    return Target(request.param, url, spec, cache.get(spec))


@pytest.fixture
def scratch_dir() -> Iterator[Path]:
    """World-writable and reachable by the database servers' own users, so a hostile
    statement that got through would leave a file here."""
    d = Path(tempfile.mkdtemp(prefix="aigis-scratch-"))
    os.chmod(d, 0o777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _checksum(t: Target) -> dict[str, Any]:
    return checksum(t.url if "://" in t.url else f"sqlite:///{t.url}")


#: The demo's orders, from the generator's own rows (not copied from its output).
ORDERS = sorted(demo_rows()["orders"], key=lambda o: o["order_id"])


def _running(t: Target, stmt: str) -> int:
    """How many times `stmt` is at work on the server (SQLite's statements run inside this
    process: 0). PostgreSQL runs it through a server-side cursor, whose query text is
    `DECLARE "aigis_result" ... FOR stmt`, then `FETCH ... FROM "aigis_result"` while it
    works: it is found as a product session on the demo database doing either."""
    if t.kind == "sqlite":
        return 0
    eng = engine_for(t.url)
    try:
        with eng.connect() as c:
            if t.kind == "postgres":
                sql = ("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                       "current_database() AND application_name = 'aigis-jupyter' "
                       "AND state = 'active' AND pid <> pg_backend_pid() AND "
                       "(query LIKE 'FETCH %' OR position(:stmt IN query) > 0)")
            else:
                sql = ("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE "
                       "ID <> CONNECTION_ID() AND INFO = :stmt")
            return int(c.execute(sa.text(sql), {"stmt": stmt}).scalar() or 0)
    finally:
        eng.dispose()


def _until(check: Any, what: str, limit_s: float = 20.0) -> None:
    """Wait for an effect (never for a duration); fail if it does not come."""
    deadline = time.monotonic() + limit_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting: {what}")
        time.sleep(0.02)


# --------------------------------------------------------------------------- results


def test_query_into_dataframe_with_sane_types(target: Target) -> None:
    month = {"postgres": "to_char(o.order_date, 'YYYY-MM')",
             "sqlite": "strftime('%Y-%m', o.order_date)",
             "mysql": "DATE_FORMAT(o.order_date, '%Y-%m')"}[target.kind]
    res = target.run(
        f"SELECT r.name AS region, {month} AS month, "
        "SUM(i.quantity * i.unit_price * (1 - i.discount)) AS revenue, COUNT(*) AS n "
        "FROM orders o JOIN customers c ON c.customer_id = o.customer_id "
        "JOIN regions r ON r.region_id = c.region_id "
        "JOIN order_items i ON i.order_id = o.order_id "
        "WHERE o.status <> 'cancelled' GROUP BY 1, 2 ORDER BY 1, 2")
    assert res.columns == ["region", "month", "revenue", "n"]
    assert res.row_count == 5 * 36 and not res.truncated
    assert str(res.df["revenue"].dtype) == "float64"  # Decimal sums become floats
    assert str(res.df["n"].dtype) == "int64"
    assert res.df["revenue"].sum() > 1_000_000
    preview = res.preview(5)
    assert len(preview["rows"]) == 5 and preview["row_count"] == 180
    json.dumps(preview)  # JSON-safe as is


def test_dates_nulls_and_duplicate_names(target: Target) -> None:
    res = target.run("SELECT o.order_id, o.order_date, o.employee_id, c.customer_id, "
                     "o.customer_id FROM orders o JOIN customers c "
                     "ON c.customer_id = o.customer_id ORDER BY o.order_id")
    assert res.columns == ["order_id", "order_date", "employee_id", "customer_id",
                           "customer_id_2"]
    assert res.df["employee_id"].isna().any()  # web orders have no sales rep
    first = res.preview(1)["rows"][0]
    assert first[1] == ORDERS[0]["order_date"].isoformat()
    json.dumps(res.preview(50))


def test_empty_result_keeps_columns(target: Target) -> None:
    res = target.run("SELECT region_id, name FROM regions WHERE 1 = 0")
    assert res.row_count == 0 and list(res.df.columns) == ["region_id", "name"]
    assert res.preview()["rows"] == []


def test_cap_boundary(target: Target) -> None:
    sql = "SELECT order_id FROM orders WHERE order_id <= 100 ORDER BY order_id"
    exact = target.run(sql, max_rows=100)
    assert (exact.row_count, exact.truncated) == (100, False)
    over = target.run(sql, max_rows=99)
    assert (over.row_count, over.truncated) == (99, True)
    assert over.df["order_id"].tolist() == list(range(1, 100))


# --------------------------------------------------------------------------- hostile SQL


@pytest.mark.parametrize("guard", [True, False], ids=["parser-on", "parser-off"])
def test_hostile_statements_change_nothing(target: Target, scratch_dir: Path,
                                           guard: bool) -> None:
    before = _checksum(target)
    statements = hostile(target.kind, scratch_dir)
    assert len(statements) >= 10
    refused = 0
    for sql in statements:
        try:
            target.run(sql, guard=guard, timeout_s=1, max_rows=5)
        except SQLRefused:
            refused += 1
        except DatabaseError as exc:
            assert not guard, f"parser let through: {sql}"
            assert exc.message
            refused += 1
        else:
            # not a pass: a superuser may run these, and only the parser stops them (see
            # test_guard_truth.py); here they must only leave the data and files alone
            assert not guard and sql in HARMLESS_WHEN_RUN, f"ran: {sql}"
    assert _checksum(target) == before
    assert os.listdir(scratch_dir) == []
    if guard:
        assert refused == len(statements)
    # and the connection still works
    assert target.run("SELECT count(*) AS n FROM regions").df["n"][0] == 5


def test_postgres_session_changes_do_not_survive(pg_demo: str) -> None:
    spec = spec_for(pg_demo)
    eng = one_connection_engine(spec)
    try:
        def run(sql: str) -> Any:
            return run_query(eng, spec, sql, max_rows=10, timeout_s=1, guard=False)

        pid = run("SELECT pg_backend_pid() AS p").df["p"][0]
        run("SELECT set_config('default_transaction_read_only', 'off', false), "
            "set_config('statement_timeout', '0', false)")
        assert run("SELECT current_setting('default_transaction_read_only') AS v"
                   ).df["v"][0] == "off"  # the session default, but ...
        with pytest.raises(SQLRefused):  # ... every query still runs READ ONLY
            run("SELECT * FROM customers FOR UPDATE")
        with pytest.raises(QueryTimeout):  # ... and under its own timeout
            run("SELECT pg_sleep(5)")
        assert run("SELECT pg_backend_pid() AS p").df["p"][0] == pid  # same connection
    finally:
        eng.dispose()


def test_mysql_session_changes_do_not_survive(mysql_demo: str) -> None:
    spec = spec_for(mysql_demo)
    eng = one_connection_engine(spec)
    before = checksum(mysql_demo)
    try:
        def run(sql: str) -> Any:
            return run_query(eng, spec, sql, max_rows=10, timeout_s=1, guard=False)

        cid = run("SELECT CONNECTION_ID() AS c").df["c"][0]
        run("SET SESSION TRANSACTION READ WRITE")
        run("SET SESSION max_statement_time = 0")
        with pytest.raises(SQLRefused):
            run("DELETE FROM payments")
        assert run("SELECT CONNECTION_ID() AS c").df["c"][0] == cid  # same connection
        with pytest.raises(QueryTimeout):
            run("SELECT sleep(5)")
    finally:
        eng.dispose()
    assert checksum(mysql_demo) == before


# --------------------------------------------------------------------------- timeouts


LONG = {  # parser-approved queries that run for minutes
    "postgres": "SELECT count(*) FROM generate_series(1, 100000) a, generate_series(1, 100000) b",
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
              "SELECT count(*) FROM c",
    "mysql": "WITH RECURSIVE d(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM d WHERE n < 9) "
             "SELECT count(*) FROM d a, d b, d c, d e, d f, d g, d h, d i, d j, d k",
}
SLEEP = {  # the parser refuses these; they show the database timeout alone
    "postgres": "SELECT pg_sleep(60)",
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
              "SELECT max(x) FROM c",
    "mysql": "SELECT sleep(60)",
}


@pytest.mark.parametrize("guard", [True, False], ids=["parser-on", "parser-off"])
def test_timeout_stops_the_query_and_the_connection_is_reusable(target: Target,
                                                               guard: bool) -> None:
    sql = LONG[target.kind] if guard else SLEEP[target.kind]
    with pytest.raises(QueryTimeout, match="longer than 1 s"):
        target.run(sql, timeout_s=1, guard=guard)
    # stopped on the server too, not just given up on (it would run for a minute or more)
    _until(lambda: _running(target, sql) == 0, "the timed-out statement to leave the server")
    assert target.run("SELECT count(*) AS n FROM orders").df["n"][0] == len(ORDERS)


def test_postgres_timeout_keeps_the_connection(pg_demo: str) -> None:
    spec = spec_for(pg_demo)
    eng = one_connection_engine(spec)
    try:
        pid = run_query(eng, spec, "SELECT pg_backend_pid() AS p", max_rows=1,
                        timeout_s=2).df["p"][0]
        with pytest.raises(QueryTimeout):
            run_query(eng, spec, SLEEP["postgres"], max_rows=1, timeout_s=1, guard=False)
        after = run_query(eng, spec, "SELECT pg_backend_pid() AS p", max_rows=1, timeout_s=2)
        assert after.df["p"][0] == pid
    finally:
        eng.dispose()


# --------------------------------------------------------------------------- cancel


def test_cancel_from_another_thread(target: Target) -> None:
    token = CancelToken()
    sql = LONG[target.kind]
    outcome: dict[str, BaseException] = {}

    def work() -> None:
        try:
            target.run(sql, timeout_s=30, cancel=token)
        except BaseException as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    if target.kind == "sqlite":  # in this process: wait for the run's interrupt hook
        _until(lambda: bool(token._hooks), "the query to start")
    else:
        _until(lambda: _running(target, sql) == 1, "the query to start on the server")
    token.cancel()
    worker.join(30)
    assert not worker.is_alive(), "the cancel did not stop the query"
    error = outcome.get("error")
    assert isinstance(error, QueryCancelled) and "before it started" not in error.message
    _until(lambda: _running(target, sql) == 0, "the cancelled statement to leave the server")
    assert token.cancelled
    assert target.run("SELECT count(*) AS n FROM regions").df["n"][0] == 5


def test_a_cancelled_token_stops_before_starting(target: Target) -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(QueryCancelled, match="before it started"):
        target.run("SELECT 1 AS one", cancel=token)


def test_cancel_after_the_query_finished_is_harmless(target: Target) -> None:
    token = CancelToken()
    assert target.run("SELECT 1 AS one", cancel=token).df["one"][0] == 1
    token.cancel()
    assert target.run("SELECT 2 AS two").df["two"][0] == 2


# --------------------------------------------------------------------------- bounded fetch

FIVE_MILLION = {
    "postgres": "SELECT g, md5(g::text) AS h FROM generate_series(1, 5000000) AS g",
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
              "WHERE x < 5000000) SELECT x, hex(x) AS h FROM c",
    "mysql": "WITH RECURSIVE d(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM d WHERE n < 9) "
             "SELECT a.n + 10 * b.n + 100 * c.n + 1000 * e.n + 10000 * f.n + 100000 * g.n "
             "+ 1000000 * h.n AS x, md5(a.n) AS h FROM d a, d b, d c, d e, d f, d g, d h "
             "WHERE h.n < 5",
}


def test_five_million_rows_fetch_only_the_cap(target: Target) -> None:
    tracemalloc.start()
    try:
        res = target.run(FIVE_MILLION[target.kind], max_rows=10_000, timeout_s=20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (res.row_count, res.truncated, len(res.df)) == (10_000, True, 10_000)
    assert peak < 40 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
    assert target.run("SELECT count(*) AS n FROM regions").df["n"][0] == 5


# --------------------------------------------------------------------------- errors


def test_unknown_table_names_close_matches(target: Target) -> None:
    with pytest.raises(DatabaseError) as info:
        target.run("SELECT * FROM ordrs")
    assert info.value.reason == "unknown_table"
    assert "'ordrs' does not exist" in info.value.message
    assert "orders" in info.value.message


def test_unknown_column_suggests(target: Target) -> None:
    with pytest.raises(DatabaseError) as info:
        target.run("SELECT nmae FROM regions")
    assert "nmae" in info.value.message and "name" in info.value.message


def test_column_of_another_table_names_its_table(target: Target) -> None:
    with pytest.raises(DatabaseError) as info:
        target.run("SELECT channel FROM customers")
    assert info.value.reason == "unknown_column"
    assert "orders.channel" in info.value.message, info.value.message


def test_syntax_errors_are_database_errors(target: Target) -> None:
    with pytest.raises(DatabaseError) as info:
        target.run("SELECT region_id FROM regions WHERE", guard=False)
    assert info.value.status == 502 and info.value.message


def test_bad_arguments(target: Target) -> None:
    from aigis_jupyter.errors import BadInput

    with pytest.raises(BadInput):
        target.run("SELECT 1", max_rows=-1)
    with pytest.raises(BadInput):
        target.run("SELECT 1", timeout_s=0)


# --------------------------------------------------------------------------- write access


@pytest.fixture
def writable(writable_demo_url: str) -> Iterator[Target]:
    url = writable_demo_url
    spec = spec_for(url, allow_write=True)
    cache = EngineCache()
    yield Target(spec.db_type, url, spec, cache.get(spec))
    cache.dispose_all()


def test_write_access_is_opt_in_and_still_one_statement(writable: Target) -> None:
    res = writable.run("INSERT INTO regions (region_id, name) VALUES (6, 'Antarctica')")
    assert res.columns == ["rows_affected"] and res.df["rows_affected"][0] == 1
    assert writable.run("SELECT count(*) AS n FROM regions").df["n"][0] == 6
    with pytest.raises(SQLRefused):
        writable.run("DELETE FROM regions WHERE region_id = 6; DROP TABLE payments")
    with pytest.raises((SQLRefused, DatabaseError)):
        writable.run("DELETE FROM regions WHERE region_id = 6; DROP TABLE payments",
                     guard=False)
    assert writable.run("SELECT count(*) AS n FROM payments").df["n"][0] > 0
    read_only = replace(writable.spec, allow_write=False, id=writable.spec.id + "-ro")
    with pytest.raises(SQLRefused):
        run_query(EngineCache().get(read_only), read_only, "DELETE FROM regions",
                  max_rows=1, timeout_s=2, guard=False)
