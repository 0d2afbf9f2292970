"""The in-process client (local mode): the service runs inside this process.

The hub's remote client implements the same `ServiceAPI` over HTTP; doors pick one with
`client.connect()` and never construct the service themselves.
"""

from __future__ import annotations

import getpass
import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..service.contract import ServiceAPI
    from ..service.core import AigisService
    from ..settings import Settings

_lock = threading.Lock()
_services: dict[str, AigisService] = {}


def current_username(explicit: str | None = None) -> str:
    """The person this process acts for: as given, else the hub user, else the OS account."""
    return explicit or os.environ.get("JUPYTERHUB_USER") or getpass.getuser()


def local_service(settings: Settings | None = None) -> AigisService:
    """One service per store URL and process: the store and engines are shared, not reopened."""
    from ..service.core import AigisService
    from ..settings import Settings

    settings = settings or Settings.from_env()
    with _lock:
        svc = _services.get(settings.store_url)
        if svc is None:
            svc = _services[settings.store_url] = AigisService(settings)
        return svc


def local_scope(settings: Settings | None = None, username: str | None = None) -> ServiceAPI:
    """The local user's scope; in local mode the one person at the keyboard is the admin."""
    return local_service(settings).user(current_username(username), is_admin=True)
