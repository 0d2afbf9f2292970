"""What the scripted models of the live-server tests share: the agent asks a model for three
kinds of text, told apart by its system message (SQL, a Vega-Lite proposal, the answer's
words), and a server extension registers the model once the Aigis service is up.

A model subclasses `PromptRouted` and says what to write for each kind; it streams word by
word, with an optional pause per word so a browser or a client sees the words arrive.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult


def question_of(messages: list[BaseMessage]) -> str:
    """The user's question in the agent's prompt (its `Question:` line, or the last message)."""
    last = str(messages[-1].content) if messages else ""
    m = re.search(r"Question: (.*)", last)
    return m.group(1) if m else last


class PromptRouted(BaseChatModel):
    """Replies by the kind of prompt: `sql`, `chart` or `answer`, each given the messages."""

    def sql(self, messages: list[BaseMessage]) -> str:
        raise NotImplementedError

    def chart(self, messages: list[BaseMessage]) -> str:
        return '{"mark": "bar"}'

    def answer(self, messages: list[BaseMessage]) -> tuple[str, float]:
        """The words and the pause before each one, in seconds."""
        raise NotImplementedError

    @property
    def _llm_type(self) -> str:
        return f"aigis-test-{type(self).__name__.lower()}"

    def _reply(self, messages: list[BaseMessage]) -> tuple[str, float]:
        system = str(messages[0].content) if messages else ""
        if system.startswith("You write SQL"):
            return self.sql(messages), 0.0
        if system.startswith("You design Vega-Lite"):
            return self.chart(messages), 0.0
        return self.answer(messages)

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


def register_when_ready(serverapp: Any, name: str, factory: Callable[[], BaseChatModel]) -> None:
    """For an extension's `_load_jupyter_server_extension`: register the model `name` in the
    server's Aigis service once every extension is loaded (the service among them)."""
    from tornado.ioloop import IOLoop

    from aigis_jupyter.models import ModelInfo

    def register() -> None:
        service = serverapp.web_app.settings["aigis"].service()
        service.models.register(ModelInfo(name=name, provider="test", supports_tools=False),
                                factory)
        serverapp.log.info("tests: model %r registered", name)

    IOLoop.current().add_callback(register)
