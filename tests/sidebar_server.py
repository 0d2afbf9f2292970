"""A Jupyter server extension for the sidebar's browser tests: a scripted model, `scripted`,
registered in the running server's service next to the real ones (`local` among them).

The browser test (`tests/test_sidebar.py`) starts `jupyter lab` with this module on
PYTHONPATH and enabled in `ServerApp.jpserver_extensions`. The model answers like a chat
model: SQL when asked for SQL, a Vega-Lite proposal when asked for a chart, and words,
streamed one word at a time with a pause so a browser sees them arrive. Which script it
follows depends on words of the question (`SCRIPTS`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

MODEL_NAME = "scripted"

#: (a word of the question, SQL, answer, seconds between streamed words)
SCRIPTS: list[tuple[str, str, str, float]] = [
    ("segment",
     "SELECT segment, COUNT(*) AS customers FROM customers GROUP BY segment ORDER BY segment",
     "There are 3 segments. Consumer has 430 customers, Enterprise has 47 and Small Business "
     "has 123, so most customers are consumers.",
     0.12),
    ("slowly",
     "SELECT COUNT(*) AS orders FROM orders",
     "Counting the orders takes a while, word by word: " + " ".join(["still counting"] * 60),
     0.5),
]
DEFAULT = ("", "SELECT COUNT(*) AS regions FROM regions", "There are 5 regions.", 0.05)


def _script(question: str) -> tuple[str, str, str, float]:
    low = question.lower()
    return next((s for s in SCRIPTS if s[0] in low), DEFAULT)


class ScriptedModel(BaseChatModel):
    """Replies by the kind of prompt (the agent's system messages) and the question."""

    @property
    def _llm_type(self) -> str:
        return "aigis-test-scripted"

    def _reply(self, messages: list[BaseMessage]) -> tuple[str, float]:
        system = str(messages[0].content) if messages else ""
        last = str(messages[-1].content) if messages else ""
        m = re.search(r"Question: (.*)", last)
        question = m.group(1) if m else last
        _, sql, answer, delay = _script(question)
        if system.startswith("You write SQL"):
            return sql, 0.0
        if system.startswith("You design Vega-Lite"):
            return ('{"mark": "bar", "encoding": {"x": {"field": "segment", "type": "nominal"}, '
                    '"y": {"field": "customers", "type": "quantitative"}}}'), 0.0
        return answer, delay

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        text, _ = self._reply(messages)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])

    def _stream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        text, delay = self._reply(messages)
        for piece in re.findall(r"\S+\s*", text):
            if delay:
                time.sleep(delay)
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    return [{"module": "sidebar_server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from tornado.ioloop import IOLoop

    from aigis_jupyter.models import ModelInfo

    def register() -> None:  # once every extension is loaded (aigis_jupyter's service too)
        service = serverapp.web_app.settings["aigis"].service()
        service.models.register(
            ModelInfo(name=MODEL_NAME, provider="test", supports_tools=False), ScriptedModel
        )
        serverapp.log.info("sidebar tests: model %r registered", MODEL_NAME)

    IOLoop.current().add_callback(register)
