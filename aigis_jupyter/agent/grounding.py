"""Keeping an answer's words true to its result.

Every sentence of an answer is held until it is complete and checked before it is shown:
each number it states must be a value of the result (as shown to the model, rounding
allowed), the row count, or a number of the SQL that ran; each name it states (a
capitalised word that is not ordinary English) must appear in the result, its column
names or the SQL. The question alone grounds nothing: "4249 orders were placed in 2023"
from a count with no date filter names a year the query never used. A sentence that fails
is replaced, once, by a plain statement built from the result (`prompts.fallback_answer`);
later failing sentences are dropped.

When a result has several rows, the first sentence must also speak of the result as a
whole (name several rows, or their number): "430 customers." over three segments is one
number stated as if it were the answer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

_SENTENCE_END = re.compile(r"(?<=[.!?:])\s|\n")
#: A sentence that is over before the white space after it arrives: `!`, `?`, or a full
#: stop after a letter (after a digit it may be a decimal point).
_ENDED = re.compile(r"(?:[!?]|(?:(?<=[^\W\d_])|(?<=[\])\"']))\.)[\"')\]]?$")
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_NUMBER_IN_TEXT = re.compile(r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d])|"
                             r"(?<![\w.,])-?\d+(?:\.\d+)?(?![\d])")
_CAPITALISED = re.compile(r"\b[A-Z][\w'\u2019&-]*")
_WORD = re.compile(r"[^\W_]+")
#: Capitalised words that name nothing in particular.
_ORDINARY_WORDS = """
a about above according across after again against all also although among an and
another answer any are around as at average based because been before being below
between both but by can could data database each either every few first for from further
given had has have having he her here highest his how however i if in including into is
it its just last least less lowest many may maybe me more most much my no none nor not
note now of off on once one only or other our out over overall per query result results
row rows same she should since so some sql still such sum table than that the their them
then there these they this those though through to together top total two under
unfortunately unlike until up upon us very was we were what when where which while who
whom whose why will with within would yes yet you your count number numbers value values
column columns list shown shows show listed yes okay sure based combined respectively
together approximately about roughly nearly null true false nan
"""
_ORDINARY = frozenset(_ORDINARY_WORDS.split())
_MONTHS_DAYS_WORDS = """
january february march april may june july august september october november december
jan feb mar apr jun jul aug sep sept oct nov dec monday tuesday wednesday thursday
friday saturday sunday
"""
_MONTHS_DAYS = frozenset(_MONTHS_DAYS_WORDS.split())
_DATE_LIKE = re.compile(r"\d{4}-\d{2}")


def _split_camel(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)


def _stems(text: str) -> set[str]:
    """Lower-case words of a text and their singulars (`Tracks` grounds `track`)."""
    out: set[str] = set()
    for w in _WORD.findall(_split_camel(text).casefold()):
        out.add(w)
        if len(w) > 3 and w.endswith("s"):
            out.add(w[:-1])
        if len(w) > 4 and w.endswith("ies"):
            out.add(w[:-3] + "y")
    return out


def _as_number(token: str) -> float | None:
    try:
        return float(token.replace(",", ""))
    except ValueError:
        return None


@dataclass
class Facts:
    """What an answer may state: the result's numbers and words, and the SQL's."""

    numbers: list[float] = field(default_factory=list)
    words: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, preview: dict[str, Any], sql: str | None = None,
           more: Sequence[tuple[dict[str, Any], str | None]] = ()) -> Facts:
        """Facts of a result and its SQL; `more`: earlier results of the same turn."""
        facts = cls()
        for p, q in more:
            earlier = cls.of(p, q)
            facts.numbers += earlier.numbers
            facts.words |= earlier.words
        rows = list(preview.get("rows") or [])
        n = int(preview.get("row_count") or len(rows))
        facts.numbers += [float(n), float(len(rows)), float(len(preview.get("columns") or []))]
        dated = False
        for row in rows:
            for v in row:
                if isinstance(v, bool) or v is None:
                    continue
                if isinstance(v, (int, float)):
                    if not (isinstance(v, float) and math.isnan(v)):
                        facts.numbers.append(float(v))
                    continue
                text = str(v)
                facts.words |= _stems(text)
                facts.numbers += [x for t in _NUMBER_IN_TEXT.findall(text)
                                  if (x := _as_number(t)) is not None]
                dated = dated or bool(_DATE_LIKE.search(text))
        for c in preview.get("columns") or []:
            facts.words |= _stems(str(c))
        if sql:
            facts.words |= _stems(sql)
            facts.numbers += [x for t in _NUMBER_IN_TEXT.findall(sql)
                              if (x := _as_number(t)) is not None]
        if dated:  # "in March 2013" of a result holding 2013-03-...
            facts.words |= _MONTHS_DAYS
        return facts

    def has_number(self, token: str) -> bool:
        x = _as_number(token)
        if x is None:
            return True
        places = len(token.split(".")[1]) if "." in token else 0
        for v in self.numbers:
            if v == x or round(v, places) == x or round(v * 100, places) == x:
                return True
            if places == 0 and abs(v) >= 1 and abs(v - x) < 1:  # 1234.56 said as 1,235
                return True
        return False

    def has_name(self, word: str) -> bool:
        return bool(_stems(word) & self.words)


def ungrounded(sentence: str, facts: Facts) -> list[str]:
    """The numbers and names of `sentence` that the result and SQL do not hold."""
    missing = [t for t in _NUMBER_IN_TEXT.findall(sentence) if not facts.has_number(t)]
    first = re.search(r"[^\W\d_]", sentence)
    for m in _CAPITALISED.finditer(sentence):
        word = m.group(0).strip("'\u2019&-")
        low = word.casefold()
        if not word or low in _ORDINARY or (low in _MONTHS_DAYS and low in facts.words):
            continue
        if first is not None and m.start() == first.start() and _opening_word(low):
            continue  # "Counting the orders ...": capitalised for being first, not a name
        if len(word) > 1 and word.isupper() and low in facts.words:
            continue
        if not facts.has_name(word):
            missing.append(word)
    return missing


def _opening_word(low: str) -> bool:
    """A sentence's first word that reads as a verb or an adverb (-ing, -ed, -ly)."""
    return len(low) > 4 and low.endswith(("ing", "ed", "ly"))


# --- the first sentence of a result of several rows -------------------------------------


def _labels(preview: dict[str, Any]) -> set[str]:
    """The text values that tell the rows apart (lower-cased)."""
    out: set[str] = set()
    for row in preview.get("rows") or []:
        for v in row:
            if isinstance(v, str) and v.strip() and not _NUMBER.fullmatch(v.strip()):
                out.add(v.strip().lower())
    return out


def speaks_of_the_whole(sentence: str, preview: dict[str, Any]) -> bool:
    """Whether a multi-row result's first sentence describes the result, not one row."""
    if not _NUMBER.search(sentence):
        return True  # "Here are the segments:": no claim to contradict the table
    low = sentence.lower()
    named = {lab for lab in _labels(preview) if lab in low}
    if len(named) >= 2:
        return True
    n = int(preview.get("row_count") or len(preview.get("rows") or []))
    return bool(re.search(rf"(?<![\d.,]){n}(?![\d.,])", sentence)) and not named


def whole_result_sentence(preview: dict[str, Any]) -> str:
    """A plain first sentence for a result of several rows."""
    cols = [str(c) for c in preview.get("columns") or []]
    n = int(preview.get("row_count") or len(preview.get("rows") or []))
    more = "at least " if preview.get("truncated") else ""
    per = f", one per {cols[0]}" if cols and _labels(preview) else ""
    return f"The result has {more}{n} rows{per}."


# --- the streaming check ------------------------------------------------------------------


class Grounder:
    """Holds each sentence of a streamed answer until it is complete and checked.

    Feed it the streamed text; it returns what may be shown now. `replaced` lists the
    sentences that were not shown (replaced by a plain statement, or dropped).
    """

    def __init__(self, preview: dict[str, Any], sql: str | None = None, *,
                 plain: str | None = None,
                 more: Sequence[tuple[dict[str, Any], str | None]] = ()) -> None:
        from .prompts import fallback_answer

        self.preview = preview
        self.facts = Facts.of(preview, sql, more)
        self.several = int(preview.get("row_count") or 0) > 1
        self.plain = plain or fallback_answer(preview)
        self._held = ""
        self._first = True
        self._stated = False  # the plain statement was shown already
        self._shown = ""  # the last text released
        self.replaced: list[str] = []

    def feed(self, text: str) -> str:
        self._held += text
        out = []
        while (m := _SENTENCE_END.search(self._held)) is not None:
            sentence, self._held = self._held[: m.end()], self._held[m.end():]
            out.append(self._check(sentence))
        if _ENDED.search(self._held):  # "... customers." is over; "3." may go on as "3.5"
            sentence, self._held = self._held, ""
            out.append(self._check(sentence))
        return "".join(out)

    def drop_held(self) -> None:
        """Forget the unfinished sentence (its stream failed and is being asked again)."""
        self._held = ""

    def flush(self) -> str:
        """What is still held when the answer ends."""
        held, self._held = self._held, ""
        return self._check(held) if held else ""

    def _check(self, sentence: str) -> str:
        out = self._verdict(sentence)
        if out and self._shown and not self._shown[-1].isspace() and not out[0].isspace():
            out = " " + out  # a replacement ended without the space the next one needs
        if out:
            self._shown = out
        return out

    def _verdict(self, sentence: str) -> str:
        if not sentence.strip():
            return sentence if not self._first else ""
        first, self._first = self._first, False
        if first and self.several and not speaks_of_the_whole(sentence, self.preview):
            self.replaced.append(sentence.strip())
            return whole_result_sentence(self.preview) + _tail(sentence)
        if not ungrounded(sentence, self.facts):
            return sentence
        self.replaced.append(sentence.strip())
        if self._stated:
            return ""
        self._stated = True
        return self.plain + _tail(sentence)


def _tail(sentence: str) -> str:
    """The white space that ended a sentence (a line break stays a line break)."""
    return sentence[len(sentence.rstrip()):]
