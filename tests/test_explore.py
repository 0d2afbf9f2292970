"""Models with native tool calling drive their turn: look up values, run one query or two,
or answer without SQL; a step budget stops a model that loops; every statement is guarded.

The model is scripted: each reply is a message with tool calls (or the final words), the
way a chat model's API returns them, so the tests say exactly what the model asked for.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field
from test_agent import chunks, turn
from test_agent_support import kinds

from aigis_jupyter.agent.runner import AgentRunner
from aigis_jupyter.models import ModelInfo, ModelRegistry

Reply = AIMessage | str | Callable[[list[BaseMessage]], AIMessage]


def call(name: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "args": args, "id": f"call_{name}_{len(json.dumps(args))}",
            "type": "tool_call"}


def tools(*calls: dict[str, Any]) -> AIMessage:
    return AIMessage("", tool_calls=list(calls))


class ToolScript(BaseChatModel):
    """Replies in order; records what it was sent and which tools were bound."""

    script: list[Any] = Field(default_factory=list)
    seen: list[list[BaseMessage]] = Field(default_factory=list)
    bound: list[Any] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "tool-script"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ToolScript:
        self.bound.append(tools)
        return self

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        self.seen.append(list(messages))
        item = self.script.pop(0) if self.script else "(script ran out)"
        if callable(item):
            item = item(messages)
        msg = item if isinstance(item, AIMessage) else AIMessage(str(item))
        return ChatResult(generations=[ChatGeneration(message=msg)])


def tool_runner(settings: Any, deps: Any, script: list[Reply]) -> tuple[AgentRunner,
                                                                         ToolScript]:
    model = ToolScript(script=list(script))
    reg = ModelRegistry(settings)
    reg.register(ModelInfo(name="tooly", provider="fake", supports_tools=True,
                           prompt_style="chat"), lambda: model)
    return AgentRunner(registry=reg, checkpointer_url_or_saver=settings.store_url, deps=deps,
                       settings=settings), model


async def ask(runner: AgentRunner, text: str, **kw: Any) -> list[dict[str, Any]]:
    return await turn(runner, text, model_name="tooly", chart=False, **kw)


def tool_results(model: ToolScript, call_no: int) -> list[ToolMessage]:
    return [m for m in model.seen[call_no] if isinstance(m, ToolMessage)]


async def test_look_up_a_value_then_query(settings, deps) -> None:
    runner, model = tool_runner(settings, deps, [
        tools(call("look_up_values", table="orders", column="status", text="canceled")),
        tools(call("ask_database",
                   query="SELECT COUNT(*) AS n FROM orders WHERE status = 'cancelled'")),
        "24 orders were cancelled.",
    ])
    events = await ask(runner, "How many orders were canceled?")
    assert model.bound and {t["function"]["name"] for t in model.bound[0]} == {
        "ask_database", "look_up_values", "ask_analyst"}
    lookup = tool_results(model, 1)[0]
    assert lookup.name == "look_up_values" and "'cancelled'" in lookup.content
    assert deps.ran == ["SELECT COUNT(*) AS n FROM orders WHERE status = 'cancelled'"]
    assert "n=24" in tool_results(model, 2)[-1].content  # the model saw the result
    assert chunks(events) == "24 orders were cancelled." == events[-1]["full_response"]
    k = kinds(events)
    assert k.index("sql") < k.index("table") < k.index("chunk")
    # the thread keeps the original's shape: tool calls, tool messages with the SQL, answer
    state = runner.state("t1")
    msgs = state["messages"]
    assert [m["role"] for m in msgs] == ["human", "ai", "tool", "ai", "tool", "ai"]
    assert msgs[4]["name"] == "ask_database" and msgs[4]["sql"].startswith("SELECT COUNT(*)")
    assert state["sql_result"]["rows"] == [[24]]


async def test_a_second_query_when_the_first_answers_half(settings, deps) -> None:
    runner, model = tool_runner(settings, deps, [
        tools(call("ask_database", query="SELECT COUNT(*) AS customers FROM customers")),
        tools(call("ask_database", query="SELECT COUNT(*) AS orders FROM orders")),
        "There are 25 customers and 120 orders.",
    ])
    events = await ask(runner, "How many customers and how many orders are there?")
    assert deps.ran == ["SELECT COUNT(*) AS customers FROM customers",
                        "SELECT COUNT(*) AS orders FROM orders"]
    assert "customers=25" in tool_results(model, 1)[0].content  # it saw the first result
    assert [e["type"] for e in events].count("table") == 2
    # both results ground the answer: 25 came from the first query
    assert chunks(events) == "There are 25 customers and 120 orders."


async def test_no_query_when_none_is_needed(settings, deps) -> None:
    runner, model = tool_runner(settings, deps, [
        "I can answer questions about your customers, orders, products and regions."])
    events = await ask(runner, "What can you do?")
    assert deps.ran == [] and "sql" not in kinds(events)
    assert chunks(events).startswith("I can answer questions about your customers")
    assert len(model.seen) == 1


async def test_the_step_budget_stops_a_model_that_loops(settings, deps) -> None:
    settings.agent_max_steps = 3
    loop = tools(call("ask_database", query="SELECT 1"))
    runner, model = tool_runner(settings, deps, [loop] * 10)
    events = await ask(runner, "Loop forever")
    err = next(e for e in events if e["type"] == "error")
    assert err["reason"] == "agent_loop" and "limit is 3" in err["message"]
    assert len(deps.ran) == 3 and len(model.seen) == 4
    runner.state("t1")  # the thread is stored and usable
    assert events[-1]["type"] == "end"


async def test_a_refused_statement_goes_back_to_the_model(settings, deps) -> None:
    runner, model = tool_runner(settings, deps, [
        tools(call("ask_database", query="DELETE FROM orders")),
        tools(call("ask_database", query="SELECT COUNT(*) AS n FROM orders")),
        "There are 120 orders.",
    ])
    events = await ask(runner, "How many orders?")
    refused = tool_results(model, 1)[0]
    assert refused.status == "error" and "Query failed" in refused.content
    assert deps.ran == ["DELETE FROM orders", "SELECT COUNT(*) AS n FROM orders"]
    assert int(deps.last.df.iloc[0, 0]) == 120  # the guard refused the DELETE: all still there
    assert chunks(events) == "There are 120 orders."


async def test_an_invented_fact_in_the_final_words_is_replaced(settings, deps) -> None:
    runner, _ = tool_runner(settings, deps, [
        tools(call("ask_database", query="SELECT COUNT(*) AS n FROM orders")),
        "There are 120 orders. North has the most revenue (2240 rows).",
    ])
    events = await ask(runner, "How many orders?")
    text = chunks(events)
    assert text.startswith("There are 120 orders.") and "North" not in text
    assert "2240" not in text


async def test_look_up_of_an_unknown_column_says_so(settings, deps) -> None:
    runner, model = tool_runner(settings, deps, [
        tools(call("look_up_values", table="orders", column="colour", text="red")),
        "I could not find a colour column.",
    ])
    await ask(runner, "red orders?")
    assert "no column orders.colour" in tool_results(model, 1)[0].content


async def test_look_up_of_a_column_not_indexed_asks_the_database(settings, deps) -> None:
    runner, model = tool_runner(settings, deps, [
        tools(call("look_up_values", table="customers", column="name", text="customer 1")),
        "Found them.",
    ])
    await ask(runner, "customer 1?")
    content = tool_results(model, 1)[0].content
    assert "'Customer 1'" in content and "'Customer 12'" in content
    assert deps.ran and "LIKE" in deps.ran[0]  # guarded and audited like any query


async def test_chart_only_follow_ups_keep_the_fixed_path(settings, deps) -> None:
    runner, model = tool_runner(settings, deps, [
        tools(call("ask_database",
                   query="SELECT status, COUNT(*) AS n FROM orders GROUP BY status")),
        "Shipped 96, cancelled 24.",
    ])
    await ask(runner, "orders per status")
    events = await turn(runner, "as a bar chart", model_name="tooly")
    assert any(e["type"] == "chart" for e in events)
    assert deps.ran[-1] == deps.ran[0] and len(deps.ran) == 2  # the same SQL, no new query
    assert not any(isinstance(m, ToolMessage) for m in model.seen[-1])  # the fixed path


async def test_models_without_tools_keep_the_fixed_path(settings, deps) -> None:
    from test_agent import make_runner

    runner, model = make_runner(settings, deps, ["SELECT COUNT(*) AS n FROM orders", "120."])
    events = await turn(runner, "How many orders?")
    assert kinds(events)[:3] == ["status:schema", "status:sql", "sql"]
    assert "Reply with the SQL only" in model.prompt_text(0)  # the fixed path's SQL prompt
    assert runner.state("t1")["messages"][1]["tool_calls"][0]["name"] == "ask_database"


async def test_the_tool_loop_over_a_real_openai_compatible_server(settings, shop,
                                                                  monkeypatch) -> None:
    """The same loop through the product's own client for `LM_STUDIO_ENDPOINT` models: tool
    definitions go out, streamed tool calls come back, and a reply that is SQL as text (a
    model that ignores its tools) is run as the query it meant."""
    from fake_openai import FakeOpenAI, tool_call

    from aigis_jupyter.service import AigisService

    with FakeOpenAI() as fake:
        monkeypatch.setenv("LM_STUDIO_ENDPOINT", fake.root)
        svc = AigisService(settings)
        try:
            scope = svc.user("alice")
            scope.create_connection({"name": "shop", "db_type": "sqlite", "host": str(shop)})
            tid = scope.create_thread("t", connection="shop", model="qwen3-8b")["id"]
            fake.script(
                tool_call("look_up_values", json.dumps(
                    {"table": "orders", "column": "status", "text": "canceled"})),
                tool_call("ask_database", json.dumps(
                    {"query": "SELECT COUNT(*) AS n FROM orders WHERE status = 'cancelled'"})),
                "24 orders were cancelled.",
                "SELECT COUNT(*) AS n FROM customers",  # no tool call: SQL as text
                "There are 25 customers.")
            events = [e async for e in scope.chat(tid, "How many orders were canceled?")]
            assert chunks(events) == "24 orders were cancelled."
            assert [e["sql"] for e in events if e["type"] == "sql"] == [
                "SELECT COUNT(*) AS n FROM orders WHERE status = 'cancelled'"]
            first = fake.chats()[0].body
            assert {t["function"]["name"] for t in first["tools"]} == {
                "ask_database", "look_up_values", "ask_analyst"}
            roles = [m["role"] for m in fake.chats()[2].body["messages"]]
            assert roles[-4:] == ["assistant", "tool", "assistant", "tool"]
            events = [e async for e in scope.chat(tid, "And how many customers?")]
            assert chunks(events) == "There are 25 customers."
            assert any(e["type"] == "table" and e["rows"] == [[25]] for e in events)
        finally:
            svc.close()
