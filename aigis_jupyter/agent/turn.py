"""One turn's state and context, and how a turn talks to its model.

`AigisState` is what LangGraph checkpoints per thread (no secrets, no DataFrames);
`TurnContext` is what a turn needs that must not be checkpointed. `call_model` streams a
model call in a worker thread so the event loop stays free and a cancel stops the wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import threading
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage, BaseMessage
from langgraph.graph.message import add_messages

from ..errors import AigisError, ModelError, QueryCancelled, action
from ..models import REMOTE_TIMEOUT_S
from ..scrub import scrub
from . import faults
from .deps import AgentDeps

log = logging.getLogger(__name__)

#: Wall-clock limit for one model call, however fast its tokens trickle in (at least twice
#: the model timeout).
MODEL_CALL_TIMEOUT_S = 180.0
#: Seconds past the model timeout after which the turn stops waiting for a client that does
#: not enforce it (the HTTP clients do, and fail first with their own error).
SILENCE_GRACE_S = 2.0
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
    explore: bool  # a model with native tool calling drives this turn (explore.py)
    intent: str  # intent.intent(): "data", or a "change" or "chat" answered without a query
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
    teaching: Any = None  # deps.Teaching: the connection's verified queries and notes
    lessons: Any = None  # prompts.Lessons for this question (examples, notes, value hints)
    values: Any = None  # the connection's databases.values.ValueIndex, when read
    verified: Any = ()  # verified.Verified queries like this question, nearest first
    link: Any = None  # linking.Link: the tables, columns and values the question names
    unsure: list[str] = field(default_factory=list)  # why the chosen query may be wrong
    tool_model: Any = None  # the model with tools bound, when it drives the turn
    dialect: str | None = None
    choices: tuple[str, ...] = ()  # other models available here, offered when this one fails

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

    @property
    def timeout_s(self) -> float:
        """Seconds the model may stay silent (`Settings.model_timeout_s`)."""
        value = getattr(self.settings, "model_timeout_s", None)
        return float(value) if value else REMOTE_TIMEOUT_S


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


class _Failed(Exception):
    """One attempt failed with `fault`; `shown`: words of it had reached the user."""

    def __init__(self, fault: faults.Fault, shown: bool) -> None:
        super().__init__(fault.detail)
        self.fault = fault
        self.shown = shown


async def call_model(
    ctx: TurnContext,
    messages: list[BaseMessage],
    *,
    node: str,
    stop: list[str] | None = None,
    max_tokens: int | None = None,
    on_text: Any = None,
    on_retry: Any = None,
    timeout_s: float | None = None,
    model: Any = None,
    sink: list[Any] | None = None,
) -> str:
    """Stream one model call in a worker thread; hand each piece of text to `on_text`,
    which returns whether anything reached the user (a checked sentence, say).

    A thread (rather than the model's async API) keeps loop-bound HTTP clients out of the
    picture and lets a cancel stop the wait at once; the producer notices at its next token.
    Passing failures are retried with growing pauses (`faults` has the rule); a reply is
    bounded in silence (`Settings.model_timeout_s`), in length (`faults.MAX_REPLY_CHARS`)
    and in total time (`timeout_s`, default the larger of `MODEL_CALL_TIMEOUT_S` and twice
    the model timeout). `model` replaces the turn's (one with tools bound, say); `sink`
    receives the whole reply as one message, tool calls included.
    """
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
    retries = max(0, int(getattr(ctx.settings, "model_retries", faults.RETRIES)))
    attempt = 0
    while True:
        attempt += 1
        try:
            return await _attempt(ctx, model or ctx.model, messages, config, kwargs, on_text,
                                  timeout_s, sink)
        except _Failed as failed:
            fault = replace(failed.fault, detail=ctx.scrub(failed.fault.detail))
            pause = None
            if not failed.shown and attempt <= retries:
                pause = faults.pause_s(fault, attempt)
            if pause is None:
                raise faults.model_error(fault, model=ctx.info.name, attempts=attempt,
                                         timeout_s=ctx.timeout_s,
                                         choices=list(ctx.choices)) from failed.__cause__
            log.info("model %s (%s): %s; retry %d of %d in %.1f s", ctx.info.name, node,
                     fault.kind, attempt, retries, pause)
            await _pause(ctx, pause)
            if on_retry is not None:  # what the failed attempt left unshown is dropped
                on_retry()


async def _pause(ctx: TurnContext, seconds: float) -> None:
    """Wait between two attempts; a cancel ends the wait at once."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while (left := end - loop.time()) > 0:
        ctx.check_cancel()
        await asyncio.sleep(min(0.1, left))
    ctx.check_cancel()


async def _attempt(ctx: TurnContext, model: Any, messages: list[BaseMessage],
                   config: dict[str, Any], kwargs: dict[str, Any], on_text: Any,
                   timeout_s: float | None, sink: list[Any] | None = None) -> str:
    """One model call; its HTTP response is closed however it ends (the server sees it)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    halt = threading.Event()

    def put(item: tuple[str, Any]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is listening
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def produce() -> None:
        stream = None
        whole = None
        try:
            stream = model.stream(messages, config=config, **kwargs)
            for piece in stream:
                if halt.is_set():
                    break
                if sink is not None:
                    whole = piece if whole is None else whole + piece
                elif getattr(piece, "tool_call_chunks", None):
                    put(("tool", None))
                put(("text", text_of(getattr(piece, "content", piece))))
            put(("done", whole))
        except BaseException as exc:
            put(("error", exc))
        finally:  # closing the generator closes the response, mid-stream or not
            close = getattr(stream, "close", None)
            if callable(close):
                with contextlib.suppress(Exception):
                    close()

    worker = contextvars.copy_context()
    loop.run_in_executor(None, worker.run, produce)
    parts: list[str] = []
    size = 0
    started = shown = told = False
    silence = ctx.timeout_s + SILENCE_GRACE_S
    total = float(timeout_s or max(MODEL_CALL_TIMEOUT_S, 2 * ctx.timeout_s))
    deadline = loop.time() + total
    heard = loop.time()
    try:
        while True:
            try:
                kind, value = await asyncio.wait_for(queue.get(), timeout=0.1)
            except asyncio.TimeoutError:
                ctx.check_cancel()
                now = loop.time()
                if now > deadline:
                    raise ModelError(
                        f"The model '{ctx.info.name}' did not finish its reply within "
                        f"{total:g} s. Ask again, or pick a faster model.",
                        action=action("pick_model", choices=list(ctx.choices)),
                    ) from None
                if now - heard > silence:  # a client that does not enforce its timeout
                    raise _Failed(faults.Fault("timeout", detail="no reply"), shown) from None
                continue
            heard = loop.time()
            if kind == "done":
                if sink is not None:
                    sink.append(value)
                break
            if kind == "error":
                if isinstance(value, AigisError):
                    raise value
                raise _Failed(faults.classify(value, started=started), shown) from value
            started = True
            if kind == "tool":
                if not told:  # no tools were offered: a confused model or server
                    log.info("model %s sent a tool call nobody asked for; ignored",
                             ctx.info.name)
                    told = True
                continue
            if not value:
                continue
            parts.append(value)
            size += len(value)
            if on_text is not None and on_text(value):
                shown = True
            if size > faults.MAX_REPLY_CHARS:
                raise faults.too_long(ctx.info.name, faults.MAX_REPLY_CHARS, list(ctx.choices))
            ctx.check_cancel()
    finally:
        halt.set()
    return "".join(parts)
