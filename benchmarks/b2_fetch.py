"""B2 — 1,000,000 rows x 8 mixed columns from PostgreSQL into a pandas DataFrame.

Readers, each in a fresh subprocess (so its peak memory is its own):

* aigis: the guarded path, `run_query` (parser guard, read-only transaction with a
  statement timeout, bounded fetch) with `max_rows` = the row count;
* pandas.read_sql over a SQLAlchemy engine (psycopg 3): what most notebooks do;
* ConnectorX and ADBC (the `fast` extra), when installed: the fastest readers there are.

Peak memory = `ru_maxrss` after the read minus the RSS just before it, in a process that
has already imported everything and run one tiny query through the same reader. The
DataFrame's own size is `memory_usage(deep=True)`. The readers take turns, one fresh
process per read, for three rounds (two for pandas.read_sql); medians are reported.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from typing import Any

from .common import Ctx, med, ms, result, run_json

COLUMNS = """
    id bigint PRIMARY KEY, qty integer, price numeric(12,2), score double precision,
    name text, category varchar(20), created date, updated_at timestamp
"""
FILL = """
INSERT INTO bench_rows
SELECT g, (g % 1000)::int, round((random() * 10000)::numeric, 2),
       CASE WHEN g % 20 = 0 THEN NULL ELSE random() * 100 END,
       'customer ' || g, CASE WHEN g % 25 = 0 THEN NULL ELSE 'category ' || (g % 40) END,
       DATE '2020-01-01' + (g % 1500), TIMESTAMP '2020-01-01' + g * INTERVAL '37 seconds'
FROM generate_series(1, {n}) AS g;
ANALYZE bench_rows;
"""
SQL = "SELECT * FROM bench_rows"
READERS = ("aigis", "read_sql", "connectorx", "adbc")


# --------------------------------------------------------------------------- worker side


def _reader(name: str, url: str, libpq: str) -> tuple[Any, Any]:
    """(warm-up call, read call) for one reader; imports happen here, before measuring."""
    import pandas as pd
    import pyarrow  # noqa: F401  (every reader gets it preloaded: pandas may use it)

    if name == "aigis":
        from aigis_jupyter.databases.engines import ConnectionSpec, EngineCache
        from aigis_jupyter.databases.execute import run_query

        spec = ConnectionSpec.from_url(url, id="b2")
        engine = EngineCache().get(spec)

        def read(sql: str, n: int) -> Any:
            return run_query(engine, spec, sql, max_rows=n, timeout_s=600).df

        return read, read
    if name == "read_sql":
        import sqlalchemy as sa

        eng = sa.create_engine(url)

        def read_sql(sql: str, n: int) -> Any:
            return pd.read_sql(sql, eng)

        return read_sql, read_sql
    if name == "connectorx":
        import connectorx as cx

        def read_cx(sql: str, n: int) -> Any:
            return cx.read_sql(libpq, sql, return_type="pandas")

        return read_cx, read_cx
    if name == "adbc":
        import adbc_driver_postgresql.dbapi as adbc

        conn = adbc.connect(libpq)

        def read_adbc(sql: str, n: int) -> Any:
            with conn.cursor() as cur:
                cur.execute(sql)
                return cur.fetch_df()

        return read_adbc, read_adbc
    raise ValueError(name)


def worker(argv: list[str]) -> None:
    from .common import maxrss_kb, rss_kb

    ap = argparse.ArgumentParser()
    ap.add_argument("reader", choices=READERS)
    ap.add_argument("--url", required=True)
    ap.add_argument("--libpq", required=True)
    ap.add_argument("--rows", type=int, required=True)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    try:
        warm, read = _reader(args.reader, args.url, args.libpq)
    except ImportError as exc:
        print(json.dumps({"reader": args.reader, "skipped": f"not installed: {exc}"}))
        return
    warm("SELECT * FROM bench_rows LIMIT 10", 10)
    gc.collect()
    before = rss_kb()
    t0 = time.perf_counter()
    df = read(SQL, args.rows)
    times = [time.perf_counter() - t0]
    peak_kb = maxrss_kb() - before
    rows, size = len(df), int(df.memory_usage(deep=True).sum())
    dtypes = {c: str(t) for c, t in df.dtypes.items()}
    del df
    for _ in range(args.repeat - 1):
        gc.collect()
        t0 = time.perf_counter()
        df = read(SQL, args.rows)
        times.append(time.perf_counter() - t0)
        del df
    print(json.dumps({"reader": args.reader, "times": times, "rows": rows,
                      "frame_bytes": size, "peak_extra_bytes": peak_kb * 1024,
                      "dtypes": dtypes}))


# --------------------------------------------------------------------------- parent side


def run(ctx: Ctx) -> dict[str, Any]:
    from .common import pg_database

    n = ctx.size(1_000_000, 30_000)  # quick: still large enough for the COPY path
    repeat = ctx.size(3, 1)
    db = ctx.stack.enter_context(pg_database("aigis_bench_rows"))
    t0 = time.perf_counter()
    db.execute(f"CREATE TABLE bench_rows ({COLUMNS});" + FILL.format(n=n))
    ctx.log(f"B2: {n:,} rows loaded in {time.perf_counter() - t0:.1f} s; readers: "
            + ", ".join(READERS))
    # Rounds: every reader once per round, each read in a fresh process, so a burst of
    # load on the machine hits all readers alike instead of one.
    runs: dict[str, list[dict[str, Any]]] = {}
    skipped: set[str] = set()
    for rnd in range(repeat):
        for name in READERS:
            if name in skipped or (name == "read_sql" and rnd >= 2):
                continue  # the slowest reader: two rounds are enough
            r = run_json(["-m", "benchmarks.b2_fetch", "worker", name, "--url", db.url,
                          "--libpq", db.libpq, "--rows", str(n), "--repeat", "1"])
            if r.get("skipped"):
                ctx.log(f"  {name}: {r['skipped']}")
                skipped.add(name)
                continue
            if r["rows"] != n:
                raise RuntimeError(f"{name} read {r['rows']} rows, expected {n}")
            runs.setdefault(name, []).append(r)
    out: dict[str, dict[str, Any]] = {}
    for name, rs in runs.items():
        out[name] = {
            "times": [t for r in rs for t in r["times"]],
            "rows": rs[0]["rows"],
            "frame_bytes": rs[0]["frame_bytes"],
            "peak_extra_bytes": med([r["peak_extra_bytes"] for r in rs]),
            "dtypes": rs[0]["dtypes"],
        }
        ctx.log(f"  {name}: {med(out[name]['times']):.2f} s, peak "
                f"+{out[name]['peak_extra_bytes'] / 2**20:.0f} MB for a "
                f"{out[name]['frame_bytes'] / 2**20:.0f} MB frame")

    ours = out["aigis"]
    t_ours = med(ours["times"])
    t_pd = med(out["read_sql"]["times"])
    fast = {k: v for k, v in out.items() if k in ("connectorx", "adbc")}
    fastest = min(fast, key=lambda k: med(fast[k]["times"])) if fast else None
    t_fast = med(fast[fastest]["times"]) if fastest else None
    mem_ratio = ours["peak_extra_bytes"] / ours["frame_bytes"]
    measured = {
        "rows": n,
        "aigis_s": round(t_ours, 3),
        "aigis_peak_extra_mb": round(ours["peak_extra_bytes"] / 2**20, 1),
        "aigis_frame_mb": round(ours["frame_bytes"] / 2**20, 1),
        "aigis_peak_over_frame": round(mem_ratio, 2),
        "speedup_vs_read_sql": round(t_pd / t_ours, 2),
        "vs_fastest": None if t_fast is None else round(t_ours / t_fast, 2),
    }
    baseline: dict[str, Any] = {}
    for name, r in out.items():
        if name == "aigis":
            continue
        baseline[f"{name}_s"] = round(med(r["times"]), 3)
        baseline[f"{name}_peak_extra_mb"] = round(r["peak_extra_bytes"] / 2**20, 1)
        baseline[f"{name}_frame_mb"] = round(r["frame_bytes"] / 2**20, 1)
    baseline["fastest"] = fastest
    met = (t_pd / t_ours >= 3 and (t_fast is None or t_ours / t_fast <= 1.3)
           and mem_ratio <= 2)
    return result(
        "B2", "1,000,000 rows x 8 columns from PostgreSQL into a DataFrame",
        measured=measured, baseline=baseline, ratio=t_pd / t_ours,
        ratio_means="pandas.read_sql time / aigis guarded-path time",
        target=">= 3x faster than pandas.read_sql, within 1.3x of the fastest reader, "
               "peak memory <= 2x the DataFrame",
        met=met,
        headline=["aigis_s", "read_sql_s", "connectorx_s", "adbc_s", "aigis_peak_over_frame"],
        dtypes={k: v["dtypes"] for k, v in out.items()},
        notes="ms per reader: " + ", ".join(f"{k} {ms(med(v['times'])):.0f}"
                                             for k, v in out.items()),
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker(sys.argv[2:])
