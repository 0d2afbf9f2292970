"""B9 — `%load_ext aigis_jupyter` in a fresh kernel process, and the first answer's latency.

Each measurement is a fresh Python process with an IPython shell (IPython itself is
imported before the clock starts, as in a kernel). It times `%load_ext`, then the first
`%%aigis` question on a Chinook connection saved earlier (the store exists, as it would
after the first session), answered by a scripted zero-latency model:

* first_display: the cell's first visible output (the "Thinking…" placeholder);
* first_answer: the first words of the answer on screen (target: <= 1 s);
* done: the cell returns.

Baseline in the same run, also fresh processes: `%load_ext sql` (JupySQL), then its first
result (`%sql sqlite:///chinook` + `%sql SELECT COUNT(*) …`).
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import time
from contextlib import redirect_stdout
from typing import Any

from .common import Ctx, med, ms, result, run_json, stamped_publisher, tmpdir

QUESTION = "How many customers are there?"
HEAVY = ("pandas", "numpy", "sqlalchemy", "langgraph", "langchain_core", "altair", "sqlglot")
#: Modules a warm-up thread would import after %load_ext (simulated in `aigis-prewarm`).
PREWARM = ("aigis_jupyter.service.core", "aigis_jupyter.service.scope",
           "aigis_jupyter.store.db", "alembic",
           "aigis_jupyter.agent.runner", "aigis_jupyter.databases.execute",
           "aigis_jupyter.databases.schema", "pandas")
PREWARM_PAUSE_S = 4.0


# --------------------------------------------------------------------------- worker side


def _shell() -> tuple[Any, Any]:
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    pub = stamped_publisher(shell)
    shell.display_pub = pub
    return shell, pub


def _scripted_on_first_use() -> None:
    """Register the scripted model when the magic first builds its service (not before:
    building the service early would move its cost out of the first answer)."""
    import aigis_jupyter.client.local as client

    real = client.local_service

    def factory() -> Any:
        from .scripted import ScriptedModel, text_of

        def respond(messages: list[Any]) -> str:
            if "Schema:" in text_of(messages[0].content):
                return "SELECT COUNT(*) AS customers FROM Customer"
            return "The answer is 59 customers."

        return ScriptedModel(responder=respond)

    def local_service(settings: Any = None) -> Any:
        svc = real(settings)
        if not getattr(svc, "_bench_scripted", False):
            from aigis_jupyter.models import ModelInfo

            svc.models.register(ModelInfo(name="scripted", provider="scripted",
                                          supports_tools=False), factory)
            svc._bench_scripted = True
        return svc

    client.local_service = local_service  # type: ignore[assignment]


def worker(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("which", choices=("aigis", "aigis-prewarm", "jupysql"))
    ap.add_argument("--db", required=True)
    args = ap.parse_args(argv)
    shell, pub = _shell()
    before = set(sys.modules)
    t0 = time.perf_counter()
    shell.run_line_magic("load_ext", "sql" if args.which == "jupysql" else "aigis_jupyter")
    load_s = time.perf_counter() - t0
    heavy = sorted(m for m in HEAVY if m in sys.modules and m not in before)
    out: dict[str, Any] = {"which": args.which, "load_s": load_s,
                           "heavy_imported_on_load": heavy}
    if args.which == "aigis-prewarm":
        # what a background warm-up started by %load_ext would do while the user types
        import threading

        def warm() -> None:
            import importlib

            for name in PREWARM:
                importlib.import_module(name)

        threading.Thread(target=warm, daemon=True).start()
        time.sleep(PREWARM_PAUSE_S)
    if args.which != "jupysql":
        _scripted_on_first_use()
        pub.records.clear()
        t1 = time.perf_counter()
        shell.run_cell_magic("aigis", "--no-chart --model scripted --conn chinook", QUESTION)
        done = time.perf_counter() - t1
        first = pub.records[0][0] - t1 if pub.records else None
        answer = next((t - t1 for t, text in pub.records if "The answer" in text), None)
        sql = next((t - t1 for t, text in pub.records if "SQL:" in text), None)
        out.update(first_display_s=first, first_sql_s=sql, first_answer_s=answer,
                   done_s=done, answered=answer is not None)
    else:
        t1 = time.perf_counter()
        with redirect_stdout(io.StringIO()) as buf:
            shell.run_line_magic("sql", f"sqlite:///{args.db}")
            res = shell.run_cell("%sql SELECT COUNT(*) AS n FROM Customer")
        done = time.perf_counter() - t1
        out.update(first_result_s=done, answered="59" in buf.getvalue() or bool(res.result))
    print(json.dumps(out))


# --------------------------------------------------------------------------- parent side


def run(ctx: Ctx) -> dict[str, Any]:
    from aigis_jupyter.client import current_username
    from aigis_jupyter.service import AigisService
    from aigis_jupyter.settings import Settings

    from .common import chinook_spec

    reps = ctx.size(3, 1)
    tmp = tmpdir(ctx, "aigis_b9_")
    db = tmp / "chinook.sqlite"
    shutil.copy(chinook_spec().host, db)
    data = tmp / "data"
    svc = AigisService(Settings(data_dir=data))
    svc.user(current_username(), is_admin=True).create_connection(
        {"name": "chinook", "db_type": "sqlite", "host": str(db)})
    svc.close()
    env = {"AIGIS_DATA_DIR": str(data)}
    ctx.log(f"B9: {reps} fresh process(es) each for aigis_jupyter and JupySQL")
    ours: list[dict[str, Any]] = []
    warmed: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    for _ in range(reps):
        ours.append(run_json(["-m", "benchmarks.b9_startup", "worker", "aigis", "--db",
                              str(db)], env=env, timeout=300))
        warmed.append(run_json(["-m", "benchmarks.b9_startup", "worker", "aigis-prewarm",
                                "--db", str(db)], env=env, timeout=300))
        theirs.append(run_json(["-m", "benchmarks.b9_startup", "worker", "jupysql", "--db",
                                str(db)], env=env, timeout=300))
    if not all(r["answered"] for r in ours):
        raise RuntimeError(f"the first %%aigis answer never showed: {ours}")

    def m(rows: list[dict[str, Any]], key: str) -> float:
        return med([r[key] for r in rows if r.get(key) is not None])

    load, first_answer = m(ours, "load_s"), m(ours, "first_answer_s")
    sql_load = m(theirs, "load_s")
    return result(
        "B9", "%load_ext and the first %%aigis answer, fresh process",
        measured={
            "load_ms": ms(load),
            "first_display_ms": ms(m(ours, "first_display_s")),
            "first_sql_ms": ms(m(ours, "first_sql_s")),
            "first_answer_ms": ms(first_answer),
            "done_ms": ms(m(ours, "done_s")),
            "heavy_imported_on_load": ours[0]["heavy_imported_on_load"],
            "first_answer_if_prewarmed_ms": ms(m(warmed, "first_answer_s")),
        },
        baseline={
            "jupysql_load_ms": ms(sql_load),
            "jupysql_first_result_ms": ms(m(theirs, "first_result_s")),
            "jupysql_heavy_imported_on_load": theirs[0]["heavy_imported_on_load"],
        },
        ratio=sql_load / load if load else None,
        ratio_means="JupySQL %load_ext time / aigis %load_ext time",
        target="load <= 0.3 s (lazy imports); first output <= 1 s",
        met=bool(load <= 0.3 and first_answer <= 1.0),
        headline=["load_ms", "first_answer_ms", "jupysql_load_ms"],
        notes="first output judged on the first words of the answer on screen; "
              "the placeholder shows at first_display_ms. first_answer_if_prewarmed_ms "
              "simulates a warm-up thread started by %load_ext (heavy imports done while "
              f"the user types, {PREWARM_PAUSE_S:g} s): not what ships today",
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker(sys.argv[2:])
