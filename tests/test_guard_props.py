"""Property tests of the SQL guard: statements from a grammar, refused or harmless on every
layer.

The grammar builds statements that write (INSERT ... VACUUM INTO, per dialect) or call a
denied function (file access, sleeping, locks, sequences, dblink, set_config, SQL run
from a string, ...) and wraps them in read-looking shapes: CTEs (data-modifying ones too),
subqueries, UNIONs, stacked statements, comments of every kind (MySQL's executable
`/*! */`, nested ones), case tricks, quoting tricks (quoted names, backticks, dollar
quotes, E'' and U&'' strings), ASCII and Unicode spaces and trailing garbage. The same
shapes around a harmless payload are the benign twins, so each property can fail both ways:

- parser: `check_sql` refuses every statement whose payload is code; when the payload
  sits in a comment, what it returns holds none of it; benign twins pass, and what they
  return is comment-free, ASCII-spaced and stable;
- MySQL: a query reads only the connection's own database (and information_schema);
  PostgreSQL refuses other databases itself, SQLite cannot attach one;
- server settings: a MariaDB `sql_mode` with NO_BACKSLASH_ESCAPES or ANSI_QUOTES, or a
  PostgreSQL with `standard_conforming_strings = off`, does not make the server read code
  where the parser read a string;
- live: statements run through `run_query` on PostgreSQL, MariaDB and SQLite (the scratch
  databases and accounts of test_guard_truth), with the parser on for the superuser and
  off for the least-privilege account: the state of the database (`Ctx.state`: every
  table's rows, tables, sequences, locks, settings, roles, files) never changes, the
  secret file never comes back, and the benign twins run.

The default profile is small and derandomized, so CI runs the same examples every time;
`AIGIS_HYPOTHESIS_EXAMPLES=<n>` runs n examples per property from a random seed.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import test_guard_truth as truth
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_guard_truth import ANY, LITE, LP, MY, PG, SECRET, SU, Ctx, cause

from aigis_jupyter.databases import guard
from aigis_jupyter.databases.guard import DENIED_FUNCTIONS, check_sql
from aigis_jupyter.errors import AigisError, BadInput, SQLRefused

# The truth table's scratch databases and accounts (module fixtures, shared by name).
scratch, pg_ctx, my_ctx, lite_ctx = truth.scratch, truth.pg_ctx, truth.my_ctx, truth.lite_ctx

DIALECTS = (PG, MY, LITE)
_DEEP = int(os.environ.get("AIGIS_HYPOTHESIS_EXAMPLES", "0") or 0)


def profile(examples: int) -> settings:
    """`examples` by default (derandomized); AIGIS_HYPOTHESIS_EXAMPLES for deeper runs."""
    return settings(max_examples=_DEEP or examples, derandomize=not _DEEP, database=None,
                    deadline=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --------------------------------------------------------------------------- the grammar

CODE, HIDDEN, QUOTED, BENIGN = "code", "hidden", "quoted", "benign"


@dataclass(frozen=True)
class Case:
    """One generated statement. `sql` may hold {dir}/{db}/{port}/{admin} (`Ctx.fill`).

    `kind`: CODE - the payload is code the server would run; HIDDEN - it sits in a comment
    (which the guard removes); QUOTED - it sits in a string only a tokenizer confused by a
    Unicode space would read as code; BENIGN - a harmless read that must pass.
    """

    dialect: str
    sql: str
    kind: str
    payload: str


#: Statements that write or change the server or session, per dialect. The first DML ones
#: (plain INSERT/UPDATE/DELETE) also go into data-modifying CTEs.
WRITES: dict[str, list[str]] = {
    PG: [
        "INSERT INTO regions VALUES (97, 'pwned')",
        "UPDATE regions SET name = 'pwned' WHERE region_id = 1",
        "DELETE FROM payments",
        "MERGE INTO regions r USING (SELECT 97 AS id) s ON r.region_id = s.id "
        "WHEN NOT MATCHED THEN INSERT VALUES (97, 'pwned')",
        "TRUNCATE payments",
        "DROP TABLE payments",
        "CREATE TABLE pwned (id int)",
        "CREATE TEMP TABLE pwned AS SELECT * FROM customers",
        "ALTER TABLE regions ADD COLUMN pwned int",
        "GRANT ALL ON regions TO PUBLIC",
        "REVOKE SELECT ON regions FROM PUBLIC",
        "COPY regions FROM '{dir}/secret.txt'",
        "COPY (SELECT 1) TO '{dir}/pwned_copy'",
        "COPY regions TO PROGRAM 'touch {dir}/pwned_program'",
        "SELECT * INTO pwned FROM regions",
        "SELECT 1 AS a INTO TEMP pwned",
        "CALL add_region()",
        "DO $$ BEGIN DELETE FROM payments; END $$",
        "SET default_transaction_read_only = off",
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
        "RESET ALL",
        "LOCK TABLE payments IN ACCESS EXCLUSIVE MODE",
        "CREATE ROLE aigis_pwned",
        "CREATE DATABASE aigis_pwned",
        "COMMENT ON TABLE regions IS 'pwned'",
        "VACUUM payments",
        "ANALYZE payments",
        "REINDEX TABLE payments",
        "CREATE INDEX pwned_idx ON payments (amount)",
        "CREATE VIEW pwned AS SELECT 1 AS a",
        "PREPARE pwned AS DELETE FROM payments",
        "EXECUTE pwned",
        "DECLARE pwned CURSOR FOR SELECT 1",
        "NOTIFY aigis_truth, 'pwned'",
        "ALTER SYSTEM SET work_mem = '5MB'",
        "ALTER SEQUENCE order_seq RESTART WITH 50",
        "EXPLAIN ANALYZE DELETE FROM payments",
        "COMMIT",
        "START TRANSACTION READ WRITE",
    ],
    MY: [
        "INSERT INTO regions VALUES (97, 'pwned')",
        "UPDATE regions SET name = 'pwned' WHERE region_id = 1",
        "DELETE FROM payments",
        "INSERT IGNORE INTO regions VALUES (97, 'pwned')",
        "INSERT INTO regions VALUES (1, 'x') ON DUPLICATE KEY UPDATE name = 'pwned'",
        "REPLACE INTO regions VALUES (1, 'pwned')",
        "UPDATE regions SET name = 'pwned' ORDER BY region_id LIMIT 1",
        "DELETE FROM payments ORDER BY payment_id LIMIT 1",
        "DELETE p FROM payments p JOIN regions r ON r.region_id = p.payment_id",
        "TRUNCATE TABLE payments",
        "DROP TABLE payments",
        "CREATE TABLE pwned (id int)",
        "CREATE TEMPORARY TABLE pwned AS SELECT * FROM customers",
        "ALTER TABLE regions ADD COLUMN pwned int",
        "RENAME TABLE payments TO pwned",
        "CREATE USER 'aigis_pwned'@'%'",
        "CREATE DATABASE aigis_pwned",
        "GRANT SELECT ON regions TO 'aigis_pwned'@'%'",
        "LOAD DATA INFILE '{dir}/secret.txt' INTO TABLE regions",
        "SELECT * FROM regions INTO OUTFILE '{dir}/pwned_outfile'",
        "SELECT name FROM regions LIMIT 1 INTO DUMPFILE '{dir}/pwned_dumpfile'",
        "SELECT 1 INTO @pwned",
        "CALL add_region()",
        "DO RELEASE_ALL_LOCKS()",
        "SET GLOBAL net_read_timeout = 31",
        "SET SESSION TRANSACTION READ WRITE",
        "SET @@session.sql_mode = ''",
        "LOCK TABLES payments WRITE",
        "HANDLER payments OPEN",
        "FLUSH TABLES",
        "KILL 999999",
        "OPTIMIZE TABLE payments",
        "CREATE VIEW pwned AS SELECT 1 AS a",
        "PREPARE pwned FROM 'DELETE FROM payments'",
        "ALTER SEQUENCE order_seq RESTART 50",
        "SELECT NEXT VALUE FOR order_seq",
        "ANALYZE DELETE FROM payments",
        "COMMIT",
        "START TRANSACTION",
    ],
    LITE: [
        "INSERT INTO regions VALUES (97, 'pwned')",
        "UPDATE regions SET name = 'pwned' WHERE region_id = 1",
        "DELETE FROM payments",
        "INSERT OR REPLACE INTO regions VALUES (1, 'pwned')",
        "REPLACE INTO regions VALUES (1, 'pwned')",
        "INSERT INTO regions VALUES (1, 'x') ON CONFLICT (region_id) DO UPDATE "
        "SET name = 'pwned'",
        "DELETE FROM payments RETURNING *",
        "DROP TABLE payments",
        "CREATE TABLE pwned (id int)",
        "CREATE TEMP TABLE pwned AS SELECT * FROM customers",
        "CREATE TEMP VIEW pwned AS SELECT 1 AS a",
        "CREATE TRIGGER pwned AFTER INSERT ON regions BEGIN DELETE FROM payments; END",
        "CREATE INDEX pwned ON payments (amount)",
        "ALTER TABLE regions RENAME TO pwned",
        "ALTER TABLE regions ADD COLUMN pwned int",
        "ATTACH DATABASE '{dir}/pwned.sqlite' AS pwned",
        "DETACH DATABASE main",
        "PRAGMA query_only = OFF",
        "PRAGMA writable_schema = ON",
        "PRAGMA user_version = 5",
        "PRAGMA journal_mode = DELETE",
        "VACUUM",
        "VACUUM INTO '{dir}/copy.sqlite'",
        "REINDEX",
        "ANALYZE",
        "BEGIN IMMEDIATE",
        "SAVEPOINT pwned",
    ],
}
#: How many of each list's first entries are plain INSERT/UPDATE/DELETE.
DML = 3

#: Calls of denied functions, with arguments that would do harm if they ran.
CALLS: dict[str, list[str]] = {
    PG: [
        "pg_sleep(0)", "pg_sleep_for('0 seconds')", "pg_read_file('{dir}/secret.txt')",
        "pg_read_binary_file('{dir}/secret.txt')", "pg_stat_file('{dir}/secret.txt')",
        "pg_ls_dir('{dir}')", "set_config('default_transaction_read_only', 'off', false)",
        "set_config('work_mem', '5MB', false)", "nextval('order_seq')",
        "setval('order_seq', 100)", "pg_advisory_lock(4242)", "pg_try_advisory_lock(4242)",
        "pg_advisory_xact_lock(4242)", "lo_import('{dir}/secret.txt')",
        "lo_export(0, '{dir}/pwned_lo')", "lo_from_bytea(0, 'x')",
        "dblink_exec('host=127.0.0.1 port={port} dbname={db} user={admin}', "
        "'INSERT INTO regions VALUES (97, ''dblink'')')",
        "query_to_xml('DELETE FROM payments RETURNING 1', true, false, '')",
        "ts_stat('WITH d AS (DELETE FROM payments RETURNING 1) "
        "SELECT to_tsvector(''x'')')",
        "pg_notify('aigis_truth', 'pwned')", "pg_terminate_backend(0)",
        "pg_cancel_backend(0)", "pg_reload_conf()", "pg_stat_reset()",
        "pg_logical_emit_message(true, 'aigis', 'pwned')",
    ],
    MY: [
        "SLEEP(0)", "BENCHMARK(1, MD5('x'))", "LOAD_FILE('{dir}/secret.txt')",
        "GET_LOCK('aigis_truth', 0)", "RELEASE_LOCK('aigis_truth')", "RELEASE_ALL_LOCKS()",
        "MASTER_POS_WAIT('x', 1, 0)", "MASTER_GTID_WAIT('0-1-1', 0)", "NEXTVAL(order_seq)",
        "SETVAL(order_seq, 100)", "SYS_EXEC('id')",
    ],
    LITE: [
        "load_extension('{dir}/evil.so')", "readfile('{dir}/secret.txt')",
        "writefile('{dir}/pwned_writefile', 'x')", "edit('x')", "fts3_tokenizer('simple')",
        "fsdir('{dir}')",
    ],
}

#: Read-looking shapes around an expression `{e}`.
EXPR_SHAPES = [
    "SELECT {e}",
    "SELECT {e} AS v",
    "SELECT {e} FROM regions",
    "SELECT name, {e} FROM regions WHERE region_id = 1",
    "SELECT * FROM regions WHERE ({e}) IS NOT NULL",
    "SELECT (SELECT {e})",
    "SELECT * FROM (SELECT {e} AS v) AS s",
    "WITH x AS (SELECT {e} AS v) SELECT * FROM x",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 2) "
    "SELECT n, {e} FROM r",
    "SELECT 1 AS v UNION ALL SELECT {e}",
    "SELECT {e} UNION SELECT 1",
    "SELECT 1 FROM regions WHERE EXISTS (SELECT {e})",
    "SELECT CASE WHEN 1 = 1 THEN {e} END",
    "SELECT COALESCE(NULL, {e})",
    "SELECT count(*) FROM regions GROUP BY region_id HAVING count({e}) >= 0",
    "SELECT name FROM regions ORDER BY {e}",
    "SELECT r.name FROM regions r JOIN customers c ON c.region_id = r.region_id "
    "AND ({e}) IS NOT NULL",
    "SELECT * FROM regions WHERE region_id IN (SELECT {e})",
]
#: Shapes around a whole statement `{w}`: stacked, nested, wrapped.
STMT_SHAPES = [
    "{w}",
    "SELECT 1; {w}",
    "{w}; SELECT 1",
    "SELECT 1;{w};",
    "COMMIT; {w}",
    "SELECT * FROM ({w}) AS s",
    "SELECT 1 UNION ALL ({w})",
    "WITH x AS (SELECT 1 AS v) {w}",
    "WITH x AS ({w}) SELECT * FROM x",
    "/* read only */ {w}",
    "-- a report\n{w}",
    "BEGIN; {w}; COMMIT",
]
DML_SHAPES = {PG: ["WITH x AS ({w} RETURNING *) SELECT * FROM x",
                   "WITH x AS MATERIALIZED ({w} RETURNING 1) SELECT count(*) FROM x",
                   "SELECT * FROM regions WHERE EXISTS (WITH x AS ({w} RETURNING 1) "
                   "SELECT 1 FROM x)"],
              MY: ["WITH x AS ({w}) SELECT 1"],
              LITE: ["WITH x AS (SELECT 1 AS v) {w}", "{w} RETURNING *"]}
DIALECT_SHAPES = {PG: ["EXPLAIN ANALYZE {w}", "EXPLAIN (ANALYZE) {w}"],
                  MY: ["ANALYZE {w}", "# a report\n{w}"],
                  LITE: ["EXPLAIN {w}"]}
#: The payload inside a comment: the guard removes it, so what runs never holds it.
HIDDEN_SHAPES = {
    PG: ["SELECT 1 /* {w} */", "SELECT 1 -- {w}\n", "SELECT 1 /* /* */ {w} */",
         "/* {w} */ SELECT 1", "SELECT 1 /* nested /* {w} */ */"],
    MY: ["SELECT 1 /* {w} */", "SELECT 1 -- {w}\n", "SELECT 1 # {w}\n",
         "SELECT 1 /*!50000 , ({e}) */", "SELECT 1 /*M!100000 , ({e}) */",
         "/*!50000 {w} */", "SELECT 1 /*!, ({e}) */", "SELECT /*+ {e} */ 1"],
    LITE: ["SELECT 1 /* {w} */", "SELECT 1 -- {w}\n", "/* {w} */ SELECT 1"],
}
#: PostgreSQL reads a Unicode space as part of a name, so `interval<U+00A0>$a$` is a column
#: name and what follows is code; a tokenizer that reads it as a space sees an interval and
#: a dollar-quoted string. The column exists, under a U&"" name without the space itself.
QUOTED_SHAPES = {
    PG: ['SELECT interval{u}$a$, {e} AS v FROM (SELECT 1 AS U&"interval\\00a0\\0024a\\0024") '
         's --$a$'],
}
#: The Unicode spaces tried (the code points each shape needs are in it).
UNICODE_SPACES = ["\u00a0", "\u3000", "\u2003", "\u2028", "\u200a", "\x85"]

BENIGN_EXPRS = ["abs(-1)", "length('abc')", "coalesce(NULL, 2)", "nullif(1, 2)", "1 + 1",
                "(SELECT count(*) FROM regions)", "round(1.4)"]
BENIGN_READS = ["SELECT name FROM regions", "SELECT region_id, name FROM regions "
                "WHERE region_id > 1", "SELECT count(*) AS n FROM customers"]
BENIGN_STMT_SHAPES = ["{w}", "WITH x AS ({w}) SELECT * FROM x", "SELECT * FROM ({w}) AS s",
                      "/* read only */ {w}", "-- a report\n{w}"]

#: Names the tricks leave alone (tables, columns, sequences, lock names): a MySQL table
#: name is case-sensitive, and a renamed table would only test "table not found".
NAMES = frozenset({"regions", "customers", "payments", "region_id", "name", "payment_id",
                   "amount", "customer_id", "order_seq", "aigis_truth", "pwned", "s", "x",
                   "r", "c", "v", "n", "p", "a", "id", "add_region"})
_TABLE = re.compile(r"\b(?:regions|customers|payments)\b")

# Quoted strings, quoted names, dollar quotes, comments and {placeholders} of the
# grammar's own text: the tricks work between them.
_PROTECTED = re.compile(
    r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`(?:[^`]|``)*`|\[\w+\]|\$(\w*)\$.*?\$\1\$"
    r"|/\*.*?\*/|--[^\n]*(?:\n|$)|#[^\n]*(?:\n|$)|\{\w+\}", re.S)
_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")
_STRING = re.compile(r"'[A-Za-z0-9_ ./{}=-]+'")

SPACES = [" ", "  ", "\t", "\n", "\r\n", "\f", "\x0b", *UNICODE_SPACES]
COMMENTS = {PG: ["/**/", "/* x */", "/* /* nested */ */", "--x\n", "-- x\n"],
            MY: ["/**/", "/* x */", "#x\n", "-- x\n", "/*!*/", "/*M!*/"],
            LITE: ["/**/", "/* x */", "-- x\n"]}
LEADS = {PG: ["", "\n", "  ", "/* lead */ ", "-- lead\n"],
         MY: ["", "\n", "/* lead */ ", "-- lead\n", "# lead\n"],
         LITE: ["", "\n", "/* lead */ ", "-- lead\n"]}
TAILS = {PG: ["", ";", " ;", ";;", "\n", " -- tail", " /* tail */", "; -- tail"],
         MY: ["", ";", ";;", " -- tail", " /* tail */", " #tail", "; # tail"],
         LITE: ["", ";", " ;", ";;", " -- tail", " /* tail */"]}
QUOTE_NAME = {PG: ['"{}"'], MY: ["`{}`"], LITE: ['"{}"', "[{}]", "`{}`"]}
QUOTE_STRING = {PG: ["E'{}'", "$${}$$", "$q${}$q$", "U&'{}'"],
                MY: ['"{}"', "_utf8mb4'{}'", "N'{}'"],
                LITE: ["'{}'"]}


def _between(text: str, f: Callable[[str], str]) -> str:
    """`f` applied to the grammar's text outside strings, quoted names and comments."""
    out, pos = [], 0
    for m in _PROTECTED.finditer(text):
        out += [f(text[pos:m.start()]), m.group()]
        pos = m.end()
    out.append(f(text[pos:]))
    return "".join(out)


@st.composite
def tricks(draw: st.DrawFn, dialect: str, text: str, *, benign: bool,
           keep: frozenset[str] = frozenset()) -> str:
    """Case, quoting, spacing and comment tricks the server reads as the same statement.

    Names in NAMES and `keep` keep their case (MySQL's table and database names are
    case-sensitive)."""
    if draw(st.booleans()):  # quote table names
        quote = draw(st.sampled_from(QUOTE_NAME[dialect]))
        text = _between(text, lambda s: _TABLE.sub(lambda m: quote.format(m.group()), s))
    if not benign and draw(st.booleans()):  # another spelling of the payload's first string
        text = _respell_string(text, draw(st.sampled_from(QUOTE_STRING[dialect])))
    mode = draw(st.sampled_from(["keep", "upper", "lower", "mixed"]))
    if mode != "keep":
        def recase(s: str) -> str:
            def one(m: re.Match[str]) -> str:
                w = m.group()
                if w.lower() in NAMES or w.lower() in keep:
                    return w
                if mode == "mixed":
                    return "".join(c.upper() if i % 2 else c.lower() for i, c in enumerate(w))
                return w.upper() if mode == "upper" else w.lower()
            return _WORD.sub(one, s)
        text = _between(text, recase)
    # replace a few of the spaces between tokens by other spaces or by comments
    gaps = 0

    def count(s: str) -> str:
        nonlocal gaps
        gaps += s.count(" ")
        return s

    _between(text, count)
    picks = draw(st.lists(st.tuples(st.integers(0, max(gaps - 1, 0)),
                                    st.sampled_from(SPACES + COMMENTS[dialect])),
                          max_size=min(gaps, 4)))
    if picks:
        chosen = dict(picks)
        seen = iter(range(10**6))

        def respace(s: str) -> str:
            def one(_: re.Match[str]) -> str:
                i = next(seen)
                if i not in chosen:
                    return " "
                r = chosen[i]
                return r if r in SPACES else f" {r} "
            return re.sub(" ", one, s)
        text = _between(text, respace)
    lead = draw(st.sampled_from(LEADS[dialect]))
    tail = draw(st.sampled_from(TAILS[dialect]))
    if benign and tail.startswith(";;"):
        tail = ";"
    return lead + text + tail


def _respell_string(text: str, form: str) -> str:
    """The first plain string literal of `text`, spelled as `form` (E'', $$, U&'', ...)."""
    for m in _PROTECTED.finditer(text):
        if _STRING.fullmatch(m.group()):
            return text[:m.start()] + form.format(m.group()[1:-1]) + text[m.end():]
    return text


def _prefix_name(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(guard._DENIED_PREFIXES))
    return prefix + draw(st.from_regex(r"[a-z_]{0,8}", fullmatch=True))


@st.composite
def denied_call(draw: st.DrawFn, dialect: str, *, live: bool) -> str:
    """A denied function call, its name spelled in any way the server accepts."""
    if live or draw(st.integers(0, 3)):
        call = draw(st.sampled_from(CALLS[dialect]))
        name, args = call.split("(", 1)
    else:  # anything on the deny list, any dialect
        name = draw(st.sampled_from(sorted(DENIED_FUNCTIONS)))
        if draw(st.booleans()):
            name = _prefix_name(draw)
        args = draw(st.sampled_from(["1)", "'x')", ")", "1, 2)", "'a', 'b', false)"]))
    spelling = draw(st.sampled_from(["plain", "quoted", "qualified", "spaced", "comment"]))
    if spelling == "quoted":
        q = {PG: '"{}"', MY: "`{}`", LITE: '"{}"'}[dialect]
        name = q.format(name.lower())
    elif spelling == "qualified" and dialect == PG:
        name = draw(st.sampled_from(["pg_catalog.", "public.", '"pg_catalog".'])) + name
    elif spelling == "spaced":
        name += draw(st.sampled_from([" ", "\n", "\t"]))
    elif spelling == "comment":
        name += "/**/"
    return f"{name}({args}"


@st.composite
def hostile(draw: st.DrawFn, dialect: str, *, live: bool = False) -> Case:
    """A write or a denied call in a read-looking shape, with tricks."""
    branch = draw(st.sampled_from(["write", "write", "call", "call", "hidden"]
                                  + (["quoted"] if dialect in QUOTED_SHAPES else [])))
    writes = WRITES[dialect]
    if branch == "write":
        w = draw(st.sampled_from(writes))
        shapes = STMT_SHAPES + DIALECT_SHAPES[dialect]
        if writes.index(w) < DML:
            shapes = shapes + DML_SHAPES[dialect]
        sql = draw(st.sampled_from(shapes)).format(w=w)
        return Case(dialect, draw(tricks(dialect, sql, benign=False)), CODE, w)
    if branch == "call":
        e = draw(denied_call(dialect, live=live))
        sql = draw(st.sampled_from(EXPR_SHAPES)).format(e=e)
        return Case(dialect, draw(tricks(dialect, sql, benign=False)), CODE, e)
    if branch == "hidden":
        shape = draw(st.sampled_from(HIDDEN_SHAPES[dialect]))
        payload = (draw(st.sampled_from(CALLS[dialect])) if "{e}" in shape
                   else draw(st.sampled_from(writes)))
        sql = shape.format(w=payload, e=payload)
        return Case(dialect, draw(tricks(dialect, sql, benign=False)), HIDDEN, payload)
    e = draw(st.sampled_from(CALLS[dialect]))
    u = draw(st.sampled_from(UNICODE_SPACES))
    sql = draw(st.sampled_from(QUOTED_SHAPES[dialect])).format(u=u, e=e)
    return Case(dialect, sql, QUOTED, e)


@st.composite
def benign(draw: st.DrawFn, dialect: str) -> Case:
    """The same shapes and tricks around a harmless read."""
    if draw(st.booleans()):
        e = draw(st.sampled_from(BENIGN_EXPRS))
        sql = draw(st.sampled_from(EXPR_SHAPES)).format(e=e)
        payload = e
    else:
        w = draw(st.sampled_from(BENIGN_READS))
        sql = draw(st.sampled_from(BENIGN_STMT_SHAPES)).format(w=w)
        payload = w
    return Case(dialect, draw(tricks(dialect, sql, benign=True)), BENIGN, payload)


any_dialect = st.sampled_from(DIALECTS)

# --------------------------------------------------------------------------- helpers

#: Placeholders filled for the parser-only properties (the live ones use `Ctx.fill`).
FILL = {"{dir}": "/tmp/aigis-scratch", "{db}": "shop", "{port}": "5432", "{admin}": "postgres"}
OWN_DB = "shop"


def fill(sql: str) -> str:
    for k, v in FILL.items():
        sql = sql.replace(k, v)
    return sql


def checked(case: Case, sql: str | None = None) -> str | None:
    """What `check_sql` returns, or None when it refuses."""
    try:
        return check_sql(fill(case.sql) if sql is None else sql, case.dialect,
                         database=OWN_DB)
    except (SQLRefused, BadInput):
        return None


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def _only_ascii_spaces(text: str) -> bool:
    return not any(c.isspace() and c not in " \t\n\r" for c in text)


def _keyword_as_table(case: Case, out: str) -> bool:
    """True when the payload's first word is read as a table's name: `SELECT * FROM
    (VACUUM payments) AS s` reads a table "VACUUM" (no server runs a VACUUM there)."""
    import sqlglot
    from sqlglot import exp

    word = case.payload.split()[0].lower()
    tree = sqlglot.parse_one(out, read=case.dialect)
    return word in {str(t.name).lower() for t in tree.find_all(exp.Table)}


def _accepted(case: Case, out: str | None) -> None:
    """The rules for a statement the parser did not refuse (`out` is what runs)."""
    if out is None:
        return
    assert case.kind != CODE or _keyword_as_table(case, out), (
        f"the parser let code through: {case!r} -> {out!r}")
    assert _only_ascii_spaces(out), f"a Unicode space reaches the server: {out!r}"
    if case.kind == HIDDEN:
        assert _squash(fill(case.payload)) not in _squash(out), (case, out)
    assert checked(case, out) == out, f"not stable: {out!r}"


# --------------------------------------------------------------------------- parser


NBSP_DBLINK = Case(
    PG, 'SELECT interval\u00a0$a$, dblink_exec(\'host=127.0.0.1 port={port} dbname={db} '
        'user={admin}\', \'INSERT INTO regions VALUES (97, \'\'dblink\'\')\') AS v FROM '
        '(SELECT 1 AS U&"interval\\00a0\\0024a\\0024") s --$a$', QUOTED, "dblink_exec")


@profile(400)
@given(case=any_dialect.flatmap(hostile))
@example(case=NBSP_DBLINK)
@example(case=Case(MY, "SELECT * FROM regions INTO OUTFILE '{dir}/x'", CODE, "INTO"))
def test_parser_refuses_every_write_and_denied_call(case: Case) -> None:
    """The parser refuses every generated write or denied call, in every dialect and shape.

    When it does not refuse (the payload was in a comment or a string), what it returns is
    free of the payload, of comments and of Unicode spaces, and checks to itself.
    """
    _accepted(case, checked(case))


@profile(200)
@given(case=any_dialect.flatmap(benign))
@example(case=Case(PG, "SELECT\u00a0name\u3000FROM regions ORDER\u00a0BY 1", BENIGN, ""))
@example(case=Case(MY, "SELECT /*+ MAX_EXECUTION_TIME(1) */ name FROM regions", BENIGN,
                   ""))
def test_parser_passes_the_benign_twins(case: Case) -> None:
    """The same shapes and tricks around a harmless read pass the parser.

    What it returns is comment-free, uses only ASCII spaces and checks to itself.
    """
    out = checked(case)
    assert out is not None, f"a harmless read was refused: {case.sql!r}"
    _accepted(case, out)
    assert not re.search(r"/\*|--|#", re.sub(r"'[^']*'", "", out)), out


#: Other databases: the system ones, near misses of the connection's and any other name
#: (quoted, so a keyword is a name too).
OTHER_DATABASES = st.sampled_from(["mysql", "performance_schema", "sys", "Shop", "shop2",
                                   "aigis_other"]) | st.from_regex(
    r"[a-z][a-z0-9_]{0,10}", fullmatch=True).map(lambda n: f"`{n}`")


@st.composite
def cross_database(draw: st.DrawFn) -> tuple[str, bool]:
    """(a MySQL query naming a table or function of some database, whether it may run)."""
    db = draw(OTHER_DATABASES)
    own = db.strip("`") == OWN_DB
    if draw(st.integers(0, 4)) == 0:
        db, own = draw(st.sampled_from(["information_schema", "INFORMATION_SCHEMA",
                                        OWN_DB])), True
    if not db.startswith("`") and draw(st.booleans()):
        db = f"`{db}`"
    ref = f"{db}.tables"
    if not own and draw(st.integers(0, 5)) == 0:
        e = f"{db}.fn(1)"
        sql = draw(st.sampled_from(EXPR_SHAPES)).format(e=e)
    else:
        shape = draw(st.sampled_from([
            "SELECT * FROM {t}", "SELECT a.* FROM regions r JOIN {t} a ON 1 = 1",
            "SELECT * FROM regions WHERE name IN (SELECT name FROM {t})",
            "WITH x AS (SELECT * FROM {t}) SELECT * FROM x",
            "SELECT 1 UNION ALL SELECT 1 FROM {t}", "SELECT (SELECT count(*) FROM {t})",
            "SELECT * FROM (SELECT * FROM {t}) AS s"]))
        sql = shape.format(t=ref)
    return draw(tricks(MY, sql, benign=True, keep=frozenset({db.strip("`").lower()}))), own


@profile(200)
@given(drawn=cross_database())
@example(drawn=("SELECT User FROM mysql.db", False))
@example(drawn=("SELECT * FROM performance_schema.threads", False))
@example(drawn=("SELECT * FROM sys.session", False))
@example(drawn=("SELECT * FROM information_schema.TABLES", True))
def test_mysql_reads_only_its_own_database(drawn: tuple[str, bool]) -> None:
    """On MySQL the parser refuses any other database's table or function, never its own.

    The connection's own database (qualified or not) and information_schema pass.
    """
    sql, own = drawn
    case = Case(MY, sql, BENIGN if own else CODE, "")
    out = checked(case)
    if own:
        assert out is not None, sql
    else:
        assert out is None, f"another database's table passed: {sql!r} -> {out!r}"
        with pytest.raises(SQLRefused, match=r"only read|holds credentials"):
            check_sql(sql, MY, database=OWN_DB)


def test_mysql_system_databases_are_refused_without_a_database() -> None:
    """Without the connection's database the parser still refuses MySQL's system databases.

    Plain tables and information_schema keep passing.
    """
    for sql in ("SELECT * FROM mysql.db", "SELECT * FROM performance_schema.threads",
                "SELECT * FROM `sys`.`session`", "SELECT * FROM MySQL.db"):
        with pytest.raises(SQLRefused, match="only read"):
            check_sql(sql, MY)
    assert check_sql("SELECT * FROM information_schema.TABLES", MY)
    assert check_sql("SELECT * FROM regions", MY)


# --------------------------------------------------------------------------- live


#: Server-wide lists other test modules add to while they run (their scratch logins and
#: databases, all named `aig...`); what the grammar creates is named `...pwned`.
_SHARED = ("__pg_roles__", "__mysql_users__", "__pg_databases__", "__mysql_databases__")
_OTHER_TESTS = re.compile(r"aig(?!.*pwned)")


@dataclass
class Engine:
    """One engine's context and the state it must keep, per account."""

    ctx: Ctx
    baselines: dict[str, dict[str, Any]]

    def state(self, account: str) -> dict[str, Any]:
        """`Ctx.state`, leaving out the scratch logins and databases of other tests (which
        may run at the same time); a login the grammar creates (`aigis_pwned`) counts."""
        out = self.ctx.state(account)
        for key in _SHARED:
            if key in out:
                out[key] = [n for n in out[key] if not _OTHER_TESTS.match(n)]
        return out

    def baseline(self, account: str) -> dict[str, Any]:
        if account not in self.baselines:
            # the pooled session exists before the first look, as it will afterwards
            self.ctx.run(account, "SELECT 1", guard=True)
            first = self.state(account)
            assert self.state(account) == first, "the state is not stable by itself"
            self.baselines[account] = first
        return self.baselines[account]


@pytest.fixture(scope="module")
def pg_engine(pg_ctx: Ctx) -> Engine:
    return Engine(pg_ctx, {})


@pytest.fixture(scope="module")
def my_engine(my_ctx: Ctx) -> Engine:
    return Engine(my_ctx, {})


@pytest.fixture(scope="module")
def lite_engine(lite_ctx: Ctx) -> Engine:
    return Engine(lite_ctx, {})


MODES = [pytest.param(SU, True, id="superuser-parser-on"),
         pytest.param(LP, False, id="least-privilege-parser-off")]


def _live(engine: Engine, account: str, parser_on: bool, case: Case) -> None:
    """Run `case` through `run_query` and hold it to the rules (see the module docstring)."""
    ctx = engine.ctx
    baseline = engine.baseline(account)
    sql = ctx.fill(case.sql)
    database = ctx.specs[account].database
    reached = True
    if parser_on:
        try:
            check_sql(sql, case.dialect, database=database)
        except (SQLRefused, BadInput):
            reached = False
    result, error = None, None
    try:
        result = ctx.run(account, sql, guard=parser_on)
    except AigisError as exc:
        error = exc
    report = (f"{case.kind} {sql!r} on {ctx.kind} as {account}, parser "
              f"{'on' if parser_on else 'off'}: error={error!r} cause="
              f"{None if error is None else cause(error)!r}")
    if result is not None:
        assert SECRET not in repr(result.df.values.tolist()), report
    if case.kind == BENIGN and parser_on:
        assert error is None and result is not None, report
    if not reached:
        assert isinstance(error, SQLRefused) and cause(error) is None, report
        return
    if parser_on and case.kind == CODE:
        assert _keyword_as_table(case, check_sql(sql, case.dialect, database=database)), (
            "the parser let it through: " + report)
    after = engine.state(account)
    changed = {k for k in set(after) | set(baseline) if after.get(k) != baseline.get(k)}
    assert not changed, report + f"\nchanged: {sorted(changed)}"


def live_cases(dialect: str) -> st.SearchStrategy[Case]:
    return st.one_of(hostile(dialect, live=True), hostile(dialect, live=True),
                     hostile(dialect, live=True), benign(dialect))


@pytest.mark.parametrize(("account", "parser_on"), MODES)
@profile(40)
@given(case=live_cases(PG))
@example(case=NBSP_DBLINK)
def test_postgres_nothing_that_writes_passes(pg_engine: Engine, account: str,
                                             parser_on: bool, case: Case) -> None:
    """On PostgreSQL no generated statement changes the database; benign twins run.

    Both ways: the superuser with the parser on, the least-privilege login with it off.
    """
    _live(pg_engine, account, parser_on, case)


@pytest.mark.parametrize(("account", "parser_on"), MODES)
@profile(40)
@given(case=live_cases(MY))
@example(case=Case(MY, "SELECT * FROM regions INTO OUTFILE '{dir}/pwned_outfile'", CODE,
                   "INTO OUTFILE"))
def test_mariadb_nothing_that_writes_passes(my_engine: Engine, account: str,
                                            parser_on: bool, case: Case) -> None:
    """On MariaDB no generated statement changes the database; benign twins run.

    Both ways: root with the parser on, the least-privilege user with it off.
    """
    _live(my_engine, account, parser_on, case)


@pytest.mark.parametrize("parser_on", [pytest.param(True, id="parser-on"),
                                       pytest.param(False, id="parser-off")])
@profile(40)
@given(case=live_cases(LITE))
def test_sqlite_nothing_that_writes_passes(lite_engine: Engine, parser_on: bool,
                                           case: Case) -> None:
    """On SQLite no generated statement changes the file or its directory; benign twins run.

    With the parser on and off (SQLite has no accounts).
    """
    _live(lite_engine, ANY, parser_on, case)


# --------------------------------------------------------------------------- own database


OTHER_SECRET = f"aigis-other-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def pg_other(pg_server: str) -> Iterator[str]:
    """Another database on the PostgreSQL server, holding a secret."""
    from dbutil import engine_for, scratch_database

    with scratch_database(pg_server) as url:
        eng = engine_for(url)
        with eng.begin() as c:
            c.exec_driver_sql("CREATE TABLE secrets (s text)")
            c.exec_driver_sql(f"INSERT INTO secrets VALUES ('{OTHER_SECRET}')")
        eng.dispose()
        yield url.rsplit("/", 1)[1]


@pytest.fixture(scope="module")
def my_other(mysql_server: str) -> Iterator[str]:
    """Another database on the MariaDB server, holding a secret."""
    from dbutil import engine_for, scratch_database

    with scratch_database(mysql_server) as url:
        eng = engine_for(url)
        with eng.begin() as c:
            c.exec_driver_sql("CREATE TABLE secrets (s varchar(80))")
            c.exec_driver_sql(f"INSERT INTO secrets VALUES ('{OTHER_SECRET}')")
        eng.dispose()
        yield url.rsplit("/", 1)[1]


@pytest.fixture(scope="module")
def lite_other(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another SQLite file, holding a secret."""
    path = tmp_path_factory.mktemp("other") / "other.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as con:
        con.execute("CREATE TABLE secrets (s text)")
        con.execute("INSERT INTO secrets VALUES (?)", (OTHER_SECRET,))
        con.commit()
    return path


#: (engine, statement, account, parser on, expected cause: "parser" or the database's).
OWN_DATABASE = [
    (MY, "SELECT s FROM {other}.secrets", SU, True, "parser"),
    (MY, "SELECT s FROM {other}.secrets", LP, True, "parser"),
    (MY, "SELECT * FROM regions r JOIN `{other}`.`secrets` s ON 1 = 1", SU, True, "parser"),
    (MY, "SELECT s FROM {other}.secrets", LP, False, "1142"),
    (MY, "SELECT count(*) FROM mysql.db", SU, True, "parser"),
    (MY, "SELECT count(*) FROM performance_schema.threads", SU, True, "parser"),
    (MY, "SELECT count(*) FROM sys.version", SU, True, "parser"),
    (PG, "SELECT s FROM {other}.public.secrets", SU, True, "0A000"),
    (PG, "SELECT s FROM {other}.public.secrets", LP, False, "0A000"),
    (PG, "SELECT * FROM dblink('host=127.0.0.1 port={port} dbname={other} user={admin}', "
         "'SELECT s FROM secrets') AS t(s text)", SU, True, "parser"),
    (PG, "SELECT * FROM dblink('host=127.0.0.1 port={port} dbname={other} user={admin}', "
         "'SELECT s FROM secrets') AS t(s text)", LP, False, "2F003"),
    (PG, "SELECT postgres_fdw_get_connections()", SU, True, "parser"),
    (LITE, "ATTACH DATABASE '{other}' AS other", ANY, True, "parser"),
    (LITE, "ATTACH DATABASE '{other}' AS other", ANY, False, "not authorized"),
    (LITE, "SELECT s FROM other.secrets", ANY, True, "no such table"),
]


@pytest.mark.parametrize(("kind", "sql", "account", "parser_on", "why"), OWN_DATABASE,
                         ids=[f"{k}-{a}-{'on' if p else 'off'}-{i}"
                              for i, (k, _, a, p, _w) in enumerate(OWN_DATABASE)])
def test_a_query_reads_only_its_own_database(
        request: pytest.FixtureRequest, kind: str, sql: str, account: str, parser_on: bool,
        why: str) -> None:
    """A query reads only its connection's database, on every engine.

    Another database's table is refused by the parser (MySQL), fails in the server
    (PostgreSQL: no cross-database references; dblink denied) or cannot be attached
    (SQLite); the connection's own tables, qualified or not, still read.
    """
    prefix = {PG: "pg", MY: "my", LITE: "lite"}[kind]
    other = request.getfixturevalue(f"{prefix}_other")
    engine: Engine = request.getfixturevalue(f"{prefix}_engine")
    baseline = engine.baseline(account)
    stmt = engine.ctx.fill(sql.replace("{other}", str(other)))
    with pytest.raises(AigisError) as info:
        engine.ctx.run(account, stmt, guard=parser_on)
    got = cause(info.value)
    if why == "parser":
        assert isinstance(info.value, SQLRefused) and got is None, info.value
    else:
        assert got is not None and why in got, (got, info.value)
    assert OTHER_SECRET not in str(info.value)
    assert engine.state(account) == baseline
    # the connection's own tables, qualified or not, and information_schema still read
    own = {MY: f"SELECT count(*) AS n FROM {engine.ctx.db}.regions r JOIN "
               "information_schema.TABLES t ON t.TABLE_NAME = 'regions' "
               "AND t.TABLE_SCHEMA = DATABASE()",
           PG: f"SELECT count(*) AS n FROM {engine.ctx.db}.public.regions",
           LITE: "SELECT count(*) AS n FROM main.regions"}[kind]
    assert engine.ctx.run(account, own, guard=True).df["n"][0] == 3


@pytest.mark.parametrize("mode", ["NO_BACKSLASH_ESCAPES", "ANSI_QUOTES", "ANSI", "ORACLE"])
def test_mariadb_reads_strings_as_the_parser_whatever_its_sql_mode(my_engine: Engine,
                                                                   mode: str) -> None:
    """MariaDB runs what the parser read as one string as one string, whatever its sql_mode.

    With NO_BACKSLASH_ESCAPES (or ANSI_QUOTES) `'x\\' , SLEEP(0) -- '` was a string to the
    parser and code to the server; the runner drops those flags for every run.
    """
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    from aigis_jupyter.databases.execute import run_query

    spec = my_engine.ctx.specs[SU]
    args = spec.dialect.engine_kwargs(spec)["connect_args"]
    # a server configured so (init_command stands in for its global sql_mode)
    engine = sa.create_engine(spec.dialect.url(spec), poolclass=NullPool, connect_args={
        **args, "init_command": f"SET SESSION sql_mode = CONCAT(@@sql_mode, ',{mode}')"})
    pwned = my_engine.ctx.scratch / f"pwned_{mode.lower()}"
    try:
        for sql, inside in (("SELECT 'x\\' , SLEEP(0) AS s -- '", "SLEEP(0)"),
                            ('SELECT "x\\" , SLEEP(0) AS s -- "', "SLEEP(0)"),
                            (f"SELECT 'x\\' INTO OUTFILE \"{pwned}\" -- '", "OUTFILE")):
            assert check_sql(sql, MY) == sql  # one string literal, to the parser
            res = run_query(engine, spec, sql, max_rows=5, timeout_s=5)
            assert res.df.shape == (1, 1) and inside in str(res.df.iloc[0, 0]), res.df
        assert not pwned.exists()
    finally:
        engine.dispose()
        pwned.unlink(missing_ok=True)


def test_postgres_reads_strings_as_the_parser_whatever_its_settings(pg_engine: Engine) -> None:
    """PostgreSQL runs what the parser read as strings as strings, whatever its settings.

    With standard_conforming_strings off, `'a\\' , ' , f() -- '` was two strings to the
    parser and a string and code to the server; the runner turns it on for every run.
    """
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    from aigis_jupyter.databases.execute import run_query

    ctx = pg_engine.ctx
    spec = ctx.specs[SU]
    baseline = pg_engine.baseline(SU)
    args = spec.dialect.engine_kwargs(spec)["connect_args"]
    # a server configured so (the login's options stand in for its postgresql.conf)
    engine = sa.create_engine(spec.dialect.url(spec), poolclass=NullPool, connect_args={
        **args, "options": "-c standard_conforming_strings=off"})
    write = ctx.fill("dblink_exec($$host=127.0.0.1 port={port} dbname={db} user={admin}$$, "
                     "$$INSERT INTO regions VALUES (97, $q$pwned$q$)$$)")
    try:
        for evil in ("pg_sleep(0)", write):
            sql = f"SELECT 'a\\' , ' , {evil} AS evil -- '"
            assert check_sql(sql, PG) == sql  # two string literals, to the parser
            res = run_query(engine, spec, sql, max_rows=5, timeout_s=5)
            assert res.df.shape == (1, 2) and res.df.iloc[0, 0] == "a\\", res.df
        assert pg_engine.state(SU) == baseline
    finally:
        engine.dispose()
