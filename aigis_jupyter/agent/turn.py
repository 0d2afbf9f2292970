"""One turn's state and context, and how a turn talks to its model.

`AigisState` is what LangGraph checkpoints per thread (no secrets, no DataFrames);
`TurnContext` is what a turn needs that must not be checkpointed. `call_model` streams a
model call in a worker thread so the event loop stays free and a cancel stops the wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import threading
from dataclasses import dataclass, field
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage, BaseMessage
from langgraph.graph.message import add_messages

from ..errors import AigisError, ModelError, QueryCancelled, action
from ..scrub import scrub
from .deps import AgentDeps

#: Wall-clock limit for one model call, however fast its tokens trickle in.
MODEL_CALL_TIMEOUT_S = 180.0
_KEY_VARS = ("OPENAI_API_KEY", "DEEPSEEK_API_KEY", "GOOGLE_API_KEY")


class AigisState(TypedDict, total=False):
    """Checkpointed per thread. Turn-scoped keys are reset by each new question."""

    messages: Annotated[list[AnyMessage], add_messages]
    model_name: str | None
    db_schema: str | None
    connection: str | None
    sql_result: dict[str, Any] | None
    chart: dict[str, Any] | None
    # turn-scoped
    question: str
    want_chart: bool
    sql_only: bool
    about_schema: bool
    error: dict[str, str] | None


@dataclass
class TurnContext:
    """Everything a turn needs that must not be checkpointed (objects, the DataFrame)."""

    deps: AgentDeps
    model: Any  # BaseChatModel
    info: Any  # ModelInfo
    settings: Any
    thread_id: str
    cancel: Any | None = None
    chart_enabled: bool = True
    callbacks: list[Any] = field(default_factory=list)
    result: Any = None  # the QueryResult of this turn
    chart_title: str | None = None
    secrets: tuple[str, ...] = ()
    schema: Any = None  # the SchemaContext of this turn (context.schema_context)
    snapshot: Any = None  # the connection's SchemaSnapshot
    schema_question: Any = None  # describe.SchemaQuestion when the question is about it

    @property
    def cancelled(self) -> bool:
        return bool(self.cancel is not None and getattr(self.cancel, "cancelled", False))

    def check_cancel(self) -> None:
        if self.cancelled:
            raise QueryCancelled(
                "The question was cancelled; the thread is ready for the next one."
            )

    def scrub(self, text: str) -> str:
        return scrub(text, self.secrets)


def secrets_from_env(registry: Any = None) -> tuple[str, ...]:
    """Key values that must never appear in an event (provider errors sometimes echo them)."""
    names = list(_KEY_VARS)
    settings = getattr(registry, "settings", None)
    for cfg in (getattr(settings, "extra_models", None) or {}).values():
        if cfg.get("api_key_env"):
            names.append(cfg["api_key_env"])
    return tuple(v for n in names if (v := os.environ.get(n)))


# --- talking to the model --------------------------------------------------------------


def text_of(content: Any) -> str:
    """Text of a message chunk; reasoning/thinking blocks of some providers are dropped."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for block in content:
            if isinstance(block, str):
                out.append(block)
            elif isinstance(block, dict) and block.get("type") == "text":
                out.append(str(block.get("text") or ""))
        return "".join(out)
    return str(content or "")


def model_failure(ctx: TurnContext, exc: BaseException) -> ModelError:
    detail = ctx.scrub(" ".join(str(exc).split()))[:300] or type(exc).__name__
    return ModelError(
        f"The model '{ctx.info.name}' failed: {detail}. Try again, or pick another model.",
        action=action("pick_model", choices=[]),
    )


async def call_model(
    ctx: TurnContext,
    messages: list[BaseMessage],
    *,
    node: str,
    stop: list[str] | None = None,
    max_tokens: int | None = None,
    on_text: Any = None,
    timeout_s: float | None = None,
) -> str:
    """Stream one model call in a worker thread; hand each piece of text to `on_text`.

    A thread (rather than the model's async API) keeps loop-bound HTTP clients out of the
    picture and lets a cancel stop the wait at once; the producer notices at its next token.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    halt = threading.Event()
    kwargs: dict[str, Any] = {}
    if stop and ctx.info.prompt_style == "completion":
        kwargs["stop"] = stop
    if max_tokens and ctx.info.provider == "llama_cpp":
        kwargs["max_tokens"] = max_tokens
    config = {
        "callbacks": list(ctx.callbacks),
        "run_name": f"aigis.{node}",
        "tags": ["aigis", node],
        "metadata": {"thread_id": ctx.thread_id, "model": ctx.info.name},
    }

    def put(item: tuple[str, Any]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is listening
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def produce() -> None:
        try:
            for piece in ctx.model.stream(messages, config=config, **kwargs):
                if halt.is_set():
                    break
                text = text_of(getattr(piece, "content", piece))
                if text:
                    put(("text", text))
            put(("done", None))
        except BaseException as exc:
            put(("error", exc))

    worker = contextvars.copy_context()
    loop.run_in_executor(None, worker.run, produce)
    parts: list[str] = []
    deadline = loop.time() + float(timeout_s or MODEL_CALL_TIMEOUT_S)
    try:
        while True:
            try:
                kind, value = await asyncio.wait_for(queue.get(), timeout=0.1)
            except asyncio.TimeoutError:
                ctx.check_cancel()
                if loop.time() > deadline:
                    raise ModelError(
                        f"The model '{ctx.info.name}' did not finish within "
                        f"{timeout_s or MODEL_CALL_TIMEOUT_S:.0f} s. Try again, or pick a faster "
                        "model.", action=action("pick_model", choices=[]),
                    ) from None
                continue
            if kind == "done":
                break
            if kind == "error":
                if isinstance(value, AigisError):
                    raise value
                raise model_failure(ctx, value) from value
            parts.append(value)
            if on_text is not None:
                on_text(value)
            ctx.check_cancel()
    finally:
        halt.set()
    return "".join(parts)
