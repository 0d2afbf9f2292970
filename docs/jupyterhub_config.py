# A JupyterHub on one machine with the Aigis service: `jupyterhub -f jupyterhub_config.py`.
#
# Only the service process sees the master key and the store's URL: it reads them from
# its env file at start, so they pass through neither this config nor the hub (JupyterHub
# keeps a service's `environment` in its own database). Users' servers and kernels reach
# the service with their own hub tokens. Values come from the environment so that the same
# file serves a demo and the project's own test.
#
#   AIGIS_ENV_FILE   the service's secrets, readable by the hub's account alone (chmod 600):
#                      MASTER_ENCRYPTION_KEY=...   passphrase sealing connection passwords
#                      AIGIS_DATABASE_URL=postgresql+psycopg://aigis:...@127.0.0.1/aigis
#   AIGIS_HUB_USERS  users allowed to log in (comma-separated), AIGIS_HUB_ADMINS admins
import os
import shutil
import sys

c = get_config()  # noqa: F821 (JupyterHub provides it)
env = os.environ.get

# -- the hub -----------------------------------------------------------------------------------
c.JupyterHub.ip = env("AIGIS_HUB_IP", "127.0.0.1")
c.JupyterHub.port = int(env("AIGIS_HUB_PORT", "8000"))
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(env("AIGIS_HUB_API_PORT", "8081"))
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{env('AIGIS_HUB_PROXY_API_PORT', '8001')}"
c.ConfigurableHTTPProxy.command = [env("AIGIS_CHP", shutil.which("configurable-http-proxy")
                                       or "configurable-http-proxy")]
c.JupyterHub.db_url = env("AIGIS_HUB_DB", "sqlite:///jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = env("AIGIS_HUB_COOKIE_SECRET", "jupyterhub_cookie_secret")

# Replace the dummy authenticator (one shared password) with your real one (OAuth, LDAP...).
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = env("AIGIS_HUB_PASSWORD", "change me")
users = {u for u in env("AIGIS_HUB_USERS", "alice,bob").split(",") if u}
admins = {u for u in env("AIGIS_HUB_ADMINS", "admin").split(",") if u}
c.Authenticator.allowed_users = users | admins
c.Authenticator.admin_users = admins

# Every user's server in a local process (as the hub's account: "simple"); use
# LocalProcessSpawner (one system account each), DockerSpawner or KubeSpawner in production.
c.JupyterHub.spawner_class = "simple"
c.Spawner.cmd = [os.path.join(sys.prefix, "bin", "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
if os.geteuid() == 0:  # Jupyter refuses to run as root unless told
    c.Spawner.args = ["--allow-root"]

# -- the Aigis service ---------------------------------------------------------------------------
AIGIS_URL = f"http://127.0.0.1:{env('AIGIS_SERVICE_PORT', '10101')}"
c.JupyterHub.services = [{
    "name": "aigis",
    "url": AIGIS_URL,
    "command": [os.path.join(sys.prefix, "bin", "aigis-hub-service")],
    "environment": {  # no secret here: the service reads them from this file
        "AIGIS_ENV_FILE": env("AIGIS_ENV_FILE", "/etc/aigis/service.env"),
        "AIGIS_DATA_DIR": env("AIGIS_SERVICE_DATA_DIR", "aigis-service"),
    },
    "oauth_no_confirm": True,
}]
c.JupyterHub.load_roles = [
    # users may call the service; their servers' tokens get the same right (below)
    {"name": "user", "scopes": ["self", "access:services!service=aigis"]},
    # the service reads who is an admin and who belongs to which group
    {"name": "aigis-service", "services": ["aigis"], "scopes": ["read:users", "read:groups"]},
]
c.Spawner.server_token_scopes = ["access:servers!server", "users:activity!user",
                                 "access:services!service=aigis"]
# users' servers and kernels find the service here (and nothing else of it)
c.Spawner.environment = {"AIGIS_SERVICE_URL": f"{AIGIS_URL}/services/aigis/"}
