"""Test helpers for real databases: scratch databases, demo and Chinook loaders, checksums.

Everything here talks to the live servers the conftest fixtures found; nothing is
mocked. `checksum` is what "unchanged afterwards" means in the guard tests: every table's
row count and a digest of all its rows, plus the objects a hostile statement could add
elsewhere (tables, large objects, roles, databases, files next to a SQLite database).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from aigis_jupyter.databases.engines import ConnectionSpec


def engine_for(url: str) -> sa.Engine:
    """A plain (unguarded, writable) engine for setting data up and checking it."""
    return sa.create_engine(url, poolclass=NullPool)


def spec_for(url: str, *, id: str | None = None, **overrides: Any) -> ConnectionSpec:
    """A ConnectionSpec for a test database URL (a SQLite URL or a file path works too)."""
    if "://" not in url:
        return ConnectionSpec(id=id or f"sqlite-{uuid.uuid4().hex[:6]}", db_type="sqlite",
                              host=url, **overrides)
    return ConnectionSpec.from_url(url, id=id or f"t-{uuid.uuid4().hex[:8]}", **overrides)


@contextlib.contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    """A throwaway database on the server of `admin_url` (for module-scoped fixtures)."""
    url = sa.engine.make_url(admin_url)
    kind = url.get_backend_name()
    name = f"aigis_t_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as c:
        c.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as c:
            force = " WITH (FORCE)" if kind == "postgresql" else ""
            c.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")
        admin.dispose()


# --------------------------------------------------------------------------- loaders


def load_demo_url(url: str) -> None:
    """Load the project's demo database into the (empty) database at `url`."""
    from aigis_jupyter.demo import load_demo

    eng = engine_for(url)
    try:
        load_demo(eng)
    finally:
        eng.dispose()


def _after(text: str, marker: str) -> str:
    i = text.find(marker)
    if i < 0:
        raise ValueError(f"marker {marker!r} not found in the Chinook script")
    return text[i:]


def load_chinook(url: str, chinook_dir: Path) -> None:
    """Load Chinook into the (empty) database at `url` from the shared SQL scripts.

    The scripts create their own database first; that part is skipped so the tables land
    in the fixture's database.
    """
    eng = engine_for(url)
    backend = eng.url.get_backend_name()
    try:
        if backend == "postgresql":
            script = (chinook_dir / "chinook_postgres.sql").read_text(encoding="utf-8")
            body = _after(script, "CREATE TABLE")
            raw = eng.raw_connection()
            try:
                pg = raw.driver_connection
                pg.autocommit = True
                pg.execute(body)  # no parameters: simple protocol, many statements
            finally:
                raw.close()
        elif backend in ("mysql", "mariadb"):
            import pymysql
            from pymysql.constants import CLIENT

            script = (chinook_dir / "chinook_mysql.sql").read_text(encoding="utf-8")
            body = _after(script, "CREATE TABLE")
            u = eng.url
            con = pymysql.connect(host=u.host, port=u.port or 3306, user=u.username,
                                  password=u.password or "", database=u.database,
                                  charset="utf8mb4", client_flag=CLIENT.MULTI_STATEMENTS,
                                  autocommit=True)
            try:
                with con.cursor() as cur:
                    cur.execute(body)
                    while cur.nextset():
                        pass
            finally:
                con.close()
        else:
            raise ValueError(f"load_chinook: unsupported backend {backend}")
    finally:
        eng.dispose()


# --------------------------------------------------------------------------- checksums


def _digest_rows(rows: list[tuple[Any, ...]]) -> str:
    h = hashlib.md5()
    for r in sorted(repr(tuple(r)) for r in rows):
        h.update(r.encode())
        h.update(b"\n")
    return h.hexdigest()


# Every table/view and its columns, straight from each catalog (independent of the code
# under test). Temporary tables count too: creating one is a change.
_LAYOUT = {
    "postgresql": """
        SELECT c.relname, CASE WHEN c.relkind IN ('v', 'm') THEN 'view' ELSE 'table' END,
               a.attname
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f')
          AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND n.nspname NOT LIKE 'pg_toast%'
        ORDER BY n.nspname, c.relname, a.attnum""",
    "mysql": """
        SELECT c.TABLE_NAME, CASE WHEN t.TABLE_TYPE = 'VIEW' THEN 'view' ELSE 'table' END,
               c.COLUMN_NAME
        FROM information_schema.COLUMNS c JOIN information_schema.TABLES t
          ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME
        WHERE c.TABLE_SCHEMA = DATABASE() ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION""",
    "sqlite": """
        SELECT m.name, m.type, p.name FROM (
            SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view')
            UNION ALL SELECT name, 'temp-' || type FROM sqlite_temp_master
        ) AS m JOIN pragma_table_info(m.name) AS p ORDER BY m.name, p.cid""",
}
_LAYOUT["mariadb"] = _LAYOUT["mysql"]


def _scalar(c: sa.Connection, sql: str) -> Any:
    return c.execute(sa.text(sql)).scalar()


def _column(c: sa.Connection, sql: str) -> list[str]:
    return sorted(str(r[0]) for r in c.execute(sa.text(sql)))


def checksum(url: str) -> dict[str, Any]:
    """Row counts and a digest of every row of every table, plus server-side side effects."""
    eng = engine_for(url)
    backend = eng.url.get_backend_name()
    out: dict[str, Any] = {}
    try:
        with eng.connect() as c:
            layout: dict[str, list[str]] = {}
            for table, kind, column in c.execute(sa.text(_LAYOUT[backend])):
                layout.setdefault(f"{kind}:{table}", []).append(column)
            out["__objects__"] = {k: tuple(v) for k, v in sorted(layout.items())}
            for key, cols in sorted(layout.items()):
                kind, t = key.split(":", 1)
                if kind != "table":
                    continue
                q = sa.select(*[sa.column(n) for n in cols]).select_from(sa.table(t))
                rows = [tuple(r) for r in c.execute(q)]
                out[t] = (len(rows), _digest_rows(rows))
            if backend == "postgresql":
                out["__pg_largeobjects__"] = _scalar(
                    c, "SELECT count(*) FROM pg_largeobject_metadata")
                out["__pg_roles__"] = _column(c, "SELECT rolname FROM pg_roles")
                out["__pg_databases__"] = [
                    d for d in _column(c, "SELECT datname FROM pg_database")
                    if not d.startswith("aigis_t_")]
                out["__pg_schemas__"] = _column(c, "SELECT nspname FROM pg_namespace")
                out["__pg_functions__"] = _scalar(
                    c, "SELECT count(*) FROM pg_proc p JOIN pg_namespace n "
                       "ON n.oid = p.pronamespace WHERE n.nspname = 'public'")
            elif backend in ("mysql", "mariadb"):
                out["__mysql_databases__"] = [
                    d for d in _column(c, "SHOW DATABASES") if not d.startswith("aigis_t_")]
                out["__mysql_users__"] = _column(
                    c, "SELECT CONCAT(User, '@', Host) FROM mysql.user")
                out["__mysql_routines__"] = _scalar(
                    c, "SELECT count(*) FROM information_schema.ROUTINES "
                       "WHERE ROUTINE_SCHEMA = DATABASE()")
            elif backend == "sqlite":
                path = Path(eng.url.database or "")
                out["__file_sha256__"] = hashlib.sha256(path.read_bytes()).hexdigest()
                out["__dir__"] = sorted(os.listdir(path.parent))
    finally:
        eng.dispose()
    return out


def sqlite_checksum(path: Path | str) -> dict[str, Any]:
    return checksum(f"sqlite:///{Path(path)}")


# --------------------------------------------------------------------------- hostile SQL

#: (dialect, statement) pairs every layer must refuse. `{dir}` is a scratch directory.
HOSTILE: list[tuple[str, str]] = [
    # stacked statements and transaction escapes
    ("postgres", "SELECT 1; DROP TABLE orders"),
    ("postgres", "COMMIT; DROP TABLE orders"),
    ("postgres", "ROLLBACK; DELETE FROM payments"),
    ("postgres", "SELECT 1; SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; "
                 "DELETE FROM payments"),
    ("postgres", "/* harmless */ DELETE FROM order_items"),
    ("postgres", "-- just a comment\nUPDATE products SET unit_price = 0"),
    ("postgres", "SELECT * FROM regions; -- \nTRUNCATE payments"),
    # writable CTE, SELECT INTO, DDL, DML
    ("postgres", "WITH gone AS (DELETE FROM payments RETURNING *) SELECT count(*) FROM gone"),
    ("postgres", "WITH x AS (UPDATE products SET unit_price = 0 RETURNING 1) SELECT * FROM x"),
    ("postgres", "SELECT * INTO stolen FROM customers"),
    ("postgres", "CREATE TABLE pwned (id int)"),
    ("postgres", "DROP TABLE order_items"),
    ("postgres", "ALTER TABLE customers ADD COLUMN pwned int"),
    ("postgres", "INSERT INTO regions VALUES (99, 'Atlantis')"),
    ("postgres", "TRUNCATE regions CASCADE"),
    ("postgres", "GRANT ALL ON customers TO PUBLIC"),
    ("postgres", "CREATE ROLE aigis_pwned SUPERUSER"),
    # server side programs, files, settings
    ("postgres", "COPY customers TO PROGRAM 'touch {dir}/pwned_pg'"),
    ("postgres", "COPY (SELECT 1) TO '{dir}/pwned_pg_copy'"),
    ("postgres", "DO $$ BEGIN EXECUTE 'DROP TABLE payments'; END $$"),
    ("postgres", "SELECT set_config('default_transaction_read_only', 'off', false)"),
    ("postgres", "SELECT pg_read_file('/etc/passwd')"),
    ("postgres", "SELECT lo_import('/etc/hostname')"),
    ("postgres", "SELECT * FROM pg_ls_dir('.')"),
    ("postgres", "SELECT nextval('some_seq')"),
    ("postgres", "SELECT * FROM customers FOR UPDATE"),
    ("postgres", "SELECT query_to_xml('DELETE FROM payments RETURNING 1', true, false, '')"),
    ("postgres", "SELECT 1 UNION SELECT 2 INTO TEMP t_pwned"),
    # SQLite
    ("sqlite", "ATTACH DATABASE '{dir}/pwned.sqlite' AS pwned"),
    ("sqlite", "PRAGMA query_only = OFF"),
    ("sqlite", "PRAGMA writable_schema = ON"),
    ("sqlite", "VACUUM INTO '{dir}/copy.sqlite'"),
    ("sqlite", "SELECT load_extension('/tmp/evil.so')"),
    ("sqlite", "SELECT 1; DELETE FROM payments"),
    ("sqlite", "DELETE FROM payments"),
    ("sqlite", "DROP TABLE regions"),
    ("sqlite", "CREATE TEMP TABLE t_pwned AS SELECT * FROM customers"),
    ("sqlite", "INSERT INTO regions VALUES (99, 'Atlantis')"),
    ("sqlite", "UPDATE products SET unit_price = 0"),
    ("sqlite", "REPLACE INTO regions VALUES (1, 'Renamed')"),
    ("sqlite", "/* leading comment */ DELETE FROM orders"),
    ("sqlite", "WITH x AS (SELECT 1) DELETE FROM payments"),
    ("sqlite", "CREATE TRIGGER t AFTER INSERT ON orders BEGIN DELETE FROM payments; END"),
    ("sqlite", "REINDEX"),
    ("sqlite", "ANALYZE"),
    # MySQL / MariaDB
    ("mysql", "SELECT 1; DROP TABLE orders"),
    ("mysql", "COMMIT; DELETE FROM payments"),
    ("mysql", "DELETE FROM payments"),
    ("mysql", "UPDATE products SET unit_price = 0"),
    ("mysql", "DROP TABLE order_items"),
    ("mysql", "CREATE TABLE pwned (id int)"),
    ("mysql", "TRUNCATE TABLE payments"),
    ("mysql", "INSERT INTO regions VALUES (99, 'Atlantis')"),
    ("mysql", "REPLACE INTO regions VALUES (1, 'Renamed')"),
    ("mysql", "SET SESSION TRANSACTION READ WRITE"),
    ("mysql", "CREATE USER 'aigis_pwned'@'%'"),
    ("mysql", "/*!50000 DROP TABLE payments */"),
    ("mysql", "# comment\nDELETE FROM orders"),
    ("mysql", "SELECT sleep(30)"),
    ("mysql", "SELECT BENCHMARK(100000000, MD5('x'))"),
    ("mysql", "CALL mysql.some_proc()"),
    ("mysql", "LOAD DATA INFILE '/etc/passwd' INTO TABLE regions"),
]

#: Refused by the parser; with the parser off they are no data change either but may
#: read or write outside the database, which only a least-privilege account prevents.
HOSTILE_PARSER_ONLY: list[tuple[str, str]] = [
    ("mysql", "SELECT * FROM customers INTO OUTFILE '{dir}/pwned_my'"),
    ("mysql", "SELECT LOAD_FILE('/etc/passwd')"),
    ("mysql", "SELECT * FROM mysql.user"),
    ("postgres", "SELECT * FROM pg_authid"),
    ("mysql", "SELECT 1 --1 INTO OUTFILE '{dir}/pwned_dash'\n"),
]


#: With the parser off the database layer runs these; they change nothing that lasts (the
#: transaction is rolled back, the session is reset on the next query), which the tests
#: check. Reading server files is stopped by the parser and by a least-privilege account.
HARMLESS_WHEN_RUN = frozenset({
    "SELECT set_config('default_transaction_read_only', 'off', false)",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT lo_import('/etc/hostname')",
    "SELECT * FROM pg_ls_dir('.')",
    "SET SESSION TRANSACTION READ WRITE",
})


def one_connection_engine(spec: ConnectionSpec) -> sa.Engine:
    """The product's engine for `spec`, limited to one pooled connection (plus one spare
    for a cancel), so a test can show that nothing leaks from one query to the next."""
    d = spec.dialect
    return sa.create_engine(d.url(spec), **{**d.engine_kwargs(spec), "pool_size": 1,
                                            "max_overflow": 1})


def hostile(dialect: str, scratch: Path | str) -> list[str]:
    return [s.replace("{dir}", str(scratch)) for d, s in HOSTILE if d == dialect]
