"""Several candidate queries, one answer: run them, drop the failures, keep the best.

The candidates come from `shapes.py` (built from the linked schema), from the verified
query taught for this same question, and from the model. Each is guarded and run like
any query. A candidate that fails or returns nothing loses;
among the rest a candidate gains from the others whose result is the same (two readings of
the question that agree are likelier right than one alone), and from each value of the
question it found in the data. When the best is weak, or another reading with a different
result comes close, the answer says it may be wrong.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import AigisError, QueryCancelled, QueryTimeout

__all__ = ["Tried", "choose_query", "pick", "run_all"]

#: Seconds all candidates together may take to run (the rest are skipped).
RUN_BUDGET_S = 4.0
#: Rows of a result compared between candidates.
AGREE_ROWS = 200
#: What a candidate gains from each other candidate with the same result (share of its
#: score), and what an empty result keeps of it.
AGREE_SHARE, EMPTY_KEEP = 0.3, 0.25
#: What a candidate gains for each value of the question its filters found in the data.
VALUE_FOUND = 0.35
#: A best candidate at least this good is kept without asking the model for its own query.
CONFIDENT = 0.85
#: The prior of the model's own query, and of one whose shape does not fit the question.
MODEL_PRIOR, MODEL_DOUBTED = 0.55, 0.25
#: A verified query is a candidate when its question is this like the one asked (the same
#: question, in other case or spacing): "most" and "fewest" differ by one word and score
#: 0.93. It then comes first; looser likenesses only reach the model's prompt.
VERIFIED_LIKENESS, VERIFIED_PRIOR = 0.97, 2.0
#: With `query_likelihood` on: the close readings the model scores, and what the likeliest
#: gains (a share of the model's preference among them).
LIKELY_MAX, LIKELY_SHARE = 4, 0.3
#: Sources that are not independent: the model copies the verified queries in its prompt.
_FAMILY = {"shape": "shape", "model": "taught", "verified": "taught"}
#: A best candidate below this, or a rival with another result within RIVAL_GAP of it,
#: makes the answer unsure.
SURE_SCORE, RIVAL_GAP = 0.6, 0.1


@dataclass
class Tried:
    """One candidate and what running it gave."""

    sql: str
    prior: float
    source: str  # "shape", "model" or "verified"
    values: int = 0  # values of the question this candidate filters on
    probe: bool = False  # a count on named values only: a count of 0 found none of them
    result: Any = None
    error: str | None = None
    score: float = field(default=0.0)

    def rows(self) -> int:
        return int(getattr(self.result, "row_count", 0) or 0) if self.result is not None else 0

    def key(self) -> tuple[Any, ...] | None:
        """The result, as comparable values (column names and row order aside)."""
        if self.result is None:
            return None
        rows = [tuple(sorted(_norm(v) for v in r)) for r in self.result.head(AGREE_ROWS)]
        return (len(self.result.columns), self.rows(), tuple(sorted(rows)))


def _norm(v: Any) -> str:
    if isinstance(v, bool):
        v = int(v)
    if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)):
        return repr(round(float(v), 4))
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)


async def run_all(ctx: Any, conn: str, tried: list[Tried]) -> None:
    """Run each candidate (guarded, audited) within the turn's budget; errors are kept."""
    deadline = time.monotonic() + RUN_BUDGET_S
    for t in tried:
        ctx.check_cancel()
        if t.result is not None or t.error is not None:
            continue
        if time.monotonic() > deadline:
            t.error = "skipped: out of time"
            continue
        try:
            t.result = await asyncio.to_thread(ctx.deps.run_sql, conn, t.sql, ctx.cancel)
        except (QueryCancelled, QueryTimeout):
            raise
        except AigisError as exc:
            t.error = exc.message


def _empty(t: Tried) -> bool:
    if t.rows() == 0:
        return True
    if t.rows() == 1 and len(t.result.columns) == 1:
        v = t.result.head(1)[0][0]
        return v is None or (isinstance(v, float) and math.isnan(v)) or (t.probe and v == 0)
    return False


def pick(tried: list[Tried]) -> tuple[Tried | None, list[str]]:
    """The best candidate that ran, and why the answer may be wrong (empty when sure)."""
    ran = [t for t in tried if t.result is not None and t.error is None]
    if not ran:
        return None, []
    for t in ran:
        t.score = t.prior * (EMPTY_KEEP if _empty(t) else 1.0)
        if not _empty(t):
            t.score += VALUE_FOUND * t.values
    groups: dict[Any, list[Tried]] = {}
    for t in ran:
        groups.setdefault(t.key(), []).append(t)
    for t in ran:  # readings from another source that agree (variants of one do not count)
        others = [o.score for o in groups[t.key()]
                  if _FAMILY.get(o.source, o.source) != _FAMILY.get(t.source, t.source)]
        t.score += AGREE_SHARE * sum(others)
    best = max(ran, key=lambda t: t.score)
    reasons = []
    if _empty(best):
        reasons.append("every reading of the question I tried returned no rows")
    elif best.score < SURE_SCORE:
        reasons.append("I am not confident this query matches the question")
    else:
        rivals = [t for t in ran if t.key() != best.key() and not _empty(t)]
        if rivals and max(t.score for t in rivals) >= best.score - RIVAL_GAP:
            reasons.append("another reading of the question gives a different result")
    return best, reasons


async def choose_query(ctx: Any, conn: str, question: str, dialect: str,
                       write_sql: Callable[[], Awaitable[str | None]]) -> Tried | None:
    """The best of the shapes' candidates and, unless one of them is sure, the model's own
    query (`write_sql`); None when nothing ran. `ctx.unsure` gets the doubts."""
    from .doubts import doubts
    from .shapes import candidates
    from .verified import question_key

    found = await asyncio.to_thread(candidates, question, ctx.link, dialect)
    tried = [Tried(v.sql, VERIFIED_PRIOR, "verified") for v in ctx.verified[:1]
             if v.score >= VERIFIED_LIKENESS
             or question_key(v.question) == question_key(question)]
    tried += [Tried(c.sql, c.score, "shape", values=c.values, probe=c.probe) for c in found]
    await run_all(ctx, conn, tried)
    best, reasons = pick(tried)
    if best is None or best.score < CONFIDENT or reasons:
        statement = await write_sql()
        if statement and all(t.sql != statement for t in tried):
            doubted = doubts(question, statement, dialect)
            tried.append(Tried(statement, MODEL_DOUBTED if doubted else MODEL_PRIOR, "model"))
            await run_all(ctx, conn, tried)
        best, reasons = pick(tried)
    if reasons and best is not None and ctx.settings.query_likelihood:
        best = await _likeliest(ctx, question, best, tried)
    ctx.unsure = reasons
    return best


async def _likeliest(ctx: Any, question: str, best: Tried, tried: list[Tried]) -> Tried:
    """Among readings close to the best (a rival within RIVAL_GAP), the one that gains most
    from the model's own likelihood of the question given its query; the best as it was
    when the model cannot score. Off by default: with the bundled 270M model it chose no
    better on the project's question sets (see benchmarks/README.md, B8)."""
    from .prompts import LIKELIHOOD_HEADER

    score = getattr(ctx.model, "likelihoods", None)
    close: dict[Any, Tried] = {}
    for t in sorted(tried, key=lambda t: -t.score):
        if t.result is not None and t.error is None and not _empty(t) and (
                t.score >= best.score - RIVAL_GAP):
            close.setdefault(t.key(), t)
    top = list(close.values())[:LIKELY_MAX]
    if score is None or len(top) < 2:
        return best
    logps = await asyncio.to_thread(
        score, LIKELIHOOD_HEADER, [(f"SQL: {t.sql}\n", f"Question: {question}") for t in top])
    if not logps:
        return best
    high = max(logps)
    weights = [math.exp(lp - high) for lp in logps]
    total = sum(weights)
    return max(top, key=lambda t: t.score + LIKELY_SHARE * weights[top.index(t)] / total)
