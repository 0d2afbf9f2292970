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
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product

from ..databases.catalog import Column, Table
from . import asked as cue
from . import filters as where
from . import named_columns as meant
from . import references as ref
from .linking import Link, Linked, join_path, label_columns, to_one, word_at
from .querytext import Query, alias, ident
from .subjects import group_keys, subjects_of, value_head

__all__ = ["Candidate", "candidates"]

log = logging.getLogger(__name__)

#: Candidates per question, at most (each is run), and choices of filters tried per table.
MAX_CANDIDATES, MAX_COMBOS = 8, 12

@dataclass
class Candidate:
    """A query and how well it accounts for the question (the prior `choose.py` starts
    from)."""

    sql: str
    score: float
    shape: str
    values: int = 0  # values of the question it filters on (found in the data or not)
    probe: bool = False  # a count filtered on named values only: 0 means a value not found


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


def _build(question: str, link: Link, dialect: str) -> list[Candidate]:
    ask = cue.read_linked(question, link)
    subjects = subjects_of(question, link)
    if not subjects:
        return []
    out: list[Candidate] = []
    value_groups = where.value_filters(link, question)
    numbers = where.numbers_in(question, link)

    for subject, s_score in subjects:
        dates = where.date_columns(link, subject)
        dfilters = where.date_filters(question, dates[:2])
        measures = meant.measures(link, subject)
        groups = group_keys(question, link, subject)  # the same under every choice of filters
        numeric = [(subject, c, 0.3) for c in subject.columns if cue.is_numeric(c)]
        # filters: one choice per value group, each group's alternatives enumerated
        choice_sets: list[list[where.Filter | None]] = [
            [f for f in g if f is not None][:4] + ([None] if g[-1] is None else [])
            for g in value_groups]
        if dfilters:
            choice_sets.append(dfilters[:2])
        nfilters = where.number_filters(numbers, measures or numeric, ask.q, ask.limit,
                                   dfilters_present=bool(dfilters))
        if nfilters:  # "genres with an average length over 5 minutes": maybe a group's bar
            bar = cue.kept_if(question) and (not ask.counting or len(  # "how many albums
                {id(t.table) for t in link.tables}) > 1)  # have more than 20 tracks"
            choice_sets.append(nfilters[:3] + ([None] if bar else []))
        keys = [k.column for kind, k, _ in groups if kind == "col" and isinstance(k, Linked)]
        flags = [f for f in where.flag_filters(link, subject)  # "count by discontinued flag"
                 if not any(f.column is k for k in keys)]
        choice_sets += [list(x[:2]) for x in (
            where.null_filters(question, link, subject), flags,
            where.sign_filters(question, measures), where.average_filters(question, measures)) if x]
        # the likeliest choices of filters first (a value read as no value counts 0.75)
        combos = sorted(product(*choice_sets), key=lambda fs: -math.prod(
            f.score if f is not None else 0.75 for f in fs))[:MAX_COMBOS]
        for filters in combos:
            skipped = sum(f is None for f in filters)
            shapes = _Shapes(ask, link, subject, s_score * 0.75 ** skipped,
                             [f for f in filters if f is not None], dialect,
                             measures=measures, numeric=numeric, dates=dates, groups=groups)
            out += shapes.all()
    return out


class _Shapes:
    """The candidate queries of one subject table under one choice of filters."""

    def __init__(self, ask: cue.Asked, link: Link, subject: Table, s_score: float,
                 filters: list[where.Filter], dialect: str, *,
                 measures: list[tuple[Table, Column, float]],
                 numeric: list[tuple[Table, Column, float]],
                 dates: list[tuple[Table, Column, float]],
                 groups: list[tuple[str, object, float]]) -> None:
        self.ask, self.link, self.subject, self.dialect = ask, link, subject, dialect
        self.filters, self.dates, self.numeric = filters, dates, numeric
        self.prior = s_score * (sum(f.score for f in filters) / len(filters) if filters else 1.0)
        used = {id(f.column) for f in filters}
        # what a superlative ranks by: a measure the filters do not already use
        self.measures = [m for m in measures if id(m[1]) not in used] or measures
        # the columns the question asks to see, of the subject or a joined table
        before = {m.start: set(link.words[max(0, m.start - 2):m.start]) for m in link.columns}
        self.shown = [m for m in meant.resolve(link, subject) if m.score >= 0.7 and (
            id(m.column) not in used  # "priced above 250, with their price" shows it; "with
            or (m.score >= 0.9 and not before[m.start] & {"in", "on"})  # 'Live' in the
            or before[m.start] & meant.SHOW_CUE)]  # title" does not
        self.explicit = meant.explicit_columns(ask.question, link, subject, self.shown, ask.ranks)
        if dates and re.match(r"(?i)\s*(?:when|(?:on\s+)?what\s+(?:date|day))\b", ask.question):
            self.explicit = [dates[0][:2]]  # "when was the first invoice": its date
        self.groups = groups
        # "the invoice with the highest total": a number of a row ranks, not a count
        after = cue.words_after(r"\w+est|most|least", ask.question)
        self.ranked_by_column = any(m.start in after and m.column is not None and m.score >= 0.9
                                    and cue.is_numeric(m.column) for m in link.columns)
        self.out: list[Candidate] = []

    def all(self) -> list[Candidate]:
        self.counts()
        self.aggregate()
        self.grouped()
        self.most_of_a_table()
        self.most_of_a_column()
        self.kept_groups()
        self.never()
        self.out += [Candidate(sql, round(ref.SELF_JOIN * self.prior, 4), "self-join", values=1)
                     for sql in ref.self_joins(self.ask, self.link, self.subject, self.filters,
                                           self.dialect)]
        self.rows()
        return self.out

    def query(self, subject: Table | None = None) -> Query:
        return Query(self.link, subject or self.subject, self.dialect)

    def add(self, qy: Query, select: list[str], score: float, shape: str, *,
            group: list[str] | None = None, order: str | None = None,
            lim: int | None = None, dist: bool = False, where: Sequence[str] = (),
            having: str | None = None, outer: str | None = None) -> None:
        conds = [f.written(qy) for f in self.filters] + list(where)
        if not qy.ok:
            return
        items = ", ".join(cue.scaled(self.ask.question, e) or alias(e, self.dialect)
                          for e in select)  # "in minutes"
        sql = f"SELECT {'DISTINCT ' if dist else ''}{items} FROM {qy.source()}"
        for word, part in (("WHERE", " AND ".join(conds)), ("GROUP BY", ", ".join(group or ())),
                           ("HAVING", having), ("ORDER BY", order), ("LIMIT", lim)):
            sql += f" {word} {part}" if part else ""
        if outer:  # one value over the groups: "the average number of tracks per album"
            sql = f"SELECT {outer} FROM ({qy.finish(sql)}) AS per_group"
        probe = len(select) == 1 and select[0].startswith("COUNT(") and not group and bool(
            self.filters) and all(f.value for f in self.filters)
        self.out.append(Candidate(qy.finish(sql), round(score * self.prior, 4), shape,
                                  values=sum(f.value for f in self.filters), probe=probe))

    def labels(self, table: Table) -> list[Column]:
        """What names a row of `table` in the answer: the columns the question asks to see
        of it ("give the rep's last name"; "show customer id", as an invoice's CustomerId
        points at it), else its label columns."""
        return [c for t, x in self.explicit for c in table.columns if (
            t is table and c is x and not cue.is_numeric(c)) or any(
            fk.ref_table == table.name and (fk.columns, fk.ref_columns) == ([x.name], [c.name])
            for fk in t.foreign_keys)] or label_columns(table)

    def counts(self) -> None:
        """How many: rows, or distinct values of a column the question names."""
        ask = self.ask
        if not ask.counting or self.groups:
            return
        # "how many different composers": with a column named, hardly every row
        named = any(m.score >= 0.9 for m in self.shown)
        plain = 0.85 if ref.NEVER.search(ask.q) else 1.0  # "how many tracks were never sold"
        qy = self.query()
        keys = [c for c in self.subject.columns if c.primary_key]
        # "how many invoices include a Jazz track": each invoice once, however many lines
        rows = f"COUNT(DISTINCT {qy.col(self.subject, keys[0])})" if len(keys) == 1 and any(
            not to_one(self.link.snap, self.subject, f.table) for f in self.filters
            if f.table is not self.subject) else "COUNT(*)"
        self.add(qy, [rows], (0.6 if named else 0.8) if ask.distinct else plain, "count")
        if (sales := ref.sale_lines(ask, self.link, self.subject)) is not None:
            qy = self.query()  # "how many (different) tracks have been sold"
            units = qy.units(sales)  # the sales joined
            self.add(qy, [f"COUNT(DISTINCT {qy.col(self.subject, keys[0])})" if ask.distinct
                          and keys else units], 1.05, "count")
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
                 ("MAX", bool(cue.MAX.search(q)) and plain),
                 ("MIN", bool(cue.MIN.search(q)) and plain)]
        bonus = 0.05 if not ask.limit else -0.1  # "the 3 largest" are rows
        bonus -= 0.25 if ask.which else 0  # "which city has the highest average": a group
        for func, on in funcs:
            for t, c, s in (self.measures or self.numeric)[:3] if on else ():
                if func in ("AVG", "SUM") and not cue.is_numeric(c):
                    continue
                qy = self.query()
                for f in self.filters:  # joined first: a sum must see the lines they add
                    qy.need(f.table)
                agg = qy.sum_of(t, c) if func == "SUM" else f"{func}({qy.col(t, c)})"
                self.add(qy, [agg], s + bonus, "aggregate")

    def _aggs(self, qy: Query) -> list[tuple[str, float]]:
        """What a group is measured by: an average, a sum or a count of its rows."""
        ask = self.ask
        aggs: list[tuple[str, float]] = []
        measured = [(t, c, s) for t, c, s in self.measures if cue.is_numeric(c)] or (
            meant.far_measures(self.link, self.subject) if ask.avg or ask.summed else [])
        if ask.avg:
            aggs += [(f"AVG({qy.col(t, c)})", s) for t, c, s in (
                measured or [x for x in self.numeric if cue.is_numeric(x[1])])[:2]]
        elif ask.summed or ((cue.MAX.search(ask.q) or cue.MIN.search(ask.q)) and measured
                            and not ask.counting):
            # "the biggest single invoice", "for each genre, the longest track": one row's
            single = re.search(r"(?i)\b(biggest|largest|max|maximum|highest)\s+single\b", ask.q
                               ) or (not ask.summed and re.search(r"\b(each|per|every)\b", ask.q))
            func = "MIN" if cue.MIN.search(ask.q) and not cue.MAX.search(ask.q) else "MAX"
            aggs += [(f"{func}({qy.col(t, c)})" if single else qy.sum_of(t, c), s)
                     for t, c, s in measured[:2]]
        if ask.counting or not aggs:
            cue_at = [word_at(ask.question, m.end()) for m in cue.DISTINCT.finditer(ask.question)]
            cd = sorted((m for m in self.shown if ask.distinct and m.column is not None),
                        key=lambda m: min((abs(m.start - i) for i in cue_at), default=0))
            key = next((c for c in self.subject.columns if c.primary_key), None)
            aggs.insert(0, (f"COUNT(DISTINCT {qy.col(cd[0].table, cd[0].column)})", 1.0)
                        if cd else (f"COUNT(DISTINCT {qy.col(self.subject, key)})", 1.0)
                        if ask.distinct and key else  # "how many distinct customers bought"
                        ("COUNT(*)", 0.9 if aggs else 1.0))
        return aggs

    def grouped(self) -> None:
        """"For each X" / "per X" / "by year": one row per group, ranked when asked."""
        ask, q = self.ask, self.ask.q
        for kind, key, g_score in self.groups:
            qy = self.query()
            if kind == "time":
                if (d := next(((t, c) for t, c, _ in self.dates), None)) is None:
                    continue
                name = {"%Y-%m": "month", "%Y-%m-%d": "day"}.get(str(key), "year")
                expr = f"strftime('{key}', {qy.col(d[0], d[1])})"
                sel, grp, order_key, inner = [f"{expr} AS {name}"], [name], name, [expr]
            elif kind == "col":
                assert isinstance(key, Linked) and key.column is not None
                col = qy.col(key.table, key.column)
                sel, grp, order_key = [col], [col], col
                inner = grp
            else:
                assert isinstance(key, Table)
                labels = self.labels(key)
                pk = [c for c in key.columns if c.primary_key] or labels
                sel, grp = [qy.col(key, c) for c in labels], [qy.col(key, c) for c in pk]
                order_key, inner = sel[0], grp
            if ask.avg and ask.counting and all(
                    s < 0.6 or not cue.is_numeric(c) for _, c, s in self.measures):
                n = ident("count", self.dialect)  # "the average number of tracks per album"
                self.add(qy, ["COUNT(*)"], 1.05 * g_score, "group", group=inner,
                         outer=alias(f"AVG({n})", self.dialect))
            aggs = self._aggs(qy)[:2]
            sales = ref.sale_lines(ask, self.link, self.subject)
            if sales is not None and not ask.distinct:  # "tracks sold per genre"
                aggs = [(qy.units(sales), 1.0)]
            if key is self.subject:  # "how much has each customer spent": a number afar
                afar = {m.column.name: m for m in self.link.columns if m.column is not None
                        and m.table is not key and m.score >= 0.6 and cue.is_numeric(m.column)}
                aggs = [(f"AVG({qy.col(m.table, m.column)})" if ask.avg else qy.sum_of(
                    m.table, m.column), m.score) for m in list(afar.values())[:1] if m.column]
            # "per year, most recent year first": the groups in time order
            by_time = cue.TIME_FIRST.search(ask.question) if kind == "time" else None
            for agg, a_score in aggs:
                ranked = (ask.superlative and not re.search(r"(?i)\b(each|per|every)\b", q)
                          ) or bool(ask.limit)
                if (ranked or cue.DESC.search(q)) and not by_time:
                    lim = ask.limit or (None if cue.DESC.search(q) or not ranked else 1)
                    with_value = bool(meant.WITH_VALUE.search(q)) or not lim or (lim > 1 and bool(
                        re.search(r"(?i)\bhow\s+many|\bcount|amount", q)))
                    order = f"{agg} {ask.direction}"
                    self.add(qy, [*sel, agg] if with_value else sel, g_score * a_score, "group",
                             group=grp, order=order, lim=lim)
                    if with_value:
                        self.add(qy, sel, 0.8 * g_score * a_score, "group", group=grp,
                                 order=order, lim=lim)
                else:
                    in_order = (kind == "time" and cue.ASC.search(q)) or re.search(
                        r"(?i)in\s+\w+\s+order|chronolog", q)
                    self.add(qy, [*sel, agg], g_score * a_score, "group", group=grp,
                             order=f"{order_key} {'ASC' if cue.OLD.match(by_time[1]) else 'DESC'}"
                             if by_time else order_key if in_order else None)

    def most_of_a_table(self) -> None:
        """"Which artist has the most tracks": group by the table asked about, count the
        rows of the other."""
        ask, link = self.ask, self.link
        if not (ask.superlative and (ask.which or ask.limit)) or self.groups or not link.tables:
            return
        head = value_head(ask.question, link)  # "which sales support agent": an employee
        first = head[0] if head else link.tables[0].table  # "which country's customers": by
        owned = meant.possessive(link, first)
        labels = owned or self.labels(first)
        pk = owned or [c for c in first.columns if c.primary_key] or labels  # country
        by_count = 0.7 if (ask.summed and not ask.counting) or self.ranked_by_column else (
            1.0 if ask.most or ask.counting else 0.8)  # "spent the most" is no count
        for other in link.tables:  # (not the "sales" of "sales support agent")
            if other.table is first or to_one(link.snap, first, other.table) or (
                    head and other.start < head[1]):
                continue  # "the longest track in the Blues genre": one genre per track
            sold = ref.sold_in(ask, link, other.table)  # "the most tracks sold": the lines
            for measure in [None, *(m for m in self.measures[:2] if cue.is_numeric(m[1]))]:
                qy = self.query(sold or other.table)  # each its own joins: a count of rows
                sel, grp = [qy.col(first, c) for c in labels], [qy.col(first, c) for c in pk]
                t, c, s = measure or (first, None, by_count)  # or "the largest average size"
                agg = (qy.units(sold) if sold else "COUNT(*)") if c is None else (
                    f"AVG({qy.col(t, c)})" if ask.avg else qy.sum_of(t, c))
                self.add(qy, [*sel, agg] if meant.WITH_VALUE.search(ask.q) else sel, 0.95 * s,
                         "group", group=grp, order=f"{agg} {ask.direction}", lim=ask.limit or 1)
        # "which customer has spent the most", "which media type sold the most units": a
        # measure word for a number in another table, summed per row of the table asked about
        far, weight = meant.numbers_afar(link, first)
        for m in far[:2]:
            assert m.column is not None
            qy = self.query(m.table)
            agg = f"AVG({qy.col(m.table, m.column)})" if ask.avg else qy.sum_of(m.table, m.column)
            self.add(qy, [qy.col(first, c) for c in labels] + [agg] * bool(meant.WITH_VALUE.search(
                ask.q)), 0.95 * (0.5 + weight[id(m)] / 2), "group",
                group=[qy.col(first, c) for c in pk], order=f"{agg} {ask.direction}",
                lim=ask.limit or 1)

    def kept_groups(self) -> None:
        """"Which artists have more than 5 albums", "genres with an average unit price above
        1": the rows of the table asked about whose group passes a count, an average or a
        sum."""
        ask, link = self.ask, self.link
        bound = cue.kept_if(ask.question)
        kept = cue.KEPT_IF.search(ask.question)
        listed = ask.which or ask.counting or bool(  # "artists with"; "how many artists"
            link.tables and link.tables[0].start == 0)
        if bound is None or not listed or not link.tables or any(  # "albums by Metallica
                f.value is False for f in self.filters):  # with more than 10 tracks": by value
            return
        first = link.tables[0].table
        op, n, unit = bound
        labels = self.labels(first)
        pk = [c for c in first.columns if c.primary_key] or labels
        counted = [t.table for t in link.tables[1:] if t.table is not first]
        measured = [m for m in link.columns if m.column is not None and m.score >= (
                    0.6 if ask.avg else 0.7) and cue.is_numeric(m.column)
                    and (m.table is first or join_path(link.snap, m.table, first))]
        func = "AVG" if ask.avg else "SUM" if ask.summed or measured else None
        for table in counted:  # an average over 5 is no count of 5
            sold = ref.sold_in(ask, link, table)  # "more than 50 tracks sold": their lines
            qy = self.query(sold or table)
            self.add(qy, [qy.col(first, c) for c in pk if ask.counting] or [
                qy.col(first, c) for c in labels], 0.6 if ask.avg else 1.2 if ask.counting
                else 0.95, "group", group=[qy.col(first, c) for c in pk],
                having=f"{qy.units(sold) if sold else 'COUNT(*)'} {op} {n}",
                outer=alias("COUNT(*)", self.dialect) if ask.counting else None)
        for m in measured[:2] if func else ():
            assert m.column is not None
            qy = self.query(m.table)
            scaled = n * cue.UNIT.get(unit, 1) if "milli" in m.column.name.lower() else n
            bar = int(scaled) if scaled == int(scaled) else scaled  # "over 5 minutes": in ms
            agg = f"{func}({qy.col(m.table, m.column)})"  # "... and the amount": shown too
            self.add(qy, [qy.col(first, c) for c in labels] + [agg] * bool(meant.WITH_VALUE.search(
                ask.q)), 0.95 if ask.avg else 0.9 * m.score, "group",
                group=[qy.col(first, c) for c in pk], having=f"{agg} {op} {bar}")
        # "which countries have more than 5 customers", "... total sales over 100": a column
        # named before the bar groups the rows the bar counts or sums
        bar_at = word_at(ask.question, kept.start()) if kept else 0
        for m in link.columns:
            if (m.column is None or m.start >= bar_at or m.score < 0.7
                    or cue.is_numeric(m.column) or m.column.primary_key
                    or m.column in label_columns(m.table)
                    or not (m.table is first or join_path(link.snap, first, m.table))):
                continue
            for x in measured[:1] if ask.avg or ask.summed else [None]:
                qy = self.query(x.table if x else first)
                col = qy.col(m.table, m.column)
                passes = f"{func}({qy.col(x.table, x.column)})" if x and x.column else "COUNT(*)"
                self.add(qy, [col], (1.0 if m.table is first else 0.8) * m.score, "group",
                         group=[col], having=f"{passes} {op} {n}",  # a blank is no composer
                         where=[f"{col} IS NOT NULL"] if m.column.nullable else [])

    def never(self) -> None:
        """"How many tracks have never been sold", "artists with no albums": the rows of
        the table asked about that no row of a table referring to it points at."""
        ask, subject = self.ask, self.subject
        if self.filters or self.groups or not ref.NEVER.search(ask.q):
            return
        qy = self.query()
        for cond, score, hidden in ref.absences(ask, self.link, subject, qy):
            shown = [] if ask.counting else [  # a count joins nothing it does not show
                qy.col(t, c) for t, c in self.explicit if (t.name, c.name) != hidden]
            self.add(qy, ["COUNT(*)"] if ask.counting else shown or [  # over the plain count
                qy.col(subject, c) for c in label_columns(subject)], score, "never", where=[cond])

    def most_of_a_column(self) -> None:
        """"Which country has the most customers", "top 3 countries by sales": group the
        subject by a column it names (groups without a value left out)."""
        ask, q = self.ask, self.ask.q
        top = bool(ask.limit and re.search(r"(?i)\btop\b|\bby\b", q))
        if self.groups or not ((ask.superlative and ask.which) or top):
            return
        for m in self.shown[:2]:
            if (m.column is None or m.table is not self.subject or cue.is_numeric(m.column)
                    or cue.is_date(m.column) or m.column.primary_key
                    or m.column in label_columns(m.table)):
                continue
            qy = self.query()
            col = qy.col(m.table, m.column)
            known = [f"{col} IS NOT NULL"] if m.column.nullable else []
            aggs = [(f"AVG({qy.col(t, c)})", 0.9 * s) for t, c, s in self.measures[:1]
                    if ask.avg and cue.is_numeric(c) and c is not m.column]
            if (ask.most and not ask.avg and not ask.summed) or ask.counting:
                aggs.append(("COUNT(*)", 0.9))
            aggs += [(qy.sum_of(t, c), 0.9 * max(s, 0.9) if cue.MONEY_MOST.search(q) else 0.85 * s)
                     for t, c, s in self.measures[:1]
                     if cue.is_numeric(c) and c is not m.column and not ask.avg]
            for agg, a_score in aggs:
                self.add(qy, [col, agg] if meant.WITH_VALUE.search(q) else [col],
                         a_score * m.score, "group",
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
        # methods"): each once, unless every row is asked for or a filter picks the rows
        values_only = bool(explicit) and all(
            not c.primary_key and c not in label_columns(t) for t, c in explicit)
        every = [word_at(ask.question, m.end()) for m in re.finditer(
            r"(?i)\b(every|each|all)\b(\s+(the|of|our))*", ask.question)]
        each_row = any(t.start == i for i in every for t in self.link.tables)
        # "which cities in the USA have customers": the set of values, even when filtered
        which_at = {word_at(ask.question, m.end()) for m in re.finditer(
            r"(?i)\b(which|what)\b", ask.question)}
        asks_set = any(m.start in which_at and any(m.column is c for _, c in explicit)
                       for m in self.shown)
        # "albums that have tracks in the Bossa Nova genre": a filter on many rows per row
        reads = {id(t): t for t in [subject, *(f.table for f in self.filters)]}
        fans_out = any(o is not t and not to_one(self.link.snap, t, o)
                       for t in {id(t): t for t, _ in cols}.values() for o in reads.values())
        dist = ask.distinct or (values_only and not each_row and (
            not self.filters or asks_set))
        shown_in = {id(t): t for t, _ in cols}
        one = next(iter(shown_in.values())) if len(shown_in) == 1 else None
        keys = [c for c in one.columns if c.primary_key] if one is not None else []
        # each row once, not each name once: two playlists may share a name
        by_row = [qy.col(one, keys[0])] if fans_out and one is not None and len(keys) == 1 and (
            not values_only) and not ask.distinct else None
        dist = dist or (fans_out and not by_row)
        # "the 2 countries with the most invoices": rows counted, not a row's measure
        after = cue.words_after("most|fewest", ask.question)
        counted = 0.8 if any(t.start in after for t in self.link.tables) else 1.0
        if ask.superlative or ask.limit:
            for t, c, s in (self.measures or self.numeric)[:3]:
                qy2 = self.query()
                sel = [qy2.col(tt, cc) for tt, cc in cols]
                # without "which" or a number, "the smallest file size" is one value
                weight = (1.0 if ask.which or ask.limit else 0.85) * (
                    0.8 if self.groups else 1) * (0.7 if ask.avg or ask.summed else 1) * (
                    counted)  # a row
                # is no average, nor a sum
                self.add(qy2, sel, weight * s + 0.02, "topk",
                         order=f"{qy2.col(t, c)} {cue.order_dir(ask, c)}", lim=ask.limit or 1)
        order = None
        if cue.ASC.search(q) or cue.DESC.search(q):
            sort = meant.sort_column(ask.question, self.link, subject) or (
                cols[0] if cols else None)
            plain_asc = cue.ASC.search(q) and not cue.DESC.search(q) and not re.search(
                r"(?i)oldest|newest|latest|earliest", q)
            if sort is not None:
                order = f"{qy.col(*sort)} {'ASC' if plain_asc else cue.order_dir(ask, sort[1])}"
        base = 0.4 if self.groups else 0.5 if (
            ask.superlative or ask.limit or ask.avg or ask.summed) else (
            0.7 if ask.counting else 0.9)
        if cue.kept_if(ask.question) and all(f.value for f in self.filters):
            base *= 0.8  # "more than 5" left unread
        if ref.NEVER.search(q) and (ref.referring(ask, self.link, subject)
                                or ref.empty_references(ask, self.link, subject)):
            base *= 0.85  # "not in any playlist" left unread
        self.add(qy, select, base + (0.1 if explicit else 0),
                 "filter" if self.filters else "list", order=order, dist=dist, group=by_row)
        if dist != ask.distinct or (not dist and explicit):
            self.add(qy, select, base - 0.15, "list", order=order, dist=not dist)
