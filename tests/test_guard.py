"""Layer 1, the parser: what it lets through, what it refuses and why (no database needed)."""

from __future__ import annotations

import pytest
from dbutil import HOSTILE, HOSTILE_PARSER_ONLY

from aigis_jupyter.databases.guard import check_sql, is_read_query, strip_comments
from aigis_jupyter.errors import BadInput, SQLRefused

ALLOWED = [
    ("postgres", "SELECT 1"),
    ("postgres", "select r.name, date_trunc('month', o.order_date) AS month, "
                 "sum(i.quantity * i.unit_price) FROM orders o JOIN order_items i USING "
                 "(order_id) JOIN customers c USING (customer_id) JOIN regions r USING "
                 "(region_id) GROUP BY 1, 2 ORDER BY 1, 2"),
    ("postgres", "WITH t AS (SELECT customer_id, count(*) n FROM orders GROUP BY 1) "
                 "SELECT * FROM t WHERE n > 3"),
    ("postgres", "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) "
                 "SELECT n FROM r"),
    ("postgres", "SELECT x::int, j->>'k', rank() OVER (PARTITION BY a ORDER BY b DESC) FROM t"),
    ("postgres", "SELECT a FROM t UNION ALL SELECT b FROM u"),
    ("postgres", "(SELECT 1) UNION (SELECT 2) ORDER BY 1"),
    ("postgres", "VALUES (1, 'a'), (2, 'b')"),
    ("postgres", "SELECT * FROM generate_series(1, 10) AS g"),
    ("postgres", "SELECT name FROM customers WHERE name ILIKE '%son%' LIMIT 5 OFFSET 5"),
    ("postgres", "SELECT 'it''s; DROP TABLE x' AS s"),
    ("postgres", "SELECT count(*) FILTER (WHERE status = 'cancelled') FROM orders"),
    ("sqlite", "SELECT strftime('%Y-%m', order_date) AS m, count(*) FROM orders GROUP BY 1"),
    ("sqlite", "SELECT * FROM pragma_table_info('orders')"),
    ("sqlite", 'SELECT "Name" FROM "Track" WHERE "Name" LIKE \'%Love%\''),
    ("mysql", "SELECT DATE_FORMAT(order_date, '%Y-%m') m, SUM(amount) FROM payments GROUP BY m"),
    ("mysql", "SELECT `FirstName` FROM `Customer` ORDER BY `LastName` LIMIT 3"),
    ("mysql", "SELECT seq FROM seq_1_to_10"),
]


@pytest.mark.parametrize(("dialect", "sql"), ALLOWED)
def test_read_queries_pass(dialect: str, sql: str) -> None:
    assert check_sql(sql, dialect) == sql


def test_there_are_at_least_30_hostile_statements_across_dialects() -> None:
    assert len(HOSTILE) + len(HOSTILE_PARSER_ONLY) >= 30
    assert {d for d, _ in HOSTILE} == {"postgres", "sqlite", "mysql"}


@pytest.mark.parametrize(("dialect", "sql"), HOSTILE + HOSTILE_PARSER_ONLY)
def test_hostile_statements_are_refused(dialect: str, sql: str) -> None:
    with pytest.raises(SQLRefused) as info:
        check_sql(sql.replace("{dir}", "/tmp/x"), dialect)
    assert info.value.status == 422
    assert info.value.message  # a reason the user can act on


@pytest.mark.parametrize(("sql", "words"), [
    ("SELECT 1; DROP TABLE t", "one SQL statement"),
    ("COMMIT; DROP TABLE t", "one SQL statement"),
    ("DELETE FROM t", "not DELETE"),
    ("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "data-modifying CTE"),
    ("SELECT * INTO t2 FROM t", "INTO"),
    ("SELECT pg_read_file('/etc/passwd')", "pg_read_file()"),
    ("SELECT pg_catalog.PG_SLEEP(10)", "pg_sleep()"),
    ("SELECT * FROM dblink('host=x', 'select 1') AS t(a int)", "dblink()"),
    ("SELECT * FROM t FOR UPDATE", "Row locks"),
    ("SELECT FROM WHERE (", "could not parse"),
    ("SELECT 'unterminated", "could not be read"),
    ("/* nothing but a comment */", "only comments"),
    ("   ", "empty"),
])
def test_refusals_say_why(sql: str, words: str) -> None:
    with pytest.raises(SQLRefused, match=None) as info:
        check_sql(sql, "postgres")
    assert words in info.value.message


def test_comments_are_stripped_and_what_runs_is_what_was_checked() -> None:
    sql = "-- top\n/* block */ SELECT a, /* inline */ b\nFROM t -- tail\n;"
    assert check_sql(sql, "postgres") == "SELECT a, b\nFROM t"
    # MySQL executable comments would run on the server: they are removed, not run.
    assert check_sql("SELECT 1 /*! , sleep(10) */", "mysql") == "SELECT 1"
    assert strip_comments("SELECT 1; -- c\nSELECT 2", "sqlite") == "SELECT 1;\nSELECT 2"


def test_string_escapes_follow_the_dialect() -> None:
    # PostgreSQL: a backslash does not escape, so this is two statements.
    with pytest.raises(SQLRefused, match="one SQL statement"):
        check_sql("SELECT '\\' ; DROP TABLE x; --'", "postgres")
    # MySQL: the backslash escapes the quote, so this is one string literal.
    assert check_sql("SELECT '\\' ; DROP TABLE x; --'", "mysql").startswith("SELECT")
    # MySQL reads `--x` (no space) as arithmetic, not a comment: the parser must not
    # pass it as a comment while the server would execute what follows.
    with pytest.raises(SQLRefused):
        check_sql("SELECT 1 --1 INTO OUTFILE '/tmp/x'\n", "mysql")


def test_allow_write_permits_dml_and_ddl_but_still_one_statement() -> None:
    assert check_sql("INSERT INTO t VALUES (1)", "postgres", allow_write=True)
    assert check_sql("UPDATE t SET a = 1 WHERE id = 2", "mysql", allow_write=True)
    assert check_sql("CREATE TABLE x AS SELECT 1 AS a", "sqlite", allow_write=True)
    assert check_sql("WITH d AS (DELETE FROM t RETURNING *) SELECT count(*) FROM d",
                     "postgres", allow_write=True)
    for sql in ("INSERT INTO t VALUES (1); DROP TABLE t",
                "COPY t TO PROGRAM 'id'",
                "DO $$ BEGIN END $$",
                "SELECT pg_read_file('/etc/passwd')",
                "GRANT ALL ON t TO PUBLIC"):
        with pytest.raises(SQLRefused):
            check_sql(sql, "postgres", allow_write=True)


def test_dialect_names_and_aliases() -> None:
    assert check_sql("SELECT 1", "postgresql") == "SELECT 1"
    assert check_sql("SELECT `a` FROM `t`", "mariadb") == "SELECT `a` FROM `t`"
    assert check_sql("SELECT 1", "duckdb") == "SELECT 1"  # any sqlglot dialect works
    with pytest.raises(BadInput):
        check_sql("SELECT 1", "no-such-dialect")


def test_is_read_query() -> None:
    assert is_read_query("SELECT 1", "postgres")
    assert is_read_query("-- c\nWITH a AS (SELECT 1) SELECT * FROM a", "sqlite")
    assert not is_read_query("DELETE FROM t", "postgres")
    assert not is_read_query("SELECT 1; SELECT 2", "postgres")
    assert not is_read_query("not sql at all (", "mysql")
