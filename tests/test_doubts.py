"""An answer whose query looks unlike its question says that it may be wrong."""

from __future__ import annotations

import pytest
from test_agent import chunks, make_runner, turn

from aigis_jupyter.agent.doubts import UNSURE_LEAD, doubts


@pytest.mark.parametrize(("question", "sql", "doubtful"), [
    ("How many media types are there?", "SELECT COUNT(*) FROM MediaType", False),
    ("How many media types are there?", "SELECT * FROM MediaType", True),
    ("How many tracks are in each genre?", "SELECT COUNT(*) FROM Track", True),
    ("How many tracks are in each genre?",
     "SELECT GenreId, COUNT(*) FROM Track GROUP BY GenreId", False),
    ("What are the 5 longest tracks?", "SELECT Name FROM Track", True),
    ("What are the 5 longest tracks?",
     "SELECT Name FROM Track ORDER BY Milliseconds DESC LIMIT 5", False),
    ("What is the longest track?", "SELECT MAX(Milliseconds) FROM Track", False),
    ("What is the average invoice total?", "SELECT SUM(Total) FROM Invoice", True),
    ("What is the average invoice total?", "SELECT AVG(Total) FROM Invoice", False),
    # ranked, but whole rows for a question about one value
    ("What is the highest invoice total?",
     "SELECT * FROM Invoice ORDER BY Total DESC LIMIT 1", True),
    ("List the genres", "SELECT Name FROM Genre", False),
    # a number the question states and the query never uses
    ("Which countries have more than 5 customers?", "SELECT DISTINCT Country FROM Customer",
     True),
    ("Which countries have more than 5 customers?",
     "SELECT Country FROM Customer GROUP BY Country HAVING COUNT(*) > 5", False),
    ("Invoices from 2023 over $1,000",
     "SELECT * FROM Invoice WHERE InvoiceDate >= '2023-01-01' AND Total > 1000", False),
    ("Tracks on 'Symphony No. 5'", "SELECT Name FROM Track", False),  # a quoted name
    # something absent asked for, nothing excluded
    ("How many tracks have never been purchased?", "SELECT COUNT(*) FROM Track", True),
    ("How many tracks have never been purchased?",
     "SELECT COUNT(*) FROM Track WHERE TrackId NOT IN (SELECT TrackId FROM InvoiceLine)",
     False),
    ("What are the playlist names? no duplicates", "SELECT DISTINCT Name FROM Playlist",
     False),
    ("Customers who don't have a company", "SELECT * FROM Customer WHERE Company IS NULL",
     False),
    ("Show me everything about customers", "SELECT * FROM Customer", False),
])
def test_a_query_shaped_unlike_its_question_is_doubted(question: str, sql: str,
                                                       doubtful: bool) -> None:
    assert bool(doubts(question, sql, "sqlite")) is doubtful


async def test_the_answer_says_it_may_be_wrong(settings, deps) -> None:
    runner, _ = make_runner(settings, deps, ["SELECT * FROM products", "Here they are."])
    events = await turn(runner, "How many products are there?", chart=False)
    text = chunks(events)
    assert UNSURE_LEAD in text and "does not count" in text and "stronger model" in text
    runner, _ = make_runner(settings, deps, ["SELECT COUNT(*) AS n FROM products", "9."])
    events = await turn(runner, "How many products are there?", thread="t2", chart=False)
    assert UNSURE_LEAD not in chunks(events)
