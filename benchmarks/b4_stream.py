"""B4 — streaming: delay from the model emitting a sentence's last token to the magic's
display showing the sentence.

`%%aigis` runs in a real IPython shell on a real store, agent and Chinook connection; the
scripted model writes its answer one word every 20 ms (a brisk real model) and stamps
each token as it yields it. A recording display publisher stamps every display update.
The agent shows an answer a sentence at a time, once the sentence is checked against the
result (`agent/grounding.py`), so the delay measured is from the token that ends a
sentence to the first update whose text contains the answer up to there.
Measured with the magic as shipped (`AigisMagics.update_interval`, which batches display
updates), with `update_interval = 0.02`, and with updates on every token (the pipeline's
own latency).

The other half of B4, token -> SSE client over a real server, is `B4-sse` (`b4_sse.py`).
"""

from __future__ import annotations

import shutil
from typing import Any

from .common import Ctx, med, ms, pct, result, stamped_publisher, tmpdir

QUESTION = "How many customers are there?"
#: The answer, true to its result (59 customers): the agent shows an answer a whole
#: sentence at a time, once checked against the result, so an invented figure would be
#: replaced. Lower case throughout, so that B4-sse's stamps (letters) name nothing.
SENTENCES = [
    "there are 59 customers in the store.",
    "every one of them is a row of the customer table, counted once.",
    "the count covers each customer the store has, whatever country they live in.",
    "nothing else was filtered or left out of that count, so it is the whole list.",
]
ANSWER = " ".join(SENTENCES)
SHORT_ANSWER = " ".join(SENTENCES[:2])  # --quick
TOKEN_DELAY_S = 0.020
#: A smaller redraw interval to compare with (`%config AigisMagics.update_interval = 0.02`).
SUGGESTED_INTERVAL_S = 0.02




def _delays(emitted: list[tuple[float, str]], records: list[tuple[float, str]]) -> list[float]:
    out = []
    for t_emit, so_far in emitted:
        if not so_far.rstrip().endswith((".", "!", "?")):
            continue  # mid-sentence: held until the sentence is complete and checked
        want = so_far.strip()
        shown = next((t for t, text in records if t >= t_emit and want in text), None)
        if shown is None:
            raise RuntimeError(f"token never displayed: {want[-30:]!r}")
        out.append(shown - t_emit)
    return out


def run(ctx: Ctx) -> dict[str, Any]:
    from IPython.core.interactiveshell import InteractiveShell

    from aigis_jupyter.magics import AigisMagics
    from aigis_jupyter.service import AigisService
    from aigis_jupyter.settings import Settings

    from .common import chinook_spec
    from .scripted import ScriptedModel, register, text_of

    turns = ctx.size(3, 1)
    answer = ANSWER if not ctx.quick else SHORT_ANSWER
    tmp = tmpdir(ctx, "aigis_b4_")
    db = tmp / "chinook.sqlite"
    shutil.copy(chinook_spec().host, db)
    svc = AigisService(Settings(data_dir=tmp / "data"))
    scope = svc.user("bench", is_admin=True)
    scope.create_connection({"name": "chinook", "db_type": "sqlite", "host": str(db)})

    def respond(messages: list[Any]) -> str:
        if "Schema:" in text_of(messages[0].content):
            return "SELECT COUNT(*) AS customers FROM Customer"
        return answer

    model = ScriptedModel(responder=respond, token_delay=TOKEN_DELAY_S, record_tokens=True)
    register(svc.models, model)
    shell = InteractiveShell.instance()
    saved_pub = shell.display_pub
    pub = stamped_publisher(shell)
    shell.display_pub = pub
    magics = AigisMagics(shell=shell, scope=scope)
    magics.default_model = "scripted"
    magics.default_connection = "chinook"
    shell.register_magics(magics)
    shipped = magics.update_interval
    figures: dict[float, list[float]] = {}
    ctx.log(f"B4: {turns} turn(s) x {len(answer.split())} tokens at "
            f"{TOKEN_DELAY_S * 1000:.0f} ms/token, update_interval {shipped} s, "
            f"{SUGGESTED_INTERVAL_S} s and 0 s")
    try:
        for interval in (shipped, SUGGESTED_INTERVAL_S, 0.0):
            magics.update_interval = interval
            delays: list[float] = []
            for _ in range(turns):
                model.reset()
                pub.records.clear()
                shell.run_cell_magic("aigis", "--no-chart", QUESTION)
                if magics.last_view is None or magics.last_view.error:
                    raise RuntimeError(f"the turn failed: {magics.last_view}")
                # calls: [SQL, answer]; only the answer's tokens are displayed as text
                delays += _delays(model.emitted[1], pub.records)
            figures[interval] = delays
    finally:
        shell.display_pub = saved_pub
        magics.update_interval = shipped
        svc.close()

    shipped_d, every_d = figures[shipped], figures[0.0]
    magic = result(
        "B4", "Sentence end -> magic display delay (scripted model, 20 ms per token)",
        measured={
            "tokens": len(shipped_d),
            "median_ms": ms(med(shipped_d)),
            "p90_ms": ms(pct(shipped_d, 90)),
            "max_ms": ms(max(shipped_d)),
            "update_interval_s": shipped,
            "interval_0_02_median_ms": ms(med(figures[SUGGESTED_INTERVAL_S])),
            "interval_0_02_p90_ms": ms(pct(figures[SUGGESTED_INTERVAL_S], 90)),
            "every_token_median_ms": ms(med(every_d)),
            "every_token_p90_ms": ms(pct(every_d, 90)),
        },
        baseline=None, ratio=None,
        target="<= 20 ms median (magic half)",
        met=bool(med(shipped_d) <= 0.020),
        headline=["median_ms", "interval_0_02_median_ms", "every_token_median_ms"],
        notes="as shipped, the magic redraws at most every update_interval seconds; "
              "every_token_* is the same pipeline redrawing on every token",
    )
    return magic
