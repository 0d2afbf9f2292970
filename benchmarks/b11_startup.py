"""B11 — what the extension adds to `jupyter server`'s start.

`jupyter server` is started N times with the extension enabled and N times with it disabled
(`ServerApp.jpserver_extensions`), alternating, each a fresh process with fresh Jupyter
directories in tmp; the clock runs from spawning the process until `GET /api/status`
answers 200 (polled every 5 ms). The other server extensions installed in the environment
(JupyterLab's among them) load in both arms, as on a user's machine. The extension's
background warm-up is on, as shipped: it starts 2 s after the extension loads, after the
server answers.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from typing import Any

from .common import Ctx, med, ms, result, run_json, tmpdir
from .jserver import JupyterServer

TARGET_S = 0.050


def worker() -> None:
    """The extension's own start-up work in a fresh process that has already imported what a
    server imports anyway: its package, its routes and OpenAPI-free handler table, its app."""
    import jupyter_server.serverapp  # noqa: F401  (the server's own imports, not timed)

    with contextlib.suppress(ImportError):
        import jupyterlab  # noqa: F401
    t0 = time.perf_counter()
    import aigis_jupyter

    app_cls = aigis_jupyter._jupyter_server_extension_points()[0]["app"]
    from aigis_jupyter.server.app import url_handlers

    handlers = url_handlers()
    app_cls()
    print(json.dumps({"seconds": time.perf_counter() - t0, "routes": len(handlers)}))


def run(ctx: Ctx) -> dict[str, Any]:
    n = ctx.size(10, 1)
    tmp = tmpdir(ctx, "aigis_b11_")
    ctx.log(f"B11: jupyter server started {n} time(s) each with the extension enabled and "
            "disabled, alternating")
    times: dict[bool, list[float]] = {True: [], False: []}
    cpu: dict[bool, list[float]] = {True: [], False: []}
    pairs: list[float] = []  # enabled - disabled, started back to back
    for i in range(n):
        # alternate which arm goes first, so a slow or fast patch of the machine hits both
        for enabled in ((True, False) if i % 2 == 0 else (False, True)):
            srv = JupyterServer(tmp / f"{i}-{'on' if enabled else 'off'}", aigis=enabled)
            try:
                times[enabled].append(srv.start())
                cpu[enabled].append(srv.cpu_s())
                if enabled:  # the extension answers too (not timed)
                    status, _ = srv.get("aigis/openapi.json")
                    if status != 200:
                        raise RuntimeError(f"the extension did not answer: {status}")
            finally:
                srv.stop()
            time.sleep(0.2)  # let the stopped server's exit settle
        pairs.append(times[True][-1] - times[False][-1])
    own = [run_json(["-m", "benchmarks.b11_startup", "worker"])["seconds"]
           for _ in range(ctx.size(5, 1))]
    on, off = med(times[True]), med(times[False])
    added = on - off
    return result(
        "B11", "jupyter server start with the extension enabled vs disabled",
        measured={
            "enabled_median_ms": ms(on),
            "added_ms": ms(added),
            "added_paired_median_ms": ms(med(pairs)),
            "added_of_fastest_ms": ms(min(times[True]) - min(times[False])),
            "cpu_added_ms": ms(med(cpu[True]) - med(cpu[False])),
            "extension_own_ms": ms(med(own)),
            "enabled_cpu_median_ms": ms(med(cpu[True])),
            "enabled_ms": [ms(t) for t in times[True]],
            "starts_each": n,
        },
        baseline={
            "disabled_median_ms": ms(off),
            "disabled_cpu_median_ms": ms(med(cpu[False])),
            "disabled_ms": [ms(t) for t in times[False]],
        },
        ratio=on / off if off else None,
        ratio_means="median start with the extension / median start without it",
        target=f"<= {TARGET_S * 1000:.0f} ms added (median enabled - median disabled)",
        met=bool(added <= TARGET_S),
        headline=["added_ms", "enabled_median_ms", "disabled_median_ms", "extension_own_ms"],
        notes="start = process spawn until GET /api/status answers 200; other installed "
              "server extensions load in both arms. added_ms = median enabled - median "
              "disabled (the target's measure); added_paired_median_ms = median of the "
              "differences of back-to-back pairs; added_of_fastest_ms = fastest enabled - "
              "fastest disabled; cpu_added_ms = the same medians of the server process's CPU "
              "time (user + system, 10 ms ticks) when it first answered; extension_own_ms = "
              "importing the extension, building its handler table and its app, timed inside "
              "a fresh process that already imported jupyter_server and jupyterlab (what the "
              "extension itself adds, without the start's noise)",
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        worker()
