"""The schema a SQL prompt carries: the tables a question needs, within a token budget.

A model writes better SQL from twenty relevant tables than from two thousand, and a prompt
has a budget. Tables are ranked by the question's words (crudely stemmed) found in their
names (strongest), their comments, their column names and column comments, plus a share
of that score for their foreign-key neighbours (the tables a join needs); they are then
kept in rank order until the budget is spent.

Synonyms bridge the user's words and the schema's: the schema brings its own (a table
comment "Closed deals, one row per contract" makes `deals` the answer to "contracts"),
and `Settings.schema_synonyms` maps business words to schema words ("client" ->
"customer"). Nothing here is specific to one database.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TypeVar

from ..databases.catalog import SchemaSnapshot, Table
from ..databases.schema import render_header, render_table

__all__ = ["SchemaContext", "estimate_tokens", "schema_context", "terms_of"]

#: Score of a question word found in a table's name, its comment, a column's name, and a
#: column's comment; a neighbour gets NEIGHBOUR_SHARE of a table's direct score.
NAME_WEIGHT, TABLE_COMMENT_WEIGHT, COLUMN_WEIGHT, COLUMN_COMMENT_WEIGHT = 4.0, 2.0, 1.0, 0.5
NEIGHBOUR_SHARE = 0.35
#: Weight of a word that only a synonym brought into the question.
SYNONYM_WEIGHT = 0.5


@dataclass
class SchemaContext:
    """What one question's prompts get: `text` for chat prompts, `tables` for the rest."""

    text: str  # header + one line per chosen table (+ how many were left out)
    tables: list[Table]  # the chosen tables, in snapshot order
    dialect: str
    default_schema: str | None = field(default=None, repr=False)

    def qualified(self, t: Table) -> str:
        """The name a query uses: schema-qualified only outside the default schema."""
        if t.schema and t.schema != self.default_schema:
            return f"{t.schema}.{t.name}"
        return t.name


def estimate_tokens(text: str) -> int:
    """Rough token count (about four characters per token for schema text)."""
    return (len(text) + 3) // 4


# --------------------------------------------------------------------------- words

_WORD = re.compile(r"[A-Z]+(?![^\W\dA-Z_])|[A-Z]?[^\W\dA-Z_]+|\d+")
_STOP = frozenset(re.split(
    r"\s+",
    "a an the of by per for in on at to from with and or is are was were be been what which "
    "who whom how many much show list give me my our all each every top most least than "
    "that this these those do does did have has had i we you it its there their between "
    "over under into as vs versus please find get tell total number count average sum "
    "compare",
))


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    """A crude stem, applied until it settles, so "meetings" and "meeting" both give
    "meet" (one pass would leave "meeting" for the plural and "meet" for the name)."""
    w = word.lower()
    for _ in range(3):
        s = _stem_once(w)
        if s == w:
            break
        w = s
    return w


def _stem_once(w: str) -> str:
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 4 and w.endswith(("ses", "xes", "ches", "shes")):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
        return w[:-1]
    if len(w) > 5 and w.endswith("ing"):
        return w[:-3]
    if len(w) > 5 and w.endswith("ly"):
        return w[:-2]
    if len(w) > 4 and w.endswith("ed"):
        return w[:-2]
    return w


def _words(text: str) -> list[str]:
    """Split names and questions into lower-case words: snake_case, camelCase, digits."""
    return [w.lower() for w in _WORD.findall(text or "")]


@lru_cache(maxsize=65536)
def _ident_terms(name: str) -> frozenset[str]:
    """The stemmed words of one name or comment (names repeat across tables)."""
    return frozenset(_stem(w) for w in _words(name))


def _comment_terms(text: str | None) -> frozenset[str]:
    """The stemmed words of a comment, without the filler every sentence has."""
    if not text:
        return frozenset()
    return frozenset(_stem(w) for w in _words(text) if w not in _STOP and len(w) > 1)


def terms_of(text: str) -> list[str]:
    """The stemmed content words of a text, in order (filler words dropped)."""
    return [_stem(w) for w in _words(text) if w not in _STOP and len(w) > 1]


def _terms(question: str, synonyms: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """The question's stemmed words (weight 1) and the words its synonyms add (0.5)."""
    terms: dict[str, float] = {}
    for w in _words(question):
        if w in _STOP or len(w) < 2:
            continue
        s = _stem(w)
        terms[s] = max(terms.get(s, 0.0), 1.0)
        for syn in (*synonyms.get(w, ()), *(synonyms.get(s, ()) if s != w else ())):
            for part in _words(syn):
                terms.setdefault(_stem(part), SYNONYM_WEIGHT)
    return terms


def _normalise(synonyms: Mapping[str, Sequence[str]] | None) -> dict[str, tuple[str, ...]]:
    """Synonym keys in lower case (settings come from people and environment variables)."""
    out: dict[str, tuple[str, ...]] = {}
    for key, words in (synonyms or {}).items():
        values = (words,) if isinstance(words, str) else tuple(words)
        out[str(key).lower()] = out.get(str(key).lower(), ()) + values
    return out


# --------------------------------------------------------------------------- index


@dataclass
class _Index:
    """Per snapshot: each table's line, its words by kind, and its foreign-key neighbours."""

    lines: list[str]
    name_terms: list[frozenset[str]]
    comment_terms: list[frozenset[str]]
    col_terms: list[frozenset[str]]
    col_comment_terms: list[frozenset[str]]
    neighbours: list[set[int]]


T = TypeVar("T")


def per_snapshot(build: Callable[[SchemaSnapshot], T]) -> Callable[[SchemaSnapshot], T]:
    """`build(snap)` once per snapshot object (a snapshot is immutable and cached by its
    fingerprint, so the object is the key; the few most recent are kept)."""
    lock = threading.Lock()
    cache: dict[int, tuple[SchemaSnapshot, T]] = {}

    def get(snap: SchemaSnapshot) -> T:
        with lock:
            hit = cache.get(id(snap))
            if hit is not None and hit[0] is snap:
                return hit[1]
        value = build(snap)
        with lock:
            if len(cache) > 32:
                cache.clear()
            cache[id(snap)] = (snap, value)
        return value

    return get


@per_snapshot
def _index(snap: SchemaSnapshot) -> _Index:
    pos: dict[str, int] = {}
    for i, t in enumerate(snap.tables):
        pos.setdefault(t.name.lower(), i)
        pos.setdefault(f"{(t.schema or '').lower()}.{t.name.lower()}", i)
    neighbours: list[set[int]] = [set() for _ in snap.tables]
    for i, t in enumerate(snap.tables):
        for fk in t.foreign_keys:
            j = pos.get(f"{(fk.ref_schema or t.schema or '').lower()}.{fk.ref_table.lower()}",
                        pos.get(fk.ref_table.lower()))
            if j is not None and j != i:
                neighbours[i].add(j)
                neighbours[j].add(i)
    idx = _Index(
        lines=[render_table(snap, t) for t in snap.tables],
        name_terms=[_ident_terms(t.name) for t in snap.tables],
        comment_terms=[_comment_terms(t.comment) for t in snap.tables],
        col_terms=[frozenset().union(*(_ident_terms(c.name) for c in t.columns))
                   for t in snap.tables],
        col_comment_terms=[frozenset().union(*(_comment_terms(c.comment) for c in t.columns))
                           for t in snap.tables],
        neighbours=neighbours,
    )
    return idx


def _rank(snap: SchemaSnapshot, idx: _Index, terms: Mapping[str, float]) -> list[int]:
    """Table positions, most relevant first (ties: more foreign keys, then snapshot order)."""
    n = len(snap.tables)
    direct = [0.0] * n
    for i in range(n):
        name_t, comment_t = idx.name_terms[i], idx.comment_terms[i]
        col_t, col_comment_t = idx.col_terms[i], idx.col_comment_terms[i]
        score = 0.0
        for term, weight in terms.items():
            if term in name_t:
                score += NAME_WEIGHT * weight
            elif term in comment_t:
                score += TABLE_COMMENT_WEIGHT * weight
            elif term in col_t:
                score += COLUMN_WEIGHT * weight
            elif term in col_comment_t:
                score += COLUMN_COMMENT_WEIGHT * weight
        direct[i] = score
    total = list(direct)
    for i in range(n):
        if direct[i] > 0:
            for j in idx.neighbours[i]:
                total[j] += NEIGHBOUR_SHARE * direct[i]
    degree = [len(nb) for nb in idx.neighbours]
    return sorted(range(n), key=lambda i: (-total[i], -direct[i], -degree[i], i))


# --------------------------------------------------------------------------- entry point


def schema_context(snap: SchemaSnapshot, question: str, *, token_budget: int | None,
                   synonyms: Mapping[str, Sequence[str]] | None = None) -> SchemaContext:
    """The tables `question` needs, rendered one line each, within `token_budget`.

    Without a budget every table is kept. With one, tables are taken in rank order while
    they fit; a closing line says how many were left out, so the model can ask by name.
    """
    idx = _index(snap)
    header = render_header(snap)
    n = len(snap.tables)
    if token_budget is None:
        chosen = list(range(n))
    else:
        order = _rank(snap, idx, _terms(question or "", _normalise(synonyms)))
        budget = token_budget - estimate_tokens(header) - 12  # room for the closing line
        chosen = []
        for i in order:
            cost = estimate_tokens(idx.lines[i]) + 1
            if cost <= budget:
                chosen.append(i)
                budget -= cost
            elif budget < 8:
                break
        chosen.sort()
    lines = [header, *(idx.lines[i] for i in chosen)]
    left = n - len(chosen)
    if left:
        lines.append(f"({left} more table{'s' if left != 1 else ''} not shown; ask about them "
                     "by name.)")
    return SchemaContext(text="\n".join(lines), tables=[snap.tables[i] for i in chosen],
                         dialect=snap.dialect, default_schema=snap.default_schema)
