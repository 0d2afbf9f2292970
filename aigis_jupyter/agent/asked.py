"""What a question asks for, read from its words: counting or listing, an average or a
sum, a superlative and its direction, the top k, groups, the unit a number is asked in,
and what kind of column (number, date, text) each word may mean.

`shapes.py` turns this into candidate queries and `filters.py` into the conditions on
rows; nothing here knows SQL beyond a unit's division.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from ..databases.catalog import Column
from .doubts import QUOTED
from .linking import NUMBER_TYPE, Link, word_at

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
#: "per year, most recent year first": groups in time order, not ranked by their number
TIME_FIRST = re.compile(r"(?i)\b(most\s+recent|latest|newest|oldest|earliest)\s+(?:\w+\s+)?"
                        r"first\b")
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
#: Tables of who made things: "tracks by AC/DC" names an artist, however far the join.
MAKER = re.compile(r"(?i)artist|author|composer|band|brand|maker|manufacturer|supplier|"
                   r"vendor|director|writer|creator|publisher|studio|designer|developer|"
                   r"producer|performer|singer")
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
    return f"{expr} / {UNIT[unit]}.0 AS {func}{unit}"


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
    if re.match(r"(?i)\s*how\s+(long|big|large|much|old|expensive|heavy|far)\b", question):
        ask = replace(ask, which=False)  # "how long is the longest track": a value
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
            and not any(x.start == at - 1 and x.column is c.column for x in link.columns)  # track
            for c in link.columns for at in totals):  # length": a sum, not a count
        ask = replace(ask, summed=True)
    return ask


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
    n = number_of(m.group(2))  # a whole number written as one: "> 5", not "> 5.0"
    return (op, int(n) if n == int(n) else n, (m.group(3) or "").lower()) if n is not None else None

