"""Check the hand-written text-to-SQL question sets in this directory.

For each JSON Lines file: valid JSON per line, required keys, known level and shape,
unique ids, unique questions, no question equal (ignoring case, spacing and punctuation)
to a dev or teach question, the gold runs and returns at least one row, `tables` matches
the tables named after FROM/JOIN in the gold, the shape agrees with the SQL (joins, GROUP
BY, LIMIT, ...), and every ORDER BY gives a well-defined answer: no tie at a LIMIT boundary
and no tie between two different rows inside the returned, ordered rows. Prints the shape
and level distribution; exits 1 on any failure.

    /work/main/.venv-test/bin/python benchmarks/questions/check.py [FILE ...]

Files named chinook_* run against the Chinook SQLite file, demo_* against the product's
demo database (built with aigis_jupyter.demo.build_demo_sqlite if it is missing).
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SHARED = ROOT.parent / "shared"

LEVELS = ("easy", "medium", "hard")
SHAPES = ("count", "filter", "list", "topk", "aggregate", "groupby", "join", "multi")
TARGET = {"count": 15, "filter": 15, "list": 12, "topk": 15, "aggregate": 12,
          "groupby": 13, "join": 13, "multi": 5}
KEYS = ("id", "question", "gold", "level", "shape", "tables")

TABLE_RE = re.compile(r"\b(?:FROM|JOIN)\s+[\[\"`]?([A-Za-z_]\w*)", re.I)
JOIN_RE = re.compile(r"\bJOIN\b", re.I)
ORDER_RE = re.compile(r"\bORDER\s+BY\b", re.I)
LIMIT_RE = re.compile(r"\bLIMIT\s+(\d+)\s*;?\s*$", re.I)
IDENT_RE = re.compile(r"^[\[\"`]?([A-Za-z_]\w*)[\]\"`]?$")


def norm_question(q: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", q.lower()).split())


def banned_questions() -> dict[str, str]:
    out: dict[str, str] = {}
    dev = SHARED / "eval" / "chinook_dev.jsonl"
    teach = ROOT / "benchmarks" / "teach_chinook.jsonl"
    for path in (dev, teach):
        if not path.exists():
            print(f"warning: {path} not found; not checked against it")
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                out[norm_question(json.loads(line)["question"])] = path.name
    return out


def demo_db(path: Path) -> Path:
    if not path.exists():
        sys.path.insert(0, str(ROOT))
        from aigis_jupyter.demo import build_demo_sqlite

        build_demo_sqlite(path)
    return path


def split_top(s: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


def order_problems(con: sqlite3.Connection, sql: str) -> list[str]:
    """Ties that make an ordered (or top-k) answer ambiguous."""
    sql = sql.strip().rstrip(";")
    lim = LIMIT_RE.search(sql)
    orders = list(ORDER_RE.finditer(sql))
    if not orders:
        return ["LIMIT without ORDER BY"] if lim else []
    m = orders[-1]
    k = int(lim.group(1)) if lim else None
    clause = sql[m.end(): lim.start() if lim else len(sql)]
    base = sql[: m.start()].rstrip()
    if not re.match(r"^\s*SELECT\s", base, re.I):
        return ["cannot check ORDER BY of a query that does not start with SELECT"]
    distinct = bool(re.match(r"^\s*SELECT\s+DISTINCT\b", base, re.I))
    names = [d[0].lower() for d in con.execute(base + " LIMIT 0").description]
    terms = []
    for t in split_top(clause):
        t = re.sub(r"\s+(ASC|DESC)\s*$", "", t, flags=re.I).strip()
        terms.append(t)
    exprs: list[str] = []
    keyspec: list[tuple[str, int]] = []
    for t in terms:
        idm = IDENT_RE.match(t)
        if t.isdigit():
            keyspec.append(("col", int(t) - 1))
        elif idm and idm.group(1).lower() in names:
            keyspec.append(("col", names.index(idm.group(1).lower())))
        else:
            if distinct:
                return [f"cannot check ORDER BY term {t!r} with DISTINCT"]
            keyspec.append(("expr", len(exprs)))
            exprs.append(t)
    n = len(exprs)
    head = "".join(f"{e} AS __k{i}, " for i, e in enumerate(exprs))
    aug = re.sub(r"^\s*SELECT\s+(DISTINCT\s+)?", lambda mm: "SELECT " + (mm.group(1) or "") + head,
                 base, count=1, flags=re.I)
    new_clause = ", ".join(
        str(int(t) + n) + s[len(t):] if t.isdigit() else s
        for t, s in zip(terms, split_top(clause), strict=True))
    rows = con.execute(f"{aug} ORDER BY {new_clause}").fetchall()

    def key(r: tuple) -> tuple:
        # floats rounded: an equivalent query may sum in another order and flip near-ties
        vals = (r[i] if kind == "expr" else r[n + i] for kind, i in keyspec)
        return tuple(round(v, 6) if isinstance(v, float) else v for v in vals)

    probs = []
    shown = rows if k is None else rows[:k]
    if k is not None and len(rows) > k and key(rows[k - 1]) == key(rows[k]):
        probs.append(f"tie at LIMIT {k}: {key(rows[k - 1])!r}")
    for i in range(len(shown) - 1):
        a, b = shown[i], shown[i + 1]
        if key(a) == key(b) and a[n:] != b[n:]:
            probs.append(f"tie inside ordered result: {a[n:]!r} / {b[n:]!r}")
            break
    return probs


def outer(sql: str) -> str:
    """The query without its parenthesised subqueries (shape keywords count only outside)."""
    out, depth, i = "", 0, 0
    while i < len(sql):
        if depth == 0 and sql[i] == "(" and re.match(r"\(\s*SELECT\b", sql[i:], re.I):
            depth = 1
            i += 1
            continue
        if depth:
            depth += {"(": 1, ")": -1}.get(sql[i], 0)
            if depth == 0:
                out += "(...)"
        else:
            out += sql[i]
        i += 1
    return out


def shape_problems(item: dict, tables: set[str]) -> list[str]:
    shape = item["shape"]
    sql = outer(item["gold"])
    joins = len(JOIN_RE.findall(sql))
    having = bool(re.search(r"\bHAVING\b", sql, re.I))
    has = lambda pat: bool(re.search(pat, sql, re.I))  # noqa: E731
    if shape == "multi":
        if not (joins >= 2 or having or (joins == 0 and len(tables) >= 2)):
            return ["multi needs two or more joins, a HAVING, or a subquery over another table"]
        return []
    if shape == "join":
        return [] if joins == 1 and not having else ["join needs exactly one JOIN and no HAVING"]
    probs = []
    if joins or having or len(tables) != 1 or JOIN_RE.search(item["gold"]):
        probs.append(f"{shape} should read one table without JOIN/HAVING")
    need = {"count": r"\bCOUNT\s*\(", "filter": r"\bWHERE\b", "topk": r"\bLIMIT\b",
            "aggregate": r"\b(AVG|SUM|MIN|MAX|TOTAL)\s*\(", "groupby": r"\bGROUP\s+BY\b"}
    if shape in need and not has(need[shape]):
        probs.append(f"{shape} gold lacks {need[shape]}")
    if shape in ("list", "filter", "aggregate", "count") and has(r"\bLIMIT\b"):
        probs.append(f"{shape} gold has a LIMIT (should be topk)")
    if shape in ("list", "filter", "count", "aggregate") and has(r"\bGROUP\s+BY\b"):
        probs.append(f"{shape} gold has a GROUP BY (should be groupby/topk)")
    return probs


def check_file(path: Path, con: sqlite3.Connection, banned: dict[str, str],
               seen_q: dict[str, str]) -> tuple[int, list[dict]]:
    fails = 0
    items: list[dict] = []
    ids: set[str] = set()
    db_tables = {r[0].lower(): r[0] for r in
                 con.execute("SELECT name FROM sqlite_master WHERE type IN ('table','view')")}

    def fail(where: str, msg: str) -> None:
        nonlocal fails
        fails += 1
        print(f"FAIL {path.name} {where}: {msg}")

    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            fail(f"line {no}", f"invalid JSON ({exc})")
            continue
        where = f"line {no} {item.get('id', '?')}"
        missing = [k for k in KEYS if k not in item]
        if missing:
            fail(where, f"missing keys {missing}")
            continue
        items.append(item)
        if item["id"] in ids:
            fail(where, "duplicate id")
        ids.add(item["id"])
        if item["level"] not in LEVELS:
            fail(where, f"unknown level {item['level']!r}")
        if item["shape"] not in SHAPES:
            fail(where, f"unknown shape {item['shape']!r}")
        if not isinstance(item["tables"], list) or not item["tables"]:
            fail(where, "tables must be a non-empty list")
            continue
        nq = norm_question(item["question"])
        if nq in banned:
            fail(where, f"question equals one in {banned[nq]}")
        if nq in seen_q:
            fail(where, f"question repeats {seen_q[nq]}")
        seen_q[nq] = f"{path.name}:{item['id']}"
        sql = item["gold"]
        try:
            rows = con.execute(sql).fetchall()
        except sqlite3.Error as exc:
            fail(where, f"gold does not run: {exc}")
            continue
        if not rows:
            fail(where, "gold returns no rows")
        elif all(v is None for r in rows for v in r):
            fail(where, "gold returns only NULLs")
        elif len(rows) == 1 and len(rows[0]) == 1 and rows[0][0] == 0:
            fail(where, "gold returns 0: does the value asked about exist?")
        found = {t.lower() for t in TABLE_RE.findall(sql)}
        unknown = found - set(db_tables)
        if unknown:
            fail(where, f"gold names unknown tables {sorted(unknown)}")
        declared = [t.lower() for t in item["tables"]]
        if len(set(declared)) != len(declared):
            fail(where, "tables has duplicates")
        if set(declared) != found:
            fail(where, f"tables {sorted(declared)} != tables in gold {sorted(found)}")
        for p in shape_problems(item, found):
            fail(where, p)
        try:
            for p in order_problems(con, sql):
                fail(where, p)
        except sqlite3.Error as exc:
            fail(where, f"could not check ORDER BY ties: {exc}")
    return fails, items


def report(path: Path, items: list[dict]) -> None:
    n = len(items) or 1
    shapes = Counter(i["shape"] for i in items)
    levels = Counter(i["level"] for i in items)
    print(f"\n{path.name}: {len(items)} questions")
    print("  shape      count   share  (aim)")
    for s in SHAPES:
        print(f"  {s:<10} {shapes[s]:>5}  {shapes[s] / n:6.1%}  ({TARGET[s]} %)")
    print("  level      count   share")
    for lv in LEVELS:
        print(f"  {lv:<10} {levels[lv]:>5}  {levels[lv] / n:6.1%}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="*", type=Path,
                    default=[HERE / "chinook_own.jsonl", HERE / "demo_own.jsonl",
                             HERE / "chinook_later.jsonl"])
    ap.add_argument("--chinook", type=Path, default=SHARED / "data" / "chinook" / "chinook.sqlite")
    ap.add_argument("--demo", type=Path, default=Path("/tmp/qs_demo.sqlite"),
                    help="demo SQLite file (built if missing)")
    args = ap.parse_args(argv)

    banned = banned_questions()
    seen_q: dict[str, str] = {}
    total_fails = 0
    for path in args.files:
        if not path.exists():
            print(f"FAIL {path}: no such file")
            total_fails += 1
            continue
        if path.name.startswith("chinook"):
            db = args.chinook
        elif path.name.startswith("demo"):
            db = demo_db(args.demo)
        else:
            print(f"FAIL {path}: name must start with chinook or demo")
            total_fails += 1
            continue
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            fails, items = check_file(path, con, banned, seen_q)
        finally:
            con.close()
        report(path, items)
        total_fails += fails
    print(f"\n{'FAILED: ' + str(total_fails) + ' problem(s)' if total_fails else 'OK'}")
    return 1 if total_fails else 0


if __name__ == "__main__":
    raise SystemExit(main())
