"""Not every message is a query: a change request on a read-only connection is refused with
nothing run, a greeting or "what can you do?" is answered from the schema, and questions
that merely mention a change still go to the database."""

from __future__ import annotations

import pytest
from test_agent import chunks, make_runner, turn
from test_agent_support import SqliteDeps, kinds

from aigis_jupyter.agent.intent import intent


@pytest.mark.parametrize(("message", "expected"), [
    ("delete all customers", "change"),
    ("Please remove the cancelled orders", "change"),
    ("Can you update the price of product 3 to 10?", "change"),
    ("drop the customers table", "change"),
    ("Add a new customer called Bob", "change"),
    ("INSERT INTO customers VALUES (99, 'x')", "change"),
    ("UPDATE products SET price = 0", "change"),
    ("hello", "chat"),
    ("Hi there!", "chat"),
    ("thanks", "chat"),
    ("What can you do?", "chat"),
    ("who are you", "chat"),
    ("help", "chat"),
    ("How many customers were added in 2023?", "data"),
    ("Which orders were deleted?", "data"),
    ("Show the updated prices", "data"),
    ("How many customers are there?", "data"),
    ("list the products", "data"),
    ("Set of customers in the north region", "data"),
    ("What can you tell me about orders in 2023?", "data"),
    ("help me find the top 5 products by revenue", "data"),
    ("MARK-7: how many regions are there?", "data"),
    ("Delete", "data"),  # a verb alone names nothing to change: the model may ask back
])
def test_what_a_message_asks_for(message: str, expected: str) -> None:
    assert intent(message) == expected


async def test_a_change_on_a_read_only_connection_runs_nothing(settings, deps) -> None:
    runner, model = make_runner(settings, deps, [])
    events = await turn(runner, "delete all customers")
    assert model.seen == [] and deps.ran == [] and "sql" not in kinds(events)
    text = chunks(events)
    assert "read-only" in text and "nothing was run" in text


async def test_a_change_on_a_writable_connection_goes_to_the_model(settings, shop) -> None:
    from aigis_jupyter.databases.engines import ConnectionSpec

    d = SqliteDeps(shop)
    d.spec = ConnectionSpec(id="shop", db_type="sqlite", host=str(shop), allow_write=True)
    try:
        runner, model = make_runner(settings, d, ["UPDATE products SET price = 1 WHERE id = 1",
                                                  "Done."])
        events = await turn(runner, "Update the price of product 1 to 1")
        assert model.seen and "sql" in kinds(events)
    finally:
        d.close()


@pytest.mark.parametrize("message", ["Hello!", "What can you do?"])
async def test_a_greeting_is_answered_from_the_schema(settings, deps, message: str) -> None:
    runner, model = make_runner(settings, deps, [])
    events = await turn(runner, message)
    assert model.seen == [] and deps.ran == []
    text = chunks(events)
    assert "customers" in text and "orders" in text and "products" in text
    assert text.startswith("Hello!") == (message == "Hello!")
    starters = next(e for e in events if e["type"] == "suggestions")["suggestions"]
    assert len(starters) == 3 and all(s.startswith("How many ") for s in starters)
    # the thread reads as a normal exchange and the next question goes to the model
    runner2_events = await turn(runner, "hi", thread="t2")
    assert chunks(runner2_events).startswith("Hello!")
