"""B6 — a Vega-Lite chart from a 1,000,000-row result, against embedding the raw rows.

The result is a DataFrame shaped like a query's (order date, category, region, amount,
quantity; 40 categories). Five charts a user would ask for: a time series, bars per
category, a scatter plot, a histogram, and the recommender's pick for the whole frame.
Each is built by `charts.build_chart` (what `ask_analyst` calls) and measured: build time
(median) and spec size (compact JSON, as sent over SSE or stored in a notebook).
Baseline: the same chart with every row inlined in `data.values` (pandas `to_json`, the
fastest way to do it). Also reported: the first chart of a fresh process, which pays for
importing the validator.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from .common import Ctx, med, ms, result, run_json, timed

SHAPES = [
    ("time series", ["order_date", "amount"], "Revenue over time"),
    ("bars", ["category", "amount"], "Revenue per category"),
    ("scatter", ["amount", "quantity"], "Amount against quantity as a scatter plot"),
    ("histogram", ["amount"], "Distribution of order amounts"),
    ("whole frame", None, "Orders"),
]


def frame(n: int) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(7)
    start = np.datetime64("2021-01-01T00:00:00", "s")
    seconds = rng.integers(0, 3 * 365 * 86_400, n)
    cats = np.array([f"category {i:02d}" for i in range(40)], dtype=object)
    regions = np.array(["North", "South", "East", "West", "Central"], dtype=object)
    return pd.DataFrame({
        "order_date": (start + seconds.astype("timedelta64[s]")).astype("datetime64[us]"),
        "category": pd.array(cats[rng.zipf(1.6, n) % 40], dtype="str"),
        "region": pd.array(regions[rng.integers(0, 5, n)], dtype="str"),
        "amount": rng.gamma(2.0, 40.0, n).round(2),
        "quantity": rng.integers(1, 20, n),
    })


def worker(n: int) -> None:
    """The first chart of a fresh process (imports the validator on the way)."""
    df = frame(n)[["category", "amount"]]
    t0 = time.perf_counter()
    from aigis_jupyter import charts

    charts.build_chart(df, "Revenue per category")
    print(json.dumps({"first_chart_s": time.perf_counter() - t0}))


def run(ctx: Ctx) -> dict[str, Any]:
    from aigis_jupyter import charts

    n = ctx.size(1_000_000, 20_000)
    reps = ctx.size(3, 1)
    df = frame(n)
    ctx.log(f"B6: {n:,}-row frame; {len(SHAPES)} charts x {reps}, raw-row baseline once each")
    rows: dict[str, dict[str, Any]] = {}
    for name, cols, question in SHAPES:
        part = df if cols is None else df[cols]
        charts.build_chart(part.head(1000), question)  # warm the validator
        times, out = timed(lambda p=part, q=question: charts.build_chart(p, q), reps)
        spec = out["spec"]
        size = len(json.dumps(spec, separators=(",", ":"), default=str))
        t0 = time.perf_counter()
        raw_values = part.to_json(orient="records", date_format="iso")
        raw = {k: v for k, v in spec.items() if k != "data"}
        raw_size = len(json.dumps(raw, separators=(",", ":"))) + len(raw_values) + 20
        raw_s = time.perf_counter() - t0
        mark = spec.get("mark")
        rows[name] = {
            "build_ms": ms(med(times)),
            "spec_kb": round(size / 1024, 1),
            "points": len(spec["data"]["values"]),
            "mark": mark.get("type") if isinstance(mark, dict) else mark,
            "raw_spec_kb": round(raw_size / 1024, 1),
            "raw_build_ms": ms(raw_s),
        }
        ctx.log(f"  {name}: {rows[name]['build_ms']:.0f} ms, {rows[name]['spec_kb']} KB "
                f"(raw rows: {rows[name]['raw_spec_kb'] / 1024:.1f} MB)")
    first = run_json(["-m", "benchmarks.b6_chart", "worker", str(n)])["first_chart_s"]
    worst_ms = max(r["build_ms"] for r in rows.values())
    worst_kb = max(r["spec_kb"] for r in rows.values())
    raw_kb = med([r["raw_spec_kb"] for r in rows.values()])
    return result(
        "B6", "Chart from a 1,000,000-row result",
        measured={"rows": n, "max_build_ms": worst_ms, "max_spec_kb": worst_kb,
                  "first_chart_in_fresh_process_ms": ms(first),
                  "charts": {k: {x: v[x] for x in ("build_ms", "spec_kb", "points", "mark")}
                             for k, v in rows.items()}},
        baseline={"raw_spec_kb_median": raw_kb,
                  "raw": {k: {x: v[x] for x in ("raw_spec_kb", "raw_build_ms")}
                          for k, v in rows.items()}},
        ratio=raw_kb / worst_kb,
        ratio_means="raw-rows spec size (median) / largest aigis spec",
        target="spec <= 200 KB, built in <= 500 ms (every chart)",
        met=bool(worst_kb <= 200 and worst_ms <= 500),
        headline=["max_build_ms", "max_spec_kb", "raw_spec_kb_median"],
        notes="build times are for a warm process; the first chart of a fresh process "
              "also imports the Vega-Lite validator (first_chart_in_fresh_process_ms)",
    )


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "worker":
        worker(int(sys.argv[2]))
