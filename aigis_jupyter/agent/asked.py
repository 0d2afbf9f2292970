"""What a question asks for, read from its words: counting or listing, an average or a
sum, a superlative and its direction, the top k, groups, and the values, numbers, dates
and blanks it filters on (as conditions for the columns that may hold them); and, for one
table it may be about, which of the columns it names are meant, shown or ranked by.

`shapes.py` turns this into candidate queries; nothing here knows SQL beyond the
conditions, which are written in SQLite's syntax like the rest of the candidates.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ..databases.catalog import Column, Table
from .context import _stem, _words
from .doubts import QUOTED
from .linking import NUMBER_TYPE, Link, label_columns, neighbours, word_at

if TYPE_CHECKING:
    from .querytext import Query


def literal(value: object) -> str:
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    return "'" + str(value).replace("'", "''") + "'"


NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
                 "eight": 8, "nine": 9, "ten": 10, "twenty": 20, "a dozen": 12}
NUM = r"(\d+(?:\.\d+)?|" + "|".join(NUMBER_WORDS) + ")"
COUNT = re.compile(r"(?i)\bhow\s+many\b|(?<!phone\s)(?<!fax\s)(?<!account\s)(?<!serial\s)"
                    r"\bnumber\s+of\b|\bcount\b|\bcounts\b")
#: "the top 2 countries by number of invoices": a count that ranks, not the answer.
RANKING_COUNT = re.compile(r"(?i)\b(?:by|in)\s+(?:the\s+)?(?:number|count)\s+of\b|"
                           r"\bby\s+(?:\w+\s+)?count\b")
DISTINCT = re.compile(r"(?i)\b(different|distinct|unique)\b|\bonce\b|\bno\s+duplicates\b")
AVG = re.compile(r"(?i)\b(average|averge|avrage|avg|mean|typical)\b")
SUM = re.compile(r"(?i)\b(sum|how\s+much|in\s+total|altogether|combined|overall|total\s+"
                  r"(?!number))\b")
MAX = re.compile(r"(?i)\b(max|maximum|largest|highest|biggest|greatest|most\s+recent|latest|"
                  r"newest|longest|most\s+expensive|heaviest|priciest|top|best|last)\b")
MIN = re.compile(r"(?i)\b(min|minimum|smallest|lowest|least|cheapest|earliest|first|"
                  r"shortest|fewest|oldest)\b")
MOST = re.compile(r"(?i)\b(most|highest|largest|biggest|top|best)\b")
#: "spent the most", "the most invoice revenue": ranked by a sum of money, not a count
MONEY_MOST = re.compile(r"(?i)\b(spent|spend|spends|earned|earns|paid|pays|brought\s+in|"
                        r"generated|grossed)\s+(?:the\s+)?(most|least)\b|\b(most|least)\s+"
                        r"(?:\w+\s+)?(revenue|money|income|earnings|spending|profit)\b|"
                        r"\bby\s+(?:total\s+)?(sales|revenue|spending|income)\b")
#: "the highest invoice total" ranks a column named total; "the highest total sales" sums
RANKED_TOTAL = re.compile(r"(?i)\b(lowest|highest|largest|smallest|biggest|maximum|minimum|"
                          r"average|mean|max|min)\s+(\w+\s+)?total\b(?!\s+(sales|revenue|"
                          r"spend|spending|spent|amount|value|sold|purchases|units|quantity))")
COMPARATIVE = re.compile(r"(?i)\b(more|less|fewer|greater|higher|lower|longer|shorter|bigger|"
                          r"smaller|larger|cheaper|older|younger|later|earlier)\s+than\b|"
                          r"\bat\s+(least|most)\b(?=\s+\$?\d)")
LEAST = re.compile(r"(?i)\b(least|fewest|lowest|smallest)\b")
YOUNG = re.compile(r"(?i)\b(youngest|younger|newest|latest|most\s+recent(ly)?|last)\b")
OLD = re.compile(r"(?i)\b(oldest|older|earliest|first|longest\s+with|longest)\b")
WHICH = re.compile(r"(?i)^\s*(which|who|name|list|show|give|find)\b|\b(which|who)\b|"
                   r"^\s*what\s+(?!is\b|are\b|was\b|were\b|does\b|do\b|did\b|'s\b)[a-z]+\s+"
                   r"(?!of\b)\w+")
GROUP = re.compile(r"(?i)\b(?:for\s+each|in\s+each|each|per|every|(?<!sorted\s)(?<!ordered\s)"
                    r"(?<!order\s)by)\s+((?:[\w']+\s*){1,3})")
AGG_CUE = re.compile(r"(?i)\b(how\s+many|number|count|total|sum|average|avg|mean|most|least|"
                      r"revenue|sales|spent|spend|amount)\b")
TIME_UNIT = {"year": "%Y", "yearly": "%Y", "annual": "%Y", "month": "%Y-%m",
              "monthly": "%Y-%m", "day": "%Y-%m-%d", "daily": "%Y-%m-%d"}
TOPN = re.compile(rf"(?i)\b(?:top|first|last|best|worst|which|what\s+are\s+the|the)\s+{NUM}\s|"
                   rf"\b{NUM}\s+(?:\w+\s+)?"
                   r"(?:\w+est|most|least|biggest|best|worst|top)\b|\b(?:the\s+)?"
                   rf"{NUM}\s+(?:\w+\s+)?(?:with|having|that\s+have)\s+the\b")
ASC = re.compile(r"(?i)\b(alphabetical|ascending|a\s*-\s*z|oldest\s+first|lowest\s+first|"
                  r"smallest\s+first|earliest\s+first|in\s+\w+\s+order|sorted|ordered)\b")
DESC = re.compile(r"(?i)\b(descending|highest\s+first|largest\s+first|biggest\s+first|"
                   r"most\s+first|newest\s+first|latest\s+first|most\s+recent\s+first|"
                   r"best\s+first)\b")
MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december"]
COMPARE = [
    (">=", r"at\s+least|no\s+less\s+than|or\s+more"),
    ("<=", r"at\s+most|no\s+more\s+than|or\s+less|up\s+to"),
    (">", r"over|more\s+than|greater\s+than|above|exceeding|exceeds|longer\s+than|"
          r"bigger\s+than|larger\s+than|higher\s+than|after|later\s+than|beyond"),
    ("<", r"under|less\s+than|fewer\s+than|below|shorter\s+than|smaller\s+than|lower\s+than|"
          r"cheaper\s+than|before|earlier\s+than"),
    ("=", r"cost|costs|costing|priced\s+at|equal\s+to|exactly|of|at|is"),
]
UNIT = {"minute": 60_000, "minutes": 60_000, "min": 60_000, "second": 1_000,
         "seconds": 1_000, "hour": 3_600_000, "hours": 3_600_000, "gb": 1_000_000_000,
         "mb": 1_000_000, "kb": 1_000}
#: "the average length in minutes": a stored number shown in the unit asked for
IN_UNIT = re.compile(r"(?i)\bin\s+(minutes|seconds|hours|mb|megabytes|kb|kilobytes|gb|"
                     r"gigabytes)\b")
_UNIT_OF = {"megabytes": "mb", "kilobytes": "kb", "gigabytes": "gb"}
NULL = re.compile(r"(?i)\b(?:no|without|missing|lack(?:ing)?|empty|blank|null)\s+"
                   r"((?:\w+\s*){1,2})")
NOT_NULL = re.compile(r"(?i)\b(?:have|has|with)\s+(?:a|an|any|some)\s+((?:\w+\s*){1,2})|"
                       r"\b((?:\w+\s*){1,2})\s+on\s+file\b|"
                       r"\b(\w+(?:\s+\w+)?)\s+(?:is|are)\s+not\s+(?:empty|blank|null|missing)\b")
_NOT_A_WORD = frozenset({"more", "less", "fewer", "over", "under", "at", "least", "most",
                        "exactly", "only", "any", "no", "the", "a", "an", "some", "all",
                        "each", "every", "both", "either", "this", "that", "these",
                        "those", "their", "its", "which", "what", "many", "much"})
#: Tables of who made things: "tracks by AC/DC" names an artist, however far the join.
MAKER = re.compile(r"(?i)artist|author|composer|band|brand|maker|manufacturer|supplier|"
                   r"vendor|director|writer|creator|publisher|studio|designer|developer|"
                   r"producer|performer|singer")
LIKE = [
    ("%{}%", r"contain(?:s|ing)?(?:\s+the\s+word)?|with\s+the\s+word|mention(?:s|ing)?|"
             r"includ(?:e|es|ing)|use|uses|using"),
    ("{}%", r"start(?:s|ing)?\s+with|begin(?:s|ning)?\s+with"),
    ("%{}", r"end(?:s|ing)?\s+(?:with|in)"),
]


def scaled(question: str, expr: str) -> str | None:
    """`expr` over a column in milliseconds (or bytes) divided into the unit the question
    asks for, named for it; None when none is asked or the column is not in that unit."""
    m = IN_UNIT.search(question)
    unit = _UNIT_OF.get(m.group(1).lower(), m.group(1).lower()) if m else ""
    col = re.search(r"(?i)^(?:(AVG|SUM|MAX|MIN)\()?[\w.\"]*?(milli\w*|bytes)\"?\)?$", expr)
    if not unit or not col or ("milli" in col.group(2).lower()) != (unit not in (
            "mb", "kb", "gb")):
        return None
    func = {"AVG": "average_", "SUM": "total_", "MAX": "max_", "MIN": "min_"}.get(
        (col.group(1) or "").upper(), "")
    return f"{expr} / {UNIT[unit]}.0 AS {func}{m.group(1).lower() if m else unit}"


def number_of(text: str) -> float | None:
    t = text.lower().replace(",", "")
    if t in NUMBER_WORDS:
        return float(NUMBER_WORDS[t])
    try:
        return float(t)
    except ValueError:
        return None


def limit_of(question: str) -> int | None:
    m = TOPN.search(question)
    if not m:
        return None
    for g in m.groups():
        if g:
            n = number_of(g)
            if n and n == int(n) and 0 < n <= 1000:
                return int(n)
    return None


def is_numeric(c: Column) -> bool:
    return bool(NUMBER_TYPE.search(c.type or "")) and not (
        c.primary_key or re.search(r"(?i)(^id$|_id$|[a-z]Id$)", c.name))


def is_date(c: Column) -> bool:
    return bool(re.search(r"(?i)date|time", c.type or "") or re.search(
        r"(?i)date$|_at$|^date|time$|day$", c.name))


def is_text(c: Column) -> bool:
    return bool(re.search(r"(?i)char|text|string|clob", c.type or ""))


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


def numbers_in(question: str) -> list[tuple[str, float, str, int]]:
    """(operator, value, unit word, char position) for every number the question compares."""
    out = []
    ops = "|".join(f"(?P<o{i}>{pat})" for i, (_, pat) in enumerate(COMPARE))
    pattern = re.compile(rf"(?i)(?:\b(?:{ops})\s+)?\$?(?P<n>\d[\d,]*(?:\.\d+)?)\s*"
                         r"(?P<u>[a-z]+)?")
    for m in pattern.finditer(question):
        n = number_of(m.group("n"))
        if n is None:
            continue
        op = "="
        for i, (sym, _) in enumerate(COMPARE):
            if m.group(f"o{i}"):
                op = sym
                break
        out.append((op, n, (m.group("u") or "").lower(), m.start("n")))
    return out


def date_columns(link: Link, subject: Table) -> list[tuple[Table, Column, float]]:
    """Columns a date in the question may filter, surest first: of the subject and the
    tables named (a column named surer), else of the tables whose rows point at the subject
    ("customers who bought in 2024": an invoice's date). Every subject gets a date column
    if any, so no reading of the question drops its year."""
    linked = [subject] + [t for t in link.ranked_tables() if t is not subject]
    dates = [(t, c, 1.0 if any(m.column is c for m in link.columns) else 0.5)
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
        if m and (m.group(1) or m.group(2).lower() not in _NOT_A_WORD):  # "contain more
            # than 1000 tracks" is no word to search for; "starts with 'The'" is
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


NAME_PARTS = re.compile(r"(?i)\b(first|last)\s+(and\s+last\s+)?names?\b")


@dataclass(frozen=True)
class Asked:
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
        return "ASC" if LEAST.search(self.q) and not MOST.search(self.q) else "DESC"


def read(question: str) -> Asked:
    q = COMPARATIVE.sub("than", NAME_PARTS.sub("name", QUOTED.sub("'…'", question.lower())))
    q = re.sub(r"\b(oldest|earliest|lowest|smallest|cheapest|shortest|least)\s+first\b",
               "ascending", q)
    q = re.sub(r"\b(\w+est|most\s+recent|most)\s+first\b", "descending", q)
    superlative = any(p.search(q) for p in (MAX, MIN, MOST, LEAST, YOUNG, OLD))
    return Asked(
        question=question, q=q,
        counting=bool(COUNT.search(q)) and not (
            RANKING_COUNT.search(q) and (limit_of(q) or superlative)
            and not re.search(r"\bhow\s+many\b", q)),
        distinct=bool(DISTINCT.search(q)), avg=bool(AVG.search(q)),
        summed=bool(SUM.search(q)) and not RANKED_TOTAL.search(q), limit=limit_of(q),
        which=bool(WHICH.search(q)), superlative=superlative,
        most=bool(MOST.search(q) or LEAST.search(q)))


def words_after(words: str, question: str) -> set[int]:
    """Indexes of the words that follow any of `words` (a regex alternation)."""
    return {word_at(question, m.end()) for m in re.finditer(rf"(?i)\b(?:{words})\s", question)}


def order_dir(ask: Asked, c: Column) -> str:
    """Which way a superlative ranks by `c`: "the youngest" is the latest birth date."""
    q = ask.q
    if is_date(c) and re.search(r"(?i)birth|born", c.name):
        return "DESC" if YOUNG.search(q) else "ASC"
    if is_date(c):
        return "ASC" if OLD.search(q) and not YOUNG.search(q) else "DESC"
    return "ASC" if MIN.search(q) and not MAX.search(q) else "DESC"


def read_linked(question: str, link: Link) -> Asked:
    """`read`, corrected by what the question names in the schema."""
    ask = read(question)
    # "what's the most expensive product": a superlative of a table's rows asks for a row
    for m in re.finditer(r"(?i)\b(\w+est|most\s+\w+|least\s+\w+)\b", question):
        at = word_at(question, m.end())
        heads = [t for t in link.tables if t.start in (at, at + 1)  # the noun, not "invoice
                 and not any(c.start == t.end for c in link.columns)]  # total"
        if not ask.which and heads:
            ask = replace(ask, which=True)
    for m in re.finditer(r"(?i)\bwith\s+the\s+(\w+est|most|least)\b", question):
        at = word_at(question, m.start())  # "the employee with the earliest hire date"
        if not ask.which and any(t.end == at for t in [*link.tables, *link.columns]):
            ask = replace(ask, which=True)
    for m in re.finditer(r"(?i)\b(total\s+)?(?:number|amount)\s+of\s", question):
        at = word_at(question, m.end())  # "the total number of bytes": a column's sum
        if ask.counting and any(c.start == at and c.column is not None and is_numeric(
                c.column) for c in link.columns) and not any(t.start == at for t in link.tables):
            ask = replace(ask, counting=False, summed=ask.summed or bool(m.group(1)))
    totals = [word_at(question, m.end()) for m in re.finditer(r"(?i)\btotal\s", question)]
    if MONEY_MOST.search(ask.q) or any(  # "the most revenue", "by sales", "the highest
            (c.start == at or (c.start == at + 1 and any(t.start == at for t in link.tables)))
            and c.column is not None and is_numeric(c.column) and c.score >= 0.6  # total
            for c in link.columns for at in totals):  # track length": a sum, not a count
        ask = replace(ask, summed=True)
    return ask


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


KEPT_IF = re.compile(r"(?i)\b(more\s+than|over|above|greater\s+than|at\s+least|fewer\s+than|"
                     rf"less\s+than|under|below)\s+\$?{NUM}\b(?:\s*([a-z]+))?")


def kept_if(question: str) -> tuple[str, float, str] | None:
    """"more than 5", "above 1", "over 5 minutes": the comparison a group must pass
    (operator, number, the unit word after it or "")."""
    m = KEPT_IF.search(question)
    if not m:
        return None
    word = m.group(1).lower()
    op = ">=" if word.startswith("at") else "<" if word.split()[0] in (
        "fewer", "less", "under", "below") else ">"
    n = number_of(m.group(2))
    return (op, n, (m.group(3) or "").lower()) if n is not None else None


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
