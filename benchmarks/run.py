"""Run every benchmark, write benchmarks/results.json and print the table.

    python -m benchmarks.run            # the full run (under 15 minutes on 2 cores)
    python -m benchmarks.run --quick    # tiny sizes: checks that everything still runs
    python -m benchmarks.run --only B1,B7

Each benchmark builds its own data (a uniquely named PostgreSQL database, dropped after;
or a copy of the Chinook SQLite file) and measures its baseline in the same run, so the
ratios hold on a noisy machine. A benchmark that cannot run here (no server, no extra)
is reported as skipped with the reason; one that fails is reported with its error.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python benchmarks/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "benchmarks"

from benchmarks.common import ROOT, Ctx, Skip, machine_info, result

#: (id, module, title) in the order they run.
BENCHMARKS: list[tuple[str, str, str]] = [
    ("B1", "b1_schema", "Schema snapshot, 2,000 tables x 15 columns"),
    ("B2", "b2_fetch", "1,000,000 rows x 8 columns into a DataFrame"),
    ("B3", "b3_agent", "Agent overhead per question"),
    ("B4", "b4_stream", "Token -> display delay (magic)"),
    ("B4-sse", "b4_sse", "Token -> SSE client delay"),
    ("B5", "b5_server", "Server load over SSE"),
    ("B6", "b6_chart", "Chart from a 1,000,000-row result"),
    ("B7", "b7_prompt", "Prompt size and gold-table recall, 2,000 tables"),
    ("B8", "b8_accuracy", "Embedded model accuracy and latency"),
    ("B9", "b9_startup", "First feedback and first answer after %load_ext"),
    ("B10", "b10_chars", "Characters sent to the model, one question"),
    ("B11", "b11_startup", "jupyter server start with the extension"),
    ("B12", "b12_teach", "Teaching the embedded model: verified queries, grounded answers"),
]

RESULTS = ROOT / "benchmarks" / "results.json"
README = ROOT / "benchmarks" / "README.md"
TABLE_START = "<!-- results:start -->"
TABLE_END = "<!-- results:end -->"


def run_one(bench_id: str, module: str, title: str, ctx: Ctx) -> list[dict[str, Any]]:
    """Run one benchmark module; it returns one result or a list of them."""
    t0 = time.perf_counter()
    try:
        mod = importlib.import_module(f"benchmarks.{module}")
        out = mod.run(ctx)
        rows = out if isinstance(out, list) else [out]
    except Skip as exc:
        rows = [result(bench_id, title, measured={}, baseline=None, ratio=None,
                       target="", met=None, notes=f"skipped: {exc}", skipped=str(exc))]
    except Exception as exc:
        traceback.print_exc()
        rows = [result(bench_id, title, measured={}, baseline=None, ratio=None, target="",
                       met=False, notes=f"error: {type(exc).__name__}: {exc}",
                       error=f"{type(exc).__name__}: {exc}")]
    took = round(time.perf_counter() - t0, 2)
    for r in rows:
        r.setdefault("seconds", took)
    return rows


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def _headline(r: dict[str, Any]) -> str:
    """The figures that decide the target, in one short cell."""
    keys = r.get("headline") or list(r.get("measured", {}))[:3]
    m = {**(r.get("baseline") or {}), **r.get("measured", {})}
    return "; ".join(f"{k} {_fmt(m[k])}" for k in keys if k in m)


def _met(r: dict[str, Any]) -> str:
    if r.get("skipped"):
        return "skipped"
    if r.get("error"):
        return "ERROR"
    return {True: "yes", False: "**no**", None: "report"}[r.get("met")]


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| # | what | measured | ratio | target | met |", "|---|---|---|---|---|---|"]
    for r in rows:
        ratio = "" if r.get("ratio") is None else f"{r['ratio']:,.2f}x"
        lines.append(f"| {r['id']} | {r['title']} | {_headline(r)} | {ratio} | "
                     f"{r.get('target', '')} | {_met(r)} |")
    return "\n".join(lines)


def update_readme(text: str) -> None:
    if not README.exists():
        return
    body = README.read_text()
    if TABLE_START not in body or TABLE_END not in body:
        return
    head, rest = body.split(TABLE_START, 1)
    _, tail = rest.split(TABLE_END, 1)
    README.write_text(f"{head}{TABLE_START}\n{text}\n{TABLE_END}{tail}")


def merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A full run's results with some benchmarks run again (`--only`): their rows replace
    the old ones, in the suite's order; `rerun` lists which, and when."""
    rows = {r["id"]: r for r in old.get("benchmarks", [])}
    rows.update({r["id"]: r for r in new["benchmarks"]})
    order = {bench_id: i for i, (bench_id, _, _) in enumerate(BENCHMARKS)}
    ranked = sorted(rows.values(), key=lambda r: (order.get(r["id"].split("-")[0], 99),
                                                  order.get(r["id"], 99)))
    reruns = [*old.get("rerun", []), {"at": new["generated_at"],
                                      "ids": [r["id"] for r in new["benchmarks"]],
                                      "seconds": new["seconds"]}]
    return {**old, "benchmarks": ranked, "machine": new["machine"], "rerun": reruns}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    ap.add_argument("--only", default="", help="comma-separated ids, e.g. B1,B7")
    ap.add_argument("--out", type=Path, default=None,
                    help=f"results file (default {RESULTS.relative_to(ROOT)}; "
                         "--quick writes nothing unless given)")
    ap.add_argument("--no-readme", action="store_true",
                    help="do not refresh the table in benchmarks/README.md")
    ap.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    args = ap.parse_args(argv)

    ids = {b[0].upper(): b[0] for b in BENCHMARKS}  # `--only b4-sse` works too
    asked = {x.strip().upper() for x in args.only.split(",") if x.strip()}
    unknown = asked - set(ids)
    only = {ids[x] for x in asked - unknown}
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    ctx = Ctx(quick=args.quick, verbose=not args.quiet)
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    machine = machine_info()
    with ctx.stack:
        for bench_id, module, title in BENCHMARKS:
            if only and bench_id not in only:
                continue
            print(f"[{bench_id}] {title}", file=sys.stderr, flush=True)
            for r in run_one(bench_id, module, title, ctx):
                r["machine"] = machine
                rows.append(r)
    total = round(time.perf_counter() - started, 1)
    doc = {
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "seconds": total,
        "machine": machine,
        "benchmarks": rows,
    }
    out = args.out or (None if args.quick else RESULTS)
    if only and out is not None and out.exists() and not args.quick:
        doc = merge(json.loads(out.read_text()), doc)  # the others keep their last figures
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    print(table(rows))
    print(f"\n{len(rows)} results in {total} s" + (f"; written to {out}" if out else ""))
    if not args.quick and out == RESULTS and not args.no_readme:
        update_readme(table(doc["benchmarks"]))
    return 1 if any(r.get("error") for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
