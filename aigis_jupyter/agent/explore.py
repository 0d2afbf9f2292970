"""The turn of a model with native tool calling: it drives, as in the original product.

A bounded LangGraph tool loop: the model may call `look_up_values(table, column, text)`
before writing its query, `ask_database(query)` once or more (a second query when the
first answers half the question), `ask_analyst(query)` for a chart, or answer with no
tool at all ("what can you do?"). Every statement still goes through the guard and the
audit, each tool call counts against `Settings.agent_max_steps`, and the events and the
checkpointed messages keep the fixed path's shape (a tool call, its tool message with
the SQL as artifact, then the answer), so threads read the same whichever path ran.
Completion models (the embedded one) keep the fixed path in `graph.py`.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langgraph.config import get_stream_writer
from langgraph.runtime import Runtime

from ..errors import (
    AigisError,
    DatabaseError,
    ModelError,
    QueryCancelled,
    QueryTimeout,
    SQLRefused,
    action,
)
from . import events, grounding, prompts, steps
from .turn import AigisState, TurnContext, call_model, text_of

EXPLORE_SYSTEM = """You answer questions about a {dialect} database by calling tools.
- ask_database(query): run ONE read-only SQL query (SELECT or WITH ... SELECT) that uses \
only the tables and columns below; you get the columns, the first rows and the row count.
- look_up_values(table, column, text): the stored values of a text column that look like \
`text`, when you are unsure how a value is spelled.
- ask_analyst(query): draw a chart of the last result.
Call a tool when the question needs data; if one query answers only part of it, run \
another. When no data is needed (a greeting, "what can you do?"), answer directly and \
briefly describe what the tables below can tell. Your final answer is one to three plain \
sentences that state only numbers and names from the results; say so when the results \
do not answer the question.

Schema:
{schema}"""

TOOLS: list[dict[str, Any]] = [
    {"type": "function", "function": {
        "name": "ask_database",
        "description": "Run one read-only SQL query on the database and get its result.",
        "parameters": {"type": "object", "properties": {
            "query": {"type": "string", "description": "the SQL query"}},
            "required": ["query"]}}},
    {"type": "function", "function": {
        "name": "look_up_values",
        "description": "Find stored values of a text column that look like the given text "
                       "(case and small misspellings ignored).",
        "parameters": {"type": "object", "properties": {
            "table": {"type": "string"}, "column": {"type": "string"},
            "text": {"type": "string"}}, "required": ["table", "column", "text"]}}},
    {"type": "function", "function": {
        "name": "ask_analyst",
        "description": "Draw a chart of the last query result.",
        "parameters": {"type": "object", "properties": {
            "query": {"type": "string", "description": "what the chart should show"}},
            "required": ["query"]}}},
]
#: Values a look-up returns, at most.
LOOKUP_VALUES = 20


def tool_model(ctx: TurnContext) -> Any:
    """The turn's model with the tools bound, or None when it cannot call tools natively."""
    if (not ctx.info.supports_tools or ctx.info.prompt_style != "chat"
            or not getattr(ctx.settings, "agent_tools", True)):
        return None
    try:
        return ctx.model.bind_tools(TOOLS)
    except (NotImplementedError, AttributeError, TypeError, ValueError):
        return None  # LangChain's base class and scripted models have no tool calling


def _messages(state: AigisState, ctx: TurnContext, dialect: str) -> list[BaseMessage]:
    lessons = ctx.lessons or prompts.Lessons()
    system = EXPLORE_SYSTEM.format(dialect=dialect, schema=state.get("db_schema") or "")
    system += prompts.lesson_text(lessons)
    msgs: list[BaseMessage] = [SystemMessage(system)]
    for q, sql in lessons.examples:
        msgs += [HumanMessage(q), AIMessage(f"A verified query for this question:\n{sql}")]
    for past in steps.turns(list(state.get("messages") or []))[:-1][-prompts.HISTORY_TURNS:]:
        if past["sql"]:
            msgs += [HumanMessage(past["question"]),
                     AIMessage(f"(ran) {past['sql']}\n{past['answer'] or ''}".strip())]
    msgs.append(HumanMessage(state["question"]))
    return msgs


class _Loop:
    """One exploring turn: the tool calls it made and what they produced."""

    def __init__(self, state: AigisState, ctx: TurnContext, dialect: str) -> None:
        self.state, self.ctx, self.dialect = state, ctx, dialect
        self.write = get_stream_writer()
        self.sql_result: dict[str, Any] | None = None
        self.results: list[tuple[dict[str, Any], str | None]] = []  # (preview, sql) each
        self.chart: dict[str, Any] | None = None
        self.recorded: list[BaseMessage] = []

    async def call(self, name: str, args: dict[str, Any]) -> tuple[str, dict[str, Any] | None,
                                                                   str]:
        """Run one tool call: (content for the model, artifact, status)."""
        if name == "ask_database":
            return await self.ask_database(str(args.get("query") or ""))
        if name == "look_up_values":
            return await self.look_up(str(args.get("table") or ""),
                                      str(args.get("column") or ""), str(args.get("text") or ""))
        if name == "ask_analyst":
            if self.ctx.result is None:
                return "There is no result to chart yet: run a query first.", None, "error"
            self.chart, note = await steps.chart(self.ctx, self.state["question"])
            return note, None, "success"
        return f"There is no tool named {name!r}.", None, "error"

    async def ask_database(self, query: str) -> tuple[str, dict[str, Any] | None, str]:
        from .sqltext import complete_group_by, extract_sql

        ctx = self.ctx
        self.write(events.status("sql"))
        statement = extract_sql(query) or query.strip()
        try:
            if not statement:
                raise SQLRefused("The query is empty.", reason="no_sql")
            statement = await asyncio.to_thread(complete_group_by, statement, self.dialect)
            result = await steps.execute(ctx, self.state["connection"], statement, self.dialect)
        except (QueryCancelled, QueryTimeout):
            raise
        except (SQLRefused, DatabaseError) as exc:
            ctx.check_cancel()
            if exc.reason in steps.NOT_THE_QUERY:
                raise
            note = f"Query failed to execute. Error: {exc.message}"
            self.write(events.tool_result(note))
            return note, {"sql": statement, "row_count": None}, "error"
        self.sql_result, summary = steps.show_result(ctx, result, statement)
        ctx.chart_title = self.state["question"]
        preview = {k: self.sql_result[k] for k in ("columns", "rows", "row_count", "truncated")}
        self.results.append((preview, self.sql_result["sql"]))
        content = f"{summary}\n{prompts.result_text(preview)}"
        return content, {"sql": self.sql_result["sql"],
                         "row_count": self.sql_result["row_count"]}, "success"

    async def look_up(self, table: str, column: str, text: str) -> tuple[
            str, dict[str, Any] | None, str]:
        from .hints import value_hints

        snap = self.ctx.snapshot
        t = snap.table(table.split(".")[-1]) if snap is not None else None
        col = next((c for c in (t.columns if t else []) if c.name.lower() == column.lower()),
                   None)
        if t is None or col is None:
            note = f"There is no column {table}.{column}; check the schema."
            self.write(events.tool_result(note))
            return note, None, "error"
        name = snap.qualified(t)
        index = self.ctx.values
        known = index.values.get((name, col.name)) if index is not None else None
        if known is not None:
            found = [h.value for h in value_hints(text, index, tables=[name], limit=LOOKUP_VALUES)
                     if h.column == col.name]
            found = found or [v for v in known if text.casefold() in v.casefold()]
        else:  # not indexed (many values, or personal-looking): ask the database, guarded
            found = await self._like(t, col.name, text)
        note = (f"{name}.{col.name} values like {text!r}: "
                + (", ".join(repr(v) for v in found[:LOOKUP_VALUES]) if found else "none found"))
        self.write(events.tool_result(note))
        return note, None, "success"

    async def _like(self, table: Any, column: str, text: str) -> list[str]:
        from sqlglot import exp

        from ..databases.values import table_expr

        col = exp.column(column, quoted=True)
        pattern = exp.Literal.string(f"%{text.lower()}%")
        q = (exp.select(col).distinct().from_(table_expr(self.ctx.snapshot, table))
             .where(exp.Like(this=exp.Lower(this=col), expression=pattern))
             .limit(LOOKUP_VALUES))
        try:
            res = await asyncio.to_thread(self.ctx.deps.run_sql, self.state["connection"],
                                          q.sql(dialect=self.dialect), self.ctx.cancel)
        except (SQLRefused, DatabaseError):
            return []
        return [str(v) for (v, *_) in res.head(LOOKUP_VALUES) if v is not None]


async def explore(state: AigisState, runtime: Runtime[TurnContext]) -> dict[str, Any]:
    """The tool loop (see the module doc); ends with the answer, grounded, and suggestions."""
    ctx = runtime.context
    write = get_stream_writer()
    dialect = ctx.dialect or await asyncio.to_thread(ctx.deps.dialect, state["connection"])
    loop = _Loop(state, ctx, dialect)
    model = ctx.tool_model or tool_model(ctx)
    msgs = _messages(state, ctx, dialect)
    budget = max(1, int(getattr(ctx.settings, "agent_max_steps", 6)))
    used = 0
    try:
        while True:
            ctx.check_cancel()
            write(events.status("sql" if used == 0 else "answering"))
            sink: list[Any] = []
            text = await call_model(ctx, msgs, node="agent", model=model, sink=sink)
            reply = sink[0] if sink and sink[0] is not None else AIMessage(text)
            calls = list(getattr(reply, "tool_calls", None) or [])
            unread = list(getattr(reply, "invalid_tool_calls", None) or [])
            if not calls and not unread:
                calls = _sql_as_call(text_of(reply.content))
                if not calls:
                    break  # the final answer
            if used + max(1, len(calls)) > budget:
                raise ModelError(
                    f"The model '{ctx.info.name}' kept calling tools without answering "
                    f"({used} tool calls, the limit is {budget}). Ask a narrower question, "
                    "or pick another model.", reason="agent_loop",
                    action=action("pick_model", choices=list(ctx.choices)))
            if not calls:  # tool calls it sent but nobody can read: say so, once per call
                used += 1
                why = "; ".join(str(u.get("error") or "arguments are not valid JSON")
                                for u in unread)
                write(events.tool_result(f"The model's tool call could not be read ({why})."))
                msgs += [AIMessage(text_of(reply.content)), HumanMessage(
                    f"Your tool call could not be read ({why}). Call the tool again with "
                    "valid JSON arguments, or answer.")]
                continue
            ai = AIMessage(text_of(reply.content), tool_calls=[
                {"name": c["name"], "args": c.get("args") or {},
                 "id": c.get("id") or f"call_{uuid.uuid4().hex[:12]}", "type": "tool_call"}
                for c in calls])
            msgs.append(ai)
            loop.recorded.append(ai)
            for c in ai.tool_calls:
                used += 1
                content, artifact, status = await loop.call(c["name"], c["args"])
                tool = ToolMessage(content, tool_call_id=c["id"], name=c["name"],
                                   artifact=artifact, status=status)
                msgs.append(tool)
                loop.recorded.append(tool)
    except AigisError as exc:
        out = steps.fail(exc, ctx)
        out["messages"] = [*loop.recorded, *out["messages"]]
        if loop.sql_result is not None:
            out["sql_result"] = loop.sql_result
        return out
    if loop.sql_result is not None and loop.chart is None and steps.wants_chart(
            ctx, state["question"]):
        try:
            loop.chart, _ = await steps.chart(ctx, state["question"])
        except (QueryCancelled, ModelError) as exc:
            return {**steps.fail(exc, ctx), "sql_result": loop.sql_result}
    answer = _grounded(ctx, text_of(reply.content), loop.sql_result, loop.results[:-1])
    write(events.status("answering"))
    if answer:
        write(events.chunk(answer))
    res = loop.sql_result or {}
    preview = {k: res.get(k) for k in ("columns", "rows", "row_count", "truncated")}
    steps.suggest(ctx, state["question"], preview if res else None, res.get("sql"),
                  charted=loop.chart is not None)
    return {"sql_result": loop.sql_result, "chart": loop.chart,
            "messages": [*loop.recorded, AIMessage(answer)]}


def _sql_as_call(text: str) -> list[dict[str, Any]]:
    """A reply that is a query written as text (some servers drop tool calls, some models
    ignore them) is read as the `ask_database` call it meant."""
    from .sqltext import extract_sql

    body = text.strip()
    if not body.lower().startswith(("select", "with", "```")):
        return []
    statement = extract_sql(body)
    if not statement:
        return []
    return [{"name": "ask_database", "args": {"query": statement},
             "id": f"call_{uuid.uuid4().hex[:12]}", "type": "tool_call"}]


def _grounded(ctx: TurnContext, text: str, sql_result: dict[str, Any] | None,
              earlier: list[tuple[dict[str, Any], str | None]]) -> str:
    """The model's final words, each sentence checked against the turn's results (or, when
    no query ran, against the schema's names: a description of the tables, no numbers)."""
    if sql_result is not None:
        preview = {k: sql_result.get(k) for k in ("columns", "rows", "row_count", "truncated")}
        check = grounding.Grounder(preview, sql_result.get("sql"), more=earlier)
        shown = (check.feed(text) + check.flush()).strip()
        if not prompts.answer_is_usable(shown, preview):
            shown = prompts.fallback_answer(preview)
        return shown
    schema = ctx.schema.text if ctx.schema is not None else ""
    check = grounding.Grounder({"columns": [], "rows": [], "row_count": 0}, schema,
                               plain=_no_data_answer(ctx))
    return (check.feed(text) + check.flush()).strip()


def _no_data_answer(ctx: TurnContext) -> str:
    """What a turn that ran no query may always say: what the connection holds."""
    snap = ctx.snapshot
    if snap is None or not snap.tables:
        return "I can answer questions about this database once it has tables."
    names = ", ".join(snap.qualified(t) for t in snap.tables[:12])
    more = " and more" if len(snap.tables) > 12 else ""
    return f"I can answer questions about the tables {names}{more}."
