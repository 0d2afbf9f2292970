"""Chinook questions with gold SQL, and the scripted replies both agents need for them.

200 questions come from the 15 dev questions (`../shared/eval/chinook_dev.jsonl`) plus
variants of the same shapes over real Chinook values (every country, genre, artist, year,
table): the gold SQL of each is known, so a scripted model can "write" it.

LangChain's SQL agent is built the way its tutorial builds it: `SQLDatabaseToolkit` tools
(list tables, schema with sample rows, query checker, query) and `create_agent` with
LangChain's own SQL-agent prompt verbatim (`SQL_PREFIX` from the installed
`langchain_community`), driven along its tutorial path (list tables, schema, query
checker, query, answer) and its shortest path (query, answer).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from .common import CHINOOK, EVAL
from .scripted import text_of


@dataclass(frozen=True)
class Question:
    question: str
    sql: str
    tables: tuple[str, ...]
    answer: str


_PLURAL = {
    "Album": "albums", "Artist": "artists", "Customer": "customers", "Employee": "employees",
    "Genre": "genres", "Invoice": "invoices", "InvoiceLine": "invoice lines",
    "MediaType": "media types", "Playlist": "playlists", "PlaylistTrack": "playlist entries",
    "Track": "tracks",
}


def _q(s: str) -> str:
    return s.replace("'", "''")


def _tables(sql: str) -> tuple[str, ...]:
    import sqlglot
    from sqlglot import exp

    names = [t.name for t in sqlglot.parse_one(sql, read="sqlite").find_all(exp.Table)]
    return tuple(dict.fromkeys(names))


def _answer(rows: list[tuple[Any, ...]], cols: list[str]) -> str:
    """What a model would say: the value for one-value results, a summary otherwise."""
    if not rows:
        return "The query returned no rows."
    if len(rows) == 1 and len(rows[0]) == 1:
        v = rows[0][0]
        if isinstance(v, float):
            v = round(v, 2)
        return f"The answer is {v}."
    first = ", ".join(f"{c} {v}" for c, v in zip(cols, rows[0], strict=False))
    return f"There are {len(rows)} rows in the result; the first one is {first}."


def _variants(con: sqlite3.Connection) -> list[list[tuple[str, str]]]:
    """Families of (question, gold SQL) built from the database's own values."""
    def col(sql: str) -> list[Any]:
        return [r[0] for r in con.execute(sql).fetchall()]

    fam: list[list[tuple[str, str]]] = []
    fam.append([(f"How many {p} are there?", f"SELECT COUNT(*) FROM {t}")
                for t, p in _PLURAL.items()])
    fam.append([(f"Which customers live in {c}? Give first and last names.",
                 f"SELECT FirstName, LastName FROM Customer WHERE Country = '{_q(c)}'")
                for c in col("SELECT DISTINCT Country FROM Customer ORDER BY Country")])
    fam.append([(f"What are the {n} longest tracks? Give their names.",
                 f"SELECT Name FROM Track ORDER BY Milliseconds DESC LIMIT {n}")
                for n in range(1, 16)])
    fam.append([(f"How many tracks are in the {g} genre?",
                 "SELECT COUNT(*) FROM Track t JOIN Genre g ON t.GenreId = g.GenreId "
                 f"WHERE g.Name = '{_q(g)}'")
                for g in col("SELECT Name FROM Genre ORDER BY GenreId")])
    fam.append([(f"Which albums did {a} release?",
                 "SELECT al.Title FROM Album al JOIN Artist ar ON al.ArtistId = ar.ArtistId "
                 f"WHERE ar.Name = '{_q(a)}'")
                for a in col("SELECT ar.Name FROM Artist ar JOIN Album al USING (ArtistId) "
                             "GROUP BY ar.ArtistId ORDER BY COUNT(*) DESC, ar.Name LIMIT 60")])
    fam.append([(f"What was the total invoice amount in {y}?",
                 f"SELECT SUM(Total) FROM Invoice WHERE strftime('%Y', InvoiceDate) = '{y}'")
                for y in col("SELECT DISTINCT strftime('%Y', InvoiceDate) FROM Invoice "
                             "ORDER BY 1")])
    fam.append([(f"What is the average unit price of {m} tracks?",
                 "SELECT AVG(t.UnitPrice) FROM Track t JOIN MediaType m "
                 f"ON t.MediaTypeId = m.MediaTypeId WHERE m.Name = '{_q(m)}'")
                for m in col("SELECT Name FROM MediaType ORDER BY MediaTypeId")])
    fam.append([(f"How many tracks are on the album {t}?",
                 "SELECT COUNT(*) FROM Track t JOIN Album al ON t.AlbumId = al.AlbumId "
                 f"WHERE al.Title = '{_q(t)}'")
                for t in col("SELECT Title FROM Album ORDER BY AlbumId LIMIT 120")])
    return fam


def questions(n: int = 200, db: Path = CHINOOK, eval_file: Path = EVAL) -> list[Question]:
    """The 15 dev questions, then variants round-robin over the families, `n` in all."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    pairs: list[tuple[str, str]] = []
    if eval_file.exists():
        for line in eval_file.read_text().splitlines():
            if line.strip():
                item = json.loads(line)
                pairs.append((item["question"], item["gold"]))
    fams = _variants(con)
    seen = {q for q, _ in pairs}
    i = 0
    while len(pairs) < n and any(fams):
        fam = fams[i % len(fams)]
        if fam:
            q, sql = fam.pop(0)
            if q not in seen:
                pairs.append((q, sql))
                seen.add(q)
        i += 1
    out = []
    for q, sql in pairs[:n]:
        cur = con.execute(sql)
        rows = cur.fetchall()
        cols = [d[0] for d in cur.description or []]
        out.append(Question(q, sql, _tables(sql), _answer(rows, cols)))
    con.close()
    return out


# --------------------------------------------------------------------------- scripted replies


def _last_human(messages: list[BaseMessage]) -> str:
    return next((text_of(m.content) for m in reversed(messages) if isinstance(m, HumanMessage)),
                "")


def aigis_responder(plans: dict[str, Question]) -> Any:
    """Replies for the product's agent: SQL for the SQL call, the answer for the answer call."""

    def find(messages: list[BaseMessage]) -> Question:
        last = _last_human(messages)
        if last in plans:
            return plans[last]
        head = last.split("\n", 1)[0].removeprefix("Question:").strip()
        if head in plans:
            return plans[head]
        blob = "\n".join(text_of(m.content) for m in messages)
        return next(p for q, p in plans.items() if q in blob)

    def respond(messages: list[BaseMessage]) -> str:
        plan = find(messages)
        system = text_of(messages[0].content) if isinstance(messages[0], SystemMessage) else ""
        if "Schema:" in system or "SQL" in system.split("\n", 1)[0]:
            return f"```sql\n{plan.sql}\n```"
        return plan.answer

    return respond


#: The steps of LangChain's tutorial path (before the final answer).
TUTORIAL_STEPS = ("sql_db_list_tables", "sql_db_schema", "sql_db_query_checker", "sql_db_query")
SHORTEST_STEPS = ("sql_db_query",)


def lc_responder(plans: dict[str, Question], steps: tuple[str, ...] = TUTORIAL_STEPS) -> Any:
    """Replies for LangChain's agent: the tool calls of `steps`, then the answer.

    The query checker asks the same model to re-read the SQL; it gets the SQL back.
    """

    def respond(messages: list[BaseMessage]) -> AIMessage | str:
        first = text_of(messages[0].content)
        if len(messages) == 1 and "Double check the" in first:
            return first.split("\nDouble check the", 1)[0].strip()
        question = next(text_of(m.content) for m in messages if isinstance(m, HumanMessage))
        plan = plans[question]
        step = sum(isinstance(m, AIMessage) for m in messages)
        if step < len(steps):
            name = steps[step]
            args = {
                "sql_db_list_tables": {"tool_input": ""},
                "sql_db_schema": {"table_names": ", ".join(plan.tables)},
                "sql_db_query_checker": {"query": plan.sql},
                "sql_db_query": {"query": plan.sql},
            }[name]
            return AIMessage("", tool_calls=[{"name": name, "args": args, "type": "tool_call",
                                              "id": f"call_{uuid.uuid4().hex[:12]}"}])
        return plan.answer

    return respond


def lc_system() -> str:
    """LangChain's own SQL-agent prompt, verbatim: `SQL_PREFIX` of the installed
    `langchain_community.agent_toolkits.sql.prompt` (what `create_sql_agent` sends), not a
    paraphrase written for this benchmark."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from langchain_community.agent_toolkits.sql.prompt import SQL_PREFIX
    return SQL_PREFIX


class LangChainSqlAgent:
    """LangChain's SQL agent as its tutorial builds it, on a copy of the Chinook file."""

    def __init__(self, db_path: Path, model: Any, *, top_k: int = 5) -> None:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from langchain.agents import create_agent
            from langchain_community.agent_toolkits import SQLDatabaseToolkit
            from langchain_community.utilities import SQLDatabase

        self.db = SQLDatabase.from_uri(f"sqlite:///{db_path}")
        self.tools = SQLDatabaseToolkit(db=self.db, llm=model).get_tools()
        self.agent = create_agent(
            model, self.tools, system_prompt=lc_system().format(dialect=self.db.dialect,
                                                                top_k=top_k))

    def ask(self, question: str) -> str:
        out = self.agent.invoke({"messages": [HumanMessage(question)]})
        return text_of(out["messages"][-1].content)


@dataclass
class AgentRig:
    """The product's agent on a private copy of Chinook, driven by a scripted model."""

    db: Path
    deps: Any
    model: Any
    runner: Any


def agent_rig(ctx: Any, prefix: str, plans: dict[str, Question], *,
              checkpoint: bool) -> AgentRig:
    """Copy Chinook, wire BenchDeps + a scripted model into an AgentRunner.

    `checkpoint` keeps threads in a SQLite checkpointer, as local mode does.
    """
    from aigis_jupyter.agent.runner import AgentRunner
    from aigis_jupyter.databases.engines import ConnectionSpec
    from aigis_jupyter.models import ModelRegistry
    from aigis_jupyter.settings import Settings

    from .common import BenchDeps, chinook_spec, tmpdir
    from .scripted import ScriptedModel, register

    tmp = tmpdir(ctx, prefix)
    db = tmp / "chinook.sqlite"
    shutil.copy(chinook_spec().host, db)
    deps = BenchDeps(ConnectionSpec(id="chinook", db_type="sqlite", host=str(db)))
    settings = Settings(data_dir=tmp / "data")
    model = ScriptedModel(responder=aigis_responder(plans))
    registry = ModelRegistry(settings, environ={})
    register(registry, model)
    runner = AgentRunner(registry=registry,
                         checkpointer_url_or_saver=settings.store_url if checkpoint else None,
                         deps=deps, settings=settings)
    return AgentRig(db=db, deps=deps, model=model, runner=runner)
