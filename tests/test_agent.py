"""The agent with a scripted model over a real SQLite database: order, repairs, refusals,
follow-ups, missing model, failing model, cancel."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

from test_agent_support import (
    FAIL,
    SqliteDeps,
    collect,
    kinds,
    scripted_registry,
)

from aigis_jupyter.agent.runner import AgentRunner


def make_runner(settings: Any, deps: SqliteDeps, replies: list[Any], **kw: Any):
    reg, model = scripted_registry(settings, replies, **kw)
    runner = AgentRunner(registry=reg, checkpointer_url_or_saver=settings.store_url, deps=deps,
                         settings=settings)
    return runner, model


async def turn(runner: AgentRunner, text: str, thread: str = "t1", **kw: Any) -> list[dict]:
    kw.setdefault("connection_id", "shop")
    kw.setdefault("model_name", "scripted")
    events = await collect(runner.run_turn(thread, text, **kw))
    assert events[-1]["type"] == "end"
    assert [e["type"] for e in events].count("end") == 1
    for e in events:
        json.dumps(e)  # every event is JSON as sent over SSE
    return events


def chunks(events: list[dict]) -> str:
    return "".join(e["content"] for e in events if e["type"] == "chunk")


async def test_simple_question_two_model_calls(settings, deps) -> None:
    runner, model = make_runner(settings, deps, [
        "```sql\nSELECT COUNT(*) AS n FROM customers;\n```\nThis counts the customers.",
        "There are 25 customers.",
    ])
    events = await turn(runner, "How many customers are there?")
    assert kinds(events) == [
        "status:schema", "status:sql", "sql", "status:executing", "table", "tool_result",
        # the answer is shown a whole sentence at a time, once checked against the result
        "status:answering", "chunk", "suggestions", "end",
    ]
    assert events[2]["sql"] == "SELECT COUNT(*) AS n FROM customers"
    table = next(e for e in events if e["type"] == "table")
    assert table == {"type": "table", "columns": ["n"], "rows": [[25]], "row_count": 1,
                     "truncated": False}
    assert chunks(events) == events[-1]["full_response"] == "There are 25 customers."
    assert len(model.seen) == 2
    assert "customers(" in model.prompt_text(0)  # the schema snapshot reached the model
    assert "n=25" in model.prompt_text(1)  # the result preview reached the answer
    state = runner.state("t1")
    assert state["model_name"] == "scripted" and state["connection"] == "shop"
    assert state["sql_result"]["rows"] == [[25]]
    assert [m["role"] for m in state["messages"]] == ["human", "ai", "tool", "ai"]


async def test_full_tool_order_with_chart(settings, deps) -> None:
    runner, model = make_runner(settings, deps, [
        "SELECT p.category, SUM(oi.quantity) AS units FROM order_items oi "
        "JOIN products p ON p.id = oi.product_id GROUP BY p.category",
        '{"mark": "bar", "encoding": {"x": {"field": "category", "type": "nominal"}, '
        '"y": {"field": "units", "type": "quantitative"}}}',
        "Books sold the most units.",
    ])
    events = await turn(runner, "Show units sold per product category as a bar chart")
    assert kinds(events) == [
        "status:schema", "status:sql", "sql", "status:executing", "table", "tool_result",
        # a result of several rows: the first sentence is checked whole before it is shown
        "status:charting", "chart", "tool_result", "status:answering", "chunk", "suggestions",
        "end",
    ]
    chart = next(e for e in events if e["type"] == "chart")["spec"]
    assert chart["mark"] == "bar" and len(chart["data"]["values"]) == 3
    analyst = json.loads(events[8]["content"])
    assert analyst["type"] == "vega_lite_spec" and analyst["spec"] == chart
    assert len(model.seen) == 3  # SQL, chart proposal, answer
    assert runner.state("t1")["chart"]["spec"] == chart


async def test_chart_disabled_and_auto_chart(settings, deps) -> None:
    sql = ("SELECT r.name AS region, COUNT(*) AS customers FROM customers c "
           "JOIN regions r ON r.id = c.region_id GROUP BY r.name")
    runner, model = make_runner(settings, deps, [sql, "Four regions.", sql, "Four regions."])
    auto = await turn(runner, "customers per region")  # category + number, 4 rows: charted
    assert "chart" in kinds(auto)
    assert len(model.seen) == 2  # the recommender needs no model call
    off = await turn(runner, "customers per region", chart=False)
    assert "chart" not in kinds(off) and "status:charting" not in kinds(off)


async def test_repair_after_sql_error(settings, deps) -> None:
    runner, model = make_runner(settings, deps, [
        "SELECT nme FROM customers ORDER BY id LIMIT 3",
        "SELECT name FROM customers ORDER BY id LIMIT 3",
        "The first three are Customer 1, Customer 2 and Customer 3.",
    ])
    events = await turn(runner, "Names of the first three customers?", chart=False)
    assert kinds(events)[:12] == [
        "status:schema", "status:sql", "sql", "status:executing", "tool_result",
        "status:sql", "sql", "status:executing", "table", "tool_result", "status:answering",
        "chunk",
    ]
    failed = events[4]["content"]
    assert failed.startswith("Query failed to execute. Error:") and "nme" in failed
    assert "nme" in model.prompt_text(1) and "failed" in model.prompt_text(1)
    table = next(e for e in events if e["type"] == "table")
    assert table["rows"] == [["Customer 1"], ["Customer 2"], ["Customer 3"]]
    assert "error" not in kinds(events)


async def test_refused_statement_is_an_error_event(settings, deps, shop: Path) -> None:
    settings.sql_repairs = 2
    runner, _ = make_runner(settings, deps, ["DELETE FROM customers"] * 3)
    # a question the model answers with a write (a plain "remove ..." never reaches it)
    events = await turn(runner, "What would the table look like without customers?")
    ks = kinds(events)
    assert ks.count("sql") == 3 and "table" not in ks and "chunk" not in ks
    err = next(e for e in events if e["type"] == "error")
    assert err["reason"] == "sql_refused" and "3 attempts" in err["message"]
    assert ks[-2:] == ["error", "end"] and events[-1]["full_response"] == ""
    with sqlite3.connect(shop) as con:  # nothing was deleted
        assert con.execute("SELECT COUNT(*) FROM customers").fetchone()[0] == 25
    assert runner.state("t1")["error"]["reason"] == "sql_refused"


async def test_follow_up_uses_history(settings, deps) -> None:
    first = "SELECT status, COUNT(*) AS n FROM orders GROUP BY status"
    second = ("SELECT status, COUNT(*) AS n FROM orders WHERE order_date LIKE '2023%' "
              "GROUP BY status")
    runner, model = make_runner(settings, deps, [
        first, "96 shipped, 24 cancelled.",
        second, "In 2023: 32 shipped and 8 cancelled.",
        '{"mark": "bar"}',  # unusable proposal: the recommender draws it
        "Here it is as a bar chart.",
    ])
    await turn(runner, "How many orders per status?", chart=False)
    events = await turn(runner, "now only for 2023", chart=False)
    prompt = model.seen[2]
    texts = [str(m.content) for m in prompt]
    assert "How many orders per status?" in texts and first in texts  # earlier turn replayed
    assert texts[-1] == "now only for 2023"
    table = next(e for e in events if e["type"] == "table")
    assert sorted(table["rows"]) == [["cancelled", 8], ["shipped", 32]]

    # a chart-only follow-up redraws the last result: no SQL call, same query re-run
    calls = len(model.seen)
    events = await turn(runner, "as a bar chart")
    assert next(e for e in events if e["type"] == "sql")["sql"] == second
    spec = next(e for e in events if e["type"] == "chart")["spec"]
    assert spec["mark"]["type"] == "bar" and spec["title"] == "now only for 2023"
    assert len(model.seen) == calls + 2  # chart proposal + answer only


async def test_no_model_selected(settings, deps) -> None:
    runner, model = make_runner(settings, deps, [])
    events = await turn(runner, "How many customers?", model_name=None)
    assert kinds(events) == ["error", "end"]
    err = events[0]
    assert err["reason"] == "no_model"
    assert err["action"]["kind"] == "pick_model" and "scripted" in err["action"]["choices"]
    assert "%aigis" not in err["message"] and "/model" not in err["message"]
    assert "scripted" in err["message"]  # lists what can be picked
    assert model.seen == []


async def test_unknown_model_and_no_connection(settings, deps) -> None:
    runner, _ = make_runner(settings, deps, [])
    events = await turn(runner, "How many customers?", model_name="claude-9")
    assert events[0]["reason"] == "unknown_model" and "scripted" in events[0]["message"]
    events = await turn(runner, "How many customers?", thread="fresh", connection_id=None)
    assert events[0]["reason"] == "no_connection"
    assert events[0]["action"]["kind"] == "pick_connection"
    assert events[0]["reason"] == "no_connection" and "%aigis" not in events[0]["message"]


async def test_model_failing_mid_stream_keeps_thread_usable(settings, deps) -> None:
    runner, _ = make_runner(settings, deps, [
        "SELECT COUNT(*) AS n FROM customers",
        f"There are {FAIL}",  # half a sentence, never shown: asked again
        f"There are 25 customers. Most of {FAIL}",  # a sentence shown: not asked again
        "SELECT COUNT(*) AS n FROM products",
        "There are 9 products.",
    ])
    events = await turn(runner, "How many customers are there?")
    ks = kinds(events)
    assert "table" in ks and ks[-2:] == ["error", "end"]
    err = events[-2]
    assert err["reason"] == "model_error"
    assert "scripted" in err["message"] and err["action"]["kind"] == "pick_model"
    assert chunks(events) == "There are 25 customers."  # what was shown before the failure
    # the thread goes on
    events = await turn(runner, "How many products are there?")
    assert "error" not in kinds(events)
    assert events[-1]["full_response"] == "There are 9 products."
    questions = [m["content"] for m in runner.state("t1")["messages"] if m["role"] == "human"]
    assert questions == ["How many customers are there?", "How many products are there?"]


async def test_model_failing_while_writing_sql(settings, deps, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value-123456")
    runner, _ = make_runner(settings, deps, [
        RuntimeError("401 invalid key sk-secret-value-123456"),
        "SELECT 1 AS one", "One.",
    ])
    events = await turn(runner, "How many customers are there?")
    err = next(e for e in events if e["type"] == "error")
    assert err["reason"] == "model_error" and "sk-secret-value-123456" not in json.dumps(events)
    events = await turn(runner, "And one?")
    assert "error" not in kinds(events)


LONG_SQL = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 500000000) "
            "SELECT COUNT(*) AS n FROM c")


async def test_cancel_stops_the_running_sql(settings, deps) -> None:
    from aigis_jupyter.databases.execute import CancelToken

    runner, _ = make_runner(settings, deps, [LONG_SQL, "SELECT 2 AS two", "Two."])
    token = CancelToken()
    seen: list[dict] = []

    async def consume() -> None:
        async for e in runner.run_turn("t1", "count to five hundred million",
                                       connection_id="shop", model_name="scripted",
                                       cancel=token):
            seen.append(e)

    task = asyncio.create_task(consume())
    for _ in range(200):  # wait for the query to start
        if any(e.get("phase") == "executing" for e in seen):
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    token.cancel()
    # the effect, not a duration: the turn ends (uncancelled, this query would run for
    # minutes), with a "cancelled" error and no table
    await asyncio.wait_for(task, timeout=60)
    ks = kinds(seen)
    assert ks[-2:] == ["error", "end"] and "table" not in ks
    assert seen[-2]["reason"] == "cancelled"
    # the thread is still usable
    events = await turn(runner, "Two?", chart=False)
    assert next(e for e in events if e["type"] == "table")["rows"] == [[2]]


async def test_cancel_while_the_model_writes(settings, deps) -> None:
    from aigis_jupyter.databases.execute import CancelToken

    token = CancelToken()
    token.cancel()
    runner, model = make_runner(settings, deps, ["SELECT 1"])
    events = await turn(runner, "How many?", cancel=token)
    assert kinds(events) == ["error", "end"] and events[0]["reason"] == "cancelled"
    assert model.seen == []


async def test_thread_state_has_no_secrets(settings, deps) -> None:
    runner, _ = make_runner(settings, deps, ["SELECT COUNT(*) AS n FROM customers", "25."])
    await turn(runner, "How many customers are there?")
    state = runner.state("t1")
    assert state["connection"] == "shop"  # an id, not a URL or a password
    assert str(deps.spec.host) not in json.dumps(state)
    assert runner.state("unknown")["messages"] == []
    runner.delete_thread("t1")
    assert runner.state("t1")["messages"] == []


async def test_sql_only_writes_and_checks_without_running(settings, deps) -> None:
    runner, model = make_runner(settings, deps, [
        "SELECT COUNT(*) AS n FROM customers", "DROP TABLE customers", "SELECT 1 AS one",
    ])
    events = await turn(runner, "How many customers are there?", sql_only=True)
    assert kinds(events) == ["status:schema", "status:sql", "sql", "tool_result", "end"]
    assert events[2]["sql"] == "SELECT COUNT(*) AS n FROM customers"
    assert deps.ran == [] and len(model.seen) == 1
    # a refused statement is repaired like any other, still without running anything
    events = await turn(runner, "Drop it", sql_only=True)
    assert [e["sql"] for e in events if e["type"] == "sql"] == ["SELECT 1 AS one"]
    assert deps.ran == []


async def test_tracing_is_optional(settings, deps, monkeypatch) -> None:
    import importlib.util

    from aigis_jupyter.agent import tracing

    monkeypatch.setenv("ENABLE_OPIK_TRACER", "1")
    monkeypatch.setenv("LANGSMITH_TRACING", "false")
    handlers = tracing.tracing_callbacks()
    if importlib.util.find_spec("opik") is None:
        assert handlers == [] and tracing.tracing_status()["opik"] is False
    assert tracing.tracing_status()["langsmith"] is False
    runner, _ = make_runner(settings, deps, ["SELECT 1 AS one", "One."])
    events = await turn(runner, "One?")
    assert "error" not in kinds(events)
