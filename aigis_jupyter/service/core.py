"""`AigisService`: the shared pieces of one process, and the door to each user's scope.

It owns the store, the vault, the engine cache, the model registry, the agent runner and
the process's turns; `AigisService.user(name)` hands out the `UserScope` that acts for
that one user. Heavy parts are built on first use: each costs an import or a key
derivation that not every caller needs.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..errors import Conflict, VaultError
from ..settings import Settings
from . import validation
from .connections import PASSWORD_PURPOSE
from .contract import Health
from .rows import user_info
from .turns import Turns

if TYPE_CHECKING:
    from ..agent.runner import AgentRunner
    from ..databases.engines import ConnectionSpec, EngineCache
    from ..models import ModelRegistry
    from ..store.db import Store
    from ..vault import Vault
    from .scope import UserScope


class AigisService:
    """Shared state of one process: store, vault, engines, models, the agent runner."""

    def __init__(self, settings: Settings | None = None, *, store: Store | None = None) -> None:
        from ..store.db import Store

        self.settings = settings or Settings.from_env()
        self.store = store or Store(self.settings.store_url)
        self.turns = Turns(self)
        self._lock = threading.RLock()
        self._vault: Vault | None = None
        self._engines: EngineCache | None = None
        self._models: ModelRegistry | None = None
        self._runner: AgentRunner | None = None
        self._checked_logins: set[tuple[str, str]] = set()

    def __repr__(self) -> str:
        return f"AigisService(store={self.store.safe_url!r})"

    @property
    def vault(self) -> Vault:
        with self._lock:
            if self._vault is None:
                from ..vault import Vault

                self._vault = Vault.from_settings(self.settings)
            return self._vault

    @property
    def engines(self) -> EngineCache:
        with self._lock:
            if self._engines is None:
                from ..databases.engines import EngineCache

                self._engines = EngineCache()
            return self._engines

    @property
    def models(self) -> ModelRegistry:
        with self._lock:
            if self._models is None:
                from ..models import ModelRegistry

                self._models = ModelRegistry(self.settings)
            return self._models

    def runner(self) -> AgentRunner:
        """The agent runner (built on first chat; LangGraph is heavy to import)."""
        with self._lock:
            if self._runner is None:
                from ..agent.runner import AgentRunner

                self._runner = AgentRunner(registry=self.models,
                                           checkpointer_url_or_saver=self.settings.store_url,
                                           settings=self.settings)
            return self._runner

    def warm_up(self) -> None:
        """Import what a first turn needs and build the agent runner, ahead of the first user.

        A server calls this in a worker thread when it starts. The turn itself never imports
        on the event loop, but initialising C extensions (numpy, pandas, pydantic's schemas)
        holds the interpreter lock even in a worker thread, so doing it before users arrive
        keeps the shared loop responsive from the first question on.
        """
        import importlib

        for name in ("pandas", "sqlalchemy", "sqlglot", "aigis_jupyter.databases.execute",
                     "aigis_jupyter.databases.schema", "aigis_jupyter.charts"):
            importlib.import_module(name)
        _ = self.runner().graph

    def user(self, username: str, *, is_admin: bool | None = None,
             display_name: str | None = None, groups: Iterable[str] = ()) -> UserScope:
        """Get or create the user the door authenticated; returns their scope.

        ``is_admin`` comes from the identity provider (Jupyter / the hub): True or False
        updates the stored flag, None keeps it.
        """
        import sqlalchemy as sa

        from ..store.repo import UserRepo
        from .scope import UserScope

        username = validation.username(username)
        for _attempt in range(2):
            try:
                with self.store.session() as s:
                    repo = UserRepo(s)
                    u = repo.by_username(username)
                    if u is None:
                        u = repo.add(username, display_name=display_name,
                                     is_admin=bool(is_admin))
                    else:
                        changed = False
                        if is_admin is not None and bool(u.is_admin) != is_admin:
                            u.is_admin, changed = is_admin, True
                        if display_name and u.display_name != display_name:
                            u.display_name, changed = display_name, True
                        if changed:
                            u.updated_at = datetime.now(timezone.utc)
                    return UserScope(self, user_info(u), groups)
            except sa.exc.IntegrityError:
                continue  # another process created the same user at the same moment
        raise Conflict(f"Could not create user {username!r}; try again.")

    def health(self) -> Health:
        """Store connectivity, migrations at head, and which key source is configured."""
        store = self.store.health()
        return {"ok": bool(store.get("ok")), "version": __version__, "store": store,
                "vault": {"mode": "master_key" if self.settings.master_keys else "key_file"}}

    def rotate_keys(self) -> int:
        """Re-seal every stored password with the primary key; all rows or none.

        Returns how many rows were re-sealed (rows already on the primary key are left).
        """
        from ..store.repo import UserRepo

        vault = self.vault
        count = 0
        with self.store.session() as s:
            for row in UserRepo(s).all_connections():
                if not row.password_sealed:
                    continue
                try:
                    if not vault.needs_rotation(row.password_sealed):
                        continue
                    row.password_sealed = vault.reseal(row.password_sealed, owner_id=row.owner_id,
                                                       row_id=row.id, purpose=PASSWORD_PURPOSE)
                except VaultError as exc:
                    raise VaultError(f"Nothing was rotated: connection {row.name!r} (id {row.id}) "
                                     f"failed: {exc.message}", reason=exc.reason) from None
                count += 1
        return count

    def check_login(self, spec: ConnectionSpec, test: Callable[..., Any]) -> None:
        """Test a connection's login once per version (`test` raises if it is refused)."""
        key = (spec.id, spec.version)
        if key not in self._checked_logins:
            test(spec, keep_engine=True)
            self._checked_logins.add(key)

    def forget_connection(self, conn_id: str) -> None:
        """Drop everything cached for a connection (engine pool, schema snapshot)."""
        if self._engines is not None:
            self._engines.dispose(conn_id)
        for name in ("schema", "values"):  # what was read from the database, if anything
            cached = sys.modules.get(f"aigis_jupyter.databases.{name}")
            if cached is not None:
                cached.clear_cache(conn_id)

    def forget_thread(self, thread_id: str) -> None:
        """Drop a deleted thread's checkpoints (if the agent ever ran here)."""
        forget = getattr(self._runner, "delete_thread", None)
        if callable(forget):
            forget(thread_id)

    def close(self) -> None:
        if self._engines is not None:
            self._engines.dispose_all()
        closer = getattr(self._runner, "close", None)
        if callable(closer):
            closer()
        self.store.dispose()


