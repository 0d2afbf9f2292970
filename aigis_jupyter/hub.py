"""`aigis-hub-service`: the Aigis service of a JupyterHub deployment.

One process the hub manages (`c.JupyterHub.services`). It alone holds the master key and
the shared store's URL (its `environment` in the hub config); users' servers and kernels
reach it over HTTP with their hub tokens. It is a Jupyter server running only the Aigis
extension's routes, so the API is the same as in local mode:

* identity is the hub's: JupyterHub's own identity provider checks the caller's token (or
  OAuth cookie) and its `access:services!service=NAME` scope; the caller's admin flag and
  groups are then read with the service's own token (they decide administrators and which
  shared connections a user sees);
* the authorizer allows the `aigis` resource and nothing else, so the server's contents,
  kernels and terminals are never reachable through the service.

The service keeps no state outside the store (PostgreSQL), so several replicas can run
behind one URL.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

from jupyter_server.auth.authorizer import Authorizer
from jupyterhub.singleuser.extension import JupyterHubIdentityProvider, JupyterHubUser

#: Seconds a user's admin flag and groups are trusted before the hub is asked again.
USER_INFO_TTL_S = 30.0
AUTH_RESOURCE = "aigis"


class HubIdentity(JupyterHubIdentityProvider):
    """The hub's identity, with the user's admin flag and groups as the hub has them now."""

    _seen: dict[str, tuple[float, dict[str, Any]]] = {}

    async def get_user(self, handler: Any) -> Any:
        user = await super().get_user(handler)
        if user is None or getattr(user, "hub_user", {}).get("kind", "user") != "user":
            return user
        user.hub_user.update(await self._details(user.hub_user["name"]))
        return user

    async def _details(self, name: str) -> dict[str, Any]:
        hit = self._seen.get(name)
        if hit and time.monotonic() - hit[0] < USER_INFO_TTL_S:
            return hit[1]
        from jupyterhub.utils import url_path_join
        from tornado.httpclient import AsyncHTTPClient, HTTPRequest

        auth = self.hub_auth
        req = HTTPRequest(url_path_join(auth.api_url, "users", name), method="GET",
                          headers={"Authorization": f"token {auth.api_token}"})
        resp = await AsyncHTTPClient().fetch(req, raise_error=False)
        model = json.loads(resp.body) if resp.code == 200 else {}
        details = {"admin": bool(model.get("admin")), "groups": list(model.get("groups") or [])}
        self._seen[name] = (time.monotonic(), details)
        return details


class ServiceAuthorizer(Authorizer):
    """Only the Aigis routes: the service exposes no files, kernels or terminals."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return resource == AUTH_RESOURCE and isinstance(user, JupyterHubUser)


def service_argv(environ: dict[str, str] | None = None) -> list[str]:
    """The Jupyter server options of the service, from the hub's environment."""
    env = os.environ if environ is None else environ
    url = urlparse(env.get("JUPYTERHUB_SERVICE_URL") or "http://127.0.0.1:10101")
    prefix = env.get("JUPYTERHUB_SERVICE_PREFIX") or "/services/aigis/"
    argv = [f"--ServerApp.ip={url.hostname}", f"--ServerApp.port={url.port or 80}",
            "--ServerApp.port_retries=0", f"--ServerApp.base_url={prefix}",
            "--ServerApp.open_browser=False",
            f"--ServerApp.identity_provider_class={__name__}.HubIdentity",
            f"--ServerApp.authorizer_class={__name__}.ServiceAuthorizer",
            "--AigisExtension.user_source=jupyter", "--AigisExtension.single_user_admin=False"]
    if os.name == "posix" and os.geteuid() == 0:
        argv.append("--allow-root")
    return argv


def main(argv: Sequence[str] | None = None) -> None:
    """Run the service (JupyterHub starts it with the environment it needs)."""
    from jupyter_server.serverapp import ServerApp

    missing = [v for v in ("JUPYTERHUB_API_TOKEN", "JUPYTERHUB_API_URL") if not os.environ.get(v)]
    if missing:
        sys.exit(f"aigis-hub-service runs under JupyterHub (c.JupyterHub.services); "
                 f"{', '.join(missing)} is not set.")
    ServerApp.launch_instance([*service_argv(), *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    main()
