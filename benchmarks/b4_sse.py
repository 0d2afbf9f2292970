"""B4-sse — streaming over HTTP: delay from the model emitting a sentence's last token to
an SSE client reading the sentence, through a real `jupyter server` with the extension.

The scripted `stamped` model (`server_ext.py`) writes B4's answer one word every 20 ms and
appends to each word the `time.monotonic()` at which it emitted it; the client (this
process, raw HTTP/1.1 over asyncio, `jserver.sse_events`) stamps each `chunk` event as it
arrives. CLOCK_MONOTONIC is one clock for every process of the machine, so the difference
is the delay through the whole path: model thread -> agent graph -> service -> SSE handler
-> socket -> client.

Baseline in the same run, same server and connection kind: a bare SSE handler
(`POST /aigis-bench/sse`) writing stamped chunks from the event loop every 20 ms, the
transport's own floor.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .common import Ctx, med, ms, pct, result
from .jserver import bench_server, drain, new_thread, sse_events
from .server_ext import TOKEN_DELAY_S, stamps


async def _bare(srv: Any, n: int) -> list[float]:
    delays: list[float] = []
    async for arrived, event in sse_events(srv.port, f"aigis-bench/sse?n={n}", {}, srv.token):
        if event.get("type") == "chunk":
            delays += [arrived - t for t in stamps(event["content"])]
    return delays


def _chunk_delays(events: list[tuple[float, dict[str, Any]]]) -> list[float]:
    """Per chunk, from its last token's stamp (a sentence's end: the answer is sent a
    checked sentence at a time) to its arrival."""
    return [arrived - found[-1] for arrived, e in events if e.get("type") == "chunk"
            if (found := stamps(str(e.get("content", ""))))]


def run(ctx: Ctx) -> dict[str, Any]:
    turns = ctx.size(5, 1)
    srv = bench_server(ctx)
    ctx.log(f"B4-sse: {turns} turn(s) of the stamped model ({TOKEN_DELAY_S * 1000:.0f} ms per "
            "token) and as many bare SSE streams, alternating")
    ours: list[float] = []
    floor: list[float] = []
    tokens_per_turn = 0
    for _ in range(turns):
        events = asyncio.run(drain(srv, new_thread(srv, "stamped")))
        delays = _chunk_delays(events)
        if not delays:
            raise RuntimeError(f"no stamped chunk arrived: {events[-3:]}")
        tokens_per_turn = len(delays)
        ours += delays
        floor += asyncio.run(_bare(srv, len(delays)))
    ratio = med(ours) / med(floor) if med(floor) > 0 else None
    return result(
        "B4-sse", "Sentence end -> SSE client delay (scripted model, 20 ms per token, real HTTP)",
        measured={
            "tokens": len(ours),
            "median_ms": ms(med(ours)),
            "p90_ms": ms(pct(ours, 90)),
            "p99_ms": ms(pct(ours, 99)),
            "max_ms": ms(max(ours)),
            "tokens_per_turn": tokens_per_turn,
        },
        baseline={
            "bare_sse_median_ms": ms(med(floor)),
            "bare_sse_p90_ms": ms(pct(floor, 90)),
            "bare_sse_max_ms": ms(max(floor)),
        },
        ratio=ratio,
        ratio_means="median delay through the extension / median delay of a bare SSE handler "
                    "on the same server (the transport's floor)",
        target="<= 20 ms median",
        met=bool(med(ours) <= 0.020),
        headline=["median_ms", "p90_ms", "bare_sse_median_ms"],
        notes="server: `jupyter server` subprocess with the extension; client: raw HTTP/1.1 "
              "in the benchmark process; stamps on CLOCK_MONOTONIC in both",
    )
