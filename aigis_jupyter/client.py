"""The door front ends use to reach the service: in-process (local mode) for now.

Front doors are synchronous (magics, widgets, CLI) while the agent streams with asyncio;
`stream_sync` bridges the two through one long-lived event loop thread, so loop-bound
resources (async checkpointers, HTTP clients) are created once and reused across turns.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .service import AigisService, UserScope
    from .settings import Settings

_DONE = object()
_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_services: dict[str, AigisService] = {}


def current_username() -> str:
    """The person this process acts for: the hub user if any, else the OS account."""
    return os.environ.get("JUPYTERHUB_USER") or getpass.getuser()


def local_service(settings: Settings | None = None) -> AigisService:
    """One service per store URL and process: the store and engines are shared, not reopened."""
    from .service import AigisService
    from .settings import Settings

    settings = settings or Settings.from_env()
    with _lock:
        svc = _services.get(settings.store_url)
        if svc is None:
            svc = _services[settings.store_url] = AigisService(settings)
        return svc


def local_scope(settings: Settings | None = None, username: str | None = None) -> UserScope:
    """The local user's scope; in local mode the one person at the keyboard is the admin."""
    return local_service(settings).user(username or current_username(), is_admin=True)


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
