"""PostgreSQL's fast path for large results: COPY ... CSV parsed by pyarrow into columns.

Building a Python object per cell is what makes big fetches slow and memory-hungry (a
million rows of eight columns is eight million objects). When a read-only query's first
chunk is full, more than `COPY_MIN_REMAINING` rows may follow, its columns are all of
simple types and pyarrow is installed, the rest is read again, in the same transaction,
as `COPY (SELECT * FROM (stmt) LIMIT max_rows + 1) TO STDOUT` in CSV and parsed by
pyarrow into columns (same dtypes as the row path). The statement has already been
accepted after `DECLARE ... CURSOR FOR`, so it is one complete query and stays one inside
the parentheses; anything the COPY path cannot read falls back to the row path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from ..runs import Run

__all__ = ["COPY_MAX_STARTUP_S", "COPY_MIN_REMAINING", "arrow_types", "copy_frame"]

#: A result switches to COPY + pyarrow only if at least this many rows may follow its
#: first chunk (the default row cap of 10,000 never does) ...
COPY_MIN_REMAINING = 20_000
#: ... and only if its first chunk came back this fast, so that reading it again is cheap.
COPY_MAX_STARTUP_S = 0.25
#: Bytes of CSV handed to the parser thread at a time.
COPY_BLOCK_BYTES = 8 << 20


# PostgreSQL type oid -> how pyarrow reads its CSV text. Only types whose CSV text pyarrow
# parses to exactly what the row path builds (psycopg values through `runs.frame`).
_ARROW_OIDS = {
    16: "bool", 20: "int64", 21: "int64", 23: "int64",  # bool, int8, int2, int4
    700: "float64", 701: "float64", 1700: "float64",  # float4, float8, numeric (as float)
    19: "string", 25: "string", 1042: "string", 1043: "string",  # name, text, char(n), varchar
    1082: "date32", 1114: "timestamp[us]",  # date, timestamp without time zone
}


def arrow_types(desc: Sequence[Any]) -> list[Any] | None:
    """pyarrow types for these columns, or None (a column of another type, or no pyarrow)."""
    oids = [getattr(d, "type_code", None) for d in desc]
    if not oids or any(o not in _ARROW_OIDS for o in oids):
        return None
    try:
        import pyarrow as pa
    except ImportError:
        return None
    return [pa.type_for_alias(_ARROW_OIDS[o]) for o in oids]


def copy_frame(pg: Any, stmt: str, types: list[Any], max_rows: int,
               run: Run) -> pd.DataFrame | None:
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
            for data in _copy_out(pg, copy_sql, run):
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


def _copy_out(pg: Any, sql: str, run: Run) -> Iterator[memoryview]:
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

