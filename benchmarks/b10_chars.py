"""B10 — characters sent to the model for one simple Chinook question, summed over all calls.

The same scripted model drives the product's agent and LangChain's SQL agent, with
LangChain's own SQL-agent prompt verbatim, on its tutorial path (list tables, schema with
sample rows, query checker, query, answer) and on its shortest path (query, answer); the
ratio and the target use the tutorial path, the shortest path is reported beside it. Counted: every
message's text and tool-call arguments, plus the tool definitions sent with each call
(what a provider bills as input); tool definitions are also reported apart.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .common import Ctx, result

QUESTION = "How many customers are there?"


def run(ctx: Ctx) -> dict[str, Any]:
    from . import chinook
    from .scripted import ScriptedModel

    qs = [q for q in chinook.questions(20) if q.question == QUESTION]
    if not qs:
        raise RuntimeError(f"{QUESTION!r} is not among the Chinook questions")
    plans = {QUESTION: qs[0]}
    rig = chinook.agent_rig(ctx, "aigis_b10_", plans, checkpoint=False)
    db, deps, model, runner = rig.db, rig.deps, rig.model, rig.runner

    async def ask() -> list[dict[str, Any]]:
        return [e async for e in runner.run_turn("b10", QUESTION, connection_id="chinook",
                                                 model_name="scripted", chart=False)]

    events = asyncio.run(ask())
    runner.close()
    deps.close()
    if any(e["type"] == "error" for e in events):
        raise RuntimeError(f"the product's turn failed: {events}")
    ours = model.chars()

    lc_model = ScriptedModel(responder=chinook.lc_responder(plans))
    lc = chinook.LangChainSqlAgent(db, lc_model)
    answer = lc.ask(QUESTION)
    lc.db._engine.dispose()
    theirs = lc_model.chars()
    if qs[0].answer not in answer:
        raise RuntimeError(f"LangChain's agent did not finish: {answer!r}")
    short_model = ScriptedModel(responder=chinook.lc_responder(plans, chinook.SHORTEST_STEPS))
    lc_short = chinook.LangChainSqlAgent(db, short_model)
    short_answer = lc_short.ask(QUESTION)
    lc_short.db._engine.dispose()
    short = short_model.chars()
    if qs[0].answer not in short_answer:
        raise RuntimeError(f"LangChain's shortest path did not finish: {short_answer!r}")

    ratio = theirs["total_chars"] / ours["total_chars"]
    per_call = [c["message_chars"] + c["tool_schema_chars"] for c in model.calls]
    lc_per_call = [c["message_chars"] + c["tool_schema_chars"] for c in lc_model.calls]
    return result(
        "B10", "Characters sent to the model for one simple question (Chinook, no chart)",
        measured={"model_calls": ours["calls"], "total_chars": ours["total_chars"],
                  "chars_per_call": per_call},
        baseline={"langchain_model_calls": theirs["calls"],
                  "langchain_total_chars": theirs["total_chars"],
                  "langchain_message_chars": theirs["message_chars"],
                  "langchain_tool_schema_chars": theirs["tool_schema_chars"],
                  "langchain_chars_per_call": lc_per_call,
                  "langchain_shortest_model_calls": short["calls"],
                  "langchain_shortest_total_chars": short["total_chars"],
                  "shortest_ratio": round(short["total_chars"] / ours["total_chars"], 2)},
        ratio=ratio,
        ratio_means="LangChain's characters (tutorial path) / aigis characters; "
                    "shortest_ratio: the same for LangChain's shortest path (query, answer)",
        target="<= 1/4 of LangChain's characters, in <= 3 model calls",
        met=bool(ratio >= 4 and ours["calls"] <= 3),
        headline=["model_calls", "total_chars", "langchain_model_calls",
                  "langchain_total_chars", "langchain_shortest_model_calls",
                  "langchain_shortest_total_chars"],
        question=QUESTION,
        notes="counted: message text + tool-call arguments + tool definitions sent with "
              "each call; LangChain without tool definitions: "
              f"{theirs['message_chars']:,} characters",
    )
