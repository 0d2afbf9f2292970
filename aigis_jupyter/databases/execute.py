"""Layers 2 and 3 of the SQL guard: the database enforces read-only, the fetch is bounded.

Layer 2 holds even with the parser layer off (`guard=False`):

* PostgreSQL: every query runs in its own transaction made `READ ONLY` before the
  statement, with `SET LOCAL statement_timeout`; the statement goes through the extended
  protocol inside `DECLARE ... CURSOR FOR` (one statement only, and only a query can
  follow `FOR`: no `COMMIT;` escape, no `DO`, no `COPY`), then the transaction is rolled
  back, which also undoes any `set_config` the query made.
* SQLite: the file is opened `mode=ro` with `PRAGMA query_only`, a default-deny
  authorizer (no writes, ATTACH, pragma writes, load_extension) and a progress handler
  that enforces the timeout and cancellation.
* MySQL/MariaDB: `SET SESSION TRANSACTION READ ONLY` + `START TRANSACTION READ ONLY`, a
  server statement timeout (`max_statement_time` in seconds on MariaDB,
  `max_execution_time` in ms on MySQL) and a driver that never sends multi-statements.

Layer 3: rows are streamed (server-side cursor / unbuffered cursor / SQLite stepping) and
at most `max_rows + 1` are read, so a 5-million-row result costs what the cap costs.

Large PostgreSQL results: building a Python object per cell is what makes big fetches
slow and memory-hungry (a million rows of eight columns is eight million objects). When a
read-only query's first chunk is full, more than `COPY_MIN_REMAINING` rows may follow, its
columns are all of simple types and pyarrow is installed, the rest is read again, in the
same transaction, as `COPY (SELECT * FROM (stmt) LIMIT max_rows + 1) TO STDOUT` in CSV and
parsed by pyarrow into columns (same dtypes as the row path). The statement has already
been accepted after `DECLARE ... CURSOR FOR`, so it is one complete query and stays one
inside the parentheses; anything the COPY path cannot read falls back to the row path.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import decimal
import difflib
import logging
import math
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import BadInput, DatabaseError, QueryCancelled, QueryTimeout, SQLRefused
from .engines import ConnectionSpec, explain_connect_error, get_dialect, scrub
from .guard import check_sql, is_read_query

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Engine

__all__ = ["CancelToken", "QueryResult", "run_query"]

log = logging.getLogger(__name__)

FETCH_CHUNK = 5_000
#: A PostgreSQL result switches to COPY + pyarrow only if at least this many rows may follow
#: its first chunk (the default row cap of 10,000 never does) ...
COPY_MIN_REMAINING = 20_000
#: ... and only if its first chunk came back this fast, so that reading it again is cheap.
COPY_MAX_STARTUP_S = 0.25
#: Bytes of CSV handed to the parser thread at a time.
COPY_BLOCK_BYTES = 8 << 20
#: The client-side watchdog fires this long after the server's own timeout should have.
WATCHDOG_GRACE_S = 1.0


# --------------------------------------------------------------------------- results


@dataclass
class QueryResult:
    """A bounded result: at most `max_rows` rows, `truncated` when more existed."""

    sql: str
    columns: list[str]
    df: pd.DataFrame
    row_count: int
    truncated: bool
    duration_ms: float

    def preview(self, n: int = 20) -> dict[str, Any]:
        """The first `n` rows as JSON-safe lists (for events, messages and the sidebar)."""
        head = self.df.head(n)
        rows = [[json_safe(v) for v in row] for row in head.itertuples(index=False, name=None)]
        return {
            "columns": list(self.columns),
            "rows": rows,
            "row_count": self.row_count,
            "truncated": self.truncated,
        }


def json_safe(v: Any) -> Any:
    """One cell as a JSON value: NaN/NaT become null, dates ISO strings, bytes a hex stub."""
    if v is None or isinstance(v, bool | str):
        return v
    if isinstance(v, int):
        return v
    if isinstance(v, float):
        return None if math.isnan(v) or math.isinf(v) else v
    if isinstance(v, decimal.Decimal):
        return None if not v.is_finite() else float(v)
    if isinstance(v, _dt.datetime | _dt.date | _dt.time):
        return v.isoformat()
    if isinstance(v, _dt.timedelta):
        return v.total_seconds()
    if isinstance(v, bytes | bytearray | memoryview):
        b = bytes(v)
        return "\\x" + b[:32].hex() + ("…" if len(b) > 32 else "")
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, list | tuple):
        return [json_safe(x) for x in v]
    if isinstance(v, dict):
        return {str(k): json_safe(x) for k, x in v.items()}
    try:  # numpy and pandas scalars
        import pandas as pd

        if v is pd.NaT or (not isinstance(v, list | tuple | dict) and pd.isna(v)):
            return None
        if isinstance(v, pd.Timestamp):
            return v.isoformat()
        if hasattr(v, "item"):
            return json_safe(v.item())
    except (TypeError, ValueError):
        pass
    return str(v)


def _unique(names: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for raw in names:
        name = str(raw)
        if name in seen:
            seen[name] += 1
            candidate = f"{name}_{seen[name]}"
            while candidate in seen:
                seen[name] += 1
                candidate = f"{name}_{seen[name]}"
            name = candidate
        seen.setdefault(name, 1)
        out.append(name)
    return out


def _frame(columns: list[str], rows: list[Sequence[Any]]) -> pd.DataFrame:
    """Rows to a DataFrame without pandas.read_sql; Decimals become floats for analysis."""
    import pandas as pd

    if not rows:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns}, columns=columns)
    return pd.DataFrame.from_records(rows, columns=columns, coerce_float=True)


# --------------------------------------------------------------------------- cancellation


class CancelToken:
    """Cancels the statement running under it, from any thread.

    PostgreSQL gets a protocol cancel request, SQLite an interrupt (and its progress
    handler stops), MySQL a `KILL QUERY` from a second connection. Once cancelled, a token
    stays cancelled: any later query run with it stops before it starts.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancelled = False
        self._hooks: dict[int, Callable[[], None]] = {}
        self._next = 0

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            hooks = list(self._hooks.values())
        for hook in hooks:
            _quietly(hook)

    def _attach(self, hook: Callable[[], None]) -> int:
        with self._lock:
            self._next += 1
            self._hooks[self._next] = hook
            return self._next

    def _detach(self, key: int) -> None:
        with self._lock:
            self._hooks.pop(key, None)


def _quietly(fn: Callable[[], None]) -> None:
    try:
        fn()
    except Exception:  # a cancel that arrives late must never break anything
        log.debug("interrupt hook failed", exc_info=True)


class _Run:
    """One execution: its deadline, its token, and whether the watchdog fired."""

    def __init__(self, token: CancelToken, timeout_s: float) -> None:
        self.token = token
        self.timeout_s = timeout_s
        self.deadline = time.monotonic() + timeout_s
        self.timed_out = False
        self._active = False
        self._lock = threading.Lock()

    @property
    def stopped(self) -> bool:
        return self.token.cancelled or self.timed_out or time.monotonic() > self.deadline

    @contextlib.contextmanager
    def interruptible(self, interrupt: Callable[[], None]) -> Iterator[None]:
        """While inside, `cancel()` or the watchdog call `interrupt` (never after)."""

        def guarded() -> None:
            with self._lock:
                if self._active:
                    interrupt()

        def watchdog() -> None:
            self.timed_out = True
            guarded()

        if self.token.cancelled:
            raise QueryCancelled("The query was cancelled before it started.")
        with self._lock:
            self._active = True
        key = self.token._attach(guarded)
        timer = threading.Timer(self.timeout_s + WATCHDOG_GRACE_S, watchdog)
        timer.daemon = True
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
            self.token._detach(key)
            with self._lock:
                self._active = False

    def check(self) -> None:
        if self.token.cancelled:
            raise QueryCancelled("The query was cancelled.")
        if self.timed_out or time.monotonic() > self.deadline:
            raise self.timeout_error()

    def timeout_error(self) -> QueryTimeout:
        return QueryTimeout(
            f"The query ran longer than {self.timeout_s:g} s and was stopped. Narrow it "
            "(filters, aggregates, LIMIT) or raise the statement timeout.")

    def stop_error(self) -> DatabaseError:
        if self.token.cancelled:
            return QueryCancelled("The query was cancelled.")
        return self.timeout_error()


def _fetch(fetchmany: Callable[[int], Sequence[Any]], max_rows: int,
           run: _Run, first: Sequence[Any] = ()) -> tuple[list[Any], bool]:
    """Read at most max_rows + 1 rows in chunks; the extra row only says 'truncated'.

    `first` holds rows already read (they count towards the cap)."""
    rows: list[Any] = list(first)
    limit = max_rows + 1
    while len(rows) < limit:
        chunk = fetchmany(min(FETCH_CHUNK, limit - len(rows)))
        if not chunk:
            break
        rows.extend(chunk)
        run.check()
    truncated = len(rows) > max_rows
    del rows[max_rows:]
    return rows, truncated


def _read_cursor(cur: Any, max_rows: int, run: _Run) -> tuple[list[str], list[Any], bool]:
    """Columns and at most `max_rows` rows of an executed DB-API cursor; a write reports
    its affected-row count as a one-cell result."""
    if not cur.description:
        return ["rows_affected"], [(cur.rowcount,)], False
    columns = [d[0] for d in cur.description]
    rows, truncated = _fetch(cur.fetchmany, max_rows, run)
    return columns, rows, truncated


# --------------------------------------------------------------------------- entry point


def run_query(
    engine: Engine,
    spec: ConnectionSpec,
    sql: str,
    *,
    max_rows: int,
    timeout_s: float,
    guard: bool = True,
    cancel: CancelToken | None = None,
) -> QueryResult:
    """Run one statement through the three layers and return a bounded DataFrame.

    `guard=False` skips only the parser layer (tests use it to prove the database layer
    holds alone); the read-only transaction, timeout and bounded fetch always apply
    unless the connection itself allows writes.
    """
    if max_rows < 0:
        raise BadInput("max_rows must be zero or more.")
    if not timeout_s or timeout_s <= 0:
        raise BadInput("timeout_s must be a positive number of seconds.")
    dialect = get_dialect(spec.db_type)
    if guard:
        stmt = check_sql(sql, dialect.sqlglot_dialect, allow_write=spec.allow_write)
    else:
        stmt = (sql or "").strip().rstrip(";").strip()
        if not stmt:
            raise SQLRefused("The SQL statement is empty; write a SELECT query.")
    read_only = not spec.allow_write
    as_query = read_only or is_read_query(stmt, dialect.sqlglot_dialect)
    run = _Run(CancelToken() if cancel is None else cancel, float(timeout_s))
    runner = _RUNNERS.get(dialect.family)
    if runner is None:
        raise BadInput(f"No executor for database family {dialect.family!r}.")
    start = time.perf_counter()
    columns, rows, truncated = runner(engine, spec, stmt, max_rows, run, read_only, as_query)
    columns = _unique(columns)
    if isinstance(rows, list):
        df = _frame(columns, rows)
    else:  # a DataFrame read in columns (PostgreSQL COPY path)
        df = rows
        df.columns = columns
    return QueryResult(
        sql=stmt,
        columns=columns,
        df=df,
        row_count=len(df),
        truncated=truncated,
        duration_ms=round((time.perf_counter() - start) * 1000, 2),
    )


# A runner returns (columns, rows, truncated); `rows` may already be a DataFrame.
_Runner = Callable[[Any, ConnectionSpec, str, int, _Run, bool, bool],
                   tuple[list[str], Any, bool]]


def _checkout(engine: Engine, spec: ConnectionSpec) -> Any:
    try:
        return engine.raw_connection()
    except DatabaseError:
        raise
    except Exception as exc:
        orig = getattr(exc, "orig", None)
        raise explain_connect_error(orig if isinstance(orig, DatabaseError) else exc,
                                    spec) from None


# --------------------------------------------------------------------------- PostgreSQL


_PG_CURSOR = "aigis_result"
# What psycopg puts before the statement; a syntax error right after it means the
# statement is not a query at all (DELETE, DROP, COPY, DO, COMMIT, ...).
_PG_DECLARE = f'DECLARE "{_PG_CURSOR}" NO SCROLL CURSOR FOR '


def _run_postgres(engine: Engine, spec: ConnectionSpec, stmt: str, max_rows: int, run: _Run,
                  read_only: bool, as_query: bool) -> tuple[list[str], Any, bool]:
    import psycopg
    from psycopg import sql as pgsql
    from psycopg.pq import TransactionStatus

    raw = _checkout(engine, spec)
    pg: psycopg.Connection[Any] = raw.driver_connection
    try:
        if pg.info.transaction_status != TransactionStatus.IDLE:
            pg.rollback()
        with pg.cursor() as cur:
            # psycopg opens the transaction (BEGIN) itself; this must be its first statement.
            if read_only:
                cur.execute("SET TRANSACTION READ ONLY")
            cur.execute(f"SET LOCAL statement_timeout = {max(1, int(run.timeout_s * 1000))}")
            cur.execute("SET LOCAL idle_in_transaction_session_timeout = "
                        f"{max(1000, int(run.timeout_s * 2000) + 5000)}")
            role = spec.options.get("role")
            if role:
                cur.execute(pgsql.SQL("SET LOCAL ROLE {}").format(pgsql.Identifier(role)))
        with run.interruptible(lambda: _pg_cancel(pg)):
            if as_query:
                # A server-side cursor: DECLARE goes through the extended protocol, and
                # FETCH streams rows so only the cap ever leaves the server.
                sc = pg.cursor(name=_PG_CURSOR, scrollable=False)
                try:
                    sc.execute(stmt)
                    desc = list(sc.description or [])
                    columns = [d.name for d in desc]
                    started = time.monotonic()
                    first = sc.fetchmany(min(FETCH_CHUNK, max_rows + 1))
                    run.check()
                    frame = None
                    if (read_only and len(first) == FETCH_CHUNK
                            and max_rows + 1 - len(first) >= COPY_MIN_REMAINING
                            and time.monotonic() - started <= COPY_MAX_STARTUP_S):
                        types = _arrow_types(desc)
                        if types is not None:
                            sc.close()
                            frame = _pg_copy_frame(pg, stmt, types, max_rows, run)
                            if frame is None:  # the COPY path could not read it: rows again
                                sc = pg.cursor(name=_PG_CURSOR, scrollable=False)
                                sc.execute(stmt)
                                first = []
                    if frame is not None:
                        truncated = len(frame) > max_rows
                        rows = frame.iloc[:max_rows] if truncated else frame
                    else:
                        rows, truncated = _fetch(sc.fetchmany, max_rows, run, first)
                finally:
                    with contextlib.suppress(Exception):
                        sc.close()
            else:  # a write on a write-enabled connection: binary=True forces extended
                with pg.cursor() as cur:
                    cur.execute(stmt, binary=True)
                    if cur.description:
                        columns = [d.name for d in cur.description]
                        rows, truncated = _fetch(cur.fetchmany, max_rows, run)
                    else:
                        columns, rows, truncated = ["rows_affected"], [(cur.rowcount,)], False
        if read_only:
            pg.rollback()  # nothing to keep; also undoes any session change the query made
        else:
            pg.commit()
        return columns, rows, truncated
    except psycopg.Error as exc:
        with contextlib.suppress(Exception):
            pg.rollback()
        raise _pg_error(exc, run, engine, spec) from None
    except BaseException:
        with contextlib.suppress(Exception):
            pg.rollback()
        raise
    finally:
        if pg.closed or pg.broken:
            raw.invalidate()
        raw.close()


def _pg_cancel(pg: Any) -> None:
    """Send a protocol cancel request (cancel_safe on psycopg >= 3.2, else cancel)."""
    safe = getattr(pg, "cancel_safe", None)
    if safe is not None:
        safe(timeout=5)
    else:
        pg.cancel()


# PostgreSQL type oid -> how pyarrow reads its CSV text. Only types whose CSV text pyarrow
# parses to exactly what the row path builds (psycopg values through `_frame`).
_ARROW_OIDS = {
    16: "bool", 20: "int64", 21: "int64", 23: "int64",  # bool, int8, int2, int4
    700: "float64", 701: "float64", 1700: "float64",  # float4, float8, numeric (as float)
    19: "string", 25: "string", 1042: "string", 1043: "string",  # name, text, char(n), varchar
    1082: "date32", 1114: "timestamp[us]",  # date, timestamp without time zone
}


def _arrow_types(desc: Sequence[Any]) -> list[Any] | None:
    """pyarrow types for these columns, or None (a column of another type, or no pyarrow)."""
    oids = [getattr(d, "type_code", None) for d in desc]
    if not oids or any(o not in _ARROW_OIDS for o in oids):
        return None
    try:
        import pyarrow as pa
    except ImportError:
        return None
    return [pa.type_for_alias(_ARROW_OIDS[o]) for o in oids]


def _pg_copy_frame(pg: Any, stmt: str, types: list[Any], max_rows: int,
                   run: _Run) -> pd.DataFrame | None:
    """Read up to max_rows + 1 rows of `stmt` with COPY ... CSV, parsed by pyarrow.

    Runs inside the caller's read-only transaction (timeout, role and cancel apply).
    Returns None when this path cannot read the result (a value pyarrow does not parse,
    a statement that is not valid as a subquery); the caller then reads rows as usual.
    """
    from concurrent.futures import ThreadPoolExecutor

    import psycopg
    import pyarrow as pa
    import pyarrow.csv as pacsv

    names = [f"c{i}" for i in range(len(types))]
    read_opts = pacsv.ReadOptions(column_names=names, use_threads=True)
    parse_opts = pacsv.ParseOptions(newlines_in_values=True)
    convert_opts = pacsv.ConvertOptions(
        column_types=dict(zip(names, types, strict=True)), null_values=[""],
        strings_can_be_null=True, quoted_strings_can_be_null=False,
        true_values=["t"], false_values=["f"])

    def parse(block: bytes) -> Any:
        return pacsv.read_csv(pa.py_buffer(block), read_opts, parse_opts, convert_opts)

    copy_sql = (f"COPY (SELECT * FROM (\n{stmt}\n) AS aigis_q LIMIT {max_rows + 1}) "
                "TO STDOUT WITH (FORMAT csv)")
    with pg.cursor() as cur:
        cur.execute("SAVEPOINT aigis_copy")  # undone below if this path gives up
        cur.execute("SET LOCAL DateStyle = 'ISO, YMD'")
        cur.execute("SET LOCAL extra_float_digits = 1")
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="aigis-csv")
        parts = []
        try:
            block = bytearray()
            for data in _pg_copy_out(pg, copy_sql, run):
                block += data
                if len(block) >= COPY_BLOCK_BYTES:
                    parts.append(pool.submit(parse, bytes(block)))
                    block = bytearray()
                    run.check()
            if block:
                parts.append(pool.submit(parse, bytes(block)))
            tables = [f.result() for f in parts]
        except (psycopg.errors.SyntaxError, psycopg.errors.FeatureNotSupported,
                pa.ArrowException):
            cur.execute("ROLLBACK TO SAVEPOINT aigis_copy")
            return None
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    run.check()
    table = pa.concat_tables(tables) if tables else pa.schema(
        list(zip(names, types, strict=True))).empty_table()
    del tables
    empty = [i for i, col in enumerate(table.columns)
             if len(col) and col.null_count == len(col)]
    df = table.to_pandas(self_destruct=True, split_blocks=True)
    del table
    if empty:  # the row path gives an all-NULL column as objects (None)
        import numpy as np

        for i in empty:
            df[df.columns[i]] = np.full(len(df), None, dtype=object)
    return df


def _pg_copy_out(pg: Any, sql: str, run: _Run) -> Iterator[memoryview]:
    """The rows of a `COPY ... TO STDOUT`, straight from libpq (one CopyData per row).

    psycopg's `Copy.read()` costs a Python generator round per row; this loop asks libpq
    for every row already buffered and only waits (in `select`, GIL released, so cancel
    and the watchdog stay responsive) when the buffer is empty.
    """
    import select

    import psycopg
    from psycopg import errors as pg_errors
    from psycopg import pq

    pgc = pg.pgconn
    fd = pgc.socket
    encoding = pg.info.encoding

    def wait() -> None:
        select.select([fd], [], [], 0.1)
        pgc.consume_input()

    def results() -> Iterator[Any]:
        while True:
            pgc.consume_input()
            while pgc.is_busy():
                wait()
            res = pgc.get_result()
            if res is None:
                return
            yield res

    def fail(res: Any) -> None:
        # drain the rest so the connection stays usable (the caller rolls back)
        for _ in results():
            pass
        raise pg_errors.error_from_result(res, encoding=encoding)

    pgc.send_query(sql.encode(encoding))
    while pgc.flush():
        select.select([], [fd], [], 0.1)
    first = next(results(), None)
    if first is None or first.status != pq.ExecStatus.COPY_OUT:
        if first is not None and first.status == pq.ExecStatus.FATAL_ERROR:
            fail(first)
        raise psycopg.OperationalError("COPY did not start.")
    get = pgc.get_copy_data
    done = False
    try:
        while True:
            n, data = get(1)
            if n > 0:
                yield data
            elif n == 0:
                wait()
            elif n == -1:
                break
            else:
                raise psycopg.OperationalError(pgc.get_error_message())
        done = True
    finally:
        if not done and pgc.status == pq.ConnStatus.OK:
            # the reader stopped early (cancel, timeout): stop the server, drain the wire
            with contextlib.suppress(Exception):
                pg.cancel_safe(timeout=5)
            with contextlib.suppress(Exception):
                while get(0)[0] >= 0:
                    pass
                for _ in results():
                    pass
    for res in results():
        if res.status == pq.ExecStatus.FATAL_ERROR:
            fail(res)


def _pg_error(exc: Any, run: _Run, engine: Engine, spec: ConnectionSpec) -> Exception:
    import psycopg

    diag = getattr(exc, "diag", None)
    primary = scrub((diag and diag.message_primary) or str(exc).splitlines()[0], spec)
    hint = scrub((diag and diag.message_hint) or "", spec)
    state = getattr(exc, "sqlstate", None) or ""
    if state == "57014" or run.token.cancelled or run.timed_out:
        if run.token.cancelled or "user request" in primary:
            return QueryCancelled("The query was cancelled.")
        return run.timeout_error()
    if state == "25006":
        return SQLRefused(
            f"The database refused it: this connection is read-only ({primary}). Only "
            "queries can run here.")
    if "multiple commands" in primary:
        return SQLRefused("The database accepts exactly one statement at a time.")
    position = getattr(diag, "statement_position", None) if diag else None
    if (state == "42601" and not spec.allow_write and position
            and int(position) == len(_PG_DECLARE) + 1):
        return SQLRefused(
            f"The database refused it: only a query (SELECT, VALUES, WITH ... SELECT) can "
            f"run on this read-only connection ({primary}).")
    if not spec.allow_write and ("data-modifying" in primary or "INTO is not allowed" in primary
                                 or "INTO is only allowed" in primary):
        return SQLRefused(f"The database refused it: this connection is read-only ({primary}).")
    if state == "42P01":
        m = re.search(r'relation "([^"]+)" does not exist', primary)
        return _unknown_table(m.group(1) if m else primary, engine, spec)
    if state in ("42703", "42883") and hint:
        return DatabaseError(f"{primary}. {hint}", reason="query_error")
    if state == "42703":
        m = re.search(r'column "?([^" ]+)"? does not exist', primary)
        return _unknown_column(m.group(1) if m else "", primary, engine, spec)
    if state == "42501":
        return DatabaseError(
            f"Permission denied: {primary}. Ask the database owner for access.",
            reason="permission_denied")
    if state.startswith("42"):
        return DatabaseError(f"The database rejected the SQL: {primary}"
                             + (f". {hint}" if hint else ""), reason="query_error")
    if isinstance(exc, psycopg.OperationalError):
        return DatabaseError(f"The database connection failed: {primary}. Try again.")
    return DatabaseError(f"The database reported an error: {primary}"
                         + (f". {hint}" if hint else ""), reason="query_error")


# --------------------------------------------------------------------------- SQLite


def _run_sqlite(engine: Engine, spec: ConnectionSpec, stmt: str, max_rows: int, run: _Run,
                read_only: bool, as_query: bool) -> tuple[list[str], list[Any], bool]:
    raw = _checkout(engine, spec)
    con: sqlite3.Connection = raw.driver_connection
    # Called every N virtual-machine steps; a non-zero return aborts the statement.
    con.set_progress_handler(lambda: 1 if run.stopped else 0, 2_000)
    cur = None
    try:
        with run.interruptible(con.interrupt):
            cur = con.cursor()
            cur.execute(stmt)
            columns, rows, truncated = _read_cursor(cur, max_rows, run)
            cur.close()
        if not read_only and con.in_transaction:
            con.commit()
        return columns, rows, truncated
    except sqlite3.Error as exc:
        raise _sqlite_error(exc, run, engine, spec) from None
    finally:
        if cur is not None:
            with contextlib.suppress(Exception):
                cur.close()
        with contextlib.suppress(Exception):
            con.set_progress_handler(None, 0)
            if con.in_transaction:
                con.rollback()
        raw.close()


def _sqlite_error(exc: sqlite3.Error, run: _Run, engine: Engine,
                  spec: ConnectionSpec) -> Exception:
    msg = str(exc)
    low = msg.lower()
    if "interrupted" in low:
        return run.stop_error()
    if ("not authorized" in low or "authorization denied" in low or "readonly database" in low
            or "query_only" in low):
        return SQLRefused(
            f"The database refused it: this connection is read-only ({msg}). Only queries "
            "can run here.")
    if "one statement at a time" in low:
        return SQLRefused("The database accepts exactly one statement at a time.")
    if low.startswith("no such table:"):
        return _unknown_table(msg.split(":", 1)[1].strip(), engine, spec)
    if low.startswith("no such column:"):
        return _unknown_column(msg.split(":", 1)[1].strip(), msg, engine, spec)
    return DatabaseError(f"The database rejected the SQL: {msg}", reason="query_error")


# --------------------------------------------------------------------------- MySQL / MariaDB


def _run_mysql(engine: Engine, spec: ConnectionSpec, stmt: str, max_rows: int, run: _Run,
               read_only: bool, as_query: bool) -> tuple[list[str], list[Any], bool]:
    import pymysql
    from pymysql.cursors import SSCursor

    raw = _checkout(engine, spec)
    my: pymysql.Connection[Any] = raw.driver_connection
    discard = False  # a killed, timed-out or half-read connection is dropped, not reused
    cur = None
    try:
        mariadb = "mariadb" in (my.get_server_info() or "").lower()
        with my.cursor() as c:
            c.execute("SET SESSION TRANSACTION READ ONLY" if read_only
                      else "SET SESSION TRANSACTION READ WRITE")
            if mariadb:
                c.execute(f"SET SESSION max_statement_time = {run.timeout_s:.3f}")
            else:
                c.execute(f"SET SESSION max_execution_time = {max(1, int(run.timeout_s * 1000))}")
            c.execute("START TRANSACTION READ ONLY" if read_only else "START TRANSACTION")
        thread_id = my.thread_id()
        cur = SSCursor(my)
        with run.interruptible(lambda: _mysql_kill(engine, thread_id)):
            try:
                cur.execute(stmt)
                columns, rows, truncated = _read_cursor(cur, max_rows, run)
            except BaseException:
                discard = True
                raise
        if truncated:
            discard = True  # unread rows are still on the wire: drop the connection
        else:
            cur.close()
            if read_only:
                my.rollback()
            else:
                my.commit()
        return columns, rows, truncated
    except pymysql.Error as exc:
        err = _mysql_error(exc, run, engine, spec)
        if isinstance(err, QueryTimeout | QueryCancelled):
            discard = True
        else:  # an ordinary SQL error leaves the connection usable
            try:
                my.rollback()
                discard = False
            except Exception:
                discard = True
        raise err from None
    finally:
        if discard:
            _abandon(cur)
            raw.invalidate()
        raw.close()


def _abandon(cur: Any) -> None:
    """Forget an unbuffered result so closing the cursor does not drain the wire."""
    result = getattr(cur, "_result", None)
    if result is not None:
        result.unbuffered_active = False


def _mysql_kill(engine: Engine, thread_id: int) -> None:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(f"KILL QUERY {int(thread_id)}")
        cur.close()
    finally:
        raw.close()


def _mysql_error(exc: Any, run: _Run, engine: Engine, spec: ConnectionSpec) -> Exception:
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    msg = scrub(str(exc.args[1]) if len(exc.args) > 1 else str(exc), spec)
    if code in (1317, 1969, 3024) or run.token.cancelled or run.timed_out:
        if code == 1969 or code == 3024:
            return run.timeout_error()
        return run.stop_error()
    if code == 1792 or code == 1290:
        return SQLRefused(
            f"The database refused it: this connection is read-only ({msg}). Only queries "
            "can run here.")
    if code == 1146:
        m = re.search(r"Table '(?:[^'.]+\.)?([^']+)' doesn't exist", msg)
        return _unknown_table(m.group(1) if m else msg, engine, spec)
    if code == 1054:
        m = re.search(r"Unknown column '([^']+)'", msg)
        return _unknown_column(m.group(1) if m else "", msg, engine, spec)
    if code in (1044, 1142, 1143, 1227):
        return DatabaseError(f"Permission denied: {msg}. Ask the database owner for access.",
                             reason="permission_denied")
    if code in (2003, 2006, 2013):
        return DatabaseError(f"The database connection failed: {msg}. Try again.")
    return DatabaseError(f"The database rejected the SQL: {msg}", reason="query_error")


# --------------------------------------------------------------------------- friendly errors


def _names(engine: Engine, spec: ConnectionSpec) -> tuple[list[str], list[tuple[str, str]]]:
    """Table names and (table, column) pairs of the cached snapshot, for suggestions."""
    try:
        from .schema import snapshot

        snap = snapshot(engine, spec)
    except Exception:
        return [], []
    tables = [t.name for t in snap.tables]
    columns = sorted({(t.name, c.name) for t in snap.tables for c in t.columns})
    return tables, columns


def _close(name: str, candidates: list[str]) -> list[str]:
    by_lower = {c.lower(): c for c in candidates}
    hits = difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.6)
    return [by_lower[h] for h in hits]


def _unknown_table(name: str, engine: Engine, spec: ConnectionSpec) -> DatabaseError:
    tables, _ = _names(engine, spec)
    bare = name.split(".")[-1]
    close = _close(bare, tables)
    tip = (f" Did you mean {', '.join(close)}?" if close
           else " Check the table list of the schema.")
    return DatabaseError(f"Table {name!r} does not exist.{tip}", reason="unknown_table")


def _unknown_column(name: str, msg: str, engine: Engine,
                    spec: ConnectionSpec) -> DatabaseError:
    _, columns = _names(engine, spec)
    bare = name.split(".")[-1]
    text = f"Column {name!r} does not exist." if name else msg
    # the column often exists, only in another table: say which one to read or join
    owners = [f"{t}.{c}" for t, c in columns if bare and c.lower() == bare.lower()]
    if owners:
        tip = (f" It is not in the tables this query reads; it exists as "
               f"{', '.join(owners[:5])}: read or join that table.")
    else:
        close = _close(bare, sorted({c for _, c in columns})) if bare else []
        where = {c: next(f"{t}.{c}" for t, c2 in columns if c2 == c) for c in close}
        tip = f" Did you mean {', '.join(where[c] for c in close)}?" if close else ""
    return DatabaseError(text + tip, reason="unknown_column")


_RUNNERS: dict[str, _Runner] = {
    "postgres": _run_postgres,
    "sqlite": _run_sqlite,
    "mysql": _run_mysql,
}
