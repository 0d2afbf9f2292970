"""Candidate queries built from the linked schema for the common shapes of question.

A small model writes `SELECT * FROM a_table` for most questions, but it can tell a count
from a list when shown both. So for counts, filters, lists, top-k, one aggregate, one
group-by and joins along foreign keys, queries are assembled here from what `linking.py`
found (the counted or listed table, the columns and values named, the measure a
superlative ranks by), several per question where the words leave a choice open. Each
carries a prior score from how much of the question it accounts for; `choose.py` runs
them and keeps the best. Queries are written in SQLite's syntax and carried to the
connection's dialect by sqlglot, so one set of rules serves every engine.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import product

from ..databases.catalog import Column, Table
from .context import _stem, _words
from .linking import Hop, Link, Linked, is_people, join_path, label_columns, word_at

__all__ = ["Candidate", "candidates"]

log = logging.getLogger(__name__)

#: Candidates per question, at most (each is run).
MAX_CANDIDATES = 8

_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                 "eight": 8, "nine": 9, "ten": 10, "twenty": 20, "a dozen": 12}
_NUM = r"(\d+(?:\.\d+)?|" + "|".join(_NUMBER_WORDS) + ")"
_COUNT = re.compile(r"(?i)\bhow\s+many\b|(?<!phone\s)(?<!fax\s)(?<!account\s)(?<!serial\s)"
                    r"\bnumber\s+of\b|\bcount\b|\bcounts\b")
_DISTINCT = re.compile(r"(?i)\b(different|distinct|unique)\b|\bonce\b|\bno\s+duplicates\b")
_AVG = re.compile(r"(?i)\b(average|averge|avrage|avg|mean|typical)\b")
_SUM = re.compile(r"(?i)\b(sum|how\s+much|in\s+total|altogether|combined|overall|total\s+"
                  r"(?!number))\b")
_MAX = re.compile(r"(?i)\b(max|maximum|largest|highest|biggest|greatest|most\s+recent|latest|"
                  r"newest|longest|most\s+expensive|heaviest|priciest|top|best|last)\b")
_MIN = re.compile(r"(?i)\b(min|minimum|smallest|lowest|least|cheapest|earliest|first|"
                  r"shortest|fewest|oldest)\b")
_MOST = re.compile(r"(?i)\b(most|highest|largest|biggest|top|best)\b")
_RANKED_TOTAL = re.compile(r"(?i)\b(lowest|highest|largest|smallest|biggest|maximum|minimum|"
                           r"average|mean|max|min)\s+(\w+\s+)?total\b")
_COMPARATIVE = re.compile(r"(?i)\b(more|less|fewer|greater|higher|lower|longer|shorter|bigger|"
                          r"smaller|larger|cheaper|older|younger|later|earlier)\s+than\b")
_LEAST = re.compile(r"(?i)\b(least|fewest|lowest|smallest)\b")
_YOUNG = re.compile(r"(?i)\b(youngest|younger|newest|latest|most\s+recent(ly)?|last)\b")
_OLD = re.compile(r"(?i)\b(oldest|older|earliest|first|longest\s+with|longest)\b")
_WHICH = re.compile(r"(?i)^\s*(which|who|name|list|show|give|find)\b|\b(which|who)\b")
_WHAT_IS = re.compile(r"(?i)^\s*(what|when)(\W?s|\s+is|\s+was|\s+are)\s+the\b")
_GROUP = re.compile(r"(?i)\b(?:for\s+each|in\s+each|each|per|every|(?<!sorted\s)(?<!ordered\s)"
                    r"(?<!order\s)by)\s+((?:[\w']+\s*){1,3})")
_AGG_CUE = re.compile(r"(?i)\b(how\s+many|number|count|total|sum|average|avg|mean|most|least|"
                      r"revenue|sales|spent|spend|amount)\b")
_TIME_UNIT = {"year": "%Y", "yearly": "%Y", "annual": "%Y", "month": "%Y-%m",
              "monthly": "%Y-%m", "day": "%Y-%m-%d", "daily": "%Y-%m-%d"}
_TOPN = re.compile(rf"(?i)\b(?:top|first|last|best|worst|which|what\s+are\s+the|the)\s+{_NUM}\s|"
                   rf"\b{_NUM}\s+(?:\w+\s+)?"
                   r"(?:\w+est|most|least|biggest|best|worst|top)\b|\b(?:the\s+)?"
                   rf"{_NUM}\s+(?:\w+\s+)?(?:with|having|that\s+have)\s+the\b")
_ASC = re.compile(r"(?i)\b(alphabetical|ascending|a\s*-\s*z|oldest\s+first|lowest\s+first|"
                  r"smallest\s+first|earliest\s+first|in\s+\w+\s+order|sorted|ordered)\b")
_DESC = re.compile(r"(?i)\b(descending|highest\s+first|largest\s+first|biggest\s+first|"
                   r"most\s+first|newest\s+first|latest\s+first|most\s+recent\s+first|"
                   r"best\s+first)\b")
_MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december"]
_COMPARE = [
    (">=", r"at\s+least|no\s+less\s+than|or\s+more"),
    ("<=", r"at\s+most|no\s+more\s+than|or\s+less|up\s+to"),
    (">", r"over|more\s+than|greater\s+than|above|exceeding|exceeds|longer\s+than|"
          r"bigger\s+than|larger\s+than|higher\s+than|after|later\s+than|beyond"),
    ("<", r"under|less\s+than|fewer\s+than|below|shorter\s+than|smaller\s+than|lower\s+than|"
          r"cheaper\s+than|before|earlier\s+than"),
    ("=", r"cost|costs|costing|priced\s+at|equal\s+to|exactly|of|at|is"),
]
_UNIT = {"minute": 60_000, "minutes": 60_000, "min": 60_000, "second": 1_000,
         "seconds": 1_000, "hour": 3_600_000, "hours": 3_600_000, "gb": 1_000_000_000,
         "mb": 1_000_000, "kb": 1_000}
_NULL = re.compile(r"(?i)\b(?:no|without|missing|lack(?:ing)?|empty|blank|null)\s+"
                   r"((?:\w+\s*){1,2})")
_NOT_NULL = re.compile(r"(?i)\b(?:have|has|with)\s+(?:a|an|any|some)\s+((?:\w+\s*){1,2})|"
                       r"\b((?:\w+\s*){1,2})\s+on\s+file\b")
_RECORD = re.compile(r"(?i)\b(listed|recorded|given|set|on\s+file|filled)\b")
_LIKE = [
    ("%{}%", r"contain(?:s|ing)?(?:\s+the\s+word)?|with\s+the\s+word|mention(?:s|ing)?|"
             r"includ(?:e|es|ing)|use|uses|using"),
    ("{}%", r"start(?:s|ing)?\s+with|begin(?:s|ning)?\s+with"),
    ("%{}", r"end(?:s|ing)?\s+(?:with|in)"),
]


@dataclass
class Candidate:
    """A query and how well it accounts for the question (the prior `choose.py` starts
    from)."""

    sql: str
    score: float
    shape: str
    values: int = 0  # values of the question it filters on (found in the data or not)
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- SQL text

_KEYWORD_TEXT = """select from where group order by limit as and or not null is in on join
table index key values case when then else end desc asc having union all distinct left right
inner outer cross natural default check references primary foreign unique user date time
timestamp"""
_KEYWORDS = frozenset(_KEYWORD_TEXT.split())


def ident(name: str, dialect: str) -> str:
    """A name as SQLite writes it: quoted when it must be (or when the target engine
    folds unquoted names to lower case and this one has capitals)."""
    plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) and name.lower() not in _KEYWORDS
    if plain and not (dialect in ("postgres", "snowflake", "oracle") and name != name.lower()):
        return name
    return '"' + name.replace('"', '""') + '"'


def literal(value: object) -> str:
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    return "'" + str(value).replace("'", "''") + "'"


class _Query:
    """One query under construction: the tables it reads and how they join."""

    def __init__(self, link: Link, subject: Table, dialect: str) -> None:
        self.link, self.subject, self.dialect = link, subject, dialect
        self.tables: list[Table] = [subject]
        self.joins: list[Hop] = []
        self.ok = True

    def need(self, table: Table) -> None:
        if table in self.tables:
            return
        path = join_path(self.link.snap, self.subject, table)
        if path is None:
            self.ok = False
            return
        for hop in path:
            if hop.right not in self.tables:
                self.tables.append(hop.right)
                self.joins.append(hop)

    def name(self, t: Table) -> str:
        return ".".join(ident(p, self.dialect) for p in self.link.snap.qualified(t).split("."))

    def col(self, t: Table, c: Column | str) -> str:
        """Always qualified; `finish` drops the table when the query reads one table."""
        self.need(t)
        cname = c if isinstance(c, str) else c.name
        return f"{ident(t.name, self.dialect)}.{ident(cname, self.dialect)}"

    def source(self) -> str:
        out = self.name(self.subject)
        for hop in self.joins:
            on = " AND ".join(
                f"{ident(hop.left.name, self.dialect)}.{ident(a, self.dialect)} = "
                f"{ident(hop.right.name, self.dialect)}.{ident(b, self.dialect)}"
                for a, b in zip(hop.left_cols, hop.right_cols, strict=False))
            out += f" JOIN {self.name(hop.right)} ON {on}"
        return out

    def finish(self, sql: str) -> str:
        """A query over one table names its columns bare."""
        if self.joins:
            return sql
        return sql.replace(ident(self.subject.name, self.dialect) + ".", "")


# --------------------------------------------------------------------------- question parts


def _number(text: str) -> float | None:
    t = text.lower().replace(",", "")
    if t in _NUMBER_WORDS:
        return float(_NUMBER_WORDS[t])
    try:
        return float(t)
    except ValueError:
        return None


def _limit(question: str) -> int | None:
    m = _TOPN.search(question)
    if not m:
        return None
    for g in m.groups():
        if g:
            n = _number(g)
            if n and n == int(n) and 0 < n <= 1000:
                return int(n)
    return None


def _is_numeric(c: Column) -> bool:
    return bool(re.search(r"(?i)int|real|num|dec|float|double|money", c.type or "")) and not (
        c.primary_key or re.search(r"(?i)(^id$|_id$|[a-z]Id$)", c.name))


def _is_date(c: Column) -> bool:
    return bool(re.search(r"(?i)date|time", c.type or "") or re.search(
        r"(?i)date$|_at$|^date|time$|day$", c.name))


def _is_text(c: Column) -> bool:
    return bool(re.search(r"(?i)char|text|string|clob", c.type or ""))


@dataclass
class _Filter:
    table: Table
    sql: str  # a condition, with `{}` where the column goes
    column: Column
    score: float
    words: tuple[int, int] | None = None
    value: bool = False  # a value the question names (not a number or a date)


def _numbers(question: str) -> list[tuple[str, float, str, int]]:
    """(operator, value, unit word, char position) for every number the question compares."""
    out = []
    ops = "|".join(f"(?P<o{i}>{pat})" for i, (_, pat) in enumerate(_COMPARE))
    pattern = re.compile(rf"(?i)(?:\b(?:{ops})\s+)?\$?(?P<n>\d[\d,]*(?:\.\d+)?)\s*"
                         r"(?P<u>[a-z]+)?")
    for m in pattern.finditer(question):
        n = _number(m.group("n"))
        if n is None:
            continue
        op = "="
        for i, (sym, _) in enumerate(_COMPARE):
            if m.group(f"o{i}"):
                op = sym
                break
        out.append((op, n, (m.group("u") or "").lower(), m.start("n")))
    return out


def _date_filters(question: str, dates: list[tuple[Table, Column, float]]) -> list[_Filter]:
    out: list[_Filter] = []
    q = question.lower()
    for m in re.finditer(r"\b(?:(" + "|".join(_MONTHS) + r")\s+)?((?:19|20)\d\d)\b", q):
        month, year = m.group(1), m.group(2)
        before = q[max(0, m.start() - 12):m.start()]
        op = "<" if re.search(r"before|earlier|prior", before) else (
            ">" if re.search(r"after|since|later", before) else "=")
        for t, c, s in dates:
            if month:
                key = f"{year}-{_MONTHS.index(month) + 1:02d}"
                sql = f"strftime('%Y-%m', {{}}) = '{key}'"
            elif op == "=":
                sql = f"strftime('%Y', {{}}) = '{year}'"
            else:
                edge = f"{year}-01-01" if op == "<" else f"{int(year) + 1}-01-01"
                sql = f"{{}} {'<' if op == '<' else '>='} '{edge}'"
            out.append(_Filter(t, sql, c, s))
    return out


def _value_filters(link: Link, question: str) -> list[list[_Filter | None]]:
    """Alternatives for each value the question names: one group per value (None: the
    words were not a value after all)."""
    groups: list[list[_Filter | None]] = []
    for h in link.hints:
        t = next((x for x in link.snap.tables if link.snap.qualified(x) == h.table), None)
        c = next((x for x in t.columns if x.name == h.column), None) if t else None
        if t is None or c is None:
            continue
        f = _Filter(t, f"{{}} = {literal(h.value)}", c, 1.0, value=True)
        for g in groups:  # the same words matched in several columns: alternatives
            if g and g[0] is not None and g[0].sql == f.sql:
                g.append(f)
                break
        else:
            groups.append([f])
    named = {id(m.table) for m in link.tables}
    for phrase in link.phrases:
        alts: list[_Filter] = []
        for t in link.snap.tables:
            near = 1.0 if id(t) in named else 0.6
            cols = {c.name.lower().replace("_", ""): c for c in t.columns}
            parts = phrase.split()
            if len(parts) >= 2 and "firstname" in cols and "lastname" in cols:
                first, last = cols["firstname"], cols["lastname"]
                cond = (f"{{}} = {literal(parts[0])} AND {{{last.name}}} = "
                        f"{literal(' '.join(parts[1:]))}")
                alts.append(_Filter(t, cond, first, 1.0 * near, value=True))
                continue
            for c in t.columns:
                if not _is_text(c) or c.primary_key:
                    continue
                mentioned = any(m.column is c for m in link.columns)
                label = c in label_columns(t)
                score = 0.9 if mentioned else 0.7 if label else 0.5 if near == 1.0 else 0
                if score:
                    alts.append(_Filter(t, f"{{}} = {literal(phrase)}", c, score * near,
                                        value=True))
        if alts:
            at = word_at(question, max(0, question.find(phrase)))
            for f in alts:  # "the last name Tanaka": the column named just before
                if any(m.column is f.column and m.end in (at, at - 1) for m in link.columns):
                    f.score, f.words = 1.0, (at - 2, at)
            groups.append([*sorted(alts, key=lambda f: -f.score)[:5], None])
    for pat, cue in _LIKE:
        m = re.search(rf"(?i)\b(?:{cue})\s+(?:the\s+(?:word|letter)\s+)?['\"]?([\w-]+)['\"]?",
                      question)
        if m:
            word = m.group(1)
            alts = []
            for t in {x.table for x in link.columns} | {x.table for x in link.tables}:
                for c in t.columns:
                    if _is_text(c) and (c in label_columns(t) or any(
                            x.column is c for x in link.columns)):
                        alts.append(_Filter(t, f"{{}} LIKE {literal(pat.format(word))}", c, 0.9,
                                            value=True))
            if alts:
                groups.append(alts)
    return groups


# --------------------------------------------------------------------------- entry point


def candidates(question: str, link: Link, dialect: str) -> list[Candidate]:
    """Queries for `question` over the linked tables, best prior first (may be empty)."""
    try:
        out = _build(question, link, dialect)
    except Exception:  # a candidate is a help; a question never fails for want of one
        log.debug("no candidates for %r", question, exc_info=True)
        return []
    seen: dict[str, Candidate] = {}
    for c in out:
        if c.sql not in seen or seen[c.sql].score < c.score:
            seen[c.sql] = c
    ranked = sorted(seen.values(), key=lambda c: -c.score)[:MAX_CANDIDATES]
    if dialect not in ("sqlite", ""):
        import sqlglot

        for c in ranked:
            c.sql = sqlglot.transpile(c.sql, read="sqlite", write=dialect)[0]
    return ranked


def _subjects(question: str, link: Link) -> list[tuple[Table, float]]:
    """The tables whose rows the question counts or lists, likeliest first."""
    ranked = link.ranked_tables()
    if not ranked:
        return []
    out: list[tuple[Table, float]] = []
    q = question.lower()
    cue = _COUNT.search(q) or re.search(r"(?i)\b(which|what|list|name|show|who)\b", q)
    after = [m for m in link.tables if cue and m.start >= word_at(question, cue.start())]
    first = list(after or link.tables)
    while len(first) > 1 and first[1].start == first[0].end:  # "product categories"
        first = first[1:]
    if re.match(r"(?i)\s*who\b", q):  # "who is the support rep for ...": a person
        people = [m.table for m in first if is_people(m.table)] or [
            t for t in ranked if is_people(t)]
        if people:
            out.append((people[0], 1.0))
    if first and all(first[0].table is not s for s, _ in out):
        out.append((first[0].table, 1.0 if not out else 0.9))
    for i, t in enumerate(ranked):
        if all(t is not s for s, _ in out):
            out.append((t, 0.8 - 0.1 * i))
    return out[:3]


def _resolve(link: Link, subject: Table) -> list[Linked]:
    """One column for each place the question names one: the subject's if it has it, else
    that of a table the question names (a column of an unnamed table is not meant)."""
    play = [subject] + [m.table for m in link.tables if m.table is not subject]
    rank: dict[int, int] = {}
    for i, t in enumerate(play):
        rank.setdefault(id(t), i)
    best: dict[int, Linked] = {}
    for m in link.columns:
        if id(m.table) not in rank or m.column is None:
            continue
        if m.table is subject and m.score == 0.5:  # "country": the subject's billing country
            m = Linked(m.table, m.column, m.start, m.end, 0.75)
        cur = best.get(m.start)
        if cur is None or (-rank[id(m.table)], m.score) > (-rank[id(cur.table)], cur.score):
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
                and out[-1].score >= 0.7 and _stem(m.column.name.lower()) in _QUALIFIERS):
            continue
        out.append(m)
    return out


_QUALIFIERS = frozenset({"address", "number", "title", "name", "date", "code", "type"})


def _measures(link: Link, subject: Table) -> list[tuple[Table, Column, float]]:
    """Numeric or date columns the question points at (by name or by a measure word)."""
    out: list[tuple[Table, Column, float]] = []
    for m in _resolve(link, subject):
        if m.column is not None and (_is_numeric(m.column) or _is_date(m.column)):
            out.append((m.table, m.column, m.score))
    out.sort(key=lambda x: -x[2])
    return out


def _group_keys(question: str, link: Link, subject: Table) -> list[tuple[str, object, float]]:
    """What "each X" / "per X" / "by X" groups by: ("time", fmt), ("col", Linked) or
    ("table", Table)."""
    out: list[tuple[str, object, float]] = []
    for m in _GROUP.finditer(question):
        if re.match(r"(?i)by\b", question[m.start():]) and not _AGG_CUE.search(question):
            continue
        start = word_at(question, m.start(1))
        head = m.group(1).split()[0].lower() if m.group(1).split() else ""
        if _stem(head) in _TIME_UNIT or head in _TIME_UNIT:
            out.append(("time", _TIME_UNIT.get(head) or _TIME_UNIT[_stem(head)], 1.0))
            continue
        for c in _resolve(link, subject):
            if c.start in (start, start + 1) and c.column is not None:
                out.append(("col", c, c.score))
        for t in link.tables:
            if t.start in (start, start + 1) and t.table is not subject:
                out.append(("table", t.table, t.score))
    q = question.lower()
    for word, fmt in _TIME_UNIT.items():
        if not any(k == "time" for k, _, _ in out) and (
                (re.search(rf"\b{word}\b", q) and word.endswith("ly"))
                or re.search(rf"\b(which|what)\s+{word}\b", q)):  # "which year had the most"
            out.append(("time", fmt, 0.9))
    return out


_NAME_PARTS = re.compile(r"(?i)\b(first|last)\s+(and\s+last\s+)?names?\b")


@dataclass(frozen=True)
class _Asked:
    """What the question asks for, read once from its words."""

    question: str
    q: str  # lower case, comparisons ("more than") and name parts ("first name") set aside
    counting: bool
    distinct: bool
    avg: bool
    summed: bool
    limit: int | None
    which: bool  # "which ...", "who ...", "list ...": rows, not a value
    superlative: bool
    most: bool  # "most" (or "least"): ranks by a count or a sum, highest first

    @property
    def ranks(self) -> bool:
        return bool(self.superlative or self.limit or self.counting or self.avg or self.summed)

    @property
    def direction(self) -> str:
        return "ASC" if _LEAST.search(self.q) and not _MOST.search(self.q) else "DESC"


def _asked(question: str) -> _Asked:
    q = _COMPARATIVE.sub("than", _NAME_PARTS.sub("name", question.lower()))
    q = re.sub(r"\b(oldest|earliest|lowest|smallest|cheapest|shortest|least)\s+first\b",
               "ascending", q)
    q = re.sub(r"\b(\w+est|most\s+recent|most)\s+first\b", "descending", q)
    superlative = any(p.search(q) for p in (_MAX, _MIN, _MOST, _LEAST, _YOUNG, _OLD))
    return _Asked(
        question=question, q=q, counting=bool(_COUNT.search(q)),
        distinct=bool(_DISTINCT.search(q)), avg=bool(_AVG.search(q)),
        summed=bool(_SUM.search(q)) and not _RANKED_TOTAL.search(q), limit=_limit(q),
        which=bool(_WHICH.search(q)), superlative=superlative,
        most=bool(_MOST.search(q) or _LEAST.search(q)))


def _build(question: str, link: Link, dialect: str) -> list[Candidate]:
    ask = _asked(question)
    subjects = _subjects(question, link)
    if not subjects:
        return []
    out: list[Candidate] = []
    value_groups = _value_filters(link, question)
    numbers = _numbers(question)

    for subject, s_score in subjects:
        linked = [subject] + [t for t in link.ranked_tables() if t is not subject]
        dates = [(t, c, 1.0 if any(m.column is c for m in link.columns) else 0.5)
                 for t in linked[:3] for c in t.columns if _is_date(c)]
        dates.sort(key=lambda x: (-x[2], x[0] is not subject))
        dfilters = _date_filters(question, dates[:2])
        measures = _measures(link, subject)
        numeric = [(subject, c, 0.3) for c in subject.columns if _is_numeric(c)]
        # filters: one choice per value group, each group's alternatives enumerated
        choice_sets: list[list[_Filter | None]] = [
            g[:3] + ([None] if g[-1] is None else []) for g in value_groups]
        if dfilters:
            choice_sets.append(dfilters[:2])
        nfilters = _number_filters(numbers, measures or numeric, ask.q, ask.limit,
                                   dfilters_present=bool(dfilters))
        if nfilters:
            choice_sets.append(nfilters[:3])
        nulls = _null_filters(question, link, subject)
        if nulls:
            choice_sets.append(nulls[:2])
        combos = list(product(*choice_sets))[:12] if choice_sets else [()]
        for filters in combos:
            skipped = sum(f is None for f in filters)
            shapes = _Shapes(ask, link, subject, s_score * 0.75 ** skipped,
                             [f for f in filters if f is not None], dialect,
                             measures=measures, numeric=numeric, dates=dates)
            out += shapes.all()
    return out


def _number_filters(numbers: list[tuple[str, float, str, int]],
                    measures: list[tuple[Table, Column, float]], q: str, limit: int | None,
                    *, dfilters_present: bool) -> list[_Filter]:
    out = []
    for op, n, unit, _pos in numbers:
        if 1900 <= n <= 2100 and n == int(n) and dfilters_present:
            continue  # a year
        if limit is not None and n == limit and op == "=":
            continue  # the k of a top-k
        for t, c, s in measures:
            if not _is_numeric(c):
                continue
            value: float = n * _UNIT.get(unit, 1) if "milli" in c.name.lower() or unit in (
                "gb", "mb", "kb") else n
            v = int(value) if value == int(value) else value
            out.append(_Filter(t, f"{{}} {op} {v}", c, s * (1.0 if op != "=" else 0.8)))
    return out


def _null_filters(question: str, link: Link, subject: Table) -> list[_Filter]:
    out = []
    for pattern, neg in ((_NULL, "IS NULL"), (_NOT_NULL, "IS NOT NULL")):
        for m in pattern.finditer(question):
            said = {_stem(w) for w in _words(" ".join(g for g in m.groups() if g))}
            for c in subject.columns:
                terms = {_stem(w) for w in _words(c.name)}
                if not c.primary_key and terms and terms <= said:
                    out.append(_Filter(subject, f"{{}} {neg}", c, 1.0))
    return out


_AGG_NAME = {"COUNT": "count", "SUM": "total", "AVG": "average", "MAX": "max", "MIN": "min"}
_AGG = re.compile(r"^(COUNT|SUM|AVG|MAX|MIN)\((DISTINCT\s+)?(?:.*\.)?\"?([\w ]+?|\*)\"?\)$")


def _alias(expr: str, dialect: str) -> str:
    """`SUM(Invoice.Total)` -> `SUM(Invoice.Total) AS total_total`: a result column named
    in words, for the table, the chart and the answer."""
    m = _AGG.match(expr)
    if not m:
        return expr
    func, distinct, col = m.groups()
    if col == "*":
        return f"{expr} AS count"
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", col).replace(" ", "_").lower()
    head = "distinct" if distinct else _AGG_NAME[func]
    name = words if words.startswith(head) else f"{head}_{words}"
    return f"{expr} AS {ident(name, dialect)}"


def _render(f: _Filter, qy: _Query) -> str:
    cond = f.sql.replace("{}", qy.col(f.table, f.column), 1)
    for c in f.table.columns:
        cond = cond.replace("{" + c.name + "}", qy.col(f.table, c))
    return cond


class _Shapes:
    """The candidate queries of one subject table under one choice of filters."""

    def __init__(self, ask: _Asked, link: Link, subject: Table, s_score: float,
                 filters: list[_Filter], dialect: str, *,
                 measures: list[tuple[Table, Column, float]],
                 numeric: list[tuple[Table, Column, float]],
                 dates: list[tuple[Table, Column, float]]) -> None:
        self.ask, self.link, self.subject, self.dialect = ask, link, subject, dialect
        self.filters, self.dates = filters, dates
        self.prior = s_score * (sum(f.score for f in filters) / len(filters) if filters else 1.0)
        used = {id(f.column) for f in filters}
        # what a superlative ranks by: a measure the filters do not already use
        self.measures = [m for m in measures if id(m[1]) not in used] or measures
        self.numeric = numeric
        # the columns the question asks to see, of the subject or a joined table
        self.shown = [m for m in _resolve(link, subject) if m.score >= 0.7 and (
            id(m.column) not in used or m.score >= 0.9)]
        self.explicit = _explicit_columns(ask.question, link, subject, self.shown, ask.ranks)
        self.groups = _group_keys(ask.question, link, subject)
        self.out: list[Candidate] = []

    def all(self) -> list[Candidate]:
        self.counts()
        self.aggregate()
        self.grouped()
        self.most_of_a_table()
        self.most_of_a_column()
        self.rows()
        return self.out

    # -- writing ------------------------------------------------------------------------

    def query(self, subject: Table | None = None) -> _Query:
        return _Query(self.link, subject or self.subject, self.dialect)

    def add(self, qy: _Query, select: list[str], score: float, shape: str, *,
            group: list[str] | None = None, order: str | None = None,
            lim: int | None = None, dist: bool = False, where: Sequence[str] = ()) -> None:
        conds = [_render(f, qy) for f in self.filters] + list(where)
        if not qy.ok:
            return
        items = ", ".join(_alias(e, self.dialect) for e in select)
        sql = f"SELECT {'DISTINCT ' if dist else ''}{items} FROM {qy.source()}"
        if conds:
            sql += " WHERE " + " AND ".join(conds)
        if group:
            sql += " GROUP BY " + ", ".join(group)
        if order:
            sql += " ORDER BY " + order
        if lim:
            sql += f" LIMIT {lim}"
        self.out.append(Candidate(qy.finish(sql), round(score * self.prior, 4), shape,
                                  values=sum(f.value for f in self.filters)))

    def order_dir(self, c: Column) -> str:
        q = self.ask.q
        if _is_date(c) and re.search(r"(?i)birth|born", c.name):
            return "DESC" if _YOUNG.search(q) else "ASC"
        if _is_date(c):
            return "ASC" if _OLD.search(q) and not _YOUNG.search(q) else "DESC"
        return "ASC" if _MIN.search(q) and not _MAX.search(q) else "DESC"

    # -- shapes -------------------------------------------------------------------------

    def counts(self) -> None:
        """How many: rows, or distinct values of a column the question names."""
        ask = self.ask
        if not ask.counting or self.groups:
            return
        self.add(self.query(), ["COUNT(*)"], 0.8 if ask.distinct else 1.0, "count")
        if ask.distinct:
            for m in self.shown:
                assert m.column is not None
                qy = self.query()
                self.add(qy, [f"COUNT(DISTINCT {qy.col(m.table, m.column)})"], 1.1 * m.score,
                         "count")

    def aggregate(self) -> None:
        """One value: an average, a sum, a largest or a smallest."""
        ask, q = self.ask, self.ask.q
        if self.groups or ask.counting or not (
                ask.avg or ask.summed or (ask.superlative and not ask.which)):
            return
        plain = not ask.avg and not ask.summed
        funcs = [("AVG", ask.avg), ("SUM", ask.summed and not ask.avg),
                 ("MAX", bool(_MAX.search(q)) and plain), ("MIN", bool(_MIN.search(q)) and plain)]
        bonus = 0.05 if not ask.limit else -0.1  # "the 3 largest" are rows
        for func, on in funcs:
            for t, c, s in (self.measures or self.numeric)[:3] if on else ():
                if func in ("AVG", "SUM") and not _is_numeric(c):
                    continue
                qy = self.query()
                self.add(qy, [f"{func}({qy.col(t, c)})"], s + bonus, "aggregate")

    def _aggs(self, qy: _Query) -> list[tuple[str, float]]:
        """What a group is measured by: an average, a sum or a count of its rows."""
        ask = self.ask
        aggs: list[tuple[str, float]] = []
        measured = [(t, c, s) for t, c, s in self.measures if _is_numeric(c)]
        if ask.avg:
            aggs += [(f"AVG({qy.col(t, c)})", s) for t, c, s in (
                measured or [x for x in self.numeric if _is_numeric(x[1])])[:2]]
        elif ask.summed or (_MAX.search(ask.q) and measured and not ask.counting):
            single = re.search(r"(?i)\b(biggest|largest|max|maximum|highest)\s+single\b", ask.q)
            aggs += [(f"{'MAX' if single else 'SUM'}({qy.col(t, c)})", s)
                     for t, c, s in measured[:2]]
        if ask.counting or not aggs:
            cd = [m for m in self.shown if ask.distinct and m.column is not None]
            aggs.insert(0, (f"COUNT(DISTINCT {qy.col(cd[0].table, cd[0].column)})", 1.0)
                        if cd else ("COUNT(*)", 0.9 if aggs else 1.0))
        return aggs

    def grouped(self) -> None:
        """"For each X" / "per X" / "by year": one row per group, ranked when asked."""
        ask, q = self.ask, self.ask.q
        for kind, key, g_score in self.groups:
            qy = self.query()
            if kind == "time":
                d = next(((t, c) for t, c, _ in self.dates), None)
                if d is None:
                    continue
                name = "month" if "%m" in str(key) and "%d" not in str(key) else (
                    "day" if "%d" in str(key) else "year")
                sel = [f"strftime('{key}', {qy.col(d[0], d[1])}) AS {name}"]
                grp, order_key = [name], name
            elif kind == "col":
                assert isinstance(key, Linked) and key.column is not None
                col = qy.col(key.table, key.column)
                sel, grp, order_key = [col], [col], col
            else:
                assert isinstance(key, Table)
                labels = label_columns(key)
                pk = [c for c in key.columns if c.primary_key] or labels
                sel, grp = [qy.col(key, c) for c in labels], [qy.col(key, c) for c in pk]
                order_key = sel[0]
            for agg, a_score in self._aggs(qy)[:2]:
                ranked = (ask.superlative and not re.search(r"(?i)\b(each|per|every)\b", q)
                          ) or bool(ask.limit)
                if ranked or _DESC.search(q):
                    lim = ask.limit or (None if _DESC.search(q) or not ranked else 1)
                    with_value = bool(_WITH_VALUE.search(q)) or not lim or (lim > 1 and bool(
                        re.search(r"(?i)\bhow\s+many|\bcount|amount", q)))
                    order = f"{agg} {ask.direction}"
                    self.add(qy, [*sel, agg] if with_value else sel, g_score * a_score, "group",
                             group=grp, order=order, lim=lim)
                    if with_value:
                        self.add(qy, sel, 0.8 * g_score * a_score, "group", group=grp,
                                 order=order, lim=lim)
                else:
                    in_order = (kind == "time" and _ASC.search(q)) or re.search(
                        r"(?i)in\s+\w+\s+order|chronolog", q)
                    self.add(qy, [*sel, agg], g_score * a_score, "group", group=grp,
                             order=order_key if in_order else None)

    def most_of_a_table(self) -> None:
        """"Which artist has the most tracks": group by the table asked about, count the
        rows of the other."""
        ask, link = self.ask, self.link
        if not (ask.superlative and ask.which) or self.groups or len(link.tables) < 2:
            return
        first = link.tables[0].table
        labels = label_columns(first)
        pk = [c for c in first.columns if c.primary_key] or labels
        for other in link.tables[1:]:
            if other.table is first:
                continue
            qy = self.query(other.table)
            sel, grp = [qy.col(first, c) for c in labels], [qy.col(first, c) for c in pk]
            aggs = [("COUNT(*)", 1.0)] + [(f"SUM({qy.col(t, c)})", s)
                                           for t, c, s in self.measures[:2] if _is_numeric(c)]
            for agg, a_score in aggs:
                self.add(qy, sel, 0.95 * a_score, "group", group=grp,
                         order=f"{agg} {ask.direction}", lim=ask.limit or 1)

    def most_of_a_column(self) -> None:
        """"Which country has the most customers", "top 3 countries by sales": group the
        subject by a column it names (groups without a value left out)."""
        ask, q = self.ask, self.ask.q
        top = bool(ask.limit and re.search(r"(?i)\btop\b|\bby\b", q))
        if self.groups or not ((ask.superlative and ask.which) or top):
            return
        for m in self.shown[:2]:
            if (m.column is None or m.table is not self.subject or _is_numeric(m.column)
                    or _is_date(m.column) or m.column.primary_key):
                continue
            qy = self.query()
            col = qy.col(m.table, m.column)
            known = [f"{col} IS NOT NULL"] if m.column.nullable else []
            aggs: list[tuple[str, float]] = []
            if ask.avg:
                aggs += [(f"AVG({qy.col(t, c)})", 0.9 * s) for t, c, s in self.measures[:1]
                         if _is_numeric(c) and c is not m.column]
            if ask.most and (re.search(r"(?i)\b(most|fewest|least)\s+(\w+\s+)?(\w+s)\b", q)
                             or ask.counting or re.search(r"(?i)\bmost\s+often\b", q)):
                aggs.append(("COUNT(*)", 0.9))
            aggs += [(f"SUM({qy.col(t, c)})", 0.85 * s) for t, c, s in self.measures[:1]
                     if _is_numeric(c) and c is not m.column and not ask.avg]
            with_value = bool(_WITH_VALUE.search(q))
            for agg, a_score in aggs:
                self.add(qy, [col, agg] if with_value else [col], a_score * m.score, "group",
                         group=[col], order=f"{agg} {ask.direction}", lim=ask.limit or 1,
                         where=known)

    def rows(self) -> None:
        """Lists, filtered rows and the top k."""
        ask, q, subject = self.ask, self.ask.q, self.subject
        if ask.counting and self.out:
            return
        explicit = self.explicit
        cols = explicit or [(subject, c) for c in label_columns(subject)]
        qy = self.query()
        select = [qy.col(t, c) for t, c in cols]
        # values of a column that is not what names a row ("which countries", "the payment
        # methods"): each once, unless every row is asked for
        values_only = bool(explicit) and all(
            not c.primary_key and c not in label_columns(t) for t, c in explicit)
        dist = ask.distinct or (values_only and not re.search(r"(?i)\b(every|each|all)\b", q))
        if ask.superlative or ask.limit:
            for t, c, s in (self.measures or self.numeric)[:3]:
                qy2 = self.query()
                sel = [qy2.col(tt, cc) for tt, cc in cols]
                # without "which" or a number, "the smallest file size" is one value
                weight = 1.0 if ask.which or ask.limit else 0.85
                self.add(qy2, sel, weight * s + 0.02, "topk",
                         order=f"{qy2.col(t, c)} {self.order_dir(c)}", lim=ask.limit or 1)
        order = None
        if _ASC.search(q) or _DESC.search(q):
            sort = _sort_column(ask.question, self.link, subject) or (cols[0] if cols else None)
            plain_asc = _ASC.search(q) and not _DESC.search(q) and not re.search(
                r"(?i)oldest|newest|latest|earliest", q)
            if sort is not None:
                order = f"{qy.col(*sort)} {'ASC' if plain_asc else self.order_dir(sort[1])}"
        base = 0.5 if (ask.superlative or ask.limit or ask.avg or ask.summed) else (
            0.7 if ask.counting else 0.9)
        self.add(qy, select, base + (0.1 if explicit else 0),
                 "filter" if self.filters else "list", order=order, dist=dist)
        if dist != ask.distinct or (not dist and explicit):
            self.add(qy, select, base - 0.15, "list", order=order, dist=not dist)


_WITH_VALUE = re.compile(r"(?i)\b(with|and)\s+(the|their|its)?\s*(amount|count|number|total|"
                         r"value|revenue|sales|sum|units)")


_SHOW_WORDS = "show give with and list display plus along their its include including what when"
_SHOW_CUE = frozenset(_SHOW_WORDS.split())


def _explicit_columns(question: str, link: Link, subject: Table, shown: list[Linked],
                      ranks: bool) -> list[tuple[Table, Column]]:
    """Columns the question asks to see, in its order ("first and last name, and city").
    When the question ranks or aggregates, a number or date it names is what it ranks by,
    shown only when asked for ("... and the total")."""
    only = re.search(r"(?i)\b(?:just|only)\s+(?:the\s+)?\w", question)
    start = word_at(question, only.start()) if only else 0
    cols: list[tuple[Table, Column]] = []
    asked: set[int] = set()
    for m in shown:
        assert m.column is not None
        if m.start < start:
            continue
        if set(link.words[max(0, m.start - 3):m.start]) & _SHOW_CUE:
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
    people = is_people(subject) and re.search(r"(?i)\b(names?|who)\b", question) and not any(
        c.name.lower().endswith("name") for _, c in cols)
    described = re.search(r"(?i)\bwith\s+(?:its|their|it's|the)\b", question) and cols and not any(
        c in label_columns(t) or c.primary_key for t, c in cols)
    if people or described:
        cols = [(subject, c) for c in label_columns(subject)] + cols
    return [(t, c) for t, c in cols if not (ranks and (_is_numeric(c) or _is_date(c)))
            or c.primary_key or id(c) in asked]


def _sort_column(question: str, link: Link, subject: Table) -> tuple[Table, Column] | None:
    m = re.search(r"(?i)\b(?:sorted|ordered|order)\s+by\s+([\w ]+)", question)
    if m:
        start = len(re.findall(r"\w+", question[:m.start(1)]))
        for c in link.columns:
            if c.start >= start and c.column is not None:
                return c.table, c.column
    for c in link.columns:
        if c.column is not None and (_is_date(c.column) or _is_numeric(c.column)):
            return c.table, c.column
    return None
