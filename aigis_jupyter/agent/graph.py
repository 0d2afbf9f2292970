"""The LangGraph pipeline: schema -> ask_database -> (ask_analyst) -> answer, or
schema -> explore for models with native tool calling.

For models without native tool calling (the embedded one, most small local models) the
tools are the graph's nodes in a fixed order, and a simple question costs exactly two
model calls: one for the SQL, one for the answer. A model that calls tools natively drives
its turn as in the original (`explore.py`: a bounded tool loop). Either way the
checkpointed messages record each step as a tool call and its result, so the thread reads
like the original's.

State holds no secrets: `connection` is the connection's id, never its URL or password.
The query's DataFrame lives only in the per-turn context (it can be large); the state
keeps the preview that was shown.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from .. import charts
from ..errors import (
    AigisError,
    DatabaseError,
    ModelError,
    QueryCancelled,
    QueryTimeout,
    SQLRefused,
)
from . import choose, describe, doubts, events, explore, grounding, intent, prompts, steps
from .sqltext import complete_group_by, extract_sql
from .steps import turns
from .turn import AigisState, TurnContext, call_model

#: Max tokens the embedded model may write for SQL and for the answer.
LOCAL_SQL_TOKENS = 160
LOCAL_ANSWER_TOKENS = 120

# --- history ------------------------------------------------------------------------------


def _history(state: AigisState) -> list[tuple[str, str]]:
    past = turns(list(state.get("messages") or []))[:-1]  # the last one is this question
    return [(t["question"], t["sql"]) for t in past if t["sql"]]


_CHART_FILLER = frozenset(
    re.findall(
        r"[a-z]+",
        """a an the it that this these those them show make draw plot plotted chart charts graph
    bar bars line lines pie scatter area histogram instead now please visualise visualize
    visualisation visualization me same data result results with in of render can you could
    display give turn into put and using use do one type kind diagram as to again also""",
    )
)


def chart_only(question: str) -> bool:
    """"as a bar chart", "plot it": a new look at the previous result, no new query."""
    if not charts.wants_chart(question):
        return False
    words = re.findall(r"[a-z]+", question.lower())
    return bool(words) and all(w in _CHART_FILLER for w in words)


# --- nodes ----------------------------------------------------------------------------------


async def schema_node(state: AigisState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    ctx = runtime.context
    write = get_stream_writer()
    try:
        ctx.check_cancel()
        write(events.status("schema"))
        from . import context

        snap = await asyncio.to_thread(ctx.deps.snapshot, state["connection"])
        sc = context.schema_context(
            snap, state["question"], token_budget=ctx.settings.schema_token_budget,
            synonyms=ctx.settings.schema_synonyms,
        )
        ctx.schema, ctx.snapshot = sc, snap
        ctx.schema_question = describe.schema_question(state["question"], snap)
        if not state.get("sql_only") and not chart_only(state["question"]):
            ctx.tool_model = explore.tool_model(ctx)
        kind = "data"  # asked for the SQL alone (sql_only), the user gets the SQL
        if ctx.schema_question is None and not state.get("sql_only"):
            kind = intent.intent(state["question"])
        if kind == "change" and await asyncio.to_thread(ctx.deps.writable, state["connection"]):
            kind = "data"  # a connection opened for writing: the model writes the statement
        if kind == "chat" and ctx.tool_model is not None:
            kind = "data"  # a model that drives its turn answers without a query itself
        if ctx.schema_question is None and kind == "data":
            await asyncio.to_thread(steps.learn, ctx, state["connection"], state["question"], snap)
        return {"db_schema": sc.text, "about_schema": ctx.schema_question is not None,
                "explore": ctx.tool_model is not None, "intent": kind}
    except AigisError as exc:
        return steps.fail(exc, ctx)


async def ask_database(state: AigisState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    """The `ask_database` tool: the model writes SQL, the guard checks it, the engine runs it."""
    ctx = runtime.context
    write = get_stream_writer()
    question = state["question"]
    conn = state["connection"]
    call_id = f"call_{uuid.uuid4().hex[:12]}"
    call = AIMessage("", tool_calls=[{"name": "ask_database", "args": {"query": question},
                                      "id": call_id, "type": "tool_call"}])
    history = _history(state)
    try:
        dialect = ctx.dialect or await asyncio.to_thread(ctx.deps.dialect, conn)
        schema = state.get("db_schema") or ""
        completion = ctx.info.prompt_style == "completion"
        reuse = chart_only(question) and bool(history)
        if completion:
            prompt = prompts.sql_completion(question, ctx.schema, dialect, history, ctx.lessons)
        else:
            chat = prompts.sql_messages(question, schema, dialect, history, ctx.lessons)
        chosen = None
        if (completion and not reuse and not state.get("sql_only") and ctx.link is not None
                and getattr(ctx.settings, "query_candidates", True)
                and not (history and prompts.is_follow_up(question) and not ctx.link.tables)):

            async def write_sql() -> str | None:
                """The model's own query, one attempt (the candidates stand beside it)."""
                try:
                    reply = await call_model(ctx, [HumanMessage(prompt)], node="ask_database",
                                             stop=prompts.SQL_STOP, max_tokens=LOCAL_SQL_TOKENS)
                except ModelError:
                    return None
                found = extract_sql(reply, prefix=prompt[prompt.rfind("\n") + 1 :])
                if not found:
                    return None
                return await asyncio.to_thread(complete_group_by, found, dialect)

            write(events.status("sql"))
            chosen = await choose.choose_query(ctx, conn, question, dialect, write_sql)
        if chosen is not None:
            statement, result = chosen.sql, chosen.result
            ctx.deps.keep(conn, result)  # the thread's last result is the one shown
            steps.announce(ctx, statement, dialect)
        else:
            attempts = 0
            while True:
                ctx.check_cancel()
                write(events.status("sql"))
                if reuse and attempts == 0:
                    statement = history[-1][1]
                elif completion:
                    reply = await call_model(ctx, [HumanMessage(prompt)], node="ask_database",
                                             stop=prompts.SQL_STOP, max_tokens=LOCAL_SQL_TOKENS)
                    statement = extract_sql(reply, prefix=prompt[prompt.rfind("\n") + 1 :])
                else:
                    reply = await call_model(ctx, chat, node="ask_database")
                    statement = extract_sql(reply)
                if statement:  # sqlglot parses it: a CPU-bound step kept off the event loop
                    statement = await asyncio.to_thread(complete_group_by, statement, dialect)
                try:
                    if not statement:
                        raise SQLRefused(
                            "The model's reply contained no SQL query.", reason="no_sql"
                        )
                    if state.get("sql_only"):
                        checked = await asyncio.to_thread(ctx.deps.check_sql, conn, statement)
                        write(events.sql(checked, verified=steps.verified(ctx, statement, dialect)))
                        statement = checked
                        break
                    result = await steps.execute(ctx, conn, statement, dialect)
                    break
                except (QueryCancelled, QueryTimeout):
                    raise
                except (SQLRefused, DatabaseError) as exc:
                    ctx.check_cancel()
                    if exc.reason in steps.NOT_THE_QUERY:
                        raise
                    write(events.tool_result(f"Query failed to execute. Error: {exc.message}"))
                    if attempts >= int(getattr(ctx.settings, "sql_repairs", 2)):
                        raise type(exc)(
                            f"I could not write a working query for this question "
                            f"({attempts + 1} attempts). Last error: {exc.message} "
                            "Try rephrasing it, or name the tables and columns to use.",
                            reason=exc.reason,
                        ) from exc
                    attempts += 1
                    if completion:
                        prompt = prompts.repair_completion(prompt, statement, exc.message)
                    else:
                        chat = prompts.repair_messages(chat, statement, exc.message)
    except AigisError as exc:
        out = steps.fail(exc, ctx)
        out["messages"] = [call, ToolMessage(f"Error: {exc.message}", tool_call_id=call_id,
                                             name="ask_database", status="error"),
                           *out["messages"]]
        return out

    if state.get("sql_only"):
        note = "Query written and checked; not run (SQL only)."
        write(events.tool_result(note))
        tool = ToolMessage(note, tool_call_id=call_id, name="ask_database",
                           artifact={"sql": statement, "row_count": None, "executed": False})
        return {"sql_result": {"sql": statement, "columns": [], "rows": [], "row_count": 0,
                               "truncated": False, "executed": False},
                "messages": [call, tool, AIMessage(statement)]}
    # a chart-only follow-up ("as a bar chart") is titled by the question it redraws
    ctx.chart_title = history[-1][0] if reuse else question
    sql_result, summary = steps.show_result(ctx, result, statement)
    want = reuse or steps.wants_chart(ctx, question)
    tool = ToolMessage(summary, tool_call_id=call_id, name="ask_database",
                       artifact={"sql": sql_result["sql"], "row_count": sql_result["row_count"]})
    return {"sql_result": sql_result, "want_chart": bool(want), "messages": [call, tool]}


async def ask_analyst(state: AigisState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    """The `ask_analyst` tool: a validated Vega-Lite spec for the result, data inline."""
    ctx = runtime.context
    question = state["question"]
    call_id = f"call_{uuid.uuid4().hex[:12]}"
    call = AIMessage("", tool_calls=[{"name": "ask_analyst", "args": {"query": question},
                                      "id": call_id, "type": "tool_call"}])
    try:
        out, note = await steps.chart(ctx, question)
    except (QueryCancelled, ModelError) as exc:
        return steps.fail(exc, ctx)
    return {"chart": out, "messages": [call, ToolMessage(note, tool_call_id=call_id,
                                                         name="ask_analyst")]}


async def answer(state: AigisState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    """The answer in words, streamed token by token as `chunk` events."""
    ctx = runtime.context
    write = get_stream_writer()
    question = state["question"]
    res = state.get("sql_result") or {}
    preview = {k: res.get(k) for k in ("columns", "rows", "row_count", "truncated")}
    sent: list[str] = []
    check = grounding.Grounder(preview, res.get("sql"))  # every sentence true to the result

    def emit(text: str) -> None:
        if not sent:
            text = text.lstrip()  # completion models start after "Answer:" with a space
            if not text:
                return
        sent.append(text)
        write(events.chunk(text))

    def on_text(piece: str) -> bool:
        shown = check.feed(piece)
        if shown:
            emit(shown)
        return bool(sent)

    write(events.status("answering"))
    # a small base model asked about several rows names one of them as if it were all
    # ("Most orders came by phone" when web had four times as many): the rows speak for
    # themselves, in a sentence built from them; so does a result whose query looks
    # unlike the question, which the model would restate as if the result answered it
    # ("3503 tracks have never been purchased" from a bare count)
    reasons = doubts.doubts(question, res.get("sql") or "", ctx.dialect)
    reasons += [r for r in ctx.unsure if r not in reasons]
    rows_speak = ctx.info.prompt_style == "completion" and (
        len(preview.get("rows") or []) > 1 or bool(reasons))
    try:
        ctx.check_cancel()
        if ctx.info.prompt_style == "completion" and not rows_speak:
            prompt = prompts.answer_completion(question, res.get("sql") or "", preview)
            await call_model(ctx, [HumanMessage(prompt)], node="answer",
                             stop=prompts.ANSWER_STOP, max_tokens=LOCAL_ANSWER_TOKENS,
                             on_text=on_text, on_retry=check.drop_held)
        elif not rows_speak:
            msgs = prompts.answer_messages(question, res.get("sql") or "", preview)
            await call_model(ctx, msgs, node="answer", on_text=on_text,
                             on_retry=check.drop_held)
        held = check.flush()
        if held:
            emit(held)
    except AigisError as exc:
        out = steps.fail(exc, ctx)
        partial = "".join(sent)
        if partial:
            out["messages"] = [AIMessage(partial), *out["messages"]]
        return out
    text = "".join(sent)
    strict = ctx.info.prompt_style == "completion"
    if not prompts.answer_is_usable(text, preview, strict=strict):
        emit(("\n\n" if text.strip() else "") + prompts.fallback_answer(preview))
        text = "".join(sent)
    if reasons and not chart_only(question):
        emit("\n\n" + doubts.unsure_note(reasons))
        text = "".join(sent)
    steps.suggest(ctx, question, preview, res.get("sql"), charted=bool(state.get("chart")))
    return {"messages": [AIMessage(text.strip())]}


def _after_schema(state: AigisState) -> str:
    if state.get("error"):
        return END
    if state.get("about_schema"):
        return "describe_schema"
    if state.get("intent") in ("change", "chat"):
        return "converse"
    return "explore" if state.get("explore") else "ask_database"


async def describe_schema(state: AigisState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    """A question about the schema itself, answered from the snapshot (no SQL)."""
    ctx = runtime.context
    write = get_stream_writer()
    preview, text = describe.describe(ctx.schema_question, ctx.snapshot)
    write(events.status("answering"))
    write(events.table(preview))
    write(events.tool_result("Answered from the schema; no query was run."))
    write(events.chunk(text))
    steps.suggest(ctx, state["question"], None, None)
    return {"sql_result": None, "messages": [AIMessage(text)]}


async def converse(state: AigisState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    """A message that is not a question for the database, answered without a query: a
    change to a read-only connection is refused, a greeting gets what can be asked."""
    ctx = runtime.context
    write = get_stream_writer()
    question = state["question"]
    if state.get("intent") == "change":
        text = intent.read_only_answer()
    else:
        tables = [ctx.snapshot.qualified(t) for t in ctx.snapshot.tables]
        text = intent.chat_answer(tables, greeting=intent.is_greeting(question))
    write(events.status("answering"))
    write(events.tool_result("No query was run."))
    write(events.chunk(text))
    steps.suggest(ctx, question, None, None)
    return {"sql_result": None, "messages": [AIMessage(text)]}


def _after_database(state: AigisState) -> str:
    if state.get("error") or state.get("sql_only"):
        return END
    return "ask_analyst" if state.get("want_chart") else "answer"


def _after_analyst(state: AigisState) -> str:
    return END if state.get("error") else "answer"


def build_graph(checkpointer: Any = None) -> Any:
    """The compiled graph; `checkpointer` keeps threads (see `checkpoint.open_checkpointer`)."""
    g = StateGraph(AigisState, context_schema=TurnContext)
    g.add_node("schema", schema_node)
    g.add_node("describe_schema", describe_schema)
    g.add_node("ask_database", ask_database)
    g.add_node("ask_analyst", ask_analyst)
    g.add_node("answer", answer)
    g.add_node("explore", explore.explore)
    g.add_node("converse", converse)
    g.add_edge(START, "schema")
    g.add_conditional_edges("schema", _after_schema,
                            ["ask_database", "describe_schema", "explore", "converse", END])
    g.add_edge("explore", END)
    g.add_edge("converse", END)
    g.add_edge("describe_schema", END)
    g.add_conditional_edges("ask_database", _after_database, ["ask_analyst", "answer", END])
    g.add_conditional_edges("ask_analyst", _after_analyst, ["answer", END])
    g.add_edge("answer", END)
    return g.compile(checkpointer=checkpointer)
