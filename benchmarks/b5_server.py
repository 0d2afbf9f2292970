"""B5 — server load: 100 concurrent chats over SSE on one server (placeholder).

Needs the REST + SSE server extension, which comes in a later issue. When it lands, this
module starts it on a free port with a scripted model (20 ms per token, `scripted.py`),
opens one chat alone and then 100 at once, and reports time to first event (p50/p99),
errors and the server's memory before, during and after.
"""

from __future__ import annotations

from typing import Any

from .common import Ctx, result


def run(ctx: Ctx) -> dict[str, Any]:
    return result(
        "B5", "Server load: 100 concurrent chats over SSE",
        measured={}, baseline={"one_chat_alone": None}, ratio=None,
        target="time to first event p99 <= 250 ms; zero errors; memory back to baseline",
        met=None, placeholder=True,
        notes="placeholder: needs the REST + SSE server (a later issue)",
    )
