"""B8 — the embedded model: execution accuracy, latency, doubt and grounding on the Chinook
dev questions and on the project's own larger sets (`benchmarks/questions/`: Chinook and
the demo database, written by hand against the schemas, not from the dev set; and a later
Chinook set, each part written before the rules it then prompted).

Runs `benchmarks/accuracy.py` (the agent's own evaluation: each question a fresh chat
turn through the real agent, result sets compared with the gold query's) with the
`local` model in a subprocess per set. No baseline: the embedded model is a small base
model that demonstrates the product offline.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from .common import EVAL, PYTHON, ROOT, Ctx, Skip, med, result


def ready() -> None:
    """Skip unless the embedded model and the dev questions are here."""
    why = _local_available()
    if why:
        raise Skip(f"the embedded model is not available here: {why}")
    if not EVAL.exists():
        raise Skip(f"no evaluation file at {EVAL}")


def _local_available() -> str | None:
    from aigis_jupyter.errors import AigisError
    from aigis_jupyter.models import ModelRegistry
    from aigis_jupyter.settings import Settings

    try:
        ModelRegistry(Settings.from_env()).resolve("local")
    except AigisError as exc:
        return exc.message
    return None


def accuracy_rows(limit: int, *extra: str) -> tuple[list[dict[str, Any]], float]:
    """`accuracy.py --model local` in a subprocess: one row per question, and the wall time."""
    import os

    args = [PYTHON, str(ROOT / "benchmarks" / "accuracy.py"), "--model", "local", "--json",
            *extra]
    if limit:
        args += ["--limit", str(limit)]
    t0 = time.perf_counter()
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=900,
                          check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not rows:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-10:])
        raise RuntimeError(f"accuracy.py exited {proc.returncode}: {tail}")
    return rows, time.perf_counter() - t0


QUESTIONS = ROOT / "benchmarks" / "questions"


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy, turn times, and the shares of unsure and grounded answers of one set."""
    times = sorted(r["latency_s"] for r in rows)
    levels = {level: round(sum(r["ok"] for r in rows if r["level"] == level)
                           / sum(1 for r in rows if r["level"] == level), 3)
              for level in sorted({r["level"] for r in rows})}
    return {
        "questions": len(rows),
        "accuracy": round(sum(r["ok"] for r in rows) / len(rows), 3),
        "by_level": levels,
        "turn_s_median": round(med(times), 2),
        "turn_s_p90": round(times[min(len(times) - 1, int(0.9 * len(times)))], 2),
        "unsure": round(sum(bool(r.get("unsure")) for r in rows) / len(rows), 3),
        "grounded": round(sum(bool(r.get("grounded")) for r in rows) / len(rows), 3),
        "right_when_sure": round(sum(r["ok"] for r in rows if not r.get("unsure"))
                                 / max(1, sum(1 for r in rows if not r.get("unsure"))), 3),
    }


def run(ctx: Ctx) -> dict[str, Any]:
    from aigis_jupyter.demo import build_demo_sqlite

    from .common import CHINOOK, tmpdir

    ready()
    limit = ctx.size(0, 1)
    demo = build_demo_sqlite(tmpdir(ctx, "aigis_b8_") / "demo.sqlite")
    sets = {"dev": (EVAL, CHINOOK), "chinook_own": (QUESTIONS / "chinook_own.jsonl", CHINOOK),
            "demo_own": (QUESTIONS / "demo_own.jsonl", demo),
            "chinook_later": (QUESTIONS / "chinook_later.jsonl", CHINOOK)}
    ctx.log(f"B8: accuracy.py with the local model on {', '.join(sets)} "
            f"({limit or 'all'} question(s) each)")
    rows: dict[str, list[dict[str, Any]]] = {}
    wall = 0.0
    for name, (questions, db) in sets.items():
        rows[name], took = accuracy_rows(limit, "--eval", str(questions), "--db", str(db))
        wall += took
    summary = {name: _summary(r) for name, r in rows.items()}
    dev, own = summary["dev"], summary["chinook_own"]
    every = [r for r in rows.values() for r in r]
    median_turn = med([r["latency_s"] for r in every])
    return result(
        "B8", "Embedded model (local): execution accuracy, latency and doubt, Chinook dev and "
              "own question sets",
        measured={
            "execution_accuracy": dev["accuracy"],
            "chinook_own_accuracy": own["accuracy"],
            "demo_own_accuracy": summary["demo_own"]["accuracy"],
            "chinook_later_accuracy": summary["chinook_later"]["accuracy"],
            "turn_s_median": round(median_turn, 2),
            "unsure_share": round(sum(bool(r.get("unsure")) for r in every) / len(every), 3),
            "grounded_share": round(sum(bool(r.get("grounded")) for r in every) / len(every),
                                    3),
            "questions": len(every),
            "sets": summary,
            "wall_s": round(wall, 1),
        },
        baseline=None, ratio=None,
        target=">= 50% on the dev set and >= 40% on the own Chinook set, median turn <= 2.5 s",
        met=bool(dev["accuracy"] >= 0.5 and own["accuracy"] >= 0.4 and median_turn <= 2.5),
        headline=["execution_accuracy", "chinook_own_accuracy", "demo_own_accuracy",
                  "chinook_later_accuracy", "turn_s_median", "unsure_share"],
        per_question=[{"set": name, **{k: r.get(k) for k in (
            "id", "level", "ok", "unsure", "grounded", "latency_s", "sql")}}
            for name, rs in rows.items() for r in rs],
    )
