"""What the extension keeps for the life of the server: the service, built on first use,
and who each authenticated Jupyter user is to it."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..service.aio import AsyncScope
    from ..service.core import AigisService
    from ..settings import Settings


class ServerState:
    def __init__(self, settings: Callable[[], Settings], *, admin_users: set[str],
                 single_user_admin: bool, user_source: str, log: logging.Logger) -> None:
        self._settings = settings
        self.admin_users = admin_users
        self.single_user_admin = single_user_admin
        self.user_source = user_source
        self.log = log
        self._lock = threading.Lock()
        self._service: AigisService | None = None

    @property
    def hub(self) -> bool:
        """Running as a JupyterHub single-user server."""
        return bool(os.environ.get("JUPYTERHUB_API_TOKEN") and os.environ.get("JUPYTERHUB_USER"))

    def service(self) -> AigisService:
        """The service, created on first use (it opens the store and may migrate it)."""
        with self._lock:
            if self._service is None:
                from ..service.core import AigisService

                self._service = AigisService(self._settings())
            return self._service

    def warm_up(self) -> None:
        """Build the service and import the agent ahead of the first question."""
        try:
            self.service().warm_up()
        except Exception:  # the first request reports any real problem, with context
            self.log.warning("aigis: warm-up failed", exc_info=True)

    # -- identity ---------------------------------------------------------------------------
    def username(self, user: Any) -> str:
        source = self.user_source
        if source == "auto":
            source = "jupyter" if self.hub else "os"
        if source == "os":
            from ..client.local import current_username

            return current_username()
        return str(getattr(user, "username", None) or user)

    def is_admin(self, user: Any, username: str) -> bool:
        if username in self.admin_users:
            return True
        hub_user = getattr(user, "hub_user", None)
        if isinstance(hub_user, dict) and "admin" in hub_user:
            return bool(hub_user["admin"])
        return self.single_user_admin and not self.hub

    async def scope(self, user: Any) -> AsyncScope:
        """The acting user's async scope, provisioned from the Jupyter identity."""
        from ..service.aio import AsyncScope

        name = self.username(user)
        admin = self.is_admin(user, name)
        hub_user = getattr(user, "hub_user", None)
        groups = list(hub_user.get("groups") or []) if isinstance(hub_user, dict) else []
        service = await asyncio.to_thread(self.service)
        return AsyncScope(await asyncio.to_thread(service.user, name, is_admin=admin,
                                                  groups=groups))

    def close(self) -> None:
        with self._lock:
            if self._service is not None:
                self._service.close()
                self._service = None
