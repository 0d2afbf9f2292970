"""Execution accuracy and latency of a model on the Chinook dev questions.

    python benchmarks/accuracy.py                 # the embedded `local` model
    python benchmarks/accuracy.py --model qwen    # any model configured here (aliases work)

Each question runs as a fresh chat turn through the real agent (schema snapshot, guard,
read-only execution). A prediction is correct when its result set equals the gold query's:
order matters only when the gold query has ORDER BY, column order never does. Nothing is
asserted: the table is for comparing models and prompts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import sqlite3
import statistics
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("AIGIS_SHARED_DIR", ROOT.parent / "shared"))
sys.path.insert(0, str(ROOT))


def SqliteDeps(path: Path, **kw: Any) -> Any:
    """`AgentDeps` over one SQLite file, through the product's own database layer."""
    from aigis_jupyter.agent.deps import SpecDeps
    from aigis_jupyter.databases.engines import ConnectionSpec

    return SpecDeps(ConnectionSpec(id="bench", db_type="sqlite", host=str(path)), **kw)


def _norm(v: Any) -> Any:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (int, float)):
        f = float(v)
        return None if math.isnan(f) else round(f, 4)
    if v is None:
        return None
    return str(v)


def _rows(rows: list[Any]) -> list[tuple[Any, ...]]:
    return [tuple(_norm(v) for v in r) for r in rows]


def same_result(gold: list[Any], pred: list[Any], ordered: bool) -> bool:
    """Equal result sets; order only if `ordered`; columns may come in another order."""
    g, p = _rows(gold), _rows(pred)
    if len(g) != len(p):
        return False
    if g and p and len(g[0]) != len(p[0]):
        return False

    def key(r: tuple[Any, ...]) -> tuple[str, ...]:
        return tuple(sorted(repr(x) for x in r))

    if ordered:
        return g == p or [key(r) for r in g] == [key(r) for r in p]
    return Counter(g) == Counter(p) or Counter(map(key, g)) == Counter(map(key, p))


async def run_one(runner: Any, deps: SqliteDeps, model: str, question: str) -> dict[str, Any]:
    deps.last = None
    deps.results.clear()
    events: list[dict[str, Any]] = []
    first_sql: float | None = None
    t0 = time.perf_counter()
    async for e in runner.run_turn(f"bench-{uuid.uuid4().hex}", question, connection_id="bench",
                                   model_name=model, chart=False):
        if e["type"] == "sql" and first_sql is None:
            first_sql = time.perf_counter() - t0
        events.append(e)
    total = time.perf_counter() - t0
    sqls = [e["sql"] for e in events if e["type"] == "sql"]
    shown = deps.results.get(sqls[-1]) if sqls else None  # the answer's, not the last run
    errors = [e for e in events if e["type"] == "error"]
    answer = events[-1].get("full_response", "")
    return {
        "sql": sqls[-1] if sqls else "",
        "verified": any(e.get("verified") for e in events if e["type"] == "sql"),
        "grounded": grounded(answer, shown, sqls[-1] if sqls else None),
        "attempts": len(sqls),
        "error": errors[0]["message"] if errors else None,
        "result": shown,
        "latency_s": total,
        "sql_latency_s": first_sql,
        "answer": answer,
    }


def grounded(answer: str, result: Any, sql: str | None) -> bool:
    """Whether every number and name of the answer is in the result (or its SQL); the
    product's own closing doubt ("This answer may be wrong: ...") is not a claim."""
    import re as _re

    from aigis_jupyter.agent.doubts import UNSURE_LEAD
    from aigis_jupyter.agent.grounding import Facts, ungrounded

    answer = answer.split(UNSURE_LEAD)[0]

    preview = result.preview(20) if result is not None else {"columns": [], "rows": []}
    facts = Facts.of(preview, sql)
    return not any(ungrounded(s, facts) for s in _re.split(r"(?<=[.!?:])\s+|\n", answer)
                   if s.strip())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="local", help="model name or alias (default: local)")
    ap.add_argument("--eval", type=Path, default=SHARED / "eval" / "chinook_dev.jsonl")
    ap.add_argument("--db", type=Path, default=SHARED / "data" / "chinook" / "chinook.sqlite")
    ap.add_argument("--limit", type=int, default=0, help="first N questions only")
    ap.add_argument("--schema-budget", type=int, default=1_500,
                    help="schema tokens per prompt (default 1500)")
    ap.add_argument("--json", action="store_true", help="print one JSON line per question too")
    ap.add_argument("--examples", type=Path, default=None,
                    help="verified queries to teach first (JSON Lines: question, sql)")
    args = ap.parse_args(argv)

    from aigis_jupyter.agent.doubts import UNSURE_LEAD
    from aigis_jupyter.agent.runner import AgentRunner
    from aigis_jupyter.errors import AigisError
    from aigis_jupyter.models import ModelRegistry
    from aigis_jupyter.settings import Settings

    settings = Settings.from_env(schema_token_budget=args.schema_budget)
    registry = ModelRegistry(settings)
    try:
        info = registry.resolve(args.model)
    except AigisError as exc:
        print(exc.message, file=sys.stderr)
        return 2
    if not args.db.exists():
        print(f"No database at {args.db}", file=sys.stderr)
        return 2
    items = [json.loads(line) for line in args.eval.read_text().splitlines() if line.strip()]
    if args.limit:
        items = items[: args.limit]

    examples: tuple[tuple[str, str], ...] = ()
    if args.examples:
        from aigis_jupyter.teach_commands import read_examples

        examples = tuple((e["question"], e["sql"]) for e in read_examples(args.examples))
    deps = SqliteDeps(args.db, examples=examples)
    runner = AgentRunner(registry=registry, checkpointer_url_or_saver=None, deps=deps,
                         settings=settings)
    gold_db = sqlite3.connect(f"file:{args.db}?mode=ro", uri=True)
    rows_out: list[dict[str, Any]] = []

    async def go() -> None:
        for item in items:
            gold = gold_db.execute(item["gold"]).fetchall()
            ordered = bool(re.search(r"\border\s+by\b", item["gold"], re.I))
            r = await run_one(runner, deps, info.name, item["question"])
            pred = r["result"]
            ok = bool(pred is not None and r["error"] is None and same_result(
                gold, list(pred.df.itertuples(index=False, name=None)), ordered))
            row = {"id": item["id"], "level": item.get("level", ""), "ok": ok,
                   "latency_s": round(r["latency_s"], 2),
                   "sql_latency_s": round(r["sql_latency_s"] or 0.0, 2),
                   "attempts": r["attempts"], "sql": r["sql"], "error": r["error"],
                   "verified": r["verified"], "grounded": r["grounded"],
                   "unsure": UNSURE_LEAD in (r["answer"] or ""),
                   "answer": r["answer"]}
            rows_out.append(row)
            if args.json:
                print(json.dumps(row), flush=True)

    t0 = time.perf_counter()
    asyncio.run(go())
    wall = time.perf_counter() - t0

    print(f"\nmodel: {info.name} ({info.provider})   questions: {len(rows_out)}   "
          f"wall: {wall:.1f} s")
    print(f"{'id':<5} {'level':<7} {'ok':<3} {'turn s':>7} {'sql s':>6} {'tries':>5}  sql")
    for r in rows_out:
        sql = " ".join((r["sql"] or ("ERROR: " + (r["error"] or "")))[:80].split())
        print(f"{r['id']:<5} {r['level']:<7} {'Y' if r['ok'] else '-':<3} "
              f"{r['latency_s']:>7.2f} {r['sql_latency_s']:>6.2f} {r['attempts']:>5}  {sql}")
    print()
    levels = sorted({r["level"] for r in rows_out})
    for level in [*levels, "all"]:
        sel = [r for r in rows_out if level == "all" or r["level"] == level]
        if not sel:
            continue
        acc = sum(r["ok"] for r in sel) / len(sel)
        lat = [r["latency_s"] for r in sel]
        grounded_share = sum(r["grounded"] for r in sel) / len(sel)
        print(f"{level:<7} execution accuracy {acc:6.1%} ({sum(r['ok'] for r in sel)}/{len(sel)})"
              f"   median turn {statistics.median(lat):.2f} s   max {max(lat):.2f} s"
              f"   grounded answers {grounded_share:.0%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
