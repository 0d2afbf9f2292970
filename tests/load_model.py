"""A Jupyter server extension for load tests: a model, `marker`, that echoes the question's
marker into its SQL and its answer, registered in the running server's service.

A question such as "MARK-load-07-13: how many regions are there?" gets the SQL
`SELECT 'MARK-load-07-13' AS marker, COUNT(*) AS regions FROM regions` and the answer
"MARK-load-07-13: there are N regions." (N from the result), streamed word by word. So the
stored answer, its SQL and its result rows all say which question they belong to: an
answer that lands in another thread, or a result served to another turn, shows at once.
The test starts `jupyter server` with this module on PYTHONPATH and enabled in
`ServerApp.jpserver_extensions`.
"""

from __future__ import annotations

import re
from typing import Any

from langchain_core.messages import BaseMessage
from scripted import PromptRouted, register_when_ready

MODEL_NAME = "marker"
MARKER = re.compile(r"MARK-[A-Za-z0-9-]+")
#: The result line of the answer prompt: `regions` then its value (see agent/prompts.py).
_COUNT = re.compile(r"regions\D{0,4}(\d+)")


def marker_sql(marker: str) -> str:
    return f"SELECT '{marker}' AS marker, COUNT(*) AS regions FROM regions"


def _marker(messages: list[BaseMessage]) -> str:
    found = MARKER.search(str(messages[-1].content) if messages else "")
    return found.group(0) if found else "MARK-none"


class MarkerModel(PromptRouted):
    """SQL for the SQL prompt, an answer for the answer prompt; both carry the marker."""

    def sql(self, messages: list[BaseMessage]) -> str:
        return marker_sql(_marker(messages))

    def answer(self, messages: list[BaseMessage]) -> tuple[str, float]:
        result = str(messages[-1].content).split("Result:", 1)[-1]
        count = _COUNT.search(result)
        return f"{_marker(messages)}: there are {count.group(1) if count else 'no'} regions.", 0.0


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "load_model"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    register_when_ready(serverapp, MODEL_NAME, MarkerModel)
