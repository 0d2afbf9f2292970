"""B8 — the embedded model: execution accuracy and latency on the Chinook dev questions.

Runs `benchmarks/accuracy.py` (the agent's own evaluation: each question a fresh chat
turn through the real agent, result sets compared with the gold query's) with the
`local` model in a subprocess, and reports its figures. Report only: no target, and no
baseline (the embedded model is a small base model that demonstrates the product offline).
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from .common import EVAL, PYTHON, ROOT, Ctx, Skip, med, result


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


def run(ctx: Ctx) -> dict[str, Any]:
    why = _local_available()
    if why:
        raise Skip(f"the embedded model is not available here: {why}")
    if not EVAL.exists():
        raise Skip(f"no evaluation file at {EVAL}")
    limit = ctx.size(0, 1)
    ctx.log(f"B8: accuracy.py with the local model ({limit or 'all'} question(s))")
    rows, wall = accuracy_rows(limit)
    levels: dict[str, dict[str, Any]] = {}
    for level in sorted({r["level"] for r in rows}):
        sel = [r for r in rows if r["level"] == level]
        levels[level] = {"questions": len(sel),
                         "accuracy": round(sum(r["ok"] for r in sel) / len(sel), 3)}
    accuracy = sum(r["ok"] for r in rows) / len(rows)
    return result(
        "B8", "Embedded model (local): execution accuracy and latency, Chinook dev",
        measured={
            "questions": len(rows),
            "execution_accuracy": round(accuracy, 3),
            "by_level": levels,
            "turn_s_median": round(med([r["latency_s"] for r in rows]), 2),
            "turn_s_max": round(max(r["latency_s"] for r in rows), 2),
            "sql_s_median": round(med([r["sql_latency_s"] for r in rows]), 2),
            "repair_attempts": sum(max(0, r["attempts"] - 1) for r in rows),
            "wall_s": round(wall, 1),
        },
        baseline=None, ratio=None, target="report only", met=None,
        headline=["execution_accuracy", "turn_s_median", "questions"],
        per_question=[{k: r[k] for k in ("id", "level", "ok", "latency_s", "sql")}
                      for r in rows],
    )
