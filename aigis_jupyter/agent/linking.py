"""Schema linking: the tables, columns and values a question names, and how they join.

A small model writes better SQL from the two tables a question needs than from eleven,
and the query shapes of `shapes.py` need to know which table is counted, which column
is ranked and which value filters. Words are matched by their stems against table and
column names (`InvoiceLine` is "invoice line", `BillingCountry` "billing country"),
through synonyms ("songs" -> track, "clients" -> customer) and through the words people
use for measures ("longest" -> a length or duration column). Values come from the
connection's value index (`hints.py`), numbers and years from the question itself, and
names the index does not hold ("Led Zeppelin") as quoted or capitalised phrases to try.
Tables join along their foreign keys: the shortest path between two linked tables is the
join a query uses.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from ..databases.catalog import Column, SchemaSnapshot, Table
from .context import _STOP, _stem, _words, per_snapshot
from .hints import Hint, value_hints

__all__ = ["Link", "Linked", "join_path", "label_columns", "link", "neighbours", "word_at"]

#: Everyday words for tables; each maps to words a table name may hold.
TABLE_WORDS: dict[str, tuple[str, ...]] = {
    "song": ("track",), "tune": ("track",), "record": ("album",), "band": ("artist",),
    "singer": ("artist",), "musician": ("artist",), "client": ("customer",),
    "buyer": ("customer",), "shopper": ("customer",), "staff": ("employee",),
    "employe": ("employee",), "worker": ("employee",), "colleague": ("employee",),
    "rep": ("employee",), "salesperson": ("employee",), "manager": ("employee",),
    "manage": ("employee",),
    "boss": ("employee",), "supervisor": ("employee",), "sale": ("invoice", "order"),
    "purchase": ("invoice", "order"), "bill": ("invoice",), "receipt": ("invoice",),
    "good": ("product",), "article": ("product",), "item": ("product", "item", "line"),
    "line": ("line", "item"),
    "merchandise": ("product",), "payment": ("payment",), "people": ("employee", "customer"),
}
#: Words for measures and attributes; each maps to words a column name may hold.
COLUMN_WORDS: dict[str, tuple[str, ...]] = {
    **{w: ("millisecond", "duration", "length", "second", "minute", "runtime")
       for w in ("long", "longest", "length", "duration", "short", "shortest", "running",
                 "minute", "hour", "runtime", "longer", "shorter")},
    **{w: ("price", "cost") for w in ("price", "cost", "cheap", "cheapest", "expensive",
                                       "costly", "priced", "pricey", "cheaper", "priciest")},
    **{w: ("byte", "size") for w in ("size", "byte", "heavy", "heaviest", "file")},
    **{w: ("total", "amount", "revenue", "value", "spend")
       for w in ("spend", "spent", "revenue", "money", "amount", "sale", "paid", "worth",
                 "value", "total", "much", "earn", "made", "brought", "bill")},
    **{w: ("birth", "born", "dob") for w in ("old", "oldest", "young", "youngest", "age",
                                              "born", "birth", "birthday", "older",
                                              "younger")},
    **{w: ("hire", "hired", "start", "join") for w in ("hire", "hired", "joined", "tenure")},
    **{w: ("title", "role", "position") for w in ("job", "role", "position")},
    **{w: ("email", "mail") for w in ("email", "mail", "e")},
    **{w: ("phone", "telephone", "mobile") for w in ("phone", "telephone", "mobile")},
    **{w: ("quantity", "qty", "unit") for w in ("quantity", "unit", "units", "qty")},
    **{w: ("discount",) for w in ("discount", "discounted")},
    "write": ("composer", "author", "writer"), "wrote": ("composer", "author", "writer"),
    "written": ("composer", "author", "writer"),
    "writer": ("composer", "author"), "composed": ("composer",), "compose": ("composer",),
    "big": ("byte", "size", "total", "amount"), "biggest": ("byte", "size", "total", "amount"),
    "large": ("byte", "size", "total", "amount"), "largest": ("byte", "size", "total", "amount"),
    "small": ("byte", "size", "total", "amount"),
    "smallest": ("byte", "size", "total", "amount"),
    "bigger": ("byte", "size", "total", "amount"),
    "live": ("city", "country", "state", "address"), "based": ("city", "country", "state"),
    "located": ("city", "country", "state", "address"), "from": ("country", "city"),
    "where": ("city", "country", "state"),
}

#: Parts of column names that say what kind of value it is, not what it is about.
_GENERIC = frozenset({"id", "name", "date", "number", "code", "no", "num", "key", "time", "on",
                      "at", "is", "has"})
_ORDER_WORDS = frozenset({"alphabetical", "ascending", "descending", "chronological", "reverse",
                          "in", "sort", "date", "numerical", "month", "year", "that", "same"})
_DATED = re.compile(r"(?i)date|time|_on\b|_at\b|[a-z]On\b|[a-z]At\b")
_MONTHS = ("january february march april may june july august september october november "
           "december")
_MONTH_WORDS = frozenset(_MONTHS.split())

_PEOPLE_TABLE = re.compile(r"(?i)customer|client|employee|staff|person|people|user|member|"
                           r"contact|student|patient|rep|author|supplier")


@dataclass(frozen=True)
class Linked:
    """One schema element the question names, with the words that named it."""

    table: Table
    column: Column | None
    start: int
    end: int  # word positions [start, end)
    score: float  # 1 named outright, less through a synonym or a part of the name


@dataclass
class Link:
    """What a question names in one schema."""

    snap: SchemaSnapshot
    words: list[str]  # the question's words, lower case
    stems: list[str]
    tables: list[Linked] = field(default_factory=list)  # in question order
    columns: list[Linked] = field(default_factory=list)
    hints: list[Hint] = field(default_factory=list)
    phrases: list[str] = field(default_factory=list)  # names the index does not hold

    def ranked_tables(self) -> list[Table]:
        """Tables the question names, strongest first, then the owners of the columns it
        names that no named table has, then the owners of its values."""
        out: list[Table] = []
        starts = {m.start for m in self.tables}
        heads = [m for m in self.tables if m.end not in starts  # "product categories"
                 or any(o.table is m.table and o.end not in starts for o in self.tables)]
        for m in sorted(heads, key=lambda m: (-m.score, m.start)):
            if m.table not in out:
                out.append(m.table)
        named = {id(t) for t in out}
        covered = {m.start for m in self.columns if id(m.table) in named}
        for m in sorted(self.columns, key=lambda m: (-m.score, m.start)):
            if m.table not in out and m.start not in covered and (not named or m.score >= 0.9):
                out.append(m.table)  # a column no named table has, named outright
        said = {h.said.lower() for h in self.hints
                if any(table_named(self.snap, h.table) is t for t in out)}
        for h in self.hints:  # a value a named table holds needs no other table
            t = table_named(self.snap, h.table)
            if t is not None and t not in out and h.said.lower() not in said:
                out.append(t)
        return out

    def chosen(self, limit: int = 3) -> list[Table]:
        """The one to `limit` tables to show a model: the ones named, and those a join
        between them passes through."""
        named = self.ranked_tables()[:limit] or list(self.snap.tables[:1])
        out = list(named)
        for t in named[1:]:
            for hop in join_path(self.snap, named[0], t) or []:
                for side in (hop.left, hop.right):
                    if side not in out:
                        out.append(side)
        return out[: max(limit, len(named))]


@dataclass(frozen=True)
class Hop:
    """One join: `left.left_cols = right.right_cols`."""

    left: Table
    left_cols: tuple[str, ...]
    right: Table
    right_cols: tuple[str, ...]


def table_named(snap: SchemaSnapshot, name: str) -> Table | None:
    for t in snap.tables:
        if snap.qualified(t).lower() == name.lower() or t.name.lower() == name.lower():
            return t
    return None


def label_columns(table: Table) -> list[Column]:
    """How a row of `table` is named in an answer: first and last name for people, else
    its name or title, else its key."""
    by = {c.name.lower().replace("_", ""): c for c in table.columns}
    if "firstname" in by and "lastname" in by:
        return [by["firstname"], by["lastname"]]
    for key in ("name", "title", "fullname", "label"):
        if key in by:
            return [by[key]]
    named = [c for c in table.columns if c.name.lower().endswith("name")]
    if named:
        return named[:1]
    keys = [c for c in table.columns if c.primary_key]
    return keys[:1] or table.columns[:1]


def is_people(table: Table) -> bool:
    names = {c.name.lower().replace("_", "") for c in table.columns}
    return bool(_PEOPLE_TABLE.search(table.name)) or {"firstname", "lastname"} <= names


# --------------------------------------------------------------------------- index

@dataclass
class _Names:
    tables: list[tuple[Table, tuple[str, ...]]]
    columns: list[tuple[Table, Column, tuple[str, ...]]]
    graph: dict[int, list[Hop]]




def _terms(name: str) -> tuple[str, ...]:
    return tuple(_stem(w) for w in _words(name))


@per_snapshot
def _index(snap: SchemaSnapshot) -> _Names:
    graph: dict[int, list[Hop]] = {}
    for t in snap.tables:
        for fk in t.foreign_keys:
            ref = table_named(snap, f"{fk.ref_schema}.{fk.ref_table}" if fk.ref_schema
                              else fk.ref_table) or table_named(snap, fk.ref_table)
            if ref is None:
                continue
            hop = Hop(t, tuple(fk.columns), ref, tuple(fk.ref_columns))
            back = Hop(ref, tuple(fk.ref_columns), t, tuple(fk.columns))
            graph.setdefault(id(t), []).append(hop)
            if ref is not t:
                graph.setdefault(id(ref), []).append(back)
    names = _Names(
        tables=[(t, _terms(t.name)) for t in snap.tables],
        columns=[(t, c, _terms(c.name)) for t in snap.tables for c in t.columns],
        graph=graph,
    )
    return names


def neighbours(snap: SchemaSnapshot, t: Table) -> list[Hop]:
    """The joins from `t` to the tables its foreign keys (or theirs) name."""
    return list(_index(snap).graph.get(id(t), []))


def join_path(snap: SchemaSnapshot, a: Table, b: Table, max_hops: int = 3) -> list[Hop] | None:
    """The shortest chain of foreign-key joins from `a` to `b` (None when there is none)."""
    if a is b:
        return []
    graph = _index(snap).graph
    seen = {id(a)}
    queue: deque[tuple[Table, list[Hop]]] = deque([(a, [])])
    while queue:
        t, path = queue.popleft()
        if len(path) >= max_hops:
            continue
        for hop in graph.get(id(t), []):
            if hop.right is hop.left or id(hop.right) in seen:
                continue
            nxt = [*path, hop]
            if hop.right is b:
                return nxt
            seen.add(id(hop.right))
            queue.append((hop.right, nxt))
    return None


def to_one(snap: SchemaSnapshot, a: Table, b: Table) -> bool:
    """Whether each row of `a` meets at most one row of `b` (every join follows a foreign
    key of its left side): counting `b`'s rows per row of `a` always gives 1."""
    path = join_path(snap, a, b)
    return bool(path) and all(any(
        fk.ref_table == hop.right.name and tuple(fk.columns) == hop.left_cols
        for fk in hop.left.foreign_keys) for hop in path or ())


# --------------------------------------------------------------------------- matching

_FIRST_LAST = re.compile(r"(?i)\bfirst\s+(?:name\s+)?(?:and|&|,)\s+last\s+names?\b")
_APOS = "'\u2019"  # straight and curly apostrophes
_CAPS = re.compile(rf"(?:[A-Z][\w{_APOS}./-]*|\d+)(?:\s+(?:[A-Z][\w{_APOS}./-]*|of|the|and|de|"
                   r"da|be|in|on|\d+))*")
_OPEN, _CLOSE = "\"'\u201c\u2018", "\"'\u201d\u2019"
_QUOTED = re.compile(rf"(?:(?<=\s)|^)[{_OPEN}]([^{_CLOSE}]{{1,80}})[{_CLOSE}](?=\s|$|[.,?!;:])")
_LEADING_WORDS = """what what's whats which who who's whom how when where list show give name
names find tell count is are the a an in on for of and total average mean top i we our my me
please do does did has have number just only all every each"""
_LEADING = frozenset(_LEADING_WORDS.split())


def word_at(text: str, index: int) -> int:
    """The position, in `link()`'s words, of the word at character `index` of `text`."""
    return len(_words(text[:index]))


def _alternatives(stem: str, vocab: Mapping[str, Sequence[str]]) -> set[str]:
    return {_stem(w) for word in vocab.get(stem, ()) for w in _words(word)}


def _find(seq: tuple[str, ...], stems: list[str], alts: list[set[str]],
          used: set[int]) -> list[tuple[int, float]]:
    """Where `seq` occurs in the question: (start, score) with 1.0 for the words
    themselves and 0.7 when a synonym stood in for some."""
    out = []
    n = len(seq)
    for i in range(len(stems) - n + 1):
        if any(j in used for j in range(i, i + n)):
            continue
        exact = all(stems[i + k] == seq[k] for k in range(n))
        if exact or all(stems[i + k] == seq[k] or seq[k] in alts[i + k] for k in range(n)):
            out.append((i, 1.0 if exact else 0.7))
    return out


#: Column types that hold numbers.
NUMBER_TYPE = re.compile(r"(?i)int|real|num|dec|float|double|money")
#: Words that aggregate the column named after them.
_AGG_WORDS = frozenset({"total", "sum", "average", "mean", "max", "maximum", "min", "minimum"})


def link(question: str, snap: SchemaSnapshot, *, values: object = None,
         synonyms: Mapping[str, Sequence[str]] | None = None) -> Link:
    """What `question` names in `snap`: tables, columns, values and unknown names."""
    text = question or ""
    words = [w.lower() for w in _words(text)]
    stems = [_stem(w) for w in words]
    names = _index(snap)
    vocab: dict[str, tuple[str, ...]] = dict(TABLE_WORDS)
    for k, v in (synonyms or {}).items():
        key = _stem(str(k).lower())
        vocab[key] = tuple(dict.fromkeys((*vocab.get(key, ()), *v)))
    table_alts = [_alternatives(s, vocab) for s in stems]
    col_alts = [_alternatives(s, COLUMN_WORDS) | _alternatives(w, COLUMN_WORDS)
                for s, w in zip(stems, words, strict=True)]
    out = Link(snap=snap, words=words, stems=stems)

    used: set[int] = set()
    for i, w in enumerate(words):  # "in alphabetical order", "order by": no table named
        if w in ("order", "orders", "sort", "sorted") and (
                (i > 0 and words[i - 1] in _ORDER_WORDS) or words[i + 1:i + 2] == ["by"]):
            used.add(i)
    for t, seq in sorted(names.tables, key=lambda x: -len(x[1])):  # "invoice line" first
        if not seq:
            continue
        for start, score in _find(seq, stems, table_alts, used):
            out.tables.append(Linked(t, None, start, start + len(seq), score))
            if score == 1.0 and len(seq) > 1:  # "invoice line" is not also "invoice"
                used.update(range(start, start + len(seq)))

    cols: list[Linked] = []
    for t, c, seq in names.columns:
        if not seq:
            continue
        hits = _find(seq, stems, col_alts, set())
        cols += [Linked(t, c, s, s + len(seq), sc * (1.0 if len(seq) > 1 else 0.9))
                 for s, sc in hits]
        if (len(seq) > 1 and seq[-1] not in ("id", "name") and not hits  # billing country
                and seq[-1] not in _STOP and len(seq[-1]) > 2):
            cols += [Linked(t, c, s, s + 1, 0.5)
                     for s, _ in _find(seq[-1:], stems, col_alts, set())]
        if len(seq) > 1 and _DATED.search(f"{c.name} {c.type}"):  # "hired" -> hire date
            heads = {x for x in seq if x not in _GENERIC}
            cols += [Linked(t, c, i, i + 1, 0.9 if i + 1 < len(stems) and stems[i + 1] in (
                         "date", "time", "day") else 0.65 if stems[i] in heads else 0.6)
                     for i, alt in enumerate(col_alts)
                     if (heads & alt or stems[i] in heads) and not any(
                         h[0] <= i < h[0] + len(seq) for h in hits)]
    for m in _FIRST_LAST.finditer(text):  # "first and last name": both columns
        at = word_at(text, m.start())
        for t in snap.tables:
            by = {c.name.lower().replace("_", ""): c for c in t.columns}
            if "firstname" in by and "lastname" in by:
                cols += [Linked(t, by["firstname"], at, at + 1, 1.0),
                         Linked(t, by["lastname"], at + 2, at + 4, 1.0)]
    # "job title": a word before a column that means it too makes the match sure
    cols = [Linked(m.table, m.column, m.start, m.end, 1.0) if m.start > 0 and m.column is not None
            and set(_terms(m.column.name)) & col_alts[m.start - 1] and m.score >= 0.9 else m
            for m in cols]
    # "the id of ..." matches every key: keep a part-match only where no table is named
    out.columns = [m for m in cols if not (m.column is not None and m.column.name.lower()
                                           in ("id",) and m.score < 1)]
    if words[:1] == ["name"] and (words[1:2] and (words[1] in _LEADING or words[1].isdigit())):
        out.columns = [m for m in out.columns if m.start > 0]  # "Name the albums ...": a verb
    # "the total quantity sold": "total" says what to do with the quantity, it is not
    # the invoice's Total column
    numbers_at: dict[int, list[Column]] = {}
    for m in out.columns:
        if m.score >= 0.6 and m.column is not None and NUMBER_TYPE.search(m.column.type or "") and (
                not m.column.primary_key and not m.column.name.lower().endswith("id")):
            numbers_at.setdefault(m.start, []).append(m.column)
    out.columns = [replace(m, score=m.score / 2) if m.end - m.start == 1
                   and words[m.start] in _AGG_WORDS and any(  # "total (track) length"
                       c is not m.column for c in [*numbers_at.get(m.end, []), *(
                           numbers_at.get(m.end + 1, []) if any(
                               t.start == m.end for t in out.tables) else [])]) else m
                   for m in out.columns]
    out.tables.sort(key=lambda m: m.start)
    out.columns.sort(key=lambda m: (m.start, -m.score))

    out.hints = value_hints(question or "", values) if values is not None else []  # type: ignore[arg-type]
    out.phrases = _unknown_names(question or "", out)
    return out


def _sentence_parts(question: str) -> Iterator[tuple[int, str]]:
    """Capitalised runs of words, cut where a sentence ends inside one ("Steve Johnson.
    Give ..."; a dot after two letters or fewer is an abbreviation: "St. Louis")."""
    for m in _CAPS.finditer(question):
        start = m.start()
        for end in re.finditer(r"(?<=[a-z]{3})\.\s+", m.group(0)):
            yield start, question[start:m.start() + end.start()]
            start = m.start() + end.end()
        yield start, question[start:m.end()]


def _unknown_names(question: str, link_: Link) -> list[str]:
    """Quoted or capitalised phrases that are neither schema names nor indexed values:
    names to try against the text columns ("Led Zeppelin", "Kurt Cobain")."""
    known = {h.said.lower() for h in link_.hints}  # the value index found them already
    found = [q for m in _QUOTED.finditer(question) if (q := m.group(1).strip()).lower()
             not in known]
    quoted = [(m.start(), m.end()) for m in _QUOTED.finditer(question)]
    for start, text in _sentence_parts(question):
        if any(a <= start < b for a, b in quoted):
            continue  # a word of "'Balls to the Wall'" is no name of its own
        phrase = re.sub(rf"[{_APOS}]s$", "", text.strip(f" .,/{_APOS}"))
        parts = phrase.split()
        while parts and parts[-1].lower() in ("of", "the", "and", "in", "on", "be", "de", "da"):
            parts = parts[:-1]
        at_start = not question[:start].strip() or question[:start].rstrip()[-1] in ".?!"
        if at_start and len(parts) == 1:
            continue  # "Emails of ...", "Number of ...": a sentence's first word
        while parts and parts[0].lower() in _LEADING and (at_start or parts[0].islower()
                                                           or parts[0] in ("I", "A")):
            parts = parts[1:]
        phrase = " ".join(parts)
        if not phrase or phrase[0].isdigit() or phrase in found or any(
                w.lower() in _MONTH_WORDS or re.fullmatch(r"\d{4}", w) for w in parts):
            continue
        stems = {_stem(w) for w in _words(phrase)}
        schema_words = {s for t, seq in _index(link_.snap).tables for s in seq}
        if stems <= schema_words | set(TABLE_WORDS) | {"id"}:
            continue
        if phrase.lower() in known:
            continue
        found.append(phrase)
    return found
