"""A scripted chat model: zero latency (or a fixed delay per token), replies chosen by a function.

Both agents compared in a benchmark are driven by the same class: the reply to each call is
a function of the messages the agent sent, so one model can answer 200 different questions
and emit the tool calls LangChain's SQL agent needs. Every call is recorded (messages and
tool definitions), so the characters sent to the model can be counted afterwards.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, Field

Responder = Callable[[list[BaseMessage]], "AIMessage | str"]

_TOKEN = re.compile(r"\s*\S+|\s+")


def tokens(text: str) -> list[str]:
    """Split a reply the way a model streams it: one word (with its leading space) a token."""
    return _TOKEN.findall(text)


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b if isinstance(b, str) else str(b.get("text", "")) for b in content
                       if isinstance(b, str | dict))
    return str(content or "")


def message_chars(m: BaseMessage) -> int:
    """Characters of one message as a provider would receive them (text + tool calls)."""
    n = len(text_of(m.content))
    for call in getattr(m, "tool_calls", None) or []:
        n += len(call.get("name", "")) + len(json.dumps(call.get("args", {})))
    return n


class ScriptedModel(BaseChatModel):
    """Replies come from `responder(messages)`; every call is recorded in `calls`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    responder: Any
    token_delay: float = 0.0
    calls: list[dict[str, Any]] = Field(default_factory=list)
    #: (perf_counter, text so far) for each token of each call, when `record_tokens`
    emitted: list[list[tuple[float, str]]] = Field(default_factory=list)
    record_tokens: bool = False
    lock: Any = Field(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        from langchain_core.utils.function_calling import convert_to_openai_tool

        kwargs.pop("tool_choice", None)
        kwargs.pop("parallel_tool_calls", None)
        kwargs.pop("strict", None)
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    # -- the reply -----------------------------------------------------------------

    def _reply(self, messages: list[BaseMessage], kwargs: dict[str, Any]) -> AIMessage:
        tools = kwargs.get("tools") or []
        with self.lock:
            self.calls.append({
                "messages": list(messages),
                "tools": tools,
                "message_chars": sum(message_chars(m) for m in messages),
                "tool_schema_chars": len(json.dumps(tools)) if tools else 0,
            })
        reply = self.responder(list(messages))
        return reply if isinstance(reply, AIMessage) else AIMessage(content=str(reply))

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        reply = self._reply(messages, kwargs)
        return ChatResult(generations=[ChatGeneration(message=reply)])

    def _stream(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        reply = self._reply(messages, kwargs)
        if reply.tool_calls:
            chunks = [{"name": c["name"], "args": json.dumps(c["args"]), "id": c.get("id"),
                       "index": i} for i, c in enumerate(reply.tool_calls)]
            yield ChatGenerationChunk(message=AIMessageChunk(
                content=text_of(reply.content), tool_call_chunks=chunks))  # type: ignore[arg-type]
            return
        stamps: list[tuple[float, str]] = []
        if self.record_tokens:
            with self.lock:
                self.emitted.append(stamps)
        so_far = ""
        for tok in tokens(text_of(reply.content)):
            if self.token_delay:
                time.sleep(self.token_delay)
            so_far += tok
            if self.record_tokens:
                stamps.append((time.perf_counter(), so_far))
            yield ChatGenerationChunk(message=AIMessageChunk(content=tok))

    # -- accounting ----------------------------------------------------------------

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.emitted.clear()

    def chars(self, start: int = 0) -> dict[str, int]:
        """Characters sent over calls[start:], split into messages and tool definitions."""
        calls = self.calls[start:]
        msg = sum(c["message_chars"] for c in calls)
        tools = sum(c["tool_schema_chars"] for c in calls)
        return {"calls": len(calls), "message_chars": msg, "tool_schema_chars": tools,
                "total_chars": msg + tools}


def register(registry: Any, model: ScriptedModel, name: str = "scripted") -> None:
    """Make `model` selectable by `name` in a product ModelRegistry."""
    from aigis_jupyter.models import ModelInfo

    registry.register(ModelInfo(name=name, provider="scripted", supports_tools=False),
                      lambda: model)
