"""B5 — server load: 100 chats at once over SSE on one `jupyter server` with the extension.

Each chat is its own thread on the Chinook connection, answered by the scripted model
(`server_ext.py`: the SQL, then a 12-word answer at 20 ms per word), asked over its own
raw HTTP/1.1 connection (`jserver.sse_events`). All chats start together; for each, the
time from opening the connection to the first event (`status`), whether the stream ended
with `end` and no `error`, and how long it took.

Baseline in the same run: one chat alone on the same server (time to first event, median of
a few). Memory: the server process's RSS after a full garbage collection in it
(`POST /aigis-bench/gc`), before the wave (after a warm-up turn) and after it; the full
run sends two waves, so growth that repeats (a leak) shows apart from a one-off
high-water mark.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .common import Ctx, med, ms, pct, result
from .jserver import bench_server, new_thread, release_bench_server, sse_events

#: "Back to baseline": the RSS after the last wave, a GC and malloc_trim, within this much
#: of the same measure before the first wave.
MEMORY_SLACK_KB = 4 * 1024
MEMORY_SLACK_FRACTION = 0.02


async def _chat(srv: Any, thread_id: str) -> dict[str, Any]:
    out: dict[str, Any] = {"first_s": None, "total_s": None, "error": None, "events": 0}
    t0 = time.monotonic()
    try:
        async for arrived, event in sse_events(
                srv.port, f"aigis/chat/{thread_id}/message",
                {"text": "How many customers are there?", "chart": False}, srv.token):
            if out["first_s"] is None:
                out["first_s"] = arrived - t0
            out["events"] += 1
            if event.get("type") == "error":
                out["error"] = f"{event.get('reason')}: {event.get('message')}"
            if event.get("type") == "end":
                out["ended"] = True
        if not out.get("ended") and out["error"] is None:
            out["error"] = "the stream ended without `end`"
    except Exception as exc:  # a refused request, a dropped connection
        out["error"] = f"{type(exc).__name__}: {exc}"
    out["total_s"] = time.monotonic() - t0
    return out


async def _wave(srv: Any, thread_ids: list[str]) -> list[dict[str, Any]]:
    return await asyncio.gather(*(_chat(srv, t) for t in thread_ids))


def _gc_rss_kb(srv: Any) -> tuple[int, int]:
    """RSS after a full GC in the server, and after glibc's malloc_trim too (or the same)."""
    out = srv.call("POST", "aigis-bench/gc")
    return int(out["rss_kb"]), int(out["trimmed_rss_kb"] or out["rss_kb"])


def run(ctx: Ctx) -> dict[str, Any]:
    n = ctx.size(100, 8)
    waves = ctx.size(2, 1)
    srv = bench_server(ctx)
    try:
        ctx.log(f"B5: {n} concurrent chats over SSE, {waves} wave(s); one chat alone first")
        alone = []
        for _ in range(ctx.size(5, 2)):
            r = asyncio.run(_wave(srv, [new_thread(srv, "scripted")]))[0]
            if r["error"]:
                raise RuntimeError(f"a chat alone failed: {r['error']}")
            alone.append(r)
        rss_before, trimmed_before = _gc_rss_kb(srv)
        rss_peak = rss_before
        rss_after: list[int] = []
        trimmed_after: list[int] = []
        chats: list[dict[str, Any]] = []
        walls: list[float] = []
        for _ in range(waves):
            threads = [new_thread(srv, "scripted") for _ in range(n)]
            t0 = time.monotonic()
            wave = asyncio.run(_wave(srv, threads))
            walls.append(time.monotonic() - t0)
            rss_peak = max(rss_peak, srv.rss_kb())
            after, trimmed = _gc_rss_kb(srv)
            rss_after.append(after)
            trimmed_after.append(trimmed)
            chats += wave
    finally:
        release_bench_server(ctx)
    errors = [c["error"] for c in chats if c["error"]]
    first = [c["first_s"] for c in chats if c["first_s"] is not None]
    total = [c["total_s"] for c in chats if not c["error"]]
    alone_first = med([c["first_s"] for c in alone])
    grown_kb = trimmed_after[-1] - trimmed_before
    back = grown_kb <= max(MEMORY_SLACK_KB, MEMORY_SLACK_FRACTION * trimmed_before)
    per_wave_kb = trimmed_after[-1] - trimmed_after[-2] if len(trimmed_after) > 1 else None
    p99 = pct(first, 99) if first else float("inf")
    return result(
        "B5", f"Server load: {n} concurrent chats over SSE (scripted model, 20 ms per token)",
        measured={
            "chats": len(chats),
            "first_event_p99_ms": ms(p99),
            "first_event_p50_ms": ms(med(first)),
            "first_event_max_ms": ms(max(first)) if first else None,
            "errors": len(errors),
            "chat_total_p50_ms": ms(med(total)) if total else None,
            "chat_total_max_ms": ms(max(total)) if total else None,
            "wave_wall_s": [round(w, 2) for w in walls],
            "rss_before_mb": round(rss_before / 1024, 1),
            "rss_peak_mb": round(rss_peak / 1024, 1),
            "rss_after_gc_mb": [round(r / 1024, 1) for r in rss_after],
            "rss_trimmed_before_mb": round(trimmed_before / 1024, 1),
            "rss_trimmed_after_mb": [round(r / 1024, 1) for r in trimmed_after],
            "rss_growth_mb": round(grown_kb / 1024, 1),
            "rss_growth_last_wave_mb": None if per_wave_kb is None else round(per_wave_kb / 1024,
                                                                               1),
            "error_samples": sorted(set(errors))[:5],
        },
        baseline={
            "one_chat_alone_first_event_ms": ms(alone_first),
            "one_chat_alone_total_ms": ms(med([c["total_s"] for c in alone])),
        },
        ratio=p99 / alone_first if alone_first else None,
        ratio_means="time to first event, p99 of the concurrent chats / one chat alone",
        target="time to first event p99 <= 250 ms; zero errors; memory back to baseline",
        met=bool(p99 <= 0.250 and not errors and back),
        headline=["first_event_p99_ms", "errors", "rss_growth_mb"],
        notes=f"memory back to baseline: RSS after the last wave, a GC and malloc_trim within "
              f"max({MEMORY_SLACK_KB // 1024} MB, {MEMORY_SLACK_FRACTION:.0%}) of the same "
              f"before the first wave ({'yes' if back else 'no'}); rss_growth_last_wave_mb is "
              "what the last wave alone added (a leak grows every wave)",
    )
