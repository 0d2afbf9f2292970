"""Teaching the agent: verified queries, notes and value hints reach the SQL prompt within
their bounds; a verified statement is marked; answers are grounded; suggestions follow.

The database is the real shop SQLite through the real database layer; the model is
scripted (LangChain's fake chat model), so each test states exactly what the prompt held.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_agent import chunks, make_runner, turn
from test_agent_support import SqliteDeps

from aigis_jupyter.agent import prompts
from aigis_jupyter.agent.grounding import Facts, Grounder, ungrounded
from aigis_jupyter.agent.hints import MAX_HINTS, value_hints
from aigis_jupyter.agent.verified import is_verified, similar
from aigis_jupyter.databases.values import ValueIndex, looks_personal, value_index

CANCELLED = "SELECT COUNT(*) AS n FROM orders WHERE status = 'cancelled'"
EXAMPLES = (
    ("How many orders were cancelled?", CANCELLED),
    ("Which products cost more than 10?", "SELECT name FROM products WHERE price > 10"),
    ("List the regions", "SELECT name FROM regions"),
    ("What is the average price of a product?", "SELECT AVG(price) FROM products"),
    ("How many customers live in each region?",
     "SELECT r.name, COUNT(*) FROM customers c JOIN regions r ON r.id = c.region_id "
     "GROUP BY r.name"),
)


@pytest.fixture
def taught(shop: Path):
    d = SqliteDeps(shop, examples=EXAMPLES,
                   notes="Cancelled orders never count as sales.\nRegions are sales areas.")
    yield d
    d.close()


# -- retrieval ------------------------------------------------------------------------------


@pytest.mark.parametrize(("question", "expected"), [
    ("What is the number of cancelled orders?", "How many orders were cancelled?"),
    ("count the orders that got cancelled", "How many orders were cancelled?"),
    ("products priced above 10", "Which products cost more than 10?"),
    ("mean product price", "What is the average price of a product?"),
    ("customers per region", "How many customers live in each region?"),
])
def test_the_closest_verified_query_ranks_first(question: str, expected: str) -> None:
    found = similar(question, EXAMPLES, how="lexical")
    assert found and found[0].question == expected
    assert len(found) <= prompts_examples()


def prompts_examples() -> int:
    from aigis_jupyter.agent.verified import PROMPT_EXAMPLES

    return PROMPT_EXAMPLES


def test_an_unrelated_question_gets_no_example() -> None:
    assert similar("Who wrote the most emails yesterday?", EXAMPLES, how="lexical") == []


def test_same_query_however_it_is_spelled() -> None:
    assert is_verified("select count(*)  as n\nfrom ORDERS where status='cancelled';",
                       EXAMPLES, "sqlite")
    assert not is_verified("SELECT COUNT(*) AS n FROM orders WHERE status = 'shipped'",
                           EXAMPLES, "sqlite")


async def test_the_right_verified_example_reaches_the_prompt_and_is_marked(settings,
                                                                           taught) -> None:
    runner, model = make_runner(settings, taught, [
        "select count(*) as n from orders where status='cancelled'", "There are 24."])
    events = await turn(runner, "What is the number of cancelled orders?", chart=False)
    prompt = model.prompt_text(0)
    assert CANCELLED in prompt  # the paraphrased verified query is an example
    assert "SELECT name FROM regions" not in prompt  # an unrelated one is not
    sql = next(e for e in events if e["type"] == "sql")
    assert sql["verified"] is True
    # a statement that is not a verified one carries no flag
    runner2, _ = make_runner(settings, taught, ["SELECT COUNT(*) AS n FROM orders", "120."])
    events2 = await turn(runner2, "How many orders?", thread="t2", chart=False)
    assert "verified" not in next(e for e in events2 if e["type"] == "sql")


async def test_completion_prompts_put_the_nearest_example_last(settings, taught) -> None:
    # the model's own query alone (no candidates beside it): its prompt is what is tested
    runner, model = make_runner(settings.replace(query_candidates=False), taught,
                                [" COUNT(*) FROM orders", "120 orders."], style="completion")
    await turn(runner, "What is the number of cancelled orders?", chart=False)
    prompt = model.prompt_text(0)
    tail = prompt[prompt.rindex("-- Question: What is the number"):]
    before = prompt[: prompt.rindex("-- Question: What is the number")]
    assert before.rstrip().splitlines()[-1].startswith("-- Hint:") or before.rstrip(
    ).endswith(f"{CANCELLED};")
    assert f"-- Question: How many orders were cancelled?\n{CANCELLED};" in before
    assert tail.splitlines()[-1] == "SELECT"


# -- notes --------------------------------------------------------------------------------


async def test_notes_reach_the_prompt(settings, taught) -> None:
    runner, model = make_runner(settings, taught, ["SELECT COUNT(*) FROM orders", "120."])
    await turn(runner, "How many orders?", chart=False)
    assert "Cancelled orders never count as sales." in model.prompt_text(0)
    assert "Regions are sales areas." in model.prompt_text(0)


async def test_long_notes_are_cut_to_their_bound(settings, shop) -> None:
    notes = "Remember this rule. " * 400  # 8,000 characters
    d = SqliteDeps(shop, notes=notes + "THE-END-MARKER")
    try:
        runner, model = make_runner(settings, d, ["SELECT COUNT(*) FROM orders", "120."])
        await turn(runner, "How many orders?", chart=False)
        chat = model.prompt_text(0)
        assert "Remember this rule." in chat and "THE-END-MARKER" not in chat
        assert chat.count("Remember this rule.") <= prompts.NOTES_CHAT_CHARS // 20 + 1
        runner, model = make_runner(settings, d, [" COUNT(*) FROM orders", "120."],
                                    style="completion")
        await turn(runner, "How many orders?", thread="c", chart=False)
        assert model.prompt_text(0).count("Remember this rule.") <= (
            prompts.NOTES_COMPLETION_CHARS // 20 + 1)
    finally:
        d.close()


# -- value hints ----------------------------------------------------------------------------


def test_value_index_reads_categories_and_never_personal_columns(taught) -> None:
    snap = taught.snapshot("shop")
    index = value_index(taught.engine, taught.spec, snap)
    assert index.values[("orders", "status")] == ["shipped", "cancelled"]  # by frequency
    assert set(index.values[("products", "category")]) == {"Books", "Games", "Music"}
    assert ("customers", "email") not in index.values  # personal: never read
    assert ("customers", "name") not in index.values  # a person's name: personal
    assert looks_personal("name", "Customer") and not looks_personal("name", "Genre")
    assert looks_personal("email") and looks_personal("phone_number")
    assert looks_personal("LastName") and not looks_personal("status")
    # cached by fingerprint: the same object until the schema changes
    assert value_index(taught.engine, taught.spec, snap) is index


@pytest.mark.parametrize(("question", "hint"), [
    ("How many orders were cancelled?", "orders.status has the value 'cancelled'"),
    ("How many orders are Canceled?",  # spelt differently, and capitalised
     "orders.status has the value 'cancelled' (the question says 'Canceled')"),
    ("sales of 'music' products", "products.category has the value 'Music'"),
    ("Orders from the NORTH region", "regions.name has the value 'North'"),
])
def test_value_hints_match_words_case_and_small_misspellings(taught, question: str,
                                                             hint: str) -> None:
    index = value_index(taught.engine, taught.spec, taught.snapshot("shop"))
    assert hint in [h.text() for h in value_hints(question, index)]


def test_value_hints_are_bounded() -> None:
    index = ValueIndex(values={("t", f"c{i}"): ["alpha"] for i in range(40)})
    assert len(value_hints("alpha", index)) == MAX_HINTS


async def test_value_hints_reach_the_prompt(settings, taught) -> None:
    runner, model = make_runner(settings, taught, [CANCELLED, "24."])
    await turn(runner, "How many orders are Canceled?", chart=False)
    assert "orders.status has the value 'cancelled'" in model.prompt_text(0)


# -- grounded answers --------------------------------------------------------------------------

COUNT = {"columns": ["n"], "rows": [[2240]], "row_count": 1, "truncated": False}
BY_GENRE = {"columns": ["genre", "tracks"], "rows": [["Rock", 1297], ["Latin", 579]],
            "row_count": 2, "truncated": False}


@pytest.mark.parametrize(("sentence", "preview", "sql", "missing"), [
    ("North has the most revenue (2240 rows).", COUNT, "SELECT COUNT(*) FROM t", ["North"]),
    ("There are 2240 tracks.", COUNT, "SELECT COUNT(*) FROM tracks", []),
    ("There are 2,240 tracks.", COUNT, None, []),
    ("4249 orders were placed in 2023.", {**COUNT, "rows": [[4249]]},
     "SELECT COUNT(*) FROM orders", ["2023"]),
    ("Rock leads with 1297 tracks, then Latin with 579.", BY_GENRE, None, []),
    ("Rock leads with 1300 tracks.", BY_GENRE, None, ["1300"]),
    ("Jazz has 130 tracks.", BY_GENRE, None, ["130", "Jazz"]),
    ("The average is 3.46.", {**COUNT, "rows": [[3.4567]]}, None, []),
    ("The top 5 are shown.", BY_GENRE, "SELECT genre FROM t LIMIT 5", []),
])
def test_every_number_and_name_must_be_in_the_result(sentence, preview, sql, missing) -> None:
    assert ungrounded(sentence, Facts.of(preview, sql)) == missing


def test_an_ungrounded_sentence_is_replaced_once_and_the_rest_checked() -> None:
    g = Grounder(COUNT, "SELECT COUNT(*) FROM orders")
    shown = g.feed("There are 2240 orders. North has the most. ") + g.feed(
        "South follows with 12.") + g.flush()
    assert shown.startswith("There are 2240 orders. The answer is 2240 (n).")
    assert "North" not in shown and "South" not in shown
    assert g.replaced == ["North has the most.", "South follows with 12."]


async def test_agent_replaces_an_invented_region(settings, deps) -> None:
    runner, _ = make_runner(settings, deps, [
        "SELECT COUNT(*) AS n FROM orders", "North has the most revenue (120 rows)."])
    events = await turn(runner, "How many orders?", chart=False)
    text = chunks(events)
    assert "North" not in text and text == "The answer is 120 (n)."


# -- suggestions ---------------------------------------------------------------------------------


async def test_suggestions_follow_an_answer(settings, taught) -> None:
    runner, _ = make_runner(settings, taught, [
        "SELECT status, COUNT(*) AS n FROM orders GROUP BY status",
        "Shipped orders number 96 and cancelled 24."])
    events = await turn(runner, "How many orders are there per status?", chart=False)
    kinds = [e["type"] for e in events]
    assert kinds.index("suggestions") > max(i for i, k in enumerate(kinds) if k == "chunk")
    found = next(e for e in events if e["type"] == "suggestions")["suggestions"]
    assert 2 <= len(found) <= 3 and all(isinstance(s, str) and s for s in found)
    assert "Which status has the highest n?" in found
    assert "How many order items does each order have?" in found  # a table that joins


def test_the_notebook_shows_suggestions_and_the_verified_label() -> None:
    from aigis_jupyter.rendering import TurnView

    view = TurnView()
    for e in [{"type": "sql", "sql": CANCELLED, "verified": True},
              {"type": "chunk", "content": "There are 24."},
              {"type": "suggestions", "suggestions": ["Now break this down by status"]},
              {"type": "end", "full_response": "There are 24."}]:
        view.feed(e)
    assert "SQL (verified query)" in view.html() and "SQL (verified query)" in view.text()
    assert "You could ask next: Now break this down by status" in view.text()
    assert view.payload()["verified"] is True
    assert view.payload()["suggestions"] == ["Now break this down by status"]


def test_lessons_render_in_both_prompt_styles() -> None:
    lessons = prompts.Lessons(examples=[("q1", "SELECT 1")], notes="n1",
                              hints=["t.c has the value 'x'"])
    chat = "\n".join(str(m.content) for m in prompts.sql_messages("q", "schema", "sqlite", (),
                                                                  lessons))
    assert "n1" in chat and "t.c has the value 'x'" in chat and "SELECT 1" in chat


def test_by_meaning_a_paraphrase_with_no_shared_word_finds_its_example() -> None:
    """The `embeddings` extra (in the test environment): a packaged MiniLM, offline."""
    from aigis_jupyter.agent.verified import ranker

    assert ranker("auto") == "embedding", "the test environment installs the embeddings extra"
    taught = (("Which 5 customers spent the most?", "SELECT 1"),
              ("How many albums are there?", "SELECT 2"),
              ("List the names of all genres.", "SELECT 3"))
    question = "the five biggest spenders among our clients"
    assert similar(question, taught, how="lexical") == []  # no word in common
    found = similar(question, taught, how="embedding")
    assert found and found[0].question == "Which 5 customers spent the most?"
    assert all(0 < f.score <= 1.0001 for f in found)
