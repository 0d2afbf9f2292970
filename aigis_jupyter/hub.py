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
from collections.abc import MutableMapping, Sequence
from typing import Any
from urllib.parse import urlparse

from jupyter_server.auth.authorizer import Authorizer
from jupyter_server.serverapp import ServerApp
from jupyterhub.singleuser.extension import JupyterHubIdentityProvider, JupyterHubUser

#: Seconds a user's admin flag and groups are trusted before the hub is asked again.
USER_INFO_TTL_S = 30.0
AUTH_RESOURCE = "aigis"
#: The variable naming a file of `NAME=value` lines the service reads at start (the master
#: key, the store's URL). JupyterHub keeps a managed service's `environment` in its own
#: database, so secrets belong in this file (readable by the service's account alone) and
#: only its path in the hub's config.
ENV_FILE_VAR = "AIGIS_ENV_FILE"


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


def load_env_file(path: str, environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Set the variables of an env file (`NAME=value` lines, `#` comments) that the
    environment does not set already; their names. Warns when others may read the file."""
    env = os.environ if environ is None else environ
    mode = os.stat(path).st_mode
    if os.name == "posix" and mode & 0o077:
        print(f"aigis-hub-service: {path} is readable by other accounts; it holds secrets "
              f"(chmod 600 {path})", file=sys.stderr)
    names = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            name, value = (part.strip() for part in line.split("=", 1))
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            if name and name not in env:
                env[name] = value
                names.append(name)
    return names


def merge_argv(defaults: Sequence[str], given: Sequence[str]) -> list[str]:
    """`defaults` without the options that `given` sets again, then `given`: an option
    on the command line wins (traitlets refuses a scalar option given twice). So a replica
    may listen elsewhere than the URL the hub knows (`--ServerApp.ip=0.0.0.0` in a pod, or
    another port behind a load balancer)."""
    def name(arg: str) -> str:
        return arg.split("=", 1)[0]

    seen = {name(a) for a in given if a.startswith("--")}
    return [*(a for a in defaults if name(a) not in seen), *given]


class ServiceApp(ServerApp):
    """A Jupyter server with the Aigis extension alone, checking XSRF once the caller is
    known."""

    def find_server_extensions(self) -> None:
        # Not the extensions enabled in this environment (JupyterLab's settings and workspace
        # routes would answer any hub user, and write in the service account's home): the
        # Aigis extension, and only what the command line or config names explicitly.
        self.jpserver_extensions = {"aigis_jupyter": True, **self.jpserver_extensions}

    def init_webapp(self) -> None:
        super().init_webapp()
        # As jupyterhub-singleuser does: the hub's identity provider puts the hub's XSRF check
        # in place of jupyter-server's, and Tornado would run it before the request is
        # authenticated, refusing every POST made with a token after the first one.
        # jupyter-server still checks XSRF after authentication (tokens are exempt, cookies
        # are not).
        self.web_app.settings["xsrf_cookies"] = False


def main(argv: Sequence[str] | None = None) -> None:
    """Run the service (JupyterHub starts it with the environment it needs)."""
    env_file = os.environ.get(ENV_FILE_VAR)
    if env_file:
        try:
            load_env_file(env_file)
        except OSError as exc:
            sys.exit(f"aigis-hub-service: cannot read {ENV_FILE_VAR}={env_file}: {exc}")
    missing = [v for v in ("JUPYTERHUB_API_TOKEN", "JUPYTERHUB_API_URL") if not os.environ.get(v)]
    if missing:
        sys.exit(f"aigis-hub-service runs under JupyterHub (c.JupyterHub.services); "
                 f"{', '.join(missing)} is not set.")
    ServiceApp.launch_instance(merge_argv(service_argv(),
                                          argv if argv is not None else sys.argv[1:]))


if __name__ == "__main__":
    main()
