"""A server extension registering `echo`: a scripted chat model that does what the question
says, so a test running a real `jupyter server` chooses each turn's SQL from outside.

A question `q7 sql: SELECT count(*) FROM t` makes it write `SELECT count(*) FROM t` when
asked for SQL, and answer `Answer to q7.` (the words before `sql:`) when asked for the
answer. Without `sql:` it writes `SELECT 1 AS one`.

Enable with `--ServerApp.jpserver_extensions=echo_model=True` and this directory on
PYTHONPATH.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import BaseMessage
from scripted import PromptRouted, question_of, register_when_ready

MODEL_NAME = "echo"


def split(question: str) -> tuple[str, str]:
    """(the words before `sql:`, the SQL after it)."""
    head, _, sql = question.partition("sql:")
    return head.strip(), sql.strip() or "SELECT 1 AS one"


class EchoModel(PromptRouted):
    """Writes the SQL its question carries; answers with the question's own words."""

    def sql(self, messages: list[BaseMessage]) -> str:
        return split(question_of(messages))[1]

    def chart(self, messages: list[BaseMessage]) -> str:
        return "{}"

    def answer(self, messages: list[BaseMessage]) -> tuple[str, float]:
        return f"Answer to {split(question_of(messages))[0]}.", 0.0


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "echo_model"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    register_when_ready(serverapp, MODEL_NAME, EchoModel)
