"""Value hints: the words of a question that name a real value of a column.

"customers in canada" -> `Customer.Country has 'Canada'`. Quoted phrases and runs of one
to four words are compared with the connection's value index (`databases.values`),
ignoring case, accents and small misspellings ("Brasil", "Cananda"). Only values that
match the question reach a prompt, each quoted and cut short: a planted instruction in a
table cell never rides along unasked.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from ..databases.values import ValueIndex

#: Hints per question, at most.
MAX_HINTS = 8
#: How alike a misspelt word and a value must be (difflib ratio).
FUZZY_RATIO = 0.84

_FILLER_WORDS = """
a an the of by per for in on at to from with and or is are was were be what which who
how many much show list give me all each every top most least than that this do does did
have has i we you it there their between over under into as please find get tell total
number count average sum not no only one two three any some more less word words letter
letters
"""
_FILLER = frozenset(_FILLER_WORDS.split())
_QUOTES = r"\"\u201c\u201d'\u2018\u2019"  # straight and curly, double and single
_QUOTED = re.compile(rf"[{_QUOTES}]([^{_QUOTES}]{{2,80}})[{_QUOTES}]")
_WORD = re.compile(r"[^\W_]+(?:[-'.&][^\W_]+)*")


@dataclass(frozen=True)
class Hint:
    table: str
    column: str
    value: str
    said: str  # the question's words it matched

    def text(self) -> str:
        said = _quote(self.said)
        seen = "" if _fold(self.said) == _fold(self.value) else f" (the question says {said})"
        return f"{self.table}.{self.column} has the value {_quote(self.value)}{seen}"


def _quote(value: str) -> str:
    return "'" + " ".join(value.split()).replace("'", "''") + "'"


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    return " ".join("".join(ch for ch in text if not unicodedata.combining(ch)).casefold()
                    .split())


def _phrases(question: str) -> list[str]:
    """Quoted phrases first, then runs of 1-4 words that are not all filler."""
    out = [m.group(1).strip() for m in _QUOTED.finditer(question)]
    words = _WORD.findall(question)
    for n in (4, 3, 2, 1):
        for i in range(len(words) - n + 1):
            run = words[i:i + n]
            if all(w.casefold() in _FILLER for w in run):
                continue
            if n == 1 and (len(run[0]) < 3 or run[0].isdigit()):
                continue
            out.append(" ".join(run))
    return out


def _close(a: str, b: str) -> bool:
    if abs(len(a) - len(b)) > 2 or len(a) < 4 or a[0] != b[0]:
        return False
    m = difflib.SequenceMatcher(None, a, b)
    return m.real_quick_ratio() >= FUZZY_RATIO and m.quick_ratio() >= FUZZY_RATIO and (
        m.ratio() >= FUZZY_RATIO)


def value_hints(question: str, index: ValueIndex | None, *,
                tables: Iterable[str] | None = None, limit: int = MAX_HINTS) -> list[Hint]:
    """Values the question names, exact matches first; `tables` limits the columns."""
    if not index or not index.values or not question:
        return []
    wanted = {t.lower() for t in tables} if tables is not None else None
    folded: dict[str, list[tuple[str, str, str]]] = {}
    for (table, column), values in index.values.items():
        if wanted is not None and table.lower() not in wanted:
            continue
        for v in values:
            folded.setdefault(_fold(v), []).append((table, column, v))
    if not folded:
        return []
    by_first: dict[str, list[str]] = {}
    for key in folded:
        if key:
            by_first.setdefault(key[0], []).append(key)
    exact: list[Hint] = []
    fuzzy: list[Hint] = []
    used: set[str] = set()
    for phrase in _phrases(question):
        f = _fold(phrase)
        if not f or any(f" {f} " in f" {u} " for u in used):
            continue  # a word of a phrase already matched
        hits = folded.get(f)
        if hits:
            exact += [Hint(t, c, v, phrase) for t, c, v in hits]
            used.add(f)
            continue
        for key in by_first.get(f[0], ()):
            if _close(f, key):
                fuzzy += [Hint(t, c, v, phrase) for t, c, v in folded[key]]
                used.add(f)
                break
    seen: set[tuple[str, str, str]] = set()
    out = []
    for h in exact + fuzzy:
        k = (h.table, h.column, h.value)
        if k not in seen:
            seen.add(k)
            out.append(h)
    return out[:limit]
