"""Base (completion) models behind an OpenAI-compatible server, used as chat models.

A base model has no chat template: sent through `/v1/chat/completions`, the server wraps
the prompt in a template the model never learned, and it answers with noise (a blank line,
which ends the answer). Through `/v1/completions` the prompt goes in as written, exactly as
the embedded model gets it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from .local_llm import render_prompt, text_chunks


class CompletionChatModel(BaseChatModel):
    """Messages in, one raw prompt out to a completions endpoint, text streamed back."""

    llm: Any  # a langchain_openai.OpenAI

    @property
    def _llm_type(self) -> str:
        return "openai-completion"

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None,
                **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        yield from text_chunks(self.llm.stream(render_prompt(messages), stop=stop, **kwargs),
                               run_manager)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None,
                  **kwargs: Any) -> ChatResult:
        text = "".join(str(c.message.content)
                       for c in self._stream(messages, stop, run_manager, **kwargs))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])
