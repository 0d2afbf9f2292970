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


def test_unicode_spaces_outside_quotes_reach_the_server_as_ascii_spaces() -> None:
    """Unicode spaces between tokens reach the server as ASCII spaces, inside strings not.

    Servers read U+00A0 and friends as part of a name, sqlglot as a separator: what runs
    must be what was checked.
    """
    assert check_sql("SELECT\u00a0name\u3000FROM t ORDER\u00a0BY 1", "postgres") == (
        "SELECT name FROM t ORDER BY 1")
    assert check_sql("SELECT 'a\u00a0b' AS\u2003s", "mysql") == "SELECT 'a\u00a0b' AS s"
    # PostgreSQL read `interval<U+00A0>$a$` as one column name and ran what the tokenizer
    # took for a dollar-quoted string; now it reads the same interval literal as the parser.
    hole = ('SELECT interval\u00a0$a$, pg_read_file(\'/etc/passwd\') AS v FROM '
            '(SELECT 1 AS U&"interval\\00a0\\0024a\\0024") s --$a$')
    out = check_sql(hole, "postgres")
    assert "\u00a0" not in out and out.startswith("SELECT interval $a$, pg_read_file(")


def test_optimizer_hints_are_removed() -> None:
    """Optimizer hints never reach the server: they could override its statement timeout.

    MySQL 8 reads `/*+ MAX_EXECUTION_TIME(n) */` and `SET_VAR(...)`.
    """
    assert check_sql("SELECT /*+ MAX_EXECUTION_TIME(100000000) */ name FROM t", "mysql") == (
        "SELECT name FROM t")
    assert check_sql("SELECT /*+ SET_VAR(max_statement_time=0) */ 1", "mysql") == "SELECT 1"


@pytest.mark.parametrize(("dialect", "sql", "words"), [
    ("sqlite", "WITH x AS (reindex) SELECT * FROM x", "not a query"),
    ("postgres", "WITH x AS (checkpoint) SELECT * FROM x", "not a query"),
    ("postgres", "SELECT ts_stat('DELETE FROM t RETURNING 1')", "ts_stat()"),
    ("postgres", "SELECT pg_stat_reset()", "pg_stat_reset()"),
    ("postgres", "SELECT postgres_fdw_get_connections()", "postgres_fdw_get_connections()"),
    ("postgres", "SELECT * FROM pg_logical_slot_get_changes('s', NULL, NULL)",
     "pg_logical_slot_get_changes()"),
    ("mysql", "SELECT WAIT_FOR_EXECUTED_GTID_SET('x', 1)", "wait_for_executed_gtid_set()"),
    ("sqlite", "SELECT * FROM fsdir('/')", "fsdir()"),
])
def test_more_refusals_say_why(dialect: str, sql: str, words: str) -> None:
    """A WITH part that is no query and the newer deny-list entries are refused by name."""
    with pytest.raises(SQLRefused) as info:
        check_sql(sql, dialect)
    assert words in info.value.message


def test_mysql_reads_only_the_connections_database() -> None:
    """On MySQL only the connection's database (and information_schema) may be named."""
    shop = {"database": "shop"}
    for sql in ("SELECT * FROM other.orders", "SELECT * FROM `other`.`orders`",
                "SELECT * FROM orders o JOIN other.customers c USING (id)",
                "SELECT * FROM orders WHERE id IN (SELECT id FROM other.t)",
                "WITH x AS (SELECT * FROM performance_schema.threads) SELECT * FROM x",
                "SELECT * FROM SHOP.orders",  # database names are case-sensitive
                "SELECT other.total(1)"):
        with pytest.raises(SQLRefused, match="may only read `shop`"):
            check_sql(sql, "mysql", **shop)
    for sql in ("SELECT * FROM orders", "SELECT * FROM shop.orders",
                "SELECT TABLE_NAME FROM information_schema.TABLES",
                "SELECT * FROM INFORMATION_SCHEMA.COLUMNS", "SELECT shop.total(1)"):
        assert check_sql(sql, "mysql", **shop) == sql
    # without the connection's database, the system databases are still refused
    for sql in ("SELECT * FROM mysql.db", "SELECT * FROM sys.session",
                "SELECT * FROM performance_schema.threads"):
        with pytest.raises(SQLRefused, match="may only read"):
            check_sql(sql, "mysql")
    assert check_sql("SELECT * FROM other.orders", "mysql")
    # credentials keep their own reason
    with pytest.raises(SQLRefused, match="holds credentials"):
        check_sql("SELECT * FROM mysql.user", "mysql", **shop)
    # writes on a write-enabled connection stay in its database too
    with pytest.raises(SQLRefused, match="may only read `shop`"):
        check_sql("INSERT INTO other.t VALUES (1)", "mysql", allow_write=True, **shop)
    # PostgreSQL refuses cross-database references itself; SQLite cannot ATTACH
    assert check_sql("SELECT * FROM other.public.t", "postgres", database="shop")
    with pytest.raises(SQLRefused):
        check_sql("ATTACH DATABASE 'x.sqlite' AS x", "sqlite")


def test_the_agents_check_uses_the_connections_database() -> None:
    """The agent's parser check knows the connection's database, as run_query does."""
    from aigis_jupyter.service.deps import TurnDeps

    class Scope:
        def get_connection(self, ref: str) -> dict[str, object]:
            return {"db_type": "mysql", "allow_write": False, "database": "shop"}

    deps = TurnDeps(Scope(), "thread")  # type: ignore[arg-type]
    assert deps.check_sql("c1", "SELECT * FROM shop.orders") == "SELECT * FROM shop.orders"
    with pytest.raises(SQLRefused, match="may only read `shop`"):
        deps.check_sql("c1", "SELECT * FROM other.orders")
