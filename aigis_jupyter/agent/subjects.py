"""What a question counts or lists, and what it groups by, read from the linked schema.

Every candidate query starts from these two readings: the table whose rows are the
answer's (the subject) and the groups an "each X", "per X" or "by year" asks for.
"""

from __future__ import annotations

import re

from ..databases.catalog import Table
from . import asked as cue
from . import named_columns as meant
from .context import _stem
from .linking import Link, is_people, join_path, table_named, word_at

__all__ = ["group_keys", "subjects_of", "value_head"]


#: Verbs of making: "who recorded", "who released" (not "who wrote": a composer or
#: author is often a column of the thing written).
MADE = re.compile(r"(?i)\bwho\s+(recorded|made|released|sang|performed|created|produced|"
                  r"published|directed|designed|built)\b")


def subjects_of(question: str, link: Link) -> list[tuple[Table, float]]:
    """The tables whose rows the question counts or lists, likeliest first."""
    ranked = link.ranked_tables()
    if not ranked:
        return []
    out: list[tuple[Table, float]] = []
    q = question.lower()
    lead = cue.COUNT.search(q) or re.search(r"(?i)\b(which|what|list|name|show|who)\b", q)
    after = [m for m in link.tables if lead and m.start >= word_at(question, lead.start())]
    first = list(after or link.tables)
    while len(first) > 1 and first[1].start == first[0].end and not (  # "product
            link.words[first[1].start].endswith("ed")):  # categories", not "artist recorded"
        first = first[1:]
    if re.match(r"(?i)\s*who\b", q):  # "who is the support rep for ...": a person
        valued = [t for h in link.hints if (t := table_named(link.snap, h.table)) is not None]
        named = [m.table for m in link.tables]
        people = [t for t in valued if is_people(t) and t not in named]
        people += [m.table for m in first if is_people(m.table)] + [
            t for t in ranked if is_people(t)]
        if MADE.search(q):  # "who recorded the album ...": whoever made it
            people[:0] = [t for t in link.snap.tables if cue.MAKER.search(t.name)
                          and any(join_path(link.snap, m.table, t) for m in link.tables)]
        if people:
            out.append((people[0], 1.0))
    if first and all(first[0].table is not s for s, _ in out):
        out.append((first[0].table, 1.0 if not out else 0.9))
    for i, t in enumerate(ranked):
        if all(t is not s for s, _ in out):
            out.append((t, 0.8 - 0.1 * i))
    return out[:3]


def value_head(question: str, link: Link) -> tuple[Table, int] | None:
    """"Which sales support agent has the most customers": the table holding the value
    asked about as a kind of row, and the index of the word after it."""
    m = re.match(r"(?i)\s*(?:which|what)\s+", question)
    return _value_at(link, question[m.end():], word_at(question, m.end())) if m else None


def _value_at(link: Link, text: str, at: int) -> tuple[Table, int] | None:
    """A value `text` (word `at` of the question) starts with, named as a kind of row
    ("sales support agent"), not as a word about the next ("Canadian customer"): the table
    holding it, and the index of the word after it."""
    return next(((t, at + len(h.said.split())) for h in link.hints
                 if text.lower().startswith(h.said.lower())
                 and not any(x.start == at + len(h.said.split()) for x in link.tables)
                 and (t := table_named(link.snap, h.table)) is not None), None)


def group_keys(question: str, link: Link, subject: Table) -> list[tuple[str, object, float]]:
    """What "each X" / "per X" / "by X" groups by: ("time", fmt), ("col", Linked) or
    ("table", Table)."""
    out: list[tuple[str, object, float]] = []
    limit = cue.limit_of(question.lower())
    # "how much revenue has each support rep generated": rows of the subject, each
    # measured by a number of another table
    measured_afar = any(m.column is not None and m.table is not subject and m.score >= 0.6
                        and cue.is_numeric(m.column) for m in link.columns)
    for m in cue.GROUP.finditer(question):
        if re.match(r"(?i)(by|each|every)\b", question[m.start():]) and not cue.AGG_CUE.search(
                question):
            continue  # "sorted by name", "list each country once": no groups without a measure
        if re.match(r"(?i)by\b(?!\s+(each|every)\b)", question[m.start():]) and re.search(
                r"(?i)\b(\w+ed|spent|sold|made|written|bought|paid|done|held|run)\s+$",
                question[:m.start()]):
            continue  # "spent by customers from Canada": who did it, not a group
        skip = re.match(r"(?i)(?:(?:each|every|the)\s+)*", m.group(1))  # "by each method"
        words = m.group(1)[skip.end() if skip else 0:]
        start = word_at(question, m.start(1) + (skip.end() if skip else 0))
        head = words.split()[0].lower() if words.split() else ""
        if _stem(head) in cue.TIME_UNIT or head in cue.TIME_UNIT:
            out.append(("time", cue.TIME_UNIT.get(head) or cue.TIME_UNIT[_stem(head)], 1.0))
            continue
        held = _value_at(link, question[m.start(1) + (skip.end() if skip else 0):], start)
        if held and held[0] is not subject:  # "per sales support agent": the rows holding it
            out.append(("table", held[0], 0.9))
            continue
        ranks_by = limit and re.match(r"(?i)by\b", question[m.start():])
        if ranks_by and re.match(r"(?i)(total|number|count|sum)\b", words):
            continue  # "top 3 customers by total payments": what ranks, not a group
        for c in meant.resolve(link, subject):
            if c.start in (start, start + 1) and c.column is not None:
                if ranks_by and cue.is_numeric(c.column):
                    continue  # "the 5 largest invoices by total": ordered by it, not grouped
                out.append(("col", c, c.score))
        for t in link.tables:
            own = [c for c in link.columns if c.table is t.table and c.start == t.end
                   and c.score >= 0.7 and c.column is not None and not c.column.primary_key]
            if t.start == start and own:  # "per customer country": the customer's country
                out.append(("col", own[0], 1.0))
            elif t.start in (start, start + 1) and (t.table is not subject or measured_afar):
                out.append(("table", t.table, t.score))
    q = question.lower()
    for word, fmt in cue.TIME_UNIT.items():
        if not any(k == "time" for k, _, _ in out) and (
                (re.search(rf"\b{word}\b", q) and word.endswith("ly"))
                or re.search(rf"\b(which|what)\s+{word}\b", q)):  # "which year had the most"
            out.append(("time", fmt, 0.9))
    return out
