"""The guard's truth table, live: which layer stops which hostile statement, on which
engine, for which kind of account.

Every row of `ROWS` is a hostile statement run for real against PostgreSQL, MariaDB and
SQLite, with the parser on and with it off (`run_query(..., guard=False)` skips only the
parser layer), under a least-privilege account (PostgreSQL: a login with CONNECT on the
scratch database and SELECT on its tables; MariaDB: a user with SELECT on the scratch
database) and under a superuser (`postgres`, `root`). SQLite has no accounts: its column
holds for any connection. Each outcome is asserted by its specific cause:

- a code: the database refused it - PostgreSQL's SQLSTATE (`25006` read-only transaction,
  `42601` not a query after `DECLARE ... CURSOR FOR`, `42501` permission denied, ...),
  MySQL's error number (`1792` read-only transaction, `1227` missing privilege, ...) or
  SQLite's message (`not authorized`: the authorizer); with the parser on, the parser's
  own reason, and the statement never reaches the server;
- `undone`: it runs, and nothing of it is left once the run ends (the runner rolls back,
  releases session locks, resets the MariaDB session);
- `NULL`: it runs and gets nothing (MariaDB's `LOAD_FILE` without the FILE privilege);
- `runs`: it runs and does what it came to do (reads a server file, writes one, ends
  another session, changes a server setting). Only the parser stops these, and only for
  superusers: the README says so.

"Nothing left" is `Ctx.state`: every table's rows (dbutil.checksum), sequences, locks still
held, server-wide settings, the settings of the product's own pooled session and the files
of a scratch directory the database servers may write to, compared before and after each
statement. The product's engines hold one pooled connection, so a leftover on a session
is seen by the next statement.

Notes: the least-privilege PostgreSQL login has a password, but the test server trusts
127.0.0.1 and checks none (dblink's `2F003` for that login is the server not asking for
one). The SQLite engine here has the sqlite3 shell's `readfile`/`writefile` registered for
real, as some SQLite builds do, so the authorizer is what refuses them.

The README's guard table is rendered from `ROWS` (`python tests/test_guard_truth.py`
rewrites it) and a test fails when they differ.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sqlite3
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from aigis_jupyter.databases.execute import run_query
from aigis_jupyter.databases.guard import check_sql
from aigis_jupyter.errors import AigisError, SQLRefused

ROOT = Path(__file__).resolve().parent.parent

PG, MY, LITE = "postgres", "mysql", "sqlite"
LP, SU, ANY = "least-privilege", "superuser", "any"
ENGINES = {PG: "PostgreSQL", MY: "MariaDB", LITE: "SQLite"}
UNDONE, NULL, RUNS = "undone", "NULL", "runs"
#: Causes that mean "the database refused a write or a second statement" (SQLRefused).
READ_ONLY_CAUSES = {"25006", "1792", "not authorized", "authorization denied"}
#: Parser reasons, by the words they contain.
ONE = "Only one SQL statement"
NOT_READ = "Only read queries"
FUNC = "is not allowed (it can read files"
LOCKS = "Row locks"
INTO = "SELECT ... INTO"
CTE = "data-modifying CTE"
UNPARSED = "could not parse"
CREDENTIALS = "holds credentials"
COMMENTS = "only comments"


@dataclass(frozen=True)
class Cell:
    """One statement on one engine and what stops it.

    `parser` is words of the parser's refusal (None: the parser lets it through, so the
    database answers with the parser on as well); `lp` and `su` are the outcomes with the
    parser off for the least-privilege account and the superuser; `watch` names what else
    is observed (see `Watch`); `value` is the first cell of the result when it runs;
    `name` is what the README calls a statement only the parser stops for a superuser.
    """

    sql: str
    parser: str | None
    lp: str
    su: str
    watch: str = ""
    value: Any = "-"
    name: str = ""  # how the README names it when only the parser stops it


@dataclass(frozen=True)
class Row:
    id: str
    what: str
    cells: dict[str, Cell] = field(default_factory=dict)


def pg(sql: str, parser: str | None, lp: str, su: str | None = None, **kw: Any) -> Cell:
    return Cell(sql, parser, lp, lp if su is None else su, **kw)


my = pg


def lite(sql: str, parser: str | None, outcome: str, **kw: Any) -> Cell:
    return Cell(sql, parser, outcome, outcome, **kw)


ROWS: list[Row] = [
    Row("stacked", "a second statement (`SELECT 1; DELETE ...`)", {
        PG: pg("SELECT 1; DELETE FROM payments", ONE, "42601"),
        MY: my("SELECT 1; DELETE FROM payments", ONE, "1064"),
        LITE: lite("SELECT 1; DELETE FROM payments", ONE, "one statement"),
    }),
    Row("commit-escape", "`COMMIT;` to leave the read-only transaction", {
        PG: pg("COMMIT; DELETE FROM payments", ONE, "42601"),
        MY: my("COMMIT; DELETE FROM payments", ONE, "1064"),
        LITE: lite("COMMIT; DELETE FROM payments", ONE, "one statement"),
    }),
    Row("delete", "`DELETE`", {
        PG: pg("DELETE FROM payments", NOT_READ, "42601"),
        MY: my("DELETE FROM payments", NOT_READ, "1142", "1792"),
        LITE: lite("DELETE FROM payments", NOT_READ, "not authorized"),
    }),
    Row("drop", "`DROP TABLE`", {
        PG: pg("DROP TABLE payments", NOT_READ, "42601"),
        MY: my("DROP TABLE payments", NOT_READ, "1792"),
        LITE: lite("DROP TABLE payments", NOT_READ, "not authorized"),
    }),
    Row("writable-cte", "a data-modifying CTE (`WITH ... DELETE ...`)", {
        PG: pg("WITH gone AS (DELETE FROM payments RETURNING *) SELECT count(*) FROM gone",
               CTE, "0A000"),
        LITE: lite("WITH x AS (SELECT 1 AS id) DELETE FROM payments "
                   "WHERE payment_id IN (SELECT id FROM x)", NOT_READ, "not authorized"),
    }),
    Row("with-insert", "`WITH ... INSERT`", {
        PG: pg("WITH x AS (SELECT 99 AS region_id, 'Atlantis' AS name) "
               "INSERT INTO regions SELECT * FROM x", NOT_READ, "42601"),
        MY: my("WITH x AS (SELECT 99 AS region_id, 'Atlantis' AS name) "
               "INSERT INTO regions SELECT * FROM x", NOT_READ, "1064"),
        LITE: lite("WITH x AS (SELECT 99 AS region_id, 'Atlantis' AS name) "
                   "INSERT INTO regions SELECT * FROM x", NOT_READ, "not authorized"),
    }),
    Row("select-into", "`SELECT ... INTO` a new or temporary table", {
        PG: pg("SELECT * INTO TEMP stolen FROM customers", INTO, "42601"),
        MY: my("CREATE TEMPORARY TABLE stolen AS SELECT * FROM customers", NOT_READ, "1792"),
        LITE: lite("CREATE TEMP TABLE stolen AS SELECT * FROM customers", NOT_READ,
                   "not authorized"),
    }),
    Row("write-file", "write a server file (`COPY TO`, `INTO OUTFILE`, `writefile`)", {
        PG: pg("COPY (SELECT 1) TO '{dir}/pwned_copy'", NOT_READ, "42601"),
        MY: my("SELECT * FROM customers INTO OUTFILE '{dir}/pwned_outfile'", UNPARSED, "1227",
               RUNS, watch="file", name="`INTO OUTFILE`"),
        LITE: lite("SELECT writefile('{dir}/pwned_writefile', 'x')", FUNC, "not authorized"),
    }),
    Row("dumpfile", "`INTO DUMPFILE`", {
        MY: my("SELECT name FROM customers INTO DUMPFILE '{dir}/pwned_dumpfile'", UNPARSED,
               "1227", RUNS, watch="file", name="`INTO DUMPFILE`"),
    }),
    Row("program", "run a server program (`COPY ... TO PROGRAM`)", {
        PG: pg("COPY customers TO PROGRAM 'touch {dir}/pwned_program'", NOT_READ, "42601"),
    }),
    Row("load-data", "load a server file into a table (`COPY FROM`, `LOAD DATA`)", {
        PG: pg("COPY regions FROM '{dir}/secret.txt'", NOT_READ, "42601"),
        MY: my("LOAD DATA INFILE '{dir}/secret.txt' INTO TABLE regions", UNPARSED, "1045",
               "1792"),
    }),
    Row("read-file", "read a server file (`pg_read_file`, `LOAD_FILE`, `readfile`)", {
        PG: pg("SELECT pg_read_file('{dir}/secret.txt')", FUNC, "42501", RUNS, watch="secret",
               name="`pg_read_file`"),
        MY: my("SELECT LOAD_FILE('{dir}/secret.txt')", FUNC, NULL, RUNS, watch="secret",
               value=None, name="`LOAD_FILE`"),
        LITE: lite("SELECT readfile('{dir}/secret.txt')", FUNC, "not authorized"),
    }),
    Row("large-object", "read a server file into a large object (`lo_import`)", {
        PG: pg("SELECT convert_from(loread(lo_open(lo_import('{dir}/secret.txt'), 131072), "
               "100), 'UTF8')", FUNC, "42501", RUNS, watch="secret", name="`lo_import`"),
    }),
    Row("list-dir", "list a server directory (`pg_ls_dir`)", {
        PG: pg("SELECT * FROM pg_ls_dir('{dir}')", FUNC, "42501", RUNS, watch="listing",
               name="`pg_ls_dir`"),
    }),
    Row("credentials", "read password hashes (`pg_authid`, `mysql.user`)", {
        PG: pg("SELECT rolname, rolpassword FROM pg_authid", CREDENTIALS, "42501", RUNS,
               watch="accounts", name="`pg_authid`"),
        MY: my("SELECT User, Password FROM mysql.user", CREDENTIALS, "1142", RUNS,
               watch="accounts", name="`mysql.user`"),
    }),
    Row("lock-table", "`LOCK TABLE(S)`", {
        PG: pg("LOCK TABLE payments IN ACCESS EXCLUSIVE MODE", NOT_READ, "42601"),
        MY: my("LOCK TABLES payments WRITE", NOT_READ, "1044", "1792"),
    }),
    Row("for-update", "row locks (`FOR UPDATE`)", {
        PG: pg("SELECT * FROM customers FOR UPDATE", LOCKS, "25006"),
        MY: my("SELECT * FROM customers FOR UPDATE", LOCKS, "1792"),
    }),
    Row("share-lock", "shared row locks (`FOR SHARE`, `LOCK IN SHARE MODE`)", {
        PG: pg("SELECT * FROM customers FOR SHARE", LOCKS, "25006"),
        MY: my("SELECT * FROM customers LOCK IN SHARE MODE", LOCKS, UNDONE),
    }),
    Row("session-lock", "a lock that outlives the transaction (`pg_advisory_lock`, "
                        "`GET_LOCK`)", {
        PG: pg("SELECT pg_advisory_lock(4242)", FUNC, UNDONE, value=""),
        MY: my("SELECT GET_LOCK('aigis_truth', 0)", FUNC, UNDONE, value=1),
    }),
    Row("handler", "`HANDLER ... OPEN` (holds a table open)", {
        MY: my("HANDLER payments OPEN", UNPARSED, UNDONE),
    }),
    Row("session-setting", "a session setting (`set_config`, `SET SESSION`, `PRAGMA`)", {
        PG: pg("SELECT set_config('default_transaction_read_only', 'off', false)", FUNC,
               UNDONE, value="off"),
        MY: my("SET SESSION TRANSACTION READ WRITE", NOT_READ, UNDONE),
        LITE: lite("PRAGMA query_only = OFF", NOT_READ, "not authorized"),
    }),
    Row("global-setting", "a server-wide setting (`ALTER SYSTEM`, `SET GLOBAL`)", {
        PG: pg("ALTER SYSTEM SET work_mem = '5MB'", NOT_READ, "42601"),
        MY: my("SET GLOBAL net_read_timeout = 31", NOT_READ, "1227", RUNS, watch="global",
               name="`SET GLOBAL`"),
    }),
    Row("terminate", "end another session (`pg_terminate_backend`, `KILL`)", {
        PG: pg("SELECT pg_terminate_backend({victim})", FUNC, "42501", RUNS,
               watch="victim-terminate", name="`pg_terminate_backend`"),
        MY: my("KILL {victim}", NOT_READ, "1095", RUNS, watch="victim-terminate",
               name="`KILL`"),
    }),
    Row("cancel", "cancel another session's query (`pg_cancel_backend`, `KILL QUERY`)", {
        PG: pg("SELECT pg_cancel_backend({victim})", FUNC, "42501", RUNS,
               watch="victim-cancel", name="`pg_cancel_backend`"),
        MY: my("KILL QUERY {victim}", NOT_READ, "1095", RUNS, watch="victim-cancel",
               name="`KILL QUERY`"),
    }),
    Row("notify", "`pg_notify`", {
        PG: pg("SELECT pg_notify('aigis_truth', 'pwned')", FUNC, UNDONE, watch="notify",
               value=""),
    }),
    Row("dblink", "write through another connection (`dblink_exec`)", {
        PG: pg("SELECT dblink_exec('host=127.0.0.1 port={port} dbname={db} user={admin}', "
               "'INSERT INTO regions VALUES (97, ''dblink'')')", FUNC, "2F003", RUNS,
               watch="changed", name="`dblink_exec`"),
    }),
    Row("call", "`CALL` a procedure that writes", {
        PG: pg("CALL add_region()", NOT_READ, "42601"),
        MY: my("CALL add_region()", NOT_READ, "1370", "1792"),
    }),
    Row("writing-function", "a function that writes, called from a `SELECT`", {
        PG: pg("SELECT add_region_fn()", None, "25006"),
        MY: my("SELECT add_region_fn()", None, "1792"),
    }),
    Row("explain-analyze", "`EXPLAIN ANALYZE` of a write (MariaDB: `ANALYZE DELETE`)", {
        PG: pg("EXPLAIN ANALYZE DELETE FROM payments", NOT_READ, "42601"),
        MY: my("ANALYZE DELETE FROM payments", UNPARSED, "1142", "1792"),
    }),
    Row("sequence", "advance a sequence (`nextval`)", {
        PG: pg("SELECT nextval('order_seq')", FUNC, "42501", "25006"),
        MY: my("SELECT NEXTVAL(order_seq)", FUNC, "1792"),
    }),
    Row("create-login", "create a login (`CREATE ROLE`, `CREATE USER`)", {
        PG: pg("CREATE ROLE aigis_pwned SUPERUSER", NOT_READ, "42601"),
        MY: my("CREATE USER 'aigis_pwned'@'%'", NOT_READ, "1792"),
    }),
    Row("sql-in-a-string", "SQL run from a string (`query_to_xml`)", {
        PG: pg("SELECT query_to_xml('DELETE FROM payments RETURNING 1', true, false, '')",
               FUNC, "0A000"),
    }),
    Row("do-block", "a `DO` block", {
        PG: pg("DO $$ BEGIN EXECUTE 'DROP TABLE payments'; END $$", NOT_READ, "42601"),
    }),
    Row("executable-comment", "a MySQL executable comment (`/*!50000 DROP TABLE ... */`)", {
        MY: my("/*!50000 DROP TABLE payments */", COMMENTS, "1792"),
    }),
    Row("attach", "`ATTACH` another file", {
        LITE: lite("ATTACH DATABASE '{dir}/pwned.sqlite' AS pwned", NOT_READ, "not authorized"),
    }),
    Row("vacuum-into", "`VACUUM INTO` a copy", {
        LITE: lite("VACUUM INTO '{dir}/copy.sqlite'", NOT_READ, "authorization denied"),
    }),
    Row("load-extension", "`load_extension`", {
        LITE: lite("SELECT load_extension('{dir}/evil.so')", FUNC, "not authorized"),
    }),
    Row("writable-schema", "`PRAGMA writable_schema`", {
        LITE: lite("PRAGMA writable_schema = ON", NOT_READ, "not authorized"),
    }),
]

#: What the issue asked the table to hold (row ids), so it cannot silently shrink.
REQUIRED = {"write-file", "dumpfile", "load-data", "lock-table", "for-update", "share-lock",
            "session-lock", "global-setting", "terminate", "cancel", "notify", "dblink",
            "call", "explain-analyze", "with-insert", "read-file", "sequence"}


def accounts(engine: str) -> tuple[str, ...]:
    return (ANY,) if engine == LITE else (LP, SU)


def expected(cell: Cell, account: str, parser_on: bool) -> str:
    if parser_on and cell.parser is not None:
        return "parser"
    return cell.su if account == SU else cell.lp


CASES = [(row, engine, account, parser_on)
         for row in ROWS for engine in row.cells for account in accounts(engine)
         for parser_on in (True, False)]


def _case_id(case: tuple[Row, str, str, bool]) -> str:
    row, engine, account, parser_on = case
    return f"{row.id}-{engine}-{account}-parser-{'on' if parser_on else 'off'}"


# --------------------------------------------------------------------------- the README


README = ROOT / "README.md"
START, END = "<!-- guard-table:start -->", "<!-- guard-table:end -->"


def _show(outcome: str) -> str:
    if outcome == RUNS:
        return "**runs**"
    if outcome in (UNDONE, NULL):
        return outcome
    return f"`{outcome}`"


def readme_table() -> str:
    """The README's guard table, rendered from ROWS."""
    head = ["what the statement tries", "parser", "PostgreSQL least-privilege",
            "PostgreSQL superuser", "MariaDB least-privilege", "MariaDB superuser",
            "SQLite (no accounts)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in ROWS:
        parsers = {c.parser is not None for c in row.cells.values()}
        cells = [row.what, "refuses" if parsers == {True} else "**passes**"]
        for engine in (PG, MY):
            c = row.cells.get(engine)
            cells += [_show(c.lp), _show(c.su)] if c else ["—", "—"]
        c = row.cells.get(LITE)
        cells.append(_show(c.lp) if c else "—")
        lines.append("| " + " | ".join(cells) + " |")
    relies = []
    for engine in (PG, MY):
        names = [row.cells[engine].name for row in ROWS
                 if engine in row.cells and row.cells[engine].su == RUNS]
        relies.append(f"{ENGINES[engine]}: {', '.join(names)}")
    text = ("With the parser off, the database holds on every row for a least-privilege "
            "account (refused, undone or NULL). For a superuser it does not on the rows "
            "marked **runs**: superuser connections rely on the parser alone for "
            + "; ".join(relies) + ".")
    lines += ["", *textwrap.wrap(text, 92, break_on_hyphens=False)]
    return "\n".join(lines)


def readme_block(text: str) -> str:
    if START not in text or END not in text:
        raise AssertionError(f"README.md has no {START} ... {END} block")
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def write_readme() -> None:
    text = README.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    README.write_text(f"{head}{START}\n{readme_table()}\n{END}{tail}", encoding="utf-8")


def test_readme_table_is_the_modules_table() -> None:
    text = README.read_text(encoding="utf-8")
    assert readme_block(text) == readme_table(), (
        "README.md's guard table differs from tests/test_guard_truth.py: run "
        "`python tests/test_guard_truth.py` to rewrite it")
    # the layers are not each enough alone; the table shows which one stops what
    assert "each enough alone" not in text


def test_the_table_holds_what_was_asked() -> None:
    assert not REQUIRED - {r.id for r in ROWS}
    assert len({r.id for r in ROWS}) == len(ROWS)
    for row in ROWS:
        assert len({c.parser is None for c in row.cells.values()}) == 1, row.id
    # the least-privilege account is stopped by the database on every row
    for row in ROWS:
        for engine, c in row.cells.items():
            assert c.lp != RUNS, (row.id, engine)
            assert bool(c.name) == (c.su == RUNS), (row.id, engine)


# --------------------------------------------------------------------------- contexts


SECRET = f"aigis-secret-{uuid.uuid4().hex}"


@dataclass
class Ctx:
    """One engine's scratch database, its accounts and how to read its state."""

    kind: str
    url: str  # the superuser's (admin's) URL of the scratch database
    scratch: Path  # a directory the database server may write to
    specs: dict[str, Any]
    engines: dict[str, Any]
    admin: Any  # a DB-API connection (autocommit) for probes and clean-up
    db: str = ""
    extra: Callable[[Ctx, str], dict[str, Any]] | None = None

    def fill(self, sql: str, victim: int | None = None) -> str:
        out = sql.replace("{dir}", str(self.scratch)).replace("{db}", self.db)
        if self.kind == PG:
            from sqlalchemy.engine import make_url

            u = make_url(self.url)
            out = out.replace("{port}", str(u.port or 5432)).replace("{admin}",
                                                                     u.username or "")
        if victim is not None:
            out = out.replace("{victim}", str(victim))
        return out

    def run(self, account: str, sql: str, *, guard: bool, max_rows: int = 20) -> Any:
        return run_query(self.engines[account], self.specs[account], sql, max_rows=max_rows,
                         timeout_s=5, guard=guard)

    def probe(self, account: str, sql: str) -> list[list[Any]]:
        """A query of ours through the product's own pooled session, read to the end (a
        truncated result would drop the session, and with it what we look for)."""
        res = self.run(account, sql, guard=False, max_rows=100_000)
        assert not res.truncated
        return res.df.values.tolist()

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        cur = self.admin.cursor()
        try:
            cur.execute(sql)
            return [tuple(r) for r in cur.fetchall()] if cur.description else []
        finally:
            cur.close()

    def state(self, account: str) -> dict[str, Any]:
        from dbutil import checksum

        out = checksum(self.url)
        out["__files__"] = _files(self.scratch)
        if self.extra is not None:
            out.update(self.extra(self, account))
        return out


def _files(d: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())}


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    """World-writable and readable by the database servers' own users, with a secret file
    that only a statement reading server files can return."""
    d = Path(tempfile.mkdtemp(prefix="aigis-truth-"))
    os.chmod(d, 0o777)
    secret = d / "secret.txt"
    secret.write_text(SECRET + "\n")
    os.chmod(secret, 0o644)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _product_engine(spec: Any) -> Any:
    from dbutil import one_connection_engine

    return one_connection_engine(spec)


# -- PostgreSQL


_PG_SETUP = [
    "CREATE TABLE regions (region_id int PRIMARY KEY, name text NOT NULL)",
    "INSERT INTO regions VALUES (1, 'Europe'), (2, 'Americas'), (3, 'Asia')",
    "CREATE TABLE customers (customer_id int PRIMARY KEY, name text, region_id int "
    "REFERENCES regions)",
    "INSERT INTO customers VALUES (1, 'Ada', 1), (2, 'Grace', 2), (3, 'Alan', 1)",
    "CREATE TABLE payments (payment_id int PRIMARY KEY, amount numeric(10, 2))",
    "INSERT INTO payments VALUES (1, 10.50), (2, 20.00), (3, -5.25)",
    "CREATE SEQUENCE order_seq",
    "SELECT nextval('order_seq')",
    "CREATE PROCEDURE add_region() LANGUAGE sql AS "
    "$$ INSERT INTO regions VALUES (99, 'Atlantis') $$",
    "CREATE FUNCTION add_region_fn() RETURNS int LANGUAGE sql AS "
    "$$ INSERT INTO regions VALUES (98, 'Mu') RETURNING 1 $$",
    "CREATE EXTENSION dblink",
]


def _pg_extra(ctx: Ctx, account: str) -> dict[str, Any]:
    # what the product's own pooled session carries into its next run (asked first: the
    # other entries see that session idle)
    session = ctx.probe(account, "SELECT name, setting FROM pg_settings WHERE source "
                                 "NOT IN ('default', 'configuration file') ORDER BY 1")
    return {
        "session": session,
        "sequences": ctx.query("SELECT sequencename, last_value FROM pg_sequences ORDER BY 1"),
        # session-level locks outlive transactions; the product's idle sessions hold none
        "locks": ctx.query(
            "SELECT l.locktype, l.mode, l.objid, a.application_name FROM pg_locks l "
            "LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.pid <> pg_backend_pid() AND (l.locktype = 'advisory' "
            "OR (a.application_name = 'aigis-jupyter' AND a.datname = current_database())) "
            "ORDER BY 1, 2, 3"),
        "sessions": ctx.query(
            "SELECT DISTINCT state FROM pg_stat_activity WHERE application_name = "
            "'aigis-jupyter' AND datname = current_database() ORDER BY 1"),
        "globals": ctx.query("SELECT name, setting FROM pg_settings ORDER BY 1"),
    }


@pytest.fixture(scope="module")
def pg_ctx(pg_server: str, scratch: Path) -> Iterator[Ctx]:
    import psycopg
    import sqlalchemy as sa
    from dbutil import scratch_database, spec_for

    role = f"aigis_lp_{uuid.uuid4().hex[:8]}"
    admin_url = sa.engine.make_url(pg_server)
    with scratch_database(pg_server) as url:
        u = sa.engine.make_url(url)
        admin = psycopg.connect(host=u.host, port=u.port or 5432, user=u.username,
                                password=u.password or None, dbname=u.database,
                                autocommit=True, application_name="aigis-truth-admin")
        for stmt in _PG_SETUP:
            admin.execute(stmt)
        # CONNECT on the scratch database and SELECT on its tables; nothing else (PUBLIC
        # keeps its defaults: USAGE on schema public, EXECUTE on functions)
        for stmt in (f"CREATE ROLE {role} LOGIN PASSWORD 'lp-{role}'",
                     f"REVOKE ALL ON DATABASE {u.database} FROM PUBLIC",
                     f"GRANT CONNECT ON DATABASE {u.database} TO {role}",
                     f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"):
            admin.execute(stmt)
        lp_url = u.set(username=role, password=f"lp-{role}").render_as_string(
            hide_password=False)
        specs = {SU: spec_for(url, id="truth-pg-su"), LP: spec_for(lp_url, id="truth-pg-lp")}
        engines = {k: _product_engine(s) for k, s in specs.items()}
        ctx = Ctx(PG, url, scratch, specs, engines, admin, db=u.database or "",
                  extra=_pg_extra)
        try:
            yield ctx
        finally:
            for e in engines.values():
                e.dispose()
            admin.close()
    with contextlib.closing(psycopg.connect(
            host=admin_url.host, port=admin_url.port or 5432, user=admin_url.username,
            password=admin_url.password or None, dbname=admin_url.database or "postgres",
            autocommit=True)) as c:
        c.execute(f"DROP ROLE IF EXISTS {role}")


# -- MariaDB


_MY_SETUP = [
    "CREATE TABLE regions (region_id int PRIMARY KEY, name varchar(40) NOT NULL)",
    "INSERT INTO regions VALUES (1, 'Europe'), (2, 'Americas'), (3, 'Asia')",
    "CREATE TABLE customers (customer_id int PRIMARY KEY, name varchar(40), region_id int, "
    "FOREIGN KEY (region_id) REFERENCES regions (region_id))",
    "INSERT INTO customers VALUES (1, 'Ada', 1), (2, 'Grace', 2), (3, 'Alan', 1)",
    "CREATE TABLE payments (payment_id int PRIMARY KEY, amount decimal(10, 2))",
    "INSERT INTO payments VALUES (1, 10.50), (2, 20.00), (3, -5.25)",
    "CREATE SEQUENCE order_seq",
    "CREATE PROCEDURE add_region() INSERT INTO regions VALUES (99, 'Atlantis')",
    "CREATE FUNCTION add_region_fn() RETURNS int MODIFIES SQL DATA "
    "BEGIN INSERT INTO regions VALUES (98, 'Mu'); RETURN 1; END",
]
#: Variables that change by themselves (clocks, ids, counters).
_MY_VOLATILE = {"timestamp", "pseudo_thread_id", "rand_seed1", "rand_seed2", "last_insert_id",
                "insert_id", "identity", "warning_count", "error_count", "gtid_binlog_pos",
                "gtid_binlog_state", "gtid_current_pos", "gtid_slave_pos", "last_gtid",
                "gtid_seq_no", "in_transaction", "thread_pool_size"}


def _my_extra(ctx: Ctx, account: str) -> dict[str, Any]:
    def variables(rows: Any) -> list[tuple[str, str]]:
        return sorted((str(k).lower(), str(v)) for k, v in rows
                      if str(k).lower() not in _MY_VOLATILE)

    # what the product's own pooled session carries into its next run
    session = variables(ctx.probe(account, "SELECT VARIABLE_NAME, VARIABLE_VALUE FROM "
                                           "information_schema.SESSION_VARIABLES"))
    return {
        "session": session,
        "sequences": ctx.query("SELECT next_not_cached_value FROM order_seq"),
        "user-locks": ctx.query("SELECT IS_USED_LOCK('aigis_truth')"),
        "open-tables": ctx.query(f"SHOW OPEN TABLES FROM {ctx.db} WHERE In_use > 0"),
        "transactions": ctx.query("SELECT COUNT(*) FROM information_schema.INNODB_TRX "
                                  "WHERE trx_mysql_thread_id <> CONNECTION_ID()"),
        "globals": variables(ctx.query("SHOW GLOBAL VARIABLES")),
    }


@pytest.fixture(scope="module")
def my_ctx(mysql_server: str, scratch: Path) -> Iterator[Ctx]:
    import pymysql
    import sqlalchemy as sa
    from dbutil import scratch_database, spec_for

    user = f"aigis_lp_{uuid.uuid4().hex[:8]}"
    with scratch_database(mysql_server) as url:
        u = sa.engine.make_url(url)
        admin = pymysql.connect(host=u.host, port=u.port or 3306, user=u.username,
                                password=u.password or "", database=u.database,
                                autocommit=True, charset="utf8mb4")
        try:
            for stmt in _MY_SETUP:
                admin.cursor().execute(stmt)
            # SELECT on the scratch database only
            admin.cursor().execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'lp-{user}'")
            admin.cursor().execute(f"GRANT SELECT ON {u.database}.* TO '{user}'@'%'")
            lp_url = u.set(username=user, password=f"lp-{user}").render_as_string(
                hide_password=False)
            specs = {SU: spec_for(url, id="truth-my-su"),
                     LP: spec_for(lp_url, id="truth-my-lp")}
            engines = {k: _product_engine(s) for k, s in specs.items()}
            ctx = Ctx(MY, url, scratch, specs, engines, admin, db=u.database or "",
                      extra=_my_extra)
            try:
                yield ctx
            finally:
                for e in engines.values():
                    e.dispose()
        finally:
            with contextlib.suppress(Exception):
                admin.cursor().execute(f"DROP USER IF EXISTS '{user}'@'%'")
            admin.close()


# -- SQLite


def _with_fileio(con: sqlite3.Connection) -> sqlite3.Connection:
    """The sqlite3 shell's fileio functions, for real: a SQLite build may have them."""

    def readfile(path: str) -> bytes:
        return Path(path).read_bytes()

    def writefile(path: str, data: Any) -> int:
        body = data if isinstance(data, bytes) else str(data).encode()
        Path(path).write_bytes(body)
        return len(body)

    con.create_function("readfile", 1, readfile)
    con.create_function("writefile", 2, writefile)
    return con


def _lite_extra(ctx: Ctx, account: str) -> dict[str, Any]:
    return {"session": ctx.probe(account, "SELECT * FROM pragma_query_only")}


@pytest.fixture(scope="module")
def lite_ctx(scratch: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ctx]:
    import sqlalchemy as sa
    from dbutil import spec_for
    from sqlalchemy.pool import QueuePool

    from aigis_jupyter.databases.dialects.sqlite import open_sqlite

    path = tmp_path_factory.mktemp("truth-sqlite") / "truth.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as con:
        con.executescript("""
            CREATE TABLE regions (region_id INTEGER PRIMARY KEY, name TEXT NOT NULL);
            INSERT INTO regions VALUES (1, 'Europe'), (2, 'Americas'), (3, 'Asia');
            CREATE TABLE customers (customer_id INTEGER PRIMARY KEY, name TEXT,
                                    region_id INTEGER REFERENCES regions);
            INSERT INTO customers VALUES (1, 'Ada', 1), (2, 'Grace', 2), (3, 'Alan', 1);
            CREATE TABLE payments (payment_id INTEGER PRIMARY KEY, amount REAL);
            INSERT INTO payments VALUES (1, 10.5), (2, 20.0), (3, -5.25);
        """)
    spec = spec_for(str(path), id="truth-sqlite")
    # the product's engine for this file, on a SQLite that has readfile/writefile
    engine = sa.create_engine(spec.dialect.url(spec), poolclass=QueuePool, pool_size=1,
                              max_overflow=1,
                              creator=lambda: _with_fileio(open_sqlite(path, read_only=True)))
    admin = sqlite3.connect(path)
    ctx = Ctx(LITE, f"sqlite:///{path}", scratch, {ANY: spec}, {ANY: engine}, admin,
              extra=_lite_extra)
    try:
        yield ctx
    finally:
        engine.dispose()
        admin.close()


# --------------------------------------------------------------------------- watches


class Watch:
    """What a statement would do beyond its result, observed from outside the product.

    `before()` runs ahead of the statement, `happened()` after it (`wait` when the effect
    is expected, so an asynchronous one - a signal to another session - is awaited, not
    timed), `restore()` undoes an effect the database let through.
    """

    def __init__(self, ctx: Ctx, kind: str) -> None:
        self.ctx, self.kind = ctx, kind
        self.victim: Any = None
        self.listener: Any = None
        self.global_before: Any = None

    def before(self) -> None:
        if self.kind.startswith("victim"):
            self.victim = _PgVictim(self.ctx) if self.ctx.kind == PG else _MyVictim(self.ctx)
        elif self.kind == "notify":
            import psycopg

            self.listener = psycopg.connect(self.ctx.admin.info.dsn, autocommit=True)
            self.listener.execute("LISTEN aigis_truth")
        elif self.kind == "global":
            self.global_before = self.ctx.query("SELECT @@GLOBAL.net_read_timeout")[0][0]

    @property
    def victim_id(self) -> int | None:
        return None if self.victim is None else self.victim.id

    def happened(self, result: Any, before: dict[str, Any], after: dict[str, Any],
                 wait: bool) -> bool:
        text = "" if result is None else repr(result.df.values.tolist())
        if self.kind == "secret":
            return SECRET in text
        if self.kind == "listing":
            return "secret.txt" in text
        if self.kind == "accounts":
            return ("'postgres'" if self.ctx.kind == PG else "'root'") in text
        if self.kind == "file":
            return after["__files__"] != before["__files__"]
        if self.kind == "global":
            return after["globals"] != before["globals"]
        if self.kind == "changed":  # a row written through another connection
            return after["regions"] != before["regions"]
        if self.kind == "notify":
            return bool(_notifications(self.ctx, self.listener))
        if self.kind.startswith("victim"):
            return self.victim.stopped(self.kind.split("-", 1)[1], wait)
        return False

    def restore(self, before: dict[str, Any], account: str) -> None:
        for name in set(_files(self.ctx.scratch)) - set(before["__files__"]):
            (self.ctx.scratch / name).unlink()
        if self.kind == "global" and self.global_before is not None:
            self.ctx.query(f"SET GLOBAL net_read_timeout = {int(self.global_before)}")
            # the product's session took the changed value at its last reset; one more
            # run resets it from the restored one
            self.ctx.run(account, "SELECT 1", guard=False)
        if self.kind == "changed":
            self.ctx.query("DELETE FROM regions WHERE region_id = 97")

    def close(self) -> None:
        if self.victim is not None:
            self.victim.close()
        if self.listener is not None:
            self.listener.close()


def _notifications(ctx: Ctx, listener: Any) -> list[str]:
    """Payloads delivered to `listener` before a sentinel sent now (delivery is in commit
    order, so anything the statement really sent arrives first)."""
    ctx.query("SELECT pg_notify('aigis_truth', 'sentinel')")
    seen = []
    for n in listener.notifies(timeout=10):
        if n.payload == "sentinel":
            break
        seen.append(n.payload)
    else:
        raise AssertionError("the sentinel notification never arrived")
    return seen


def _until(check: Callable[[], bool], what: str, limit_s: float = 10.0) -> None:
    """Wait for a condition (an effect, never a duration); fail if it never comes."""
    deadline = time.monotonic() + limit_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.02)


class _PgVictim:
    """Another superuser session, busy in `pg_sleep`, for statements that signal it."""

    def __init__(self, ctx: Ctx) -> None:
        import psycopg

        self.ctx = ctx
        self.conn = psycopg.connect(ctx.admin.info.dsn, autocommit=True,
                                    application_name="aigis-truth-victim")
        self.id = self.conn.info.backend_pid
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._sleep, daemon=True)
        self.thread.start()
        _until(lambda: ctx.query(
            f"SELECT 1 FROM pg_stat_activity WHERE pid = {self.id} AND state = 'active' "
            "AND query LIKE 'SELECT pg_sleep%'") != [], "the victim's pg_sleep to start")

    def _sleep(self) -> None:
        try:
            self.conn.execute("SELECT pg_sleep(60)")
        except BaseException as exc:
            self.error = exc

    def stopped(self, how: str, wait: bool) -> bool:
        import psycopg

        if wait:
            self.thread.join(15)
        if self.thread.is_alive():
            return False
        if how == "cancel":
            return isinstance(self.error, psycopg.errors.QueryCanceled)
        return isinstance(self.error, psycopg.OperationalError)  # AdminShutdown, closed

    def close(self) -> None:
        if self.thread.is_alive():
            self.ctx.query(f"SELECT pg_terminate_backend({self.id})")
            self.thread.join(15)
        self.conn.close()


class _MyVictim:
    """Another root session, busy in `SLEEP`, for statements that kill it."""

    def __init__(self, ctx: Ctx) -> None:
        import pymysql

        self.ctx = ctx
        a = ctx.admin
        self.conn = pymysql.connect(host=a.host, port=a.port, user=a.user,
                                    password=a.password or "", database=ctx.db)
        self.id = self.conn.thread_id()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._sleep, daemon=True)
        self.thread.start()
        _until(lambda: ctx.query(
            "SELECT 1 FROM information_schema.PROCESSLIST WHERE ID = "
            f"{self.id} AND INFO LIKE 'SELECT SLEEP%'") != [], "the victim's SLEEP to start")

    def _sleep(self) -> None:
        try:
            with self.conn.cursor() as cur:
                cur.execute("SELECT SLEEP(60)")
                cur.fetchall()
        except BaseException as exc:
            self.error = exc

    def stopped(self, how: str, wait: bool) -> bool:
        if wait:
            self.thread.join(15)
        if self.thread.is_alive():
            return False
        code = self.error.args[0] if self.error is not None and self.error.args else None
        return code == (1317 if how == "cancel" else 2013)  # interrupted / connection lost

    def close(self) -> None:
        if self.thread.is_alive():
            with contextlib.suppress(Exception):
                self.ctx.query(f"KILL {self.id}")
            self.thread.join(15)
        with contextlib.suppress(Exception):
            self.conn.close()


# --------------------------------------------------------------------------- causes


def cause(exc: BaseException) -> str | None:
    """The database's own reason behind an error the product raised: PostgreSQL's
    SQLSTATE, MySQL's error number, SQLite's message; None for the parser's refusals."""
    import psycopg
    import pymysql

    seen = exc.__context__
    while seen is not None:
        if isinstance(seen, psycopg.Error):
            return seen.sqlstate
        if isinstance(seen, pymysql.Error):
            return str(seen.args[0]) if seen.args else type(seen).__name__
        if isinstance(seen, sqlite3.Error):
            msg = str(seen)
            for words in ("authorization denied", "not authorized"):
                if words in msg:
                    return words
            if "one statement at a time" in msg:
                return "one statement"
            return msg
        seen = seen.__context__
    return None


# --------------------------------------------------------------------------- the test


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_truth_table(case: tuple[Row, str, str, bool], request: pytest.FixtureRequest) -> None:
    row, engine, account, parser_on = case
    cell = row.cells[engine]
    ctx: Ctx = request.getfixturevalue({PG: "pg_ctx", MY: "my_ctx", LITE: "lite_ctx"}[engine])
    want = expected(cell, account, parser_on)
    watch = Watch(ctx, cell.watch) if cell.watch else None
    try:
        if watch is not None:
            watch.before()
        sql = ctx.fill(cell.sql, watch.victim_id if watch else None)
        before = ctx.state(account)
        result, error = None, None
        try:
            result = ctx.run(account, sql, guard=parser_on)
        except AigisError as exc:
            error = exc
        got = cause(error) if error is not None else None
        after = ctx.state(account)
        effect = watch is not None and watch.happened(result, before, after,
                                                      wait=want == RUNS)
        report = (f"{row.id} on {engine} as {account}, parser {'on' if parser_on else 'off'}: "
                  f"expected {want}; got error={error!r} cause={got!r} result="
                  f"{None if result is None else result.df.values.tolist()[:3]!r} "
                  f"effect={effect}")

        if want == RUNS:
            assert effect, report
            watch.restore(before, account)  # type: ignore[union-attr]
            assert ctx.state(account) == before, "the clean-up did not restore the state"
            return

        assert not effect, report
        assert after == before, report + f"\nstate differs: {_diff(before, after)}"
        if want == "parser":
            assert isinstance(error, SQLRefused) and got is None, report
            assert cell.parser in error.message, report
            with pytest.raises(SQLRefused) as parsed:  # the parser alone says the same
                check_sql(sql, engine)
            assert parsed.value.message == error.message
        elif want in (UNDONE, NULL):
            assert error is None and result is not None, report
            if cell.value is None:
                assert pd.isna(result.df.iloc[0, 0]), report
            elif cell.value != "-":
                assert result.df.iloc[0, 0] == cell.value, report
        else:  # refused by the database, for this cause
            assert error is not None and got == want, report
            if want in READ_ONLY_CAUSES:
                assert isinstance(error, SQLRefused), report
        # the pooled connection is still good for the next question
        assert ctx.run(account, "SELECT count(*) AS n FROM regions", guard=True
                       ).df["n"][0] == 3
    finally:
        if watch is not None:
            watch.close()


def _diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    keys = sorted(set(a) | set(b))
    return {k: (a.get(k), b.get(k)) for k in keys if a.get(k) != b.get(k)}


if __name__ == "__main__":
    write_readme()
    print(f"wrote the guard table to {README}")
