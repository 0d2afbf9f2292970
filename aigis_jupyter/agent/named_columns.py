"""The columns a question names: one per mention, the numbers it measures by, what it
asks to see and what it sorts by.

A word can name a column of several tables ("name", "country"); these rules pick the one
meant (the subject's, the one of a table named with it, "the employee's last name") and
tell a column to show from one to rank or measure by.
"""

from __future__ import annotations

import re

from ..databases.catalog import Column, Table
from .asked import is_date, is_numeric
from .context import _stem
from .linking import Link, Linked, is_people, join_path, label_columns, word_at

__all__ = ["WITH_VALUE", "explicit_columns", "far_measures", "measures", "numbers_afar",
           "resolve", "sort_column"]


WITH_VALUE = re.compile(r"(?i)\b(with|and)\s+(the|their|its)?\s*(amount|count|number|total|"
                         r"value|revenue|sales|sum|units)")


def resolve(link: Link, subject: Table) -> list[Linked]:
    """One column for each place the question names one: the subject's if it has it, else
    that of a table the question names (a column of an unnamed table is not meant)."""
    play = [subject] + [m.table for m in link.tables if m.table is not subject]
    rank: dict[int, int] = {}
    for i, t in enumerate(play):
        rank.setdefault(id(t), i)
    owners: dict[int, list[Table]] = {}  # "the employee's last name": the employee's
    for t in link.tables:
        if link.words[t.end:t.end + 1] == ["s"]:
            owners.setdefault(t.end + 1, []).append(t.table)
    best: dict[int, Linked] = {}
    for m in link.columns:
        if id(m.table) not in rank or m.column is None:
            continue
        if m.table is subject and m.score == 0.5:  # "country": the subject's billing country
            m = Linked(m.table, m.column, m.start, m.end, 0.75)
        cur = best.get(m.start)
        if cur is None or (m.table in owners.get(m.start, ()), -rank[id(m.table)], m.score) > (
                cur.table in owners.get(m.start, ()), -rank[id(cur.table)], cur.score):
            best[m.start] = m
    spans = [(m.start, m.end) for m in best.values() if m.end - m.start > 1]
    out: list[Linked] = []
    for m in sorted(best.values(), key=lambda m: m.start):
        if any(a <= m.start < b and (a, b) != (m.start, m.end) for a, b in spans):
            continue  # the "date" of "birth date"
        # "email address", "phone number": the second word qualifies the first
        if out and out[-1].column is m.column and m.start <= out[-1].end:
            if m.score > out[-1].score:  # "job title": one mention, the surer score
                out[-1] = Linked(m.table, m.column, out[-1].start, m.end, m.score)
            continue
        if (out and m.start == out[-1].end and m.end - m.start == 1 and m.column is not None
                and out[-1].score >= 0.7 and _stem(m.column.name.lower()) in QUALIFIERS):
            continue
        out.append(m)
    return out


def possessive(link: Link, table: Table) -> list[Column]:
    """"Which country's customers paid the most": a column of `table` owning the rows of
    `table` named next (the rows are grouped by it)."""
    return [m.column for m in link.columns if m.table is table and m.column is not None
            and m.score >= 0.7 and link.words[m.end:m.end + 1] == ["s"]
            and any(t.start == m.end + 1 and t.table is table for t in link.tables)]


QUALIFIERS = frozenset({"address", "number", "title", "name", "date", "code", "type"})


#: "the longest-serving employee", "who has been with the company the longest": by the
#: date they started, earliest first.
TENURE = re.compile(r"\blongest\s+serving\b|\bmost\s+senior\b|\bseniority\b|"
                    r"\b(?:been|worked|working)\b.*\b(?:the\s+)?longest\b")
STARTED = re.compile(r"(?i)hire|hired|start|join|since|employ")


def measures(link: Link, subject: Table) -> list[tuple[Table, Column, float]]:
    """Numeric or date columns the question points at (by name, by a measure word, or by
    asking about tenure)."""
    out: list[tuple[Table, Column, float]] = []
    for m in resolve(link, subject):
        if m.column is not None and (is_numeric(m.column) or is_date(m.column)):
            out.append((m.table, m.column, m.score))
    if not out and TENURE.search(" ".join(link.words)):
        out += [(subject, c, 0.9) for c in subject.columns if is_date(c) and STARTED.search(
            c.name)][:1]
    out.sort(key=lambda x: -x[2])
    return out


def far_measures(link: Link, subject: Table) -> list[tuple[Table, Column, float]]:
    """"The average discount per segment": numbers named outright in tables the question
    does not name, a join away from the subject (what a group is measured by)."""
    return [(m.table, m.column, 0.8 * m.score) for m in link.columns
            if m.column is not None and m.score >= 0.9 and is_numeric(m.column)
            and join_path(link.snap, subject, m.table)]


SHOW_WORDS = "show give with and list display plus along their its include including what when"
SHOW_CUE = frozenset(SHOW_WORDS.split())


def explicit_columns(question: str, link: Link, subject: Table, shown: list[Linked],
                      ranks: bool) -> list[tuple[Table, Column]]:
    """Columns the question asks to see, in its order ("first and last name, and city").
    When the question ranks or aggregates, a number or date it names is what it ranks by,
    shown only when asked for ("... and the total")."""
    only = re.search(r"(?i)\b(?:just|only)\s+(?:the\s+)?\w", question)
    start = word_at(question, only.start()) if only else 0
    # "Which employees have the title 'IT Staff'? Give first and last names": the second
    # sentence says what to show
    give = re.search(r"(?i)(?:[?;]|\.(?=\s)|\s[-\u2013\u2014:])\s*(?:please\s+)?(?:give|show|"
                     r"list|return|display|just|only)?\b", question)
    if give and any(m.start >= word_at(question, give.start()) for m in shown):
        start = max(start, word_at(question, give.start()))
    cols: list[tuple[Table, Column]] = []
    asked: set[int] = set()
    for m in shown:
        assert m.column is not None
        if m.start < start:
            continue
        window = link.words[max(0, m.start - 3):m.start]
        if set(window) & SHOW_CUE and not any(  # "with the earliest hire date" ranks by it
                w.endswith("est") or w in ("most", "least") for w in link.words[
                    max(0, m.start - 3):m.end]):
            asked.add(id(m.column))
        if m.table is not subject and any(x.column is not None and x.column.name == m.column.name
                                          and x.table is subject for x in shown):
            continue
        if (m.table, m.column) not in cols:
            cols.append((m.table, m.column))
    # "id and name": the subject's key
    keys = [c for c in subject.columns if c.primary_key]
    if re.search(r"(?i)\bids?\b", question) and keys and not any(c.primary_key for _, c in cols):
        cols.insert(0, (subject, keys[0]))
    # "name" alone on a table of people is its first and last name
    # and "every category with its description": the rows' names come first
    people = is_people(subject) and re.search(r"(?i)\bnames?\b|^\s*who\b", question) and not any(
        c.name.lower().endswith("name") for _, c in cols)
    described = re.search(r"(?i)\b(?:with|and)\s+(?:its|their|it's|the)\b", question) and (
        cols and not any(c in label_columns(t) or c.primary_key for t, c in cols))
    if people or described:
        cols = [(subject, c) for c in label_columns(subject)] + cols
    return [(t, c) for t, c in cols if not (ranks and (is_numeric(c) or is_date(c)))
            or c.primary_key or id(c) in asked]


def sort_column(question: str, link: Link, subject: Table) -> tuple[Table, Column] | None:
    if re.search(r"(?i)alphabetical|a\s*-\s*z", question):
        return None  # by the first column shown
    m = re.search(r"(?i)\b(?:sorted|ordered|order)\s+by\s+([\w ]+)", question)
    if m:
        start = len(re.findall(r"\w+", question[:m.start(1)]))
        for c in link.columns:
            if c.start >= start and c.column is not None:
                return c.table, c.column
    for c in link.columns:
        if c.column is not None and (is_date(c.column) or is_numeric(c.column)):
            return c.table, c.column
    return None


def numbers_afar(link: Link, first: Table) -> tuple[list[Linked], dict[int, float]]:
    """"Which customer has spent the most", "which media type has the largest average file
    size": numbers of other tables the question names, each once, and how surely (by
    `id` of each); a number
    named by several words ("largest ... file size") outranks one named once. None when
    `first` has a number of its own named ("the track with the largest file size")."""
    if any(m.table is first and m.column is not None and is_numeric(m.column)
           for m in link.columns):
        return [], {}
    far = [m for m in link.columns if m.column is not None and m.table is not first
           and m.score >= 0.6 and is_numeric(m.column) and not m.column.primary_key
           and join_path(link.snap, first, m.table)]
    weight: dict[int, float] = {}
    for m in far:
        weight[id(m.column)] = max(weight.get(id(m.column), 0), m.score) + 0.05 * (
            id(m.column) in weight)
    best = sorted({id(m.column): m for m in far}.values(), key=lambda m: -weight[id(m.column)])
    return best, {id(m): min(1.0, weight[id(m.column)]) for m in best}
