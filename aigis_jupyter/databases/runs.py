"""What every dialect's run shares: the result, cancellation, deadlines and bounded fetch.

A dialect's runner (in `dialects/`) does what only its driver can (a read-only transaction,
a server timeout, a cancel request); everything here is the same for all of them, so layer
3 of the guard (at most `max_rows + 1` rows ever read) lives in one place.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import decimal
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import DatabaseError, QueryCancelled, QueryTimeout
from ..scrub import scrub
from .engines import ConnectionSpec, explain_connect_error

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Engine

__all__ = [
    "FETCH_CHUNK",
    "CancelToken",
    "Fetched",
    "QueryResult",
    "Run",
    "catalog_rows",
    "checkout",
    "fetch",
    "frame",
    "json_safe",
    "read_cursor",
    "unique_names",
]

log = logging.getLogger(__name__)

FETCH_CHUNK = 5_000
#: The client-side watchdog fires this long after the server's own timeout should have.
WATCHDOG_GRACE_S = 1.0
#: Seconds between repeated interrupts of a stopped run: a cancel request that reaches the
#: server between two statements of a run (a cursor's DECLARE and its FETCH) is dropped.
RESEND_S = 0.5


# --------------------------------------------------------------------------- results


@dataclass
class QueryResult:
    """A bounded result: at most `max_rows` rows, `truncated` when more existed.

    `data` holds the rows as read (a list of tuples) or a DataFrame read in columns; `df`
    builds the frame on first use, so a turn that only reads rows (the candidates, the
    answer) does not import pandas before the user sees the answer.
    """

    sql: str
    columns: list[str]
    data: pd.DataFrame | list[Sequence[Any]]
    row_count: int
    truncated: bool
    duration_ms: float
    _frame: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    @property
    def df(self) -> pd.DataFrame:
        if self._frame is None:
            self._frame = (frame(self.columns, self.data) if isinstance(self.data, list)
                           else self.data)
        return self._frame

    def head(self, n: int) -> list[tuple[Any, ...]]:
        """The first `n` rows as tuples, read from the rows when there are rows (so the
        values do not depend on whether a frame was built: no NaN for a NULL)."""
        if isinstance(self.data, list):
            return [tuple(r) for r in self.data[:n]]
        return list(self.data.head(n).itertuples(index=False, name=None))

    def preview(self, n: int = 20) -> dict[str, Any]:
        """The first `n` rows as JSON-safe lists (for events, messages and the sidebar)."""
        rows = [[json_safe(v) for v in row] for row in self.head(n)]
        return {
            "columns": list(self.columns),
            "rows": rows,
            "row_count": self.row_count,
            "truncated": self.truncated,
        }


class Fetched(NamedTuple):
    """What a dialect's runner returns; `rows` may already be a DataFrame (read in columns)."""

    columns: list[str]
    rows: Any  # list of row tuples, or a pandas DataFrame
    truncated: bool


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


def unique_names(names: Sequence[str]) -> list[str]:
    """Column names made unique (`id`, `id_2`): a DataFrame needs distinct labels."""
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


def frame(columns: list[str], rows: list[Sequence[Any]]) -> pd.DataFrame:
    """Rows to a DataFrame without pandas.read_sql; Decimals become floats for analysis."""
    import pandas as pd

    if not rows:
        return pd.DataFrame({c: pd.Series([], dtype=object) for c in columns}, columns=columns)
    return pd.DataFrame.from_records(rows, columns=columns, coerce_float=True)


# --------------------------------------------------------------------------- cancellation


class CancelToken:
    """Cancels the statement running under it, from any thread.

    Each dialect attaches its own interrupt (a PostgreSQL protocol cancel request, a SQLite
    interrupt, a MySQL `KILL QUERY` from a second connection). Once cancelled, a token
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


class Run:
    """One execution: its deadline, its token, and whether the watchdog fired."""

    def __init__(self, token: CancelToken, timeout_s: float) -> None:
        self.token = token
        self.timeout_s = timeout_s
        self.deadline = time.monotonic() + timeout_s
        self.timed_out = False
        self._active = False
        self._resending = False
        self._lock = threading.Lock()

    @property
    def stopped(self) -> bool:
        return self.token.cancelled or self.timed_out or time.monotonic() > self.deadline

    @contextlib.contextmanager
    def interruptible(self, interrupt: Callable[[], None]) -> Iterator[None]:
        """While inside, `cancel()` or the watchdog call `interrupt` (never after)."""

        def resend() -> None:
            while True:
                time.sleep(RESEND_S)
                with self._lock:
                    if not self._active:
                        return
                    _quietly(interrupt)

        def guarded() -> None:
            with self._lock:
                if not self._active:
                    return
                interrupt()
                if not self._resending:
                    self._resending = True
                    threading.Thread(target=resend, name="aigis-interrupt", daemon=True).start()

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


# --------------------------------------------------------------------------- bounded fetch


def fetch(fetchmany: Callable[[int], Sequence[Any]], max_rows: int,
          run: Run, first: Sequence[Any] = ()) -> tuple[list[Any], bool]:
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


def read_cursor(cur: Any, max_rows: int, run: Run) -> Fetched:
    """Columns and at most `max_rows` rows of an executed DB-API cursor; a write reports
    its affected-row count as a one-cell result."""
    if not cur.description:
        return Fetched(["rows_affected"], [(cur.rowcount,)], False)
    columns = [d[0] for d in cur.description]
    rows, truncated = fetch(cur.fetchmany, max_rows, run)
    return Fetched(columns, rows, truncated)


# --------------------------------------------------------------------------- connections


def checkout(engine: Engine, spec: ConnectionSpec) -> Any:
    """A pooled DB-API connection; a failure to connect says what to fix."""
    try:
        return engine.raw_connection()
    except DatabaseError:
        raise
    except Exception as exc:
        orig = getattr(exc, "orig", None)
        raise explain_connect_error(orig if isinstance(orig, DatabaseError) else exc,
                                    spec) from None


def catalog_rows(engine: Engine, spec: ConnectionSpec, sql: str,
                 params: dict[str, Any] | None = None, *, begin: Sequence[str] = (),
                 **execute_kw: Any) -> list[tuple[Any, ...]]:
    """Run one catalog query on a pooled connection and roll back.

    `begin` are statements run first in the same transaction (`SET TRANSACTION READ
    ONLY`); `execute_kw` go to the driver's `execute` (PostgreSQL's `binary=True`)."""
    raw = checkout(engine, spec)
    try:
        raw.rollback()  # start clean (a pool ping may have opened a transaction)
        cur = raw.cursor()
        for stmt in begin:
            cur.execute(stmt)
        if params is None and not execute_kw:
            cur.execute(sql)
        else:
            cur.execute(sql, params, **execute_kw)
        rows = list(cur.fetchall())
        cur.close()
        raw.rollback()
        return rows
    except DatabaseError:
        raise
    except Exception as exc:
        raw.invalidate()
        msg = scrub(str(getattr(exc, "args", [exc])[-1] if getattr(exc, "args", None)
                        else exc), [spec.password])
        raise DatabaseError(f"Could not read the database catalog: {msg}") from None
    finally:
        raw.close()
