"""B3 — agent overhead: what the LangGraph agent adds per question over doing the work by hand.

Three ways to answer the same Chinook questions with the same zero-latency scripted model:

* floor: the two model calls the product needs (SQL, then the answer) with the same
  prompts, and the same SQL through the same guarded `run_query`, called directly: no graph,
  no events, no checkpoint;
* aigis: `AgentRunner.run_turn` (LangGraph graph, event stream, SQLite checkpointer as in
  local mode), each question in a new thread;
* LangChain: its SQL agent (`SQLDatabaseToolkit` + `create_agent`), tutorial path: list
  tables, schema, query checker, query, answer; also its shortest path (query, answer).

Overhead = time - floor, per question, paired (each question runs the three ways in turn).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from .common import Ctx, med, ms, pct, result


def _floor(deps: Any, model: Any, settings: Any, question: str) -> str:
    from aigis_jupyter.agent import context, prompts
    from aigis_jupyter.agent.sqltext import extract_sql

    schema = context.schema_context(deps.snapshot("chinook"), question,
                                    token_budget=settings.schema_token_budget,
                                    synonyms=settings.schema_synonyms)
    dialect = deps.dialect("chinook")
    reply = "".join(str(c.content) for c in model.stream(
        prompts.sql_messages(question, schema.text, dialect, [])))
    sql = extract_sql(reply)
    res = deps.run_sql("chinook", sql)
    preview = res.preview(20)
    answer = "".join(str(c.content) for c in model.stream(
        prompts.answer_messages(question, sql, preview)))
    return answer


async def _aigis(runner: Any, question: str) -> list[dict[str, Any]]:
    return [e async for e in runner.run_turn(f"b3-{uuid.uuid4().hex}", question,
                                             connection_id="chinook", model_name="scripted",
                                             chart=False)]


def run(ctx: Ctx) -> dict[str, Any]:
    from . import chinook
    from .scripted import ScriptedModel

    n = ctx.size(200, 8)
    warm = ctx.size(10, 2)
    qs = chinook.questions(n + warm)
    plans = {q.question: q for q in qs}
    rig = chinook.agent_rig(ctx, "aigis_b3_", plans, checkpoint=True)
    db, deps, model, runner = rig.db, rig.deps, rig.model, rig.runner
    lc_model = ScriptedModel(responder=chinook.lc_responder(plans))
    lc = chinook.LangChainSqlAgent(db, lc_model)
    short_model = ScriptedModel(responder=chinook.lc_responder(plans, chinook.SHORTEST_STEPS))
    lc_short = chinook.LangChainSqlAgent(db, short_model)

    rows: list[dict[str, float]] = []
    failures: list[str] = []

    async def go() -> None:
        for i, q in enumerate(qs):
            t0 = time.perf_counter()
            _floor(deps, model, runner.settings, q.question)
            t1 = time.perf_counter()
            events = await _aigis(runner, q.question)
            t2 = time.perf_counter()
            lc.ask(q.question)
            t3 = time.perf_counter()
            lc_short.ask(q.question)
            t4 = time.perf_counter()
            if any(e["type"] == "error" for e in events):
                failures.append(q.question)
            if i >= warm:
                rows.append({"floor": t1 - t0, "aigis": t2 - t1, "lc": t3 - t2,
                             "lc_short": t4 - t3})

    ctx.log(f"B3: {n} questions x (floor, aigis, LangChain tutorial, LangChain shortest)")
    try:
        asyncio.run(go())
    finally:
        runner.close()
        deps.close()
        lc.db._engine.dispose()
        lc_short.db._engine.dispose()

    ours = [r["aigis"] - r["floor"] for r in rows]
    theirs = [r["lc"] - r["floor"] for r in rows]
    theirs_short = [r["lc_short"] - r["floor"] for r in rows]
    ours_med, theirs_med = med(ours), med(theirs)
    ratio = theirs_med / ours_med if ours_med > 0 else float("inf")
    measured = {
        "questions": len(rows),
        "failed_turns": len(failures),
        "floor_ms_median": ms(med([r["floor"] for r in rows])),
        "aigis_ms_median": ms(med([r["aigis"] for r in rows])),
        "overhead_ms_median": ms(ours_med),
        "overhead_ms_p90": ms(pct(ours, 90)),
        "model_calls_per_question": len(model.calls) / len(qs) / 2,  # floor + agent share it
    }
    baseline = {
        "langchain_ms_median": ms(med([r["lc"] for r in rows])),
        "langchain_overhead_ms_median": ms(theirs_med),
        "langchain_overhead_ms_p90": ms(pct(theirs, 90)),
        "langchain_model_calls_per_question": len(lc_model.calls) / len(qs),
        "langchain_shortest_ms_median": ms(med([r["lc_short"] for r in rows])),
        "langchain_shortest_overhead_ms_median": ms(med(theirs_short)),
    }
    met = ours_med * 1000 <= 3.0 and ratio >= 5.0 and not failures
    return result(
        "B3", "Agent overhead per question (scripted zero-latency model, Chinook)",
        measured=measured, baseline=baseline, ratio=ratio,
        ratio_means="LangChain tutorial-path overhead / aigis overhead (median, paired)",
        target="<= 3 ms median added over the floor, and >= 5x less than LangChain's agent",
        met=met,
        headline=["overhead_ms_median", "langchain_overhead_ms_median",
                  "langchain_shortest_overhead_ms_median", "floor_ms_median"],
        notes="overhead = time - floor for the same question; floor = the same two model "
              "calls with the same prompts + the same guarded run_query, no graph",
    )
