"""How doors reach the service: in process (local mode) or, in hub mode, over HTTP.

Both implement `service.contract.ServiceAPI`; `connect()` picks the one this process
should use, and `bridge` lets synchronous doors iterate the asyncio event stream.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from .bridge import background_loop, run_sync, stream_sync
from .local import current_username, local_scope, local_service

if TYPE_CHECKING:
    from ..service.contract import ServiceAPI
    from ..settings import Settings

_lock = threading.Lock()
_remote: dict[tuple[str, str], ServiceAPI] = {}


def service_url() -> str | None:
    """The hub service's root URL when this process is a hub user's (the spawner sets it)."""
    url = os.environ.get("AIGIS_SERVICE_URL")
    return url.rstrip("/") + "/" if url else None


def connect(settings: Settings | None = None, username: str | None = None) -> ServiceAPI:
    """The scope this process acts through: the hub's service with the user's own hub token
    when `AIGIS_SERVICE_URL` is set (no secret ever here), else the in-process service."""
    url = service_url()
    if url is None:
        return local_scope(settings, username)
    token = os.environ.get("AIGIS_SERVICE_TOKEN") or os.environ.get("JUPYTERHUB_API_TOKEN")
    if not token:
        from ..errors import Unauthorized

        raise Unauthorized("AIGIS_SERVICE_URL is set but there is no JUPYTERHUB_API_TOKEN to "
                           "call the service with: start this from a JupyterHub server.")
    from .remote import RemoteScope

    with _lock:
        key = (url, token)
        if key not in _remote:
            _remote[key] = RemoteScope(url + "aigis/", token)
        return _remote[key]


__all__ = ["background_loop", "connect", "current_username", "local_scope", "local_service",
           "run_sync", "service_url", "stream_sync"]
