"""Reading model replies and writing prompts (no model, no database)."""

from __future__ import annotations

import pytest

from aigis_jupyter.agent import prompts
from aigis_jupyter.agent.context import SchemaContext, schema_context
from aigis_jupyter.agent.graph import chart_only, turns
from aigis_jupyter.agent.sqltext import extract_sql
from aigis_jupyter.databases.catalog import Column, ForeignKey, SchemaSnapshot, Table


@pytest.mark.parametrize(("reply", "expected"), [
    ("SELECT 1", "SELECT 1"),
    ("```sql\nSELECT COUNT(*) FROM t;\n```\nThis counts rows.", "SELECT COUNT(*) FROM t"),
    ("Here is the query:\n\nSELECT a,\n  b\nFROM t\nWHERE x = 'a;b'\n\nIt returns a and b.",
     "SELECT a,\n  b\nFROM t\nWHERE x = 'a;b'"),
    ("<think>maybe select everything?</think>\nSELECT name FROM t", "SELECT name FROM t"),
    ("With a CTE:\nWITH x AS (SELECT 1 AS a) SELECT a FROM x;",
     "WITH x AS (SELECT 1 AS a) SELECT a FROM x"),
    ("```\nselect * from t\n```", "select * from t"),
    ("SELECT a\nFROM t\n\nWHERE a > 1", "SELECT a\nFROM t\n\nWHERE a > 1"),
    ("Sure! DELETE FROM users;", ""),  # not at a line start: prose
    ("DELETE FROM users", "DELETE FROM users"),  # found, so the guard can refuse it
    ("I don't know.", ""),
    ("", ""),
])
def test_extract_sql(reply: str, expected: str) -> None:
    assert extract_sql(reply) == expected


def test_extract_sql_after_a_select_prompt() -> None:
    got = extract_sql(" COUNT(*) FROM customers", prefix="SELECT")
    assert got == "SELECT COUNT(*) FROM customers"
    assert extract_sql("SELECT name FROM t", prefix="SELECT") == "SELECT name FROM t"


def _shop() -> SchemaContext:
    """Three of five tables chosen, as the schema node hands them to the prompts."""
    snap = SchemaSnapshot("sqlite", [
        Table("customers", None, [Column("id", "INTEGER", primary_key=True),
                                  Column("name", "TEXT"), Column("region_id", "INTEGER"),
                                  Column("country", "TEXT")],
              [ForeignKey(["region_id"], "regions", ["id"])]),
        Table("orders", None, [Column("id", "INTEGER", primary_key=True),
                               Column("customer_id", "INTEGER"),
                               Column("total", "NUMERIC(10, 2)"), Column("day", "DATE")],
              [ForeignKey(["customer_id"], "customers", ["id"])], kind="view",
              comment="x (y)"),
        Table("regions", None, [Column("id", "INTEGER", primary_key=True),
                                Column("name", "TEXT")]),
        Table("zz_audit", None, [Column("line", "TEXT")] * 40),
        Table("zz_log", None, [Column("line", "TEXT")] * 40),
    ], "fp")
    sc = schema_context(snap, "orders of customers per region", token_budget=150,
                        synonyms={})
    assert [t.name for t in sc.tables] == ["customers", "orders", "regions"]
    return sc


def test_completion_schema_comes_from_the_chosen_tables() -> None:
    sc = _shop()
    text, names = prompts.compact_schema(sc)
    assert names == ["customers", "orders", "regions"]
    assert text.splitlines() == ["-- Table customers(id, name, region_id, country)",
                                 "-- Table orders(id, customer_id, total, day)",
                                 "-- Table regions(id, name)"]
    types = prompts._types(sc)
    assert types[("orders", "total")].startswith("numeric")
    assert types[("customers", "region_id")].endswith(" fk")
    assert types[("regions", "name")] == "text"
    qualified = SchemaContext("", [Table("deals", "sales", [Column("id", "int")])],
                              "postgres", default_schema="public")
    assert prompts.compact_schema(qualified)[0] == "-- Table sales.deals(id)"
    assert prompts.compact_schema(SchemaContext("### sqlite schema: 0 tables", [],
                                                "sqlite"))[0] == "-- ### sqlite schema: 0 tables"


def test_completion_prompt_shape() -> None:
    sc = _shop()
    p = prompts.sql_completion("How many orders are there?", sc, "sqlite",
                               [("Which regions exist?", "SELECT name FROM regions")])
    assert p.endswith("-- Question: How many orders are there?\nSELECT")
    assert "-- Table customers(id, name, region_id, country)" in p
    # the closest example has the question's shape; earlier turns only for follow-ups
    before = p.rsplit("-- Question:", 1)[0].rstrip().splitlines()
    assert before[-1].startswith("SELECT COUNT(*)")
    assert "Which regions exist?" not in p
    examples = dict(prompts._examples(sc, "Which regions exist?"))
    assert "SELECT AVG(total) FROM orders" in examples.values()  # a number, not a key
    follow = prompts.sql_completion("now only for 2023", sc, "sqlite",
                                    [("How many orders are there?", "SELECT COUNT(*) FROM orders")])
    assert "-- Question: How many orders are there?\nSELECT COUNT(*) FROM orders;" in follow


def test_answers_checked_and_fallback() -> None:
    one = {"columns": ["n"], "rows": [[25]], "row_count": 1, "truncated": False}
    assert prompts.answer_is_usable("There are 25 customers.", one)
    assert not prompts.answer_is_usable("There are many customers.", one)
    assert not prompts.answer_is_usable("  ...  ", one)
    assert not prompts.answer_is_usable("the the the the the the the the the", {"rows": []})
    assert prompts.fallback_answer(one) == "The answer is 25 (n)."
    many = {"columns": ["a", "b"], "rows": [[1, "x"], [2, "y"]], "row_count": 2,
            "truncated": True}
    assert "2 or more rows" in prompts.fallback_answer(many)
    assert prompts.fallback_answer({"columns": ["a"], "rows": [], "row_count": 0}).startswith(
        "The query returned no rows")
    assert "(2+ rows)" in prompts.result_text(many)


def test_chart_only_follow_ups() -> None:
    assert chart_only("as a bar chart")
    assert chart_only("Plot it")
    assert chart_only("show that as a pie chart instead")
    assert not chart_only("plot revenue per month")
    assert not chart_only("how many customers?")


def test_turns_from_messages() -> None:
    from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

    msgs = [HumanMessage("q1"), AIMessage("", tool_calls=[{"name": "ask_database", "args": {},
                                                           "id": "c1"}]),
            ToolMessage("ok", tool_call_id="c1", name="ask_database", artifact={"sql": "S1"}),
            AIMessage("a1"), HumanMessage("q2"), AIMessage("boom")]
    assert turns(msgs) == [{"question": "q1", "sql": "S1", "answer": "a1"},
                           {"question": "q2", "sql": None, "answer": "boom"}]


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT segment, COUNT(*) FROM customers",
         "SELECT segment, COUNT(*) FROM customers GROUP BY segment"),
        ("SELECT COUNT(*) FROM customers", "SELECT COUNT(*) FROM customers"),
        ("SELECT a, SUM(b) AS t FROM x GROUP BY a", "SELECT a, SUM(b) AS t FROM x GROUP BY a"),
        ("SELECT *, COUNT(*) FROM t", "SELECT *, COUNT(*) FROM t"),
        ("SELECT name, ROW_NUMBER() OVER (ORDER BY x) FROM t",
         "SELECT name, ROW_NUMBER() OVER (ORDER BY x) FROM t"),
    ],
)
def test_complete_group_by(sql: str, expected: str) -> None:
    from aigis_jupyter.agent.sqltext import complete_group_by

    assert complete_group_by(sql, "sqlite") == expected


def test_sql_lead_starts_a_grouping_with_the_named_column() -> None:
    from aigis_jupyter.agent.prompts import sql_lead

    tables = [Table("customers", None, [Column(c, "text") for c in
                                        ("customer_id", "segment", "country")]),
              Table("orders", None, [Column("status", "text")])]
    assert sql_lead("How many customers are there in each segment?", tables) == "SELECT segment,"
    assert sql_lead("Orders per status", tables) == "SELECT status,"
    assert sql_lead("How many customers are there?", tables) == "SELECT"
    assert sql_lead("Revenue by planet", tables) == "SELECT"


def test_small_base_model_answers_about_a_few_rows_must_name_them() -> None:
    preview = {"columns": ["segment", "n"], "rows": [["Consumer", 430], ["Enterprise", 47],
                                                     ["Small Business", 123]], "row_count": 3}
    assert not prompts.answer_is_usable("430 customers.", preview, strict=True)
    assert prompts.answer_is_usable("430 customers.", preview)  # chat models may summarise
    assert prompts.answer_is_usable("Consumer leads with 430; Enterprise has 47.", preview,
                                    strict=True)
    fallback = prompts.fallback_answer(preview)
    assert "Consumer" in fallback and "Small Business" in fallback and "123" in fallback
