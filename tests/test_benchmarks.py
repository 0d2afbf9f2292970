"""The benchmarks still run: every one of them at a tiny size (`--quick`), no timing asserted.

One subprocess runs the whole suite (as `python -m benchmarks.run --quick` does) against
the live PostgreSQL and the Chinook sample; each benchmark's row is then checked for
shape, not speed. Also here: the PostgreSQL COPY fetch path that B2 measures returns
exactly what the row path returns.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import missing

ROOT = Path(__file__).resolve().parent.parent
IDS = ["B1", "B2", "B3", "B4", "B4-sse", "B5", "B6", "B7", "B8", "B9", "B9-answer", "B10",
       "B11", "B12"]
PLACEHOLDERS: set[str] = set()  # a benchmark waiting for what it measures, if any


@pytest.fixture(scope="module")
def quick(pg_server: str, chinook_dir: Path, tmp_path_factory: pytest.TempPathFactory
          ) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench") / "results.json"
    env = {**os.environ, "AIGIS_TEST_PG": pg_server,
           "AIGIS_SHARED_DIR": str(chinook_dir.parent.parent), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--out", str(out), "-q"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert out.exists(), f"no results written:\n{proc.stdout}\n{proc.stderr[-3000:]}"
    return json.loads(out.read_text())


def test_results_file_has_every_benchmark_and_the_machine(quick: dict[str, Any]) -> None:
    assert quick["mode"] == "quick"
    assert [r["id"] for r in quick["benchmarks"]] == IDS
    machine = quick["machine"]
    assert machine["cpus"] >= 1 and machine["python"]
    for row in quick["benchmarks"]:
        assert row["machine"] == machine
        assert {"measured", "baseline", "ratio", "target", "met"} <= set(row)


@pytest.mark.parametrize("bench_id", IDS)
def test_benchmark_runs(quick: dict[str, Any], bench_id: str) -> None:
    row = next(r for r in quick["benchmarks"] if r["id"] == bench_id)
    assert not row.get("error"), row.get("error")
    if bench_id in PLACEHOLDERS:
        assert row.get("placeholder") and row["met"] is None
        return
    if row.get("skipped"):  # only the embedded model may be missing, and never in CI
        assert bench_id in ("B8", "B12"), row["skipped"]
        missing(f"{bench_id}: {row['skipped']}")
    assert row["measured"], row
    # a row with a target says whether it was met; only a report-only row cannot
    if row["target"] == "report only":
        assert row["met"] is None, row
    else:
        assert isinstance(row["met"], bool), row
    if bench_id != "B4" and bench_id != "B8":  # report-only rows have no baseline
        assert row["baseline"], row
        assert row["ratio"] is not None and row["ratio"] > 0


def test_copy_fetch_path_returns_what_the_row_path_returns(
        pg_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """B2's fast path: a big read-only result read through COPY + pyarrow is the same
    DataFrame (values, dtypes, NULLs, truncation, duplicate names) as the row path's."""
    import pandas as pd
    import pyarrow  # noqa: F401  (a dependency: the COPY path must be testable everywhere)
    import sqlalchemy as sa

    from aigis_jupyter.databases import execute
    from aigis_jupyter.databases.dialects import postgres_copy
    from aigis_jupyter.databases.engines import ConnectionSpec, EngineCache

    eng = sa.create_engine(pg_db)
    with eng.begin() as c:
        c.execute(sa.text("""
            CREATE TABLE t AS
            SELECT g AS id, (g % 7)::smallint AS small,
                   CASE WHEN g % 5 = 0 THEN NULL ELSE g / 7.0 END AS num,
                   CASE WHEN g % 9 = 0 THEN 'NaN'::float8 ELSE g / 3.0 END AS f8,
                   CASE WHEN g % 3 = 0 THEN '' WHEN g % 3 = 1 THEN NULL
                        ELSE E'multi\\nline, "quoted" Luís %' END AS txt,
                   CASE WHEN g % 2 = 0 THEN NULL ELSE g % 4 = 1 END AS flag,
                   DATE '2020-01-01' + g AS day,
                   TIMESTAMP '2020-01-01 00:00:00.5' + g * INTERVAL '1 minute' AS ts,
                   NULL::integer AS nothing
            FROM generate_series(1, 30000) AS g"""))
    eng.dispose()
    spec = ConnectionSpec.from_url(pg_db, id="copy-test")
    cache = EngineCache()
    engine = cache.get(spec)
    calls: list[Any] = []
    real = postgres_copy.copy_frame

    def spy(*args: Any, **kw: Any) -> Any:
        out = real(*args, **kw)
        calls.append(out)
        return out

    monkeypatch.setattr(postgres_copy, "copy_frame", spy)
    # the switch to COPY also asks that the first chunk came back fast: not a test's business
    monkeypatch.setattr(postgres_copy, "COPY_MAX_STARTUP_S", float("inf"))
    try:
        for sql, cap in [("SELECT * FROM t ORDER BY id", 40_000),
                         ("SELECT id, id AS id, txt FROM t ORDER BY id", 25_000)]:
            calls.clear()
            fast = execute.run_query(engine, spec, sql, max_rows=cap, timeout_s=60)
            assert len(calls) == 1 and calls[0] is not None  # this query took the COPY path
            monkeypatch.setattr(postgres_copy, "COPY_MIN_REMAINING", 10**12)
            slow = execute.run_query(engine, spec, sql, max_rows=cap, timeout_s=60)
            monkeypatch.setattr(postgres_copy, "COPY_MIN_REMAINING", 20_000)
            assert len(calls) == 1  # ... and this one the row path
            assert (fast.columns, fast.row_count, fast.truncated) == (
                slow.columns, slow.row_count, slow.truncated)
            pd.testing.assert_frame_equal(fast.df, slow.df)
    finally:
        cache.dispose_all()
