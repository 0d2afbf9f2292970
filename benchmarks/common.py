"""What every benchmark shares: paths, the result record, scratch databases, subprocesses.

Benchmarks report ratios measured in the same run (the product next to its baseline), so
the figures hold on a noisy machine; absolute times are kept for reference only.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("AIGIS_SHARED_DIR", ROOT.parent / "shared"))
CHINOOK = SHARED / "data" / "chinook" / "chinook.sqlite"
EVAL = SHARED / "eval" / "chinook_dev.jsonl"
PG_ADMIN_URL = os.environ.get(
    "AIGIS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PYTHON = sys.executable


class Skip(Exception):
    """A benchmark cannot run here (a missing server, file or extra): reported, not failed."""


@dataclass
class Ctx:
    """One run: its size, a log, and resources shared between benchmarks (dropped at exit)."""

    quick: bool
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    shared: dict[str, Any] = field(default_factory=dict)
    verbose: bool = True

    def log(self, msg: str) -> None:
        if self.verbose:
            print(f"  {msg}", file=sys.stderr, flush=True)

    def size(self, full: Any, quick: Any) -> Any:
        return quick if self.quick else full

    def once(self, key: str, make: Callable[[Ctx], Any]) -> Any:
        """A resource built on first use and kept for the rest of the run."""
        if key not in self.shared:
            self.shared[key] = make(self)
        return self.shared[key]


def result(
    bench_id: str,
    title: str,
    *,
    measured: dict[str, Any],
    baseline: dict[str, Any] | None,
    ratio: float | None,
    ratio_means: str = "",
    target: str,
    met: bool | None,
    notes: str = "",
    **extra: Any,
) -> dict[str, Any]:
    """One row of results.json (`met` is None for report-only or placeholder rows)."""
    out = {
        "id": bench_id,
        "title": title,
        "measured": measured,
        "baseline": baseline,
        "ratio": None if ratio is None else round(float(ratio), 3),
        "ratio_means": ratio_means,
        "target": target,
        "met": met,
        "notes": notes,
    }
    out.update(extra)
    return out


# --------------------------------------------------------------------------- numbers


def med(xs: list[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


def pct(xs: list[float], q: float) -> float:
    """The q-th percentile (0-100), nearest-rank."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    k = max(0, min(len(s) - 1, round(q / 100 * len(s) + 0.5) - 1))
    return float(s[k])


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def timed(fn: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    """Seconds per call for `repeat` calls, and the last call's return value."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


# --------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total_mb() -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return None


def _versions(names: list[str]) -> dict[str, str]:
    from importlib import metadata

    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "not installed"
    return out


def pg_version() -> str | None:
    try:
        import psycopg

        with psycopg.connect(libpq_url(PG_ADMIN_URL), connect_timeout=3) as c:
            return str(c.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    except Exception:
        return None


def machine_info() -> dict[str, Any]:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cpus": cpus,
        "memory_mb": _mem_total_mb(),
        "postgres": pg_version(),
        "packages": _versions([
            "aigis-jupyter", "pandas", "pyarrow", "sqlalchemy", "psycopg", "connectorx",
            "adbc-driver-postgresql", "langchain", "langchain-core", "langgraph",
            "langchain-community", "jupysql", "ipython", "altair", "llama_cpp_python",
        ]),
    }


# --------------------------------------------------------------------------- PostgreSQL


def libpq_url(sa_url: str) -> str:
    """`postgresql+psycopg://…` -> `postgresql://…` (what libpq, ConnectorX and ADBC take)."""
    from sqlalchemy.engine import make_url

    u = make_url(sa_url).set(drivername="postgresql")
    return u.render_as_string(hide_password=False)


@dataclass
class PgDb:
    name: str
    url: str  # SQLAlchemy URL (psycopg 3)

    @property
    def libpq(self) -> str:
        return libpq_url(self.url)

    def spec(self, conn_id: str | None = None) -> Any:
        from aigis_jupyter.databases.engines import ConnectionSpec

        return ConnectionSpec.from_url(self.url, id=conn_id or f"bench-{self.name}")

    def execute(self, sql: str) -> None:
        """Run a script (simple protocol: several statements, one transaction)."""
        import psycopg

        with psycopg.connect(self.libpq) as c:
            c.execute(sql.encode())  # type: ignore[arg-type]


def pg_available() -> bool:
    return pg_version() is not None


@contextlib.contextmanager
def pg_database(prefix: str = "aigis_bench") -> Iterator[PgDb]:
    """A uniquely named PostgreSQL database, dropped (WITH FORCE) afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    if not pg_available():
        raise Skip(f"PostgreSQL is not reachable at {make_url(PG_ADMIN_URL).host}")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq_url(PG_ADMIN_URL), autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}".encode())  # type: ignore[arg-type]
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield PgDb(name, url)
    finally:
        with psycopg.connect(libpq_url(PG_ADMIN_URL), autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)".encode())  # type: ignore[arg-type]


# --------------------------------------------------------------------------- subprocesses


def run_json(args: list[str], *, timeout: float = 600, env: dict[str, str] | None = None,
             ) -> dict[str, Any]:
    """Run `python ARGS` from the project root and return the JSON object it prints last."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    proc = subprocess.run(
        [PYTHON, *args], cwd=ROOT, env=full_env, capture_output=True, text=True,
        timeout=timeout, check=False,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
    raise RuntimeError(f"`python {' '.join(args[:3])} …` exited {proc.returncode}:\n{tail}")


def rss_kb() -> int:
    """Resident set size now (Linux), in KiB."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def maxrss_kb() -> int:
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


# --------------------------------------------------------------------------- agent deps


def BenchDeps(spec: Any, **kw: Any) -> Any:
    """`AgentDeps` over one connection through the product's own database layer: the same
    calls the service makes, without the store and audit log around them."""
    from aigis_jupyter.agent.deps import SpecDeps

    return SpecDeps(spec, **kw)


def chinook_spec(conn_id: str = "chinook") -> Any:
    from aigis_jupyter.databases.engines import ConnectionSpec

    if not CHINOOK.exists():
        raise Skip(f"the Chinook sample is missing at {CHINOOK}")
    return ConnectionSpec(id=conn_id, db_type="sqlite", host=str(CHINOOK))


def tmpdir(ctx: Ctx, prefix: str) -> Path:
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix=prefix))
    ctx.stack.callback(shutil.rmtree, d, True)
    return d


def stamped_publisher(shell: Any) -> Any:
    """An IPython display publisher that timestamps every display and update (B4, B9)."""
    from IPython.core.displaypub import DisplayPublisher

    class Stamped(DisplayPublisher):
        """Keeps (time, text/plain) of every display and update."""

        def __init__(self, **kw: Any) -> None:
            super().__init__(**kw)
            self.records: list[tuple[float, str]] = []

        def publish(self, data: Any, metadata: Any = None, source: Any = None, *,
                    transient: Any = None, update: bool = False, **kw: Any) -> None:
            self.records.append((time.perf_counter(), str(data.get("text/plain", ""))))

    return Stamped(shell=shell)
