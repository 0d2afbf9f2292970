"""Keeping an answer's words true to its result.

A small model asked "how many customers are in each segment?" may open with "430
customers." and then show three rows: one number, stated as if it were the answer. When a
result has several rows, the first sentence must speak of the result as a whole (name
several rows, or their number) or it is replaced by a plain statement of the result.
"""

from __future__ import annotations

import re
from typing import Any

_SENTENCE_END = re.compile(r"(?<=[.!?:])\s|\n")
_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


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


class LeadCheck:
    """Holds back the first sentence of an answer about several rows until it is checked.

    Feed it the streamed text; it returns what may be shown now. Everything after the
    first sentence passes straight through.
    """

    def __init__(self, preview: dict[str, Any]) -> None:
        self.preview = preview
        self.active = int(preview.get("row_count") or 0) > 1
        self._held = ""
        self.replaced = False

    def feed(self, text: str) -> str:
        if not self.active:
            return text
        self._held += text
        m = _SENTENCE_END.search(self._held)
        if m is None:
            return ""
        return self._release(self._held[: m.end()], self._held[m.end():])

    def flush(self) -> str:
        """What is still held when the answer ends."""
        if not self.active:
            return ""
        return self._release(self._held, "")

    def _release(self, first: str, rest: str) -> str:
        self.active = False
        self._held = ""
        if first.strip() and not speaks_of_the_whole(first, self.preview):
            self.replaced = True
            first = whole_result_sentence(self.preview) + (" " if rest.strip() else "")
        return first + rest
