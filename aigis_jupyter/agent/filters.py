"""The conditions a question puts on rows, as alternatives for the columns that may hold
them: the values it names (found in the data or guessed from its capitalised and quoted
words), its numbers and dates, blanks, yes/no flags, signs and "above average".

Written in SQLite's syntax with `{}` where the column goes; `shapes.py` places them in
candidate queries, whose joins reach the tables they name.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..databases.catalog import Column, Table
from .asked import COMPARE, MAKER, MONTHS, UNIT, is_date, is_numeric, is_text, number_of
from .context import _stem, _words
from .doubts import QUOTED
from .linking import Link, label_columns, neighbours, word_at

if TYPE_CHECKING:
    from .querytext import Query


def literal(value: object) -> str:
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    return "'" + str(value).replace("'", "''") + "'"


NULL = re.compile(r"(?i)\b(?:no|without|missing|lack(?:ing)?|empty|blank|null)\s+"
                   r"((?:\w+\s*){1,2})")
NOT_NULL = re.compile(r"(?i)\b(?:have|has|with)\s+(?:a|an|any|some)\s+((?:\w+\s*){1,2})|"
                       r"\b((?:\w+\s*){1,2})\s+on\s+file\b|"
                       r"\b(\w+(?:\s+\w+)?)\s+(?:is|are)\s+not\s+(?:empty|blank|null|missing)\b")
_NOT_A_WORD = frozenset({"more", "less", "fewer", "over", "under", "at", "least", "most",
                        "exactly", "only", "any", "no", "the", "a", "an", "some", "all",
                        "each", "every", "both", "either", "this", "that", "these",
                        "those", "their", "its", "which", "what", "many", "much"})
LIKE = [
    ("%{}%", r"contain(?:s|ing)?(?:\s+the\s+word)?|with\s+the\s+word|mention(?:s|ing)?|"
             r"includ(?:e|es|ing)|use|uses|using"),
    ("{}%", r"start(?:s|ing)?\s+with|begin(?:s|ning)?\s+with"),
    ("%{}", r"end(?:s|ing)?\s+(?:with|in)"),
]


@dataclass
class Filter:
    table: Table
    sql: str  # a condition, with `{}` where the column goes
    column: Column
    score: float
    words: tuple[int, int] | None = None
    value: bool = False  # a value the question names (not a number or a date)

    def render(self, col: Callable[[Column], str]) -> str:
        """The condition, each column written by `col` (qualified, or under an alias)."""
        cond = self.sql.replace("{}", col(self.column), 1)
        for c in self.table.columns:
            cond = cond.replace("{" + c.name + "}", col(c))
        return cond

    def written(self, qy: Query) -> str:
        """The condition in `qy`, its table joined and named as `qy` names it."""
        return self.render(lambda c: qy.col(self.table, c)).replace(
            "{@table}", qy.name(self.table))


def numbers_in(question: str, link: Link | None = None) -> list[tuple[str, float, str, int]]:
    """(operator, value, unit word, char position) for every number the question compares
    (not the 5 of "invoice 5", a key, when `link` tells the tables; not the 101 of the
    quoted name 'Classical 101')."""
    out = []
    quoted = [q.span() for q in QUOTED.finditer(question)]
    ops = "|".join(f"(?P<o{i}>{pat})" for i, (_, pat) in enumerate(COMPARE))
    pattern = re.compile(rf"(?i)(?:\b(?:{ops})\s+)?\$?(?P<n>\d[\d,]*(?:\.\d+)?)\s*"
                         r"(?P<u>[a-z]+)?")
    for m in pattern.finditer(question):
        n = number_of(m.group("n"))
        if n is None or any(a <= m.start("n") < b for a, b in quoted):
            continue
        op = "="
        for i, (sym, _) in enumerate(COMPARE):
            if m.group(f"o{i}"):
                op = sym
                break
        if link is None or not any(t.end == word_at(question, m.start("n")) for t in link.tables):
            out.append((op, n, (m.group("u") or "").lower(), m.start("n")))
    return out


def date_columns(link: Link, subject: Table) -> list[tuple[Table, Column, float]]:
    """Columns a date in the question may filter, surest first: of the subject and the
    tables named (a column named surer), else of the tables whose rows point at the subject
    ("customers who bought in 2024": an invoice's date). Every subject gets a date column
    if any, so no reading of the question drops its year."""
    linked = [subject] + [t for t in link.ranked_tables() if t is not subject]
    dates = [(t, c, 1.0 if any(m.column is c and m.score >= 0.6 for m in link.columns) else 0.5)
             for t in linked[:3] for c in t.columns if is_date(c)] or [
        (t, c, 0.4) for t in link.snap.tables if t not in linked[:3] and any(
            fk.ref_table in {x.name for x in linked[:3]} for fk in t.foreign_keys)
        for c in t.columns if is_date(c)]
    dates.sort(key=lambda x: (-x[2], x[0] is not subject))
    return dates


def date_filters(question: str, dates: list[tuple[Table, Column, float]]) -> list[Filter]:
    out: list[Filter] = []
    q = question.lower()
    for m in re.finditer(r"\b(?:(" + "|".join(MONTHS) + r")\s+)?((?:19|20)\d\d)\b", q):
        month, year = m.group(1), m.group(2)
        before = q[max(0, m.start() - 12):m.start()]
        op = "<" if re.search(r"before|earlier|prior", before) else (
            ">" if re.search(r"after|since|later", before) else "=")
        for t, c, s in dates:
            if month:
                key = f"{year}-{MONTHS.index(month) + 1:02d}"
                sql = f"strftime('%Y-%m', {{}}) = '{key}'"
            elif op == "=":
                sql = f"strftime('%Y', {{}}) = '{year}'"
            else:
                edge = f"{year}-01-01" if op == "<" else f"{int(year) + 1}-01-01"
                sql = f"{{}} {'<' if op == '<' else '>='} '{edge}'"
            out.append(Filter(t, sql, c, s))
    return out


def value_filters(link: Link, question: str) -> list[list[Filter | None]]:
    """Alternatives for each value the question names: one group per value (None: the
    words were not a value after all)."""
    groups: list[list[Filter | None]] = []
    for h in link.hints:
        t = next((x for x in link.snap.tables if link.snap.qualified(x) == h.table), None)
        c = next((x for x in t.columns if x.name == h.column), None) if t else None
        if t is None or c is None:
            continue
        f = Filter(t, f"{{}} = {literal(h.value)}", c, 1.0, value=True)
        for g in groups:  # the same words matched in several columns: alternatives
            if g and g[0] is not None and g[0].sql == f.sql:
                g.append(f)
                break
        else:
            groups.append([f])
    named = {id(m.table) for m in link.tables}
    for g in groups:  # "customers from Canada": the customer's country before a join's
        if any(f is not None and id(f.table) in named for f in g):
            for f in g:
                if f is not None and id(f.table) not in named:
                    f.score *= 0.9
    beside = {id(h.right) for m in link.tables for h in neighbours(link.snap, m.table)}
    likes = "|".join(cue for _, cue in LIKE)
    for phrase in link.phrases:
        if re.search(rf"(?i)\b(?:{likes})\s+(?:the\s+word\s+)?['\"\u201c\u2018]?"
                     rf"{re.escape(phrase)}", question):
            continue  # "whose title contains 'Live'": a word search, below
        alts: list[Filter] = []
        owner = re.search(rf"(?i)\b(?:does|do|did|has|have|had)\s+{re.escape(phrase)}\s+(?:"
                          r"have|own|hold|make|release|record|write|sell|made|released|"
                          r"recorded|written|sold|published|produced)\b", question)
        made_by = re.search(rf"(?i)\bby\s+(?:the\s+)?['\"\u201c\u2018]?{re.escape(phrase)}",
                            question)
        for t in link.snap.tables:
            near = 1.0 if id(t) in named or (made_by and MAKER.search(t.name)) else (
                0.8 if id(t) in beside else 0.5)
            if made_by and not MAKER.search(t.name):
                near *= 0.7  # "albums by Metallica": the maker's name, not an album's
            cols = {c.name.lower().replace("_", ""): c for c in t.columns}
            parts = phrase.split()
            if len(parts) >= 2 and "firstname" in cols and "lastname" in cols:
                first, last = cols["firstname"], cols["lastname"]
                cond = (f"{{}} = {literal(parts[0])} AND {{{last.name}}} = "
                        f"{literal(' '.join(parts[1:]))}")
                alts.append(Filter(t, cond, first, 1.0 * near, value=True))
                continue
            for c in t.columns:
                if not is_text(c) or c.primary_key:
                    continue
                mentioned = any(m.column is c for m in link.columns)
                label = c in label_columns(t)
                score = 0.9 if mentioned else 0.7 if label else 0.5 if near == 1.0 else 0
                # "how many albums does Iron Maiden have": not an album's own name
                own = 0.6 if owner and near == 1.0 and not mentioned else near
                if score:
                    alts.append(Filter(t, f"{{}} = {literal(phrase)}", c, score * own,
                                        value=True))
        if alts:
            at = word_at(question, max(0, question.find(phrase)))
            for f in alts:  # "the last name Tanaka": the column named just before
                if any(m.column is f.column and m.end in (at, at - 1) for m in link.columns):
                    f.score, f.words = 1.0, (at - 2, at)
                elif f.column in label_columns(f.table) and any(  # "the album 'Big Ones'"
                        m.table is f.table and (m.end == at or (m.end == at - 1 and link.words[
                            m.end] in ("called", "named", "titled"))) for m in link.tables):
                    f.score = 1.0
            # "albums has Iron Maiden released", "tracks by AC/DC": surely a value
            sure = [] if owner or made_by else [None]
            groups.append([*sorted(alts, key=lambda f: -f.score)[:4], *sure])
    for m in link.tables:  # "invoice 5", "order #12": a row by its key
        nxt = link.words[m.end:m.end + 2]
        keys = [c for c in m.table.columns if c.primary_key]
        if nxt[:1] and nxt[0].isdigit() and len(keys) == 1 and not (
                nxt[1:] and nxt[1] in UNIT) and not (1900 <= int(nxt[0]) <= 2100):
            groups.append([Filter(m.table, f"{{}} = {int(nxt[0])}", keys[0], 1.0, value=True)])
    for pat, cue in LIKE:
        m = re.search(rf"(?i)\b(?:{cue})\s+(?:the\s+(?:word|letter)\s+)?(['\"]?)([\w-]+)['\"]?",
                      question)
        if m and (m.group(1) or (m.group(2).lower() not in _NOT_A_WORD and not any(
                t.start == word_at(question, m.start(2)) for t in link.tables))):  # "contain
            # more than 1000 tracks", "include tracks by ..." search no word; "starts with
            # 'The'" does
            word = m.group(2)
            alts = []
            tables = {id(x.table): x.table for x in link.tables}
            tables.update({id(x.table): x.table for x in link.columns if x.score >= 0.9})
            for t in tables.values():
                for c in t.columns:
                    if is_text(c) and (c in label_columns(t) or any(
                            x.column is c and x.score >= 0.7 for x in link.columns)):
                        alts.append(Filter(t, f"{{}} LIKE {literal(pat.format(word))}", c, 0.9,
                                           value=True))
            # "the word 'Live' in the title", "whose name starts with 'The'": that column
            after, cue_at = word_at(question, m.end()), word_at(question, m.start())
            there = [f for f in alts if any(x.column is f.column and (
                after <= x.start <= after + 3
                or (cue_at - 2 <= x.end <= cue_at and id(x.table) in named))
                for x in link.columns)]
            for f in alts:
                f.score = 1.0 if f in there else 0.7 if there else f.score
            alts.sort(key=lambda f: -f.score)
            if alts:
                groups.append([*alts[:4], None])
    return groups


# --------------------------------------------------------------------------- entry point


def number_filters(numbers: list[tuple[str, float, str, int]],
                    measures: list[tuple[Table, Column, float]], q: str, limit: int | None,
                    *, dfilters_present: bool) -> list[Filter]:
    out = []
    for op, n, unit, _pos in numbers:
        if 1900 <= n <= 2100 and n == int(n) and dfilters_present:
            continue  # a year
        if limit is not None and n == limit and op == "=":
            continue  # the k of a top-k
        for t, c, s in measures:
            if not is_numeric(c):
                continue
            value: float = n * UNIT.get(unit, 1) if "milli" in c.name.lower() or unit in (
                "gb", "mb", "kb") else n
            v = int(value) if value == int(value) else value
            out.append(Filter(t, f"{{}} {op} {v}", c, s * (1.0 if op != "=" else 0.8)))
    return out


def is_flag(c: Column) -> bool:
    return bool(re.search(r"(?i)bool|bit\b|tinyint\(1\)", c.type or ""))


def flag_filters(link: Link, subject: Table) -> list[Filter]:
    """"discontinued products": a yes/no column the question names is true (written as
    the bare column, which every engine reads as a condition)."""
    return [Filter(subject, "{}", m.column, 1.0) for m in link.columns
            if m.table is subject and m.column is not None and is_flag(m.column)
            and m.score >= 0.9]


def sign_filters(question: str, measures: list[tuple[Table, Column, float]]) -> list[Filter]:
    """"negative amounts" / "positive balances"."""
    m = re.search(r"(?i)\b(negative|positive)\b", question)
    if not m:
        return []
    op = "<" if m.group(1).lower() == "negative" else ">"
    return [Filter(t, f"{{}} {op} 0", c, s) for t, c, s in measures if is_numeric(c)]


ABOVE_AVERAGE = re.compile(
    r"(?i)\b(longer|shorter|more|less|higher|lower|greater|bigger|larger|smaller|cheaper|"
    r"pricier|above|below|over|under)\s+(?:than\s+)?(?:the\s+)?(?:average|mean)\b")


def average_filters(question: str, measures: list[tuple[Table, Column, float]]
                    ) -> list[Filter]:
    """"tracks longer than the average", "priced above average": the measure against its
    own average over the table (`{@table}` is the table, written by the query)."""
    m = ABOVE_AVERAGE.search(question)
    if not m:
        return []
    op = "<" if m.group(1).lower() in ("shorter", "less", "lower", "smaller", "cheaper",
                                       "below", "under") else ">"
    return [Filter(t, f"{{}} {op} (SELECT AVG({{{c.name}}}) FROM {{@table}})", c, s)
            for t, c, s in measures if is_numeric(c)]


def null_filters(question: str, link: Link, subject: Table) -> list[Filter]:
    out = []
    for pattern, neg in ((NULL, "IS NULL"), (NOT_NULL, "IS NOT NULL")):
        for m in pattern.finditer(question):
            said = {_stem(w) for w in _words(" ".join(g for g in m.groups() if g))}
            for c in subject.columns:
                terms = {_stem(w) for w in _words(c.name)}
                if not c.primary_key and terms and terms <= said:
                    out.append(Filter(subject, f"{{}} {neg}", c, 1.0))
    return out
