"""SQLite: a file opened read-only, an authorizer, and a progress handler for time limits.

Layer 2 of the guard here: the file is opened through a URI with `mode=ro` (never
created), with `PRAGMA query_only`, a default-deny authorizer (no writes, ATTACH, pragma
writes, load_extension) and a progress handler that enforces the timeout and cancel.

Catalog: `sqlite_master` joined with the pragma table-valued functions, one query.
Fingerprint: `PRAGMA schema_version`, which SQLite bumps on every schema change.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ...errors import BadInput, DatabaseError, SQLRefused
from .. import runs, suggest
from ..catalog import Column, ForeignKey, Table
from ..engines import ConnectionSpec, Dialect, register_dialect

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine

__all__ = ["SQLiteDialect", "open_sqlite", "sqlite_path"]


def sqlite_path(spec: ConnectionSpec) -> Path:
    """The SQLite file of a spec (`host` holds the path, as in the original product)."""
    raw = spec.host or spec.database
    if not raw:
        raise BadInput("A SQLite connection needs the database file path in `host`.")
    return Path(os.path.expanduser(raw)).resolve()


def _sqlite_uri(path: Path, mode: str) -> str:
    # Quote everything that has a meaning in a URI (?, #, %) so any file name works.
    return f"file:{quote(str(path), safe='/')}?mode={mode}"


# Authorizer: default-deny. Reads, functions (minus a deny list), recursion, transaction
# control and a few introspection pragmas are allowed; everything else (writes, DDL,
# ATTACH - which VACUUM INTO uses too - temp objects, pragma writes) is refused.
_DENIED_FUNCS = frozenset(
    {"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer", "sqlite_dbpage"}
)
_READ_PRAGMAS = frozenset(
    {"table_info", "table_xinfo", "table_list", "foreign_key_list", "index_list",
     "index_info", "index_xinfo", "database_list", "collation_list", "function_list"}
)
_SCHEMA_TABLES = frozenset(
    {"sqlite_master", "sqlite_temp_master", "sqlite_schema", "sqlite_temp_schema"}
)
_SCALAR_PRAGMAS = frozenset(
    {"schema_version", "user_version", "data_version", "page_count", "page_size", "encoding",
     "freelist_count", "application_id", "foreign_keys", "query_only", "read_uncommitted"}
)


def _authorizer(action: int, a1: str | None, a2: str | None, db: str | None,
                trigger: str | None) -> int:
    if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE,
                  sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT):
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_FUNCTION:
        denied = (a2 or "").lower() in _DENIED_FUNCS
        return sqlite3.SQLITE_DENY if denied else sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_UPDATE and (a1 or "").lower() in _SCHEMA_TABLES:
        # SQLite asks this while preparing pragma table-valued functions; the schema table
        # itself can never be written here (mode=ro, query_only, writable_schema denied).
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA:
        name = (a1 or "").lower()
        if name in _READ_PRAGMAS or (name in _SCALAR_PRAGMAS and a2 is None):
            return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def open_sqlite(path: Path, *, read_only: bool) -> sqlite3.Connection:
    """Open an existing SQLite file; never creates one (URI mode ro / rw, not rwc)."""
    if not path.is_file():
        raise DatabaseError(
            f"SQLite file not found: {path}. Check the path; aigis never creates a database "
            "file when connecting.",
            reason="not_found",
        )
    con = sqlite3.connect(
        _sqlite_uri(path, "ro" if read_only else "rw"),
        uri=True,
        check_same_thread=False,  # CancelToken.cancel() calls interrupt() from another thread
        timeout=5,
    )
    if read_only:
        con.execute("PRAGMA query_only = ON")
        con.set_authorizer(_authorizer)
    return con


_CATALOG = """
SELECT 'c', m.name, m.type, p.cid, p.name, p.type, p."notnull", p.pk,
       NULL, NULL, NULL
FROM sqlite_master AS m JOIN pragma_table_info(m.name) AS p
WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
UNION ALL
SELECT 'f', m.name, m.type, f.seq, f."from", NULL, NULL, NULL,
       f.id, f."table", f."to"
FROM sqlite_master AS m JOIN pragma_foreign_key_list(m.name) AS f
WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
ORDER BY 2, 1, 9, 4
"""

_FINGERPRINT = "SELECT schema_version FROM pragma_schema_version"
#: Tables counted at most (a count reads the whole table).
ROW_COUNT_TABLES = 200


def _quote(name: str, mark: str) -> str:
    """`name` as a string literal (') or an identifier (")."""
    return mark + name.replace(mark, mark * 2) + mark


@dataclass(frozen=True)
class SQLiteDialect(Dialect):
    """SQLite: `host` is the file path; opened through a URI so it is never created."""

    def url(self, spec: ConnectionSpec) -> URL:
        from sqlalchemy.engine import URL

        return URL.create(self.drivername, database=str(sqlite_path(spec)))

    def engine_kwargs(self, spec: ConnectionSpec) -> dict[str, Any]:
        from sqlalchemy.pool import QueuePool

        path = sqlite_path(spec)
        read_only = not spec.allow_write

        def creator() -> sqlite3.Connection:
            return open_sqlite(path, read_only=read_only)

        # The creator opens the file through a URI (mode=ro / rw), never creating it.
        return {"creator": creator, "poolclass": QueuePool, "pool_size": 4, "max_overflow": 8}

    def run(self, engine: Engine, spec: ConnectionSpec, stmt: str, *, max_rows: int,
            run: runs.Run, read_only: bool, as_query: bool) -> runs.Fetched:
        raw = runs.checkout(engine, spec)
        con: sqlite3.Connection = raw.driver_connection
        # Called every N virtual-machine steps; a non-zero return aborts the statement.
        con.set_progress_handler(lambda: 1 if run.stopped else 0, 2_000)
        cur = None
        try:
            with run.interruptible(con.interrupt):
                cur = con.cursor()
                cur.execute(stmt)
                fetched = runs.read_cursor(cur, max_rows, run)
                cur.close()
            if not read_only and con.in_transaction:
                con.commit()
            return fetched
        except sqlite3.Error as exc:
            raise self.map_error(exc, run, engine, spec) from None
        finally:
            if cur is not None:
                with contextlib.suppress(Exception):
                    cur.close()
            with contextlib.suppress(Exception):
                con.set_progress_handler(None, 0)
                if con.in_transaction:
                    con.rollback()
            raw.close()

    def map_error(self, exc: BaseException, run: runs.Run, engine: Engine,
                  spec: ConnectionSpec) -> Exception:
        msg = str(exc)
        low = msg.lower()
        if "interrupted" in low:
            return run.stop_error()
        if ("not authorized" in low or "authorization denied" in low
                or "readonly database" in low or "query_only" in low):
            return SQLRefused(
                f"The database refused it: this connection is read-only ({msg}). Only "
                "queries can run here.")
        if "one statement at a time" in low:
            return SQLRefused("The database accepts exactly one statement at a time.")
        if low.startswith("no such table:"):
            return suggest.unknown_table(msg.split(":", 1)[1].strip(), engine, spec)
        if low.startswith("no such column:"):
            return suggest.unknown_column(msg.split(":", 1)[1].strip(), msg, engine, spec)
        return DatabaseError(f"The database rejected the SQL: {msg}", reason="query_error")

    def fingerprint(self, engine: Engine, spec: ConnectionSpec) -> tuple[list[str], str | None]:
        row = runs.catalog_rows(engine, spec, _FINGERPRINT)[0]
        return [str(engine.url.database), str(row[0])], None

    def row_counts(self, engine: Engine, spec: ConnectionSpec,
                   tables: list[Table]) -> tuple[dict[str, int | None], bool]:
        """Exact counts: SQLite keeps no row statistics, and its files are small enough."""
        names = [t.name for t in tables if t.kind == "table"][:ROW_COUNT_TABLES]
        if not names:
            return {}, True
        sql = " UNION ALL ".join(
            f"SELECT {_quote(n, chr(39))}, COUNT(*) FROM {_quote(n, chr(34))}" for n in names)
        return {str(name): int(n) for name, n in runs.catalog_rows(engine, spec, sql)}, True

    def catalog(self, engine: Engine, spec: ConnectionSpec) -> list[Table]:
        try:
            rows = runs.catalog_rows(engine, spec, _CATALOG)
        except DatabaseError:
            # A view over a dropped table makes pragma_table_info fail: describe tables only.
            rows = runs.catalog_rows(engine, spec, _CATALOG.replace("IN ('table', 'view')",
                                                                    "IN ('table')"))
        tables: dict[str, Table] = {}
        fks: dict[tuple[str, int], ForeignKey] = {}
        for (kind, tname, ttype, _pos, col, typ, notnull, pk, fk_id, rtable, rcol) in rows:
            t = tables.get(tname)
            if t is None:
                t = tables[tname] = Table(name=tname, schema=None, columns=[],
                                          kind="view" if ttype == "view" else "table")
            if kind == "c":
                t.columns.append(Column(col, typ or "", not notnull, bool(pk)))
            else:
                fk = fks.get((tname, fk_id))
                if fk is None:
                    fk = fks[(tname, fk_id)] = ForeignKey([], rtable, [])
                    t.foreign_keys.append(fk)
                fk.columns.append(col)
                fk.ref_columns.append(rcol)
        # `REFERENCES t` without columns means t's primary key.
        for t in tables.values():
            for fk in t.foreign_keys:
                if any(c is None for c in fk.ref_columns):
                    ref = next((x for x in tables.values()
                                if x.name.lower() == fk.ref_table.lower()), None)
                    fk.ref_columns = ref.primary_key if ref else [c or "" for c in
                                                                  fk.ref_columns]
        return list(tables.values())

    def server_version(self, cursor: Any) -> str:
        cursor.execute("SELECT sqlite_version()")
        return "SQLite " + str(cursor.fetchone()[0])


register_dialect(SQLiteDialect(
    name="sqlite", label="SQLite", drivername="sqlite+pysqlite", sqlglot_dialect="sqlite",
    file_based=True, aliases=("sqlite3",),
))
