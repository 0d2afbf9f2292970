"""Running one statement through the guard's three layers.

1. the parser (`guard.check_sql`, the connection's dialect and database);
2. the database enforces it: the connection's dialect runs the statement in a read-only
   transaction with the server's own timeout and a cancel hook (see `dialects/`), and this
   holds even with the parser off (`guard=False`);
3. bounded fetch: at most `max_rows + 1` rows are read (`runs.fetch`), `truncated` flagged.

This module knows no dialect: it asks the registry for the connection's `Dialect` and
calls its `run`, so adding an engine never touches it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..errors import BadInput, SQLRefused
from .engines import ConnectionSpec, get_dialect
from .guard import check_sql, is_read_query
from .runs import CancelToken, QueryResult, Run, unique_names

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["CancelToken", "QueryResult", "run_query"]


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
        stmt = check_sql(sql, dialect.sqlglot_dialect, allow_write=spec.allow_write,
                         database=spec.database)
    else:
        stmt = (sql or "").strip().rstrip(";").strip()
        if not stmt:
            raise SQLRefused("The SQL statement is empty; write a SELECT query.")
    read_only = not spec.allow_write
    as_query = read_only or is_read_query(stmt, dialect.sqlglot_dialect,
                                          database=spec.database)
    run = Run(CancelToken() if cancel is None else cancel, float(timeout_s))
    start = time.perf_counter()
    fetched = dialect.run(engine, spec, stmt, max_rows=max_rows, run=run,
                          read_only=read_only, as_query=as_query)
    columns = unique_names(fetched.columns)
    if not isinstance(fetched.rows, list):  # a DataFrame read in columns (PostgreSQL's COPY)
        fetched.rows.columns = columns
    return QueryResult(
        sql=stmt,
        columns=columns,
        data=fetched.rows,
        row_count=len(fetched.rows),
        truncated=fetched.truncated,
        duration_ms=round((time.perf_counter() - start) * 1000, 2),
    )
