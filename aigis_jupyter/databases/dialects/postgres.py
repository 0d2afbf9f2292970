"""PostgreSQL through psycopg 3.

Layer 2 of the guard here: every query runs in its own transaction made `READ ONLY`
before the statement, with `SET LOCAL statement_timeout` and `SET LOCAL
standard_conforming_strings = on` (the parser reads a backslash in '...' as an ordinary
character; a server set to `off` would read `'a\' , ' , f() -- '` as one string and code
where the parser saw two strings); the statement goes through the extended protocol
inside `DECLARE ... CURSOR FOR` (one statement only, and only a query
can follow `FOR`: no `COMMIT;` escape, no `DO`, no `COPY`), then the transaction is rolled
back, which also undoes any `set_config` the query made. Session-level advisory locks
(`pg_advisory_lock`) are the one thing a read-only query can take that a rollback keeps:
every run releases them (`pg_advisory_unlock_all()`) before the connection goes back to the
pool. Rows stream through a server-side cursor; large results may switch to COPY + pyarrow
(`postgres_copy`). A cancel is a protocol cancel request.

Catalog: one query over pg_catalog returning one row per table (its columns as arrays)
plus one per foreign key (column numbers, named from those arrays here), unsorted: the
server neither sorts tens of thousands of wide rows nor looks up column names per key.

Fingerprint: count and newest `xmin` of the catalog rows describing user relations,
columns, constraints and comments. Any DDL writes those rows in a new transaction, so the
newest xmin (or the count, after a drop) moves; VACUUM/ANALYZE update pg_class in place and
keep xmin, so statistics do not invalidate the cache. The newest xmin is read as
`now - min(age(xmin))` with `now` from `age('3'::xid)` in the same statement (`age` is an
integer per row; `xmin::text::bigint` formats and parses a string).
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...errors import DatabaseError, QueryCancelled, SQLRefused
from ...scrub import scrub
from .. import runs, suggest
from ..catalog import Column, ForeignKey, Table
from ..engines import ConnectionSpec, Dialect, register_dialect
from . import postgres_copy

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

__all__ = ["PostgresDialect"]

_CURSOR = "aigis_result"
# What psycopg puts before the statement; a syntax error right after it means the
# statement is not a query at all (DELETE, DROP, COPY, DO, COMMIT, ...).
_DECLARE = f'DECLARE "{_CURSOR}" NO SCROLL CURSOR FOR '

_REL_FROM = """
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
      AND NOT c.relispartition
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_toast%%' AND n.nspname NOT LIKE 'pg\\_temp\\_%%'
      AND (%(schemas)s::text[] IS NULL OR n.nspname = ANY(%(schemas)s::text[]))
"""
_RELS = f"SELECT c.oid, n.nspname, c.relname, c.relkind {_REL_FROM}"

# One row per relation ('c': its columns as arrays, in no particular order but the same
# order in every array) and one per foreign key ('f': column numbers, named from the
# arrays; the SQL names them only when the referenced table is outside the snapshot).
# Column comments come as 'd' rows: few databases have many.
_CATALOG = f"""
WITH rels AS MATERIALIZED ({_RELS}),
cols AS (
  SELECT a.attrelid,
         array_agg(a.attnum::int) AS nums,
         array_agg(a.attname::text) AS names,
         array_agg(pg_catalog.format_type(a.atttypid, a.atttypmod)) AS types,
         array_agg(NOT a.attnotnull) AS nullable
  FROM pg_catalog.pg_attribute a
  JOIN rels r ON r.oid = a.attrelid
  WHERE a.attnum > 0 AND NOT a.attisdropped
  GROUP BY a.attrelid
)
SELECT 'c' AS kind, r.oid::bigint, r.nspname::text, r.relname::text, r.relkind::text,
       td.description, c.nums, c.names, c.types, c.nullable, pk.conkey::int[],
       NULL::text, NULL::int[], NULL::text, NULL::text, NULL::bigint, NULL::text[]
FROM rels r
JOIN cols c ON c.attrelid = r.oid
LEFT JOIN pg_catalog.pg_constraint pk ON pk.conrelid = r.oid AND pk.contype = 'p'
LEFT JOIN pg_catalog.pg_description td
       ON td.objoid = r.oid AND td.classoid = 'pg_catalog.pg_class'::regclass
      AND td.objsubid = 0
UNION ALL
SELECT 'f', con.conrelid::bigint, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       con.conkey::int[], con.conname::text, con.confkey::int[], fn.nspname::text,
       fc.relname::text, con.confrelid::bigint,
       CASE WHEN x.oid IS NULL THEN
         ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY AS k(num, i)
               JOIN pg_catalog.pg_attribute a
                 ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.i)
       END
FROM pg_catalog.pg_constraint con
JOIN rels r ON r.oid = con.conrelid
JOIN pg_catalog.pg_class fc ON fc.oid = con.confrelid
JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace
LEFT JOIN rels x ON x.oid = con.confrelid
WHERE con.contype = 'f'
UNION ALL
SELECT 'd', d.objoid::bigint, NULL, NULL, NULL, d.description, ARRAY[d.objsubid], NULL,
       NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM pg_catalog.pg_description d
JOIN rels r ON r.oid = d.objoid
WHERE d.classoid = 'pg_catalog.pg_class'::regclass AND d.objsubid > 0
"""

_FINGERPRINT = f"""
WITH rels AS MATERIALIZED (SELECT c.oid, age(c.xmin) AS age {_REL_FROM})
SELECT current_database(), current_schema(), age('3'::xid),
  (SELECT count(*) || '/' || coalesce(min(r.age), -1) FROM rels r),
  (SELECT count(*) || '/' || coalesce(min(age(a.xmin)), -1)
     FROM pg_catalog.pg_attribute a JOIN rels r ON r.oid = a.attrelid WHERE a.attnum > 0),
  (SELECT count(*) || '/' || coalesce(min(age(con.xmin)), -1)
     FROM pg_catalog.pg_constraint con JOIN rels r ON r.oid = con.conrelid),
  (SELECT count(*) || '/' || coalesce(min(age(d.xmin)), -1)
     FROM pg_catalog.pg_description d JOIN rels r ON r.oid = d.objoid
    WHERE d.classoid = 'pg_catalog.pg_class'::regclass)
"""

_READ_ONLY = ("SET TRANSACTION READ ONLY",)
_FROZEN_AGE = 2**31 - 1  # age() of a frozen or bootstrap xmin


_ROW_ESTIMATES = f"""
SELECT r.nspname::text, r.relname::text, c.reltuples::bigint
FROM ({_RELS}) r JOIN pg_catalog.pg_class c ON c.oid = r.oid
WHERE r.relkind IN ('r', 'p', 'm')
"""


_RISKY = """
SELECT r.rolsuper,
       pg_has_role(r.oid, 'pg_read_server_files', 'MEMBER')
       OR pg_has_role(r.oid, 'pg_write_server_files', 'MEMBER')
       OR pg_has_role(r.oid, 'pg_execute_server_program', 'MEMBER')
FROM pg_catalog.pg_roles r WHERE r.rolname = COALESCE(%(role)s, current_user)
"""


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _schemas(spec: ConnectionSpec) -> list[str] | None:
    raw = spec.options.get("schema")
    if not raw:
        return None
    return [s.strip() for s in str(raw).split(",") if s.strip()] or None


def _newest(part: str, now: int) -> str:
    """`count/min_age` -> `count/newest_xmin`: the same value in every transaction."""
    count, _, age = part.partition("/")
    if age in ("-1", str(_FROZEN_AGE)):
        return part
    return f"{count}/{(now - int(age)) % 2**32}"


def _load(rows: list[tuple[Any, ...]]) -> list[Table]:
    """Tables from the rows of `_CATALOG` (see the comment there)."""
    by_oid: dict[int, tuple[Table, dict[int, str]]] = {}
    fks: list[tuple[Any, ...]] = []
    comments: list[tuple[Any, ...]] = []
    for row in rows:
        kind = row[0]
        if kind == "c":
            (_, oid, nsp, rel, relkind, tcomment, nums, names, types, nullable, pkey) = row[:11]
            pk = set(pkey or ())
            cols = [Column(name, typ, bool(null), num in pk)
                    for num, name, typ, null in sorted(zip(nums, names, types, nullable,
                                                           strict=True))]
            t = Table(name=rel, schema=nsp, columns=cols,
                      kind="view" if relkind in ("v", "m") else "table",
                      comment=tcomment or None)
            by_oid[oid] = (t, dict(zip(nums, names, strict=True)))
        elif kind == "f":
            fks.append(row)
        else:
            comments.append(row)
    fks.sort(key=lambda r: (r[1], r[11]))
    for row in fks:
        oid, conkey, conname, confkey, ref_schema, ref_table, ref_oid, ref_names = (
            row[1], *row[10:])
        own = by_oid.get(oid)
        if own is None:
            continue
        if ref_names is None:
            ref = by_oid.get(ref_oid)
            ref_names = [ref[1].get(k, "") for k in confkey] if ref else []
        own[0].foreign_keys.append(ForeignKey([own[1].get(k, "") for k in conkey], ref_table,
                                              list(ref_names), ref_schema, conname))
    for row in comments:
        own = by_oid.get(row[1])
        if own is not None and row[5]:
            name = own[1].get(row[6][0])
            for c in own[0].columns:
                if c.name == name:
                    c.comment = row[5]
    return [t for t, _ in by_oid.values()]


def _end(pg: Any, *, commit: bool) -> None:
    """End the run's transaction and release the session's advisory locks.

    `pg_advisory_lock` locks belong to the session, not the transaction, so a rollback
    keeps them: they are released in the run's own transaction while it is usable, else
    (after an error) in a new one that is rolled back too.
    """
    from psycopg.pq import TransactionStatus

    if pg.info.transaction_status == TransactionStatus.INTRANS:
        pg.execute(_UNLOCK_ALL)
        if commit:
            pg.commit()
        else:
            pg.rollback()
        return
    pg.rollback()
    pg.execute(_UNLOCK_ALL)
    pg.rollback()


_UNLOCK_ALL = "SELECT pg_catalog.pg_advisory_unlock_all()"


def _cancel(pg: Any) -> None:
    """Send a protocol cancel request (cancel_safe on psycopg >= 3.2, else cancel)."""
    safe = getattr(pg, "cancel_safe", None)
    if safe is not None:
        safe(timeout=5)
    else:
        pg.cancel()


@dataclass(frozen=True)
class PostgresDialect(Dialect):
    """PostgreSQL (and wire-compatible servers): read-only transactions, server cursors."""

    def connect_args(self, spec: ConnectionSpec) -> dict[str, Any]:
        return {**super().connect_args(spec), "application_name": "aigis-jupyter"}

    def run(self, engine: Engine, spec: ConnectionSpec, stmt: str, *, max_rows: int,
            run: runs.Run, read_only: bool, as_query: bool) -> runs.Fetched:
        import psycopg
        from psycopg import sql as pgsql
        from psycopg.pq import TransactionStatus

        raw = runs.checkout(engine, spec)
        pg: psycopg.Connection[Any] = raw.driver_connection
        try:
            if pg.info.transaction_status != TransactionStatus.IDLE:
                pg.rollback()
            with pg.cursor() as cur:
                # psycopg opens the transaction (BEGIN) itself: this must be its first
                # statement.
                if read_only:
                    cur.execute("SET TRANSACTION READ ONLY")
                cur.execute(f"SET LOCAL statement_timeout = {max(1, int(run.timeout_s * 1000))}")
                cur.execute("SET LOCAL standard_conforming_strings = on")  # as the parser reads
                cur.execute("SET LOCAL idle_in_transaction_session_timeout = "
                            f"{max(1000, int(run.timeout_s * 2000) + 5000)}")
                role = spec.options.get("role")
                if role:
                    cur.execute(pgsql.SQL("SET LOCAL ROLE {}").format(pgsql.Identifier(role)))
            with run.interruptible(lambda: _cancel(pg)):
                if as_query:
                    fetched = self._read_query(pg, stmt, max_rows, run, read_only)
                else:  # a write on a write-enabled connection: binary=True forces extended
                    with pg.cursor() as cur:
                        cur.execute(stmt, binary=True)
                        if cur.description:
                            rows, truncated = runs.fetch(cur.fetchmany, max_rows, run)
                            fetched = runs.Fetched([d.name for d in cur.description], rows,
                                                   truncated)
                        else:
                            fetched = runs.Fetched(["rows_affected"], [(cur.rowcount,)], False)
            # a read-only run keeps nothing; the rollback also undoes any set_config
            _end(pg, commit=not read_only)
            return fetched
        except psycopg.Error as exc:
            with contextlib.suppress(Exception):
                _end(pg, commit=False)
            raise self.map_error(exc, run, engine, spec) from None
        except BaseException:
            with contextlib.suppress(Exception):
                _end(pg, commit=False)
            raise
        finally:
            if pg.closed or pg.broken:
                raw.invalidate()
            raw.close()

    @staticmethod
    def _read_query(pg: Any, stmt: str, max_rows: int, run: runs.Run,
                    read_only: bool) -> runs.Fetched:
        """A server-side cursor: DECLARE goes through the extended protocol, and FETCH
        streams rows so only the cap ever leaves the server (or COPY, for big results)."""
        chunk = runs.FETCH_CHUNK
        sc = pg.cursor(name=_CURSOR, scrollable=False)
        try:
            sc.execute(stmt)
            run.check()  # a cancel between DECLARE and FETCH: stop before the work starts
            desc = list(sc.description or [])
            columns = [d.name for d in desc]
            started = time.monotonic()
            first = sc.fetchmany(min(chunk, max_rows + 1))
            run.check()
            frame = None
            if (read_only and len(first) == chunk
                    and max_rows + 1 - len(first) >= postgres_copy.COPY_MIN_REMAINING
                    and time.monotonic() - started <= postgres_copy.COPY_MAX_STARTUP_S):
                types = postgres_copy.arrow_types(desc)
                if types is not None:
                    sc.close()
                    frame = postgres_copy.copy_frame(pg, stmt, types, max_rows, run)
                    if frame is None:  # the COPY path could not read it: rows again
                        sc = pg.cursor(name=_CURSOR, scrollable=False)
                        sc.execute(stmt)
                        first = []
            if frame is not None:
                truncated = len(frame) > max_rows
                return runs.Fetched(columns, frame.iloc[:max_rows] if truncated else frame,
                                    truncated)
            rows, truncated = runs.fetch(sc.fetchmany, max_rows, run, first)
            return runs.Fetched(columns, rows, truncated)
        finally:
            with contextlib.suppress(Exception):
                sc.close()

    def map_error(self, exc: BaseException, run: runs.Run, engine: Engine,
                  spec: ConnectionSpec) -> Exception:
        import psycopg

        secrets = [spec.password]
        diag = getattr(exc, "diag", None)
        primary = scrub((diag and diag.message_primary) or str(exc).splitlines()[0], secrets)
        hint = scrub((diag and diag.message_hint) or "", secrets)
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
                and int(position) == len(_DECLARE) + 1):
            return SQLRefused(
                f"The database refused it: only a query (SELECT, VALUES, WITH ... SELECT) "
                f"can run on this read-only connection ({primary}).")
        if not spec.allow_write and ("data-modifying" in primary
                                     or "INTO is not allowed" in primary
                                     or "INTO is only allowed" in primary):
            return SQLRefused(
                f"The database refused it: this connection is read-only ({primary}).")
        if state == "42P01":
            m = re.search(r'relation "([^"]+)" does not exist', primary)
            return suggest.unknown_table(m.group(1) if m else primary, engine, spec)
        if state in ("42703", "42883") and hint:
            return DatabaseError(f"{primary}. {hint}", reason="query_error")
        if state == "42703":
            m = re.search(r'column "?([^" ]+)"? does not exist', primary)
            return suggest.unknown_column(m.group(1) if m else "", primary, engine, spec)
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

    def fingerprint(self, engine: Engine, spec: ConnectionSpec) -> tuple[list[str], str | None]:
        row = runs.catalog_rows(engine, spec, _FINGERPRINT, {"schemas": _schemas(spec)},
                                begin=_READ_ONLY)[0]
        now = (int(row[2]) + 3) % 2**32
        return [str(row[0]), str(row[1]), *(_newest(str(v), now) for v in row[3:])], row[1]

    def risky_privileges(self, cursor: Any, spec: ConnectionSpec) -> list[str]:
        """For the role queries run as (the connection's `role` option, else the login)."""
        cursor.execute(_RISKY, {"role": spec.options.get("role") or None})
        row = cursor.fetchone()
        if row is None:
            return []
        return ["superuser"] if row[0] else (["server_files"] if row[1] else [])

    def readonly_role_sql(self, spec: ConnectionSpec, role: str, password: str) -> list[str]:
        """A login that can connect, read the tables of the connection's schemas (now and
        later) and nothing else; its sessions start read-only as well."""
        r, db = _ident(role), _ident(spec.database or self.default_database or "postgres")
        out = [f"CREATE ROLE {r} LOGIN PASSWORD {_literal(password)} NOSUPERUSER NOCREATEDB "
               "NOCREATEROLE NOREPLICATION",
               f"GRANT CONNECT ON DATABASE {db} TO {r}"]
        for schema in _schemas(spec) or ["public"]:
            s = _ident(schema)
            out += [f"GRANT USAGE ON SCHEMA {s} TO {r}",
                    f"GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {r}",
                    f"ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT SELECT ON TABLES TO {r}"]
        out.append(f"ALTER ROLE {r} SET default_transaction_read_only = on")
        return out

    def row_counts(self, engine: Engine, spec: ConnectionSpec,
                   tables: list[Table]) -> tuple[dict[str, int | None], bool]:
        """The planner's estimates (`reltuples`); a table never analysed has none."""
        rows = runs.catalog_rows(engine, spec, _ROW_ESTIMATES, {"schemas": _schemas(spec)},
                                 begin=_READ_ONLY)
        return {f"{nsp}.{rel}": (int(n) if n is not None and n >= 0 else None)
                for nsp, rel, n in rows}, False

    def catalog(self, engine: Engine, spec: ConnectionSpec) -> list[Table]:
        # binary results: arrays decode much faster
        rows = runs.catalog_rows(engine, spec, _CATALOG, {"schemas": _schemas(spec)},
                                 begin=_READ_ONLY, binary=True)
        return _load(rows)


register_dialect(PostgresDialect(
    name="postgres", label="PostgreSQL", drivername="postgresql+psycopg",
    sqlglot_dialect="postgres", default_port=5432, default_database="postgres",
    aliases=("postgresql", "pg"),
    options=("sslmode", "sslrootcert", "sslcert", "sslkey", "target_session_attrs"),
))
