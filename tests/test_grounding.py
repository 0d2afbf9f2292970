"""An answer about several rows never opens with one row's number as if it were the answer,
and questions about the schema are answered from the schema."""

from __future__ import annotations

import pytest
from test_agent import make_runner, turn
from test_agent_support import kinds

from aigis_jupyter.agent.grounding import Grounder, speaks_of_the_whole, whole_result_sentence

SEGMENTS = {"columns": ["segment", "customers"], "row_count": 3, "truncated": False,
            "rows": [["Consumer", 200], ["Corporate", 150], ["Home Office", 80]]}


@pytest.mark.parametrize(("sentence", "whole"), [
    ("430 customers.", False),
    ("Consumer has 200 customers.", False),
    ("There are 3 segments.", True),
    ("Consumer has 200 customers and Corporate 150.", True),
    ("Here are the customers per segment:", True),
    ("Consumer leads the segments.", True),
])
def test_first_sentence_rule(sentence: str, whole: bool) -> None:
    assert speaks_of_the_whole(sentence, SEGMENTS) is whole


def test_a_one_row_opening_is_replaced_and_each_sentence_shown_once_complete() -> None:
    check = Grounder(SEGMENTS)
    shown = [check.feed(p) for p in ["430 ", "customers.", " Consumer is ", "the largest."]]
    shown.append(check.flush())
    text = "".join(shown)
    assert text == "The result has 3 rows, one per segment. Consumer is the largest."
    # a sentence is shown the moment it ends; the next one is held until it ends too
    assert shown == ["", "The result has 3 rows, one per segment.", "",
                     " Consumer is the largest.", ""]


def test_single_rows_pass_untouched_when_grounded() -> None:
    one = {"columns": ["n"], "rows": [[430]], "row_count": 1, "truncated": False}
    check = Grounder(one)
    assert check.feed("There are ") == "" and check.feed("430. ") == "There are 430. "
    assert check.feed("That is ") == "" and check.feed("all!") == "That is all!"
    assert check.flush() == ""


def test_whole_result_sentence_says_when_rows_were_cut() -> None:
    cut = dict(SEGMENTS, truncated=True, row_count=10_000)
    assert whole_result_sentence(cut) == "The result has at least 10000 rows, one per segment."


async def test_agent_answer_of_several_rows_opens_with_the_whole(settings, deps) -> None:
    runner, _ = make_runner(settings, deps, [
        "SELECT category, COUNT(*) AS n FROM products GROUP BY category",
        "9 products. Books are one category.",
    ])
    events = await turn(runner, "How many products are in each category?", chart=False)
    text = "".join(e["content"] for e in events if e["type"] == "chunk")
    assert text.startswith("The result has 3 rows, one per category.")
    assert "9 products" not in text and events[-1]["full_response"] == text


@pytest.mark.parametrize("question", ["What tables are there?", "Which tables do we have?",
                                      "list the tables", "How many tables are there?",
                                      "Describe the database"])
async def test_schema_questions_are_answered_from_the_schema(settings, deps,
                                                             question: str) -> None:
    runner, model = make_runner(settings, deps, [])
    events = await turn(runner, question)
    assert "sql" not in kinds(events) and model.seen == []  # no model call, no query
    table = next(e for e in events if e["type"] == "table")
    assert {r[0] for r in table["rows"]} == {"regions", "customers", "products", "orders",
                                             "order_items"}
    text = "".join(e["content"] for e in events if e["type"] == "chunk")
    assert text.startswith("The database has 5 tables:") and "order_items" in text


async def test_columns_of_a_table_from_the_schema(settings, deps) -> None:
    runner, model = make_runner(settings, deps, [])
    events = await turn(runner, "What columns does the orders table have?")
    assert model.seen == [] and "sql" not in kinds(events)
    table = next(e for e in events if e["type"] == "table")
    assert [r[0] for r in table["rows"]] == ["id", "customer_id", "order_date", "status"]
    assert ["customer_id", "INTEGER", "FK", "customers.id"] in table["rows"]


@pytest.mark.parametrize("question", ["How many orders are there?",
                                      "Which customers have the most orders?",
                                      "How many rows does the orders table have?"])
async def test_data_questions_still_go_to_the_model(settings, deps, question: str) -> None:
    runner, model = make_runner(settings, deps, ["SELECT COUNT(*) AS n FROM orders", "Done."])
    events = await turn(runner, question)
    assert "sql" in kinds(events) and model.seen


def test_sentences_released_without_a_space_are_still_separated() -> None:
    check = Grounder(SEGMENTS, "SELECT segment, customers FROM t")
    shown = "".join([check.feed("There are 3 segments."), check.feed("North leads."),
                     check.feed("Consumer has 200 customers."), check.flush()])
    assert shown == ("There are 3 segments. The query returned 3 rows: segment = Consumer, "
                     "customers = 200; segment = Corporate, customers = 150; segment = Home "
                     "Office, customers = 80. Consumer has 200 customers.")
