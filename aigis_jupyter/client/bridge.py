"""Synchronous doors (magics, widgets, CLI) over the asyncio event stream.

`stream_sync` bridges the two through one long-lived event loop thread, so loop-bound
resources (async checkpointers, HTTP clients) are created once and reused across turns.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

_DONE = object()
_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def background_loop() -> asyncio.AbstractEventLoop:
    """A daemon thread running one asyncio loop for every synchronous caller in the process."""
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="aigis-loop", daemon=True).start()
            _loop = loop
        return _loop


def stream_sync(
    make_stream: Callable[[], AsyncIterator[dict[str, Any]]],
    *,
    poll: float = 0.1,
) -> Iterator[dict[str, Any]]:
    """Iterate an async event stream from synchronous code, one event at a time.

    Events are handed over through a queue as soon as the loop produces them, so the caller
    can update a display while the model is still writing. Closing the iterator early (or an
    exception in the caller) cancels the producing task.
    """
    q: queue.Queue[Any] = queue.Queue()

    async def pump() -> None:
        try:
            async for event in make_stream():
                q.put(event)
        except BaseException as exc:  # handed to the caller, re-raised there
            q.put(exc)
        finally:
            q.put(_DONE)

    fut = asyncio.run_coroutine_threadsafe(pump(), background_loop())
    try:
        while True:
            try:
                item = q.get(timeout=poll)
            except queue.Empty:
                continue
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        if not fut.done():
            fut.cancel()


def run_sync(coro: Any, timeout: float | None = None) -> Any:
    """Run one coroutine on the shared loop and wait for its result."""
    return asyncio.run_coroutine_threadsafe(coro, background_loop()).result(timeout)
