"""Teaching a connection: verified queries (a question and the SQL a person confirmed).

The most similar verified queries go into every SQL prompt on the connection as worked
examples (`agent.examples`), and a statement that matches one is marked `verified` in the
stream. Only the connection's owner teaches it; the users it is shared with benefit.
Every statement taught passes the guard's parser first: a verified query is a read query
on this connection, never a write a model could copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from ..agent.verified import question_key
from ..errors import AigisError, BadInput, Conflict, NotFound
from . import validation
from .connections import ConnectionOps
from .contract import Example
from .rows import example_info

if TYPE_CHECKING:
    from ..store.models import Connection


class ExampleOps(ConnectionOps):
    def list_examples(self, ref: str) -> list[Example]:
        """A connection's verified queries, oldest first (an export is this list)."""
        with self._session() as s:
            repo = self._repo(s)
            return [example_info(e) for e in repo.examples(repo.connection(ref))]

    def _checked(self, row: Connection, sql: str) -> None:
        """The guard's parser on the connection's dialect: SQLRefused (422) otherwise."""
        from ..databases.guard import check_sql

        check_sql(sql, row.db_type, allow_write=bool(row.allow_write), database=row.database)

    def add_examples(self, ref: str, items: list[Mapping[str, Any]]) -> list[Example]:
        """Teach one or many (a JSONL or YAML file read by the door): all or none.

        A question already taught (same words, case and spacing aside) gets the new SQL.
        """
        from ..store.models import VerifiedQuery

        if not isinstance(items, list) or not items:
            raise BadInput("Give at least one verified query: {'question': ..., 'sql': ...}.")
        if len(items) > validation.EXAMPLES_PER_REQUEST:
            raise BadInput(f"At most {validation.EXAMPLES_PER_REQUEST} verified queries at "
                           "once; split the file.")
        wanted: dict[str, dict[str, str]] = {}
        for i, item in enumerate(items, 1):
            try:
                v = validation.example(item)
            except BadInput as exc:
                where = f"Verified query {i}: " if len(items) > 1 else ""
                raise BadInput(where + exc.message) from None
            wanted[question_key(v["question"])] = v
        out: list[Example] = []
        with self._session() as s:
            repo = self._repo(s)
            conn = repo.connection(ref, own=True)
            for i, v in enumerate(wanted.values(), 1):
                try:
                    self._checked(conn, v["sql"])
                except AigisError as exc:  # SQLRefused (422): not a read query here
                    where = f"Verified query {i} ({v['question'][:60]!r}): " if len(
                        wanted) > 1 else ""
                    exc.message = where + exc.message
                    exc.args = (exc.message,)
                    raise
            start = datetime.now(timezone.utc)
            for i, (key, v) in enumerate(wanted.items()):
                # one microsecond apart, so the list keeps the order they were given in
                now = start + timedelta(microseconds=i)
                row = repo.example_by_key(conn, key)
                if row is None:
                    row = repo.add_example(conn, VerifiedQuery(
                        question=v["question"], question_key=key, sql=v["sql"],
                        created_at=now, updated_at=now))
                else:
                    row.question, row.sql, row.updated_at = v["question"], v["sql"], now
                    s.flush()
                out.append(example_info(row))
        return out

    def update_example(self, ref: str, example_id: str,
                       data: Mapping[str, Any]) -> Example:
        """Change a verified query's question or SQL (checked again)."""
        if not isinstance(data, Mapping):
            raise BadInput("Changes must be an object with 'question' and/or 'sql'.")
        with self._session() as s:
            repo = self._repo(s)
            conn = repo.connection(ref, own=True)
            row = repo.example(conn, example_id)
            v = validation.example({"question": row.question, "sql": row.sql, **data})
            self._checked(conn, v["sql"])
            key = question_key(v["question"])
            other = repo.example_by_key(conn, key)
            if other is not None and other.id != row.id:
                raise Conflict(f"The question {v['question']!r} is already taught (verified "
                               f"query {other.id}); change or remove that one.")
            row.question, row.question_key, row.sql = v["question"], key, v["sql"]
            row.updated_at = datetime.now(timezone.utc)
            s.flush()
            return example_info(row)

    def delete_example(self, ref: str, example_id: str) -> None:
        with self._session() as s:
            repo = self._repo(s)
            repo.delete_example(repo.example(repo.connection(ref, own=True), example_id))

    def verify_turn(self, thread_id: str) -> Example:
        """Teach the thread's last answered question with the SQL that answered it."""
        with self._session() as s:
            repo = self._repo(s)
            thread = repo.thread(thread_id)
            messages = list(repo.messages(thread.id))
        question = sql = conn_id = None
        for i in range(len(messages) - 1, -1, -1):
            m = messages[i]
            payload = m.payload if isinstance(m.payload, dict) else {}
            if m.role != "assistant" or not payload.get("sql") or payload.get("error"):
                continue
            asked = next((p for p in reversed(messages[:i]) if p.role == "user"), None)
            if asked is not None:
                question, sql = asked.content, payload["sql"]
                conn_id = payload.get("connection_id") or thread.connection_id
                break
        if not question or not sql or not conn_id:
            raise NotFound("This thread has no answered question with SQL to verify yet: "
                           "ask one first.")
        return self.add_examples(conn_id, [{"question": question, "sql": sql}])[0]
