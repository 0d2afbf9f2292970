"""`AigisExtension`: one traitlet per `Settings` field, the routes, and the service.

Every operator setting is a `Settings` field (one place); this app only exposes each as a
trait of the same name and help, settable in `jupyter_server_config.py` or as
`--AigisExtension.max_rows=...`. A trait left unset keeps the environment's value (the
original's variables, such as `MASTER_ENCRYPTION_KEY`, keep working).
"""

from __future__ import annotations

import threading
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Dict, Float, Int, List, TraitType, Unicode

from ..settings import Settings

#: How long after the server starts the background warm-up begins (the start stays quick).
WARM_UP_DELAY_S = 2.0


def _trait_for(annotation: str, help_text: str, env: str | None) -> TraitType[Any, Any]:
    """A traitlet for one `Settings` field; None (unset) means: from the environment."""
    help_text = f"{help_text} (default: ${env} or the built-in default)" if env else help_text
    kind = annotation.split("|")[0].strip()
    if kind.startswith("bool"):
        return Bool(None, allow_none=True, help=help_text).tag(config=True)
    if kind.startswith("int"):
        return Int(None, allow_none=True, help=help_text).tag(config=True)
    if kind.startswith("float"):
        return Float(None, allow_none=True, help=help_text).tag(config=True)
    if kind.startswith("list"):
        return List(Unicode(), default_value=None, allow_none=True,
                    help=help_text).tag(config=True)
    if kind.startswith("dict"):
        return Dict(default_value=None, allow_none=True, help=help_text).tag(config=True)
    return Unicode(None, allow_none=True, help=help_text).tag(config=True)


def _settings_traits() -> dict[str, TraitType[Any, Any]]:
    return {name: _trait_for(str(annotation), help_text, env)
            for name, (annotation, help_text, env) in Settings.fields_help().items()}


#: The extension app base with one trait per `Settings` field, built from the dataclass:
#: a new setting becomes a trait with no code here.
_SettingsTraits: type[ExtensionApp] = type(
    "_SettingsTraits", (ExtensionApp,), {"__module__": __name__, **_settings_traits()})


class AigisExtension(_SettingsTraits):  # type: ignore[misc,valid-type]
    """Chat with your databases from Jupyter: the REST + SSE API under `aigis/`."""

    name = "aigis_jupyter"
    load_other_extensions = True
    extension_url = "/aigis/health"

    admin_users = List(
        Unicode(), help="Jupyter user names that are Aigis administrators (may list and "
        "delete users and read everyone's audit log). In JupyterHub the hub's admins are.",
    ).tag(config=True)
    single_user_admin = Bool(
        True, help="On a server without JupyterHub the one person using it is the "
        "administrator of their own store.",
    ).tag(config=True)
    user_source = Unicode(
        "auto", help="Whose rows a request sees. 'os': the account the server runs as (local "
        "mode: the same user as the notebook's kernel). 'jupyter': the user jupyter-server "
        "authenticated. 'auto': 'jupyter' under JupyterHub, else 'os'.",
    ).tag(config=True)
    warm_up = Bool(
        True, help="Import the agent's libraries in the background shortly after the server "
        "starts, so the first question does not wait for them.",
    ).tag(config=True)

    def core_settings(self) -> Settings:
        """`Settings` from the environment, overridden by every trait that was set."""
        overrides: dict[str, Any] = {}
        for name in Settings.fields_help():
            value = getattr(self, name)
            if value is not None:
                overrides[name] = value
        if "data_dir" in overrides or "key_file" in overrides:
            from pathlib import Path

            for key in ("data_dir", "key_file"):
                if overrides.get(key):
                    overrides[key] = Path(overrides[key]).expanduser()
        return Settings.from_env(**overrides)

    def initialize_settings(self) -> None:
        from .state import ServerState

        state = ServerState(self.core_settings, admin_users=set(self.admin_users),
                            single_user_admin=self.single_user_admin,
                            user_source=self.user_source, log=self.log)
        self.settings["aigis"] = state
        from ..client import service_url

        # a hub user's server only forwards to the hub's service: it has no store to warm up
        if self.warm_up and not service_url():
            timer = threading.Timer(WARM_UP_DELAY_S, state.warm_up)
            timer.daemon = True
            timer.start()

    def initialize_handlers(self) -> None:
        self.handlers.extend(url_handlers())


def url_handlers(*, hub_mode: bool | None = None) -> list[tuple[str, type]]:
    """What the extension registers: every route and the OpenAPI document or, on a hub
    user's server (`AIGIS_SERVICE_URL` set), one route forwarding them all to the service."""
    from ..client import service_url
    from .routes import PREFIX, route_table

    if hub_mode if hub_mode is not None else bool(service_url()):
        from .proxy import proxy_routes

        return proxy_routes(PREFIX)
    from .openapi import OpenAPIHandler

    return [*((r.pattern, r.handler) for r in route_table()),
            (PREFIX + "/openapi.json", OpenAPIHandler)]

