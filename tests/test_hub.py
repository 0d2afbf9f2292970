"""Hub mode for real: JupyterHub, its proxy, users' servers and kernels, the Aigis service.

One hub for the module (`hub`): configurable-http-proxy from npm, the dummy authenticator
with a password, the simple local-process spawner, everything on 127.0.0.1. Its config is
`docs/jupyterhub_config.py`, loaded as is, plus what only a test needs (ports, a home
directory for users' servers under the test's temporary directory, the scripted model).
The service's store is a PostgreSQL database of its own, with a login and password that,
with the master key, only the service holds: it reads them from its env file
(`AIGIS_ENV_FILE`), so they pass neither through the hub nor into its database.

The service runs as two replicas on that store behind a small round-robin proxy
(`hub_util.RoundRobin`), which is the URL the hub and the users' servers know: the replica
the hub manages, and a second one the test starts with the first one's environment.

Users act through their own single-user servers: REST at `{hub}/user/NAME/aigis/...` with
a token they made after logging in, and magics in a real kernel started through their
server and driven over its websocket, as JupyterLab does (the kernel is the process whose
environment matters, so it is the real one rather than an imitation of it).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from conftest import missing
from hub_util import (
    LONG_SQL,
    MODEL_NAME,
    KernelClient,
    RoundRobin,
    alive,
    descendants,
    ensure_chp,
    files_holding,
    find_process,
    free_ports,
    login,
    new_token,
    port_open,
    proc_cmdline,
    proc_environ,
    proc_environ_bytes,
    terminate,
    wait_for,
)
from sqlalchemy.pool import NullPool

from aigis_jupyter.client.remote import frame_from_arrow

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parent.parent
DOCS_CONFIG = ROOT / "docs" / "jupyterhub_config.py"
BIN = Path(sys.executable).parent
USERS = ("alice", "bob")  # each with a server and a kernel
OTHERS = ("carol",)  # logs in, never starts a server
ADMIN = "admin"
SERVICE_PREFIX = "/services/aigis/"

TEST_CONFIG = '''\
# The project's example, unchanged, then what only this test adds.
import os

c = get_config()  # noqa: F821
load_subconfig({docs!r})  # noqa: F821

env = os.environ.get
service = c.JupyterHub.services[0]
# The service URL (AIGIS_SERVICE_PORT) is the test's round-robin proxy; the replica the hub
# manages listens on a port of its own, and loads the test's scripted model.
service["command"] = [*service["command"], "--ServerApp.port=" + env("AIGIS_TEST_REPLICA_PORT"),
                      "--ServerApp.jpserver_extensions=hub_util=True"]
service["environment"]["PYTHONPATH"] = env("AIGIS_TEST_PYTHONPATH")
# the service's Jupyter runtime files go beside the hub's, not in the account's home
service["environment"]["JUPYTER_RUNTIME_DIR"] = env("AIGIS_TEST_SERVICE_RUNTIME")
# users' servers start in the test's temporary directory, not /tmp/NAME
c.SimpleLocalProcessSpawner.home_dir_template = env("AIGIS_TEST_HOMES") + "/{{username}}"
'''


# -- the hub ---------------------------------------------------------------------------------

@dataclass
class Hub:
    url: str
    password: str
    master_key: str
    store_url: str
    store_password: str
    data_url: str  # the users' database (superuser URL, for the test's own checks)
    warehouse: dict[str, Any]  # the shared database login: user, password
    hub_dir: Path
    homes: Path
    logs: Path
    proxy: RoundRobin
    replica_ports: tuple[int, int]  # (managed by the hub, started by the test)
    hub_proc: subprocess.Popen[bytes]
    tokens: dict[str, str] = field(default_factory=dict)
    replica: subprocess.Popen[bytes] | None = None
    replica_env: dict[str, str] = field(default_factory=dict)
    replica_argv: list[str] = field(default_factory=list)

    # -- addresses ----------------------------------------------------------------------
    def server(self, name: str) -> str:
        """The user's own single-user server."""
        return f"{self.url}/user/{name}/"

    @property
    def service(self) -> str:
        """The service through the hub's proxy (and the round-robin proxy behind it)."""
        return f"{self.url}{SERVICE_PREFIX}"

    def replica_url(self, which: int) -> str:
        """One replica, straight (0: the hub's, 1: the test's)."""
        return f"http://127.0.0.1:{self.replica_ports[which]}{SERVICE_PREFIX}"

    # -- calls ---------------------------------------------------------------------------
    def call(self, name: str, method: str, path: str, body: Any = None, *,
             base: str | None = None, params: dict[str, str] | None = None,
             ) -> tuple[int, Any]:
        """`name` calls `aigis/PATH` on `base` (default: their own server) with their token."""
        url = (base or self.server(name)) + "aigis/" + path
        resp = httpx.request(method, url, params=params,
                             content=None if body is None else json.dumps(body),
                             headers={"Authorization": f"token {self.tokens[name]}"},
                             timeout=60)
        try:
            data = resp.json() if resp.content else None
        except ValueError:
            data = resp.text
        return resp.status_code, data

    def ok(self, name: str, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        status, data = self.call(name, method, path, body, **kw)
        assert status < 300, f"{name} {method} {path}: {status} {data}"
        return data

    def ask(self, name: str, thread_id: str, text: str, *, base: str | None = None,
            events: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """One chat turn over SSE; its events (appended to `events` as they arrive)."""
        out = [] if events is None else events
        url = (base or self.server(name)) + f"aigis/chat/{thread_id}/message"
        with httpx.stream("POST", url, content=json.dumps({"text": text, "chart": False}),
                          headers={"Authorization": f"token {self.tokens[name]}"},
                          timeout=httpx.Timeout(60, read=None)) as resp:
            if resp.status_code != 200:
                resp.read()
                out.append({"type": "_refused", "status": resp.status_code, **resp.json()})
                return out
            for line in resp.iter_lines():
                if line.startswith("data:"):
                    out.append(json.loads(line[5:]))
        return out

    # -- processes ----------------------------------------------------------------------
    def server_pid(self, name: str) -> int:
        def match(argv: list[str]) -> bool:
            return any(a.endswith("jupyterhub-singleuser") for a in argv)

        for pid in descendants(self.hub_proc.pid):
            try:
                if match(proc_cmdline(pid)) and proc_environ(pid).get("JUPYTERHUB_USER") == name:
                    return pid
            except OSError:
                continue
        raise AssertionError(f"no single-user server process for {name}")

    def service_pid(self) -> int | None:
        """The replica the hub manages, if it runs."""
        return find_process(self.hub_proc.pid,
                            lambda argv: any(a.endswith("aigis-hub-service") for a in argv))

    def start_replica(self) -> None:
        """The second replica: the first one's command and environment, another port."""
        log = open(self.logs / "replica.log", "ab")  # noqa: SIM115 (the process keeps it)
        self.replica = subprocess.Popen(self.replica_argv, env=self.replica_env,
                                        cwd=self.hub_dir, stdout=log, stderr=log,
                                        start_new_session=True)
        log.close()
        wait_for("the second replica answering", lambda: port_open(self.replica_ports[1]),
                 timeout=60, log=self.logs / "replica.log")

    def stop_replica(self) -> None:
        if self.replica is not None and self.replica.poll() is None:
            terminate([self.replica.pid])
            self.replica.wait(10)


def _pg_setup(admin_url: str) -> dict[str, Any]:
    """The service's store (its own login with a password) and the users' database (with a
    read-only login for the shared connection)."""
    tag = uuid.uuid4().hex[:8]
    names = {"store_db": f"aigis_t_store_{tag}", "store_role": f"aigis_t_store_{tag}",
             "data_db": f"aigis_t_data_{tag}", "wh_role": f"aigis_t_wh_{tag}",
             "store_pw": secrets.token_urlsafe(18), "wh_pw": "Wh-" + secrets.token_urlsafe(14)}
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as c:
        c.exec_driver_sql(f"CREATE ROLE {names['store_role']} LOGIN PASSWORD "
                          f"'{names['store_pw']}'")
        c.exec_driver_sql(f"CREATE DATABASE {names['store_db']} OWNER {names['store_role']}")
        c.exec_driver_sql(f"CREATE ROLE {names['wh_role']} LOGIN PASSWORD '{names['wh_pw']}'")
        c.exec_driver_sql(f"CREATE DATABASE {names['data_db']}")
    admin.dispose()
    url = sa.engine.make_url(admin_url)
    data_url = url.set(database=names["data_db"]).render_as_string(hide_password=False)
    data = sa.create_engine(data_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with data.connect() as c:
        c.exec_driver_sql("CREATE TABLE items (id int PRIMARY KEY, name text)")
        c.exec_driver_sql("INSERT INTO items VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        c.exec_driver_sql("CREATE TABLE sales (id int PRIMARY KEY, amount numeric)")
        c.exec_driver_sql("INSERT INTO sales VALUES (1, 10), (2, 32)")
        c.exec_driver_sql(f"GRANT SELECT ON sales TO {names['wh_role']}")
    data.dispose()
    names["data_url"] = data_url
    names["store_url"] = url.set(
        drivername="postgresql+psycopg", username=names["store_role"],
        password=names["store_pw"], database=names["store_db"],
    ).render_as_string(hide_password=False)
    return names


def _pg_teardown(admin_url: str, names: dict[str, Any]) -> None:
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as c:
        for db in ("store_db", "data_db"):
            c.exec_driver_sql(f"DROP DATABASE IF EXISTS {names[db]} WITH (FORCE)")
        for role in ("store_role", "wh_role"):
            c.exec_driver_sql(f"DROP ROLE IF EXISTS {names[role]}")
    admin.dispose()


def _hub_env(**more: str) -> dict[str, str]:
    """The hub's environment: this process's, without any Aigis or Jupyter setting of the
    test run (the hub passes little to users' servers, but nothing should be there to pass)."""
    drop = ("AIGIS_", "MASTER_ENCRYPTION_KEY", "JUPYTER", "JPY_", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **more}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, pg_server: str) -> Iterator[Hub]:
    chp = ensure_chp()
    if chp is None:
        missing("configurable-http-proxy (npm install configurable-http-proxy)")
    for tool in ("jupyterhub", "jupyterhub-singleuser", "aigis-hub-service"):
        if not (BIN / tool).exists():
            missing(f"{tool} in {BIN} (pip install -e '.[hub]')")
    tmp = tmp_path_factory.mktemp("hub")
    hub_dir, homes, logs, private = tmp / "hub", tmp / "homes", tmp / "logs", tmp / "private"
    for d in (hub_dir, homes, logs, private):
        d.mkdir()
    pg = _pg_setup(pg_server)
    hub_port, api_port, proxy_api, rr_port, replica_a, replica_c = free_ports(6)
    proxy = RoundRobin(rr_port, [replica_a, replica_c]).start()
    (hub_dir / "jupyterhub_config.py").write_text(TEST_CONFIG.format(docs=str(DOCS_CONFIG)))
    password = secrets.token_urlsafe(12)
    master_key = "mk-" + secrets.token_urlsafe(24)
    env_file = private / "service.env"  # the service's secrets, as /etc/aigis/service.env
    env_file.touch(mode=0o600)
    env_file.write_text(f"MASTER_ENCRYPTION_KEY={master_key}\n"
                        f"AIGIS_DATABASE_URL={pg['store_url']}\n")
    env = _hub_env(
        AIGIS_HUB_PORT=str(hub_port), AIGIS_HUB_API_PORT=str(api_port),
        AIGIS_HUB_PROXY_API_PORT=str(proxy_api), AIGIS_SERVICE_PORT=str(rr_port),
        AIGIS_CHP=chp, AIGIS_HUB_PASSWORD=password,
        AIGIS_HUB_USERS=",".join(USERS + OTHERS), AIGIS_HUB_ADMINS=ADMIN,
        AIGIS_ENV_FILE=str(env_file), AIGIS_SERVICE_DATA_DIR=str(hub_dir / "aigis-service"),
        AIGIS_TEST_REPLICA_PORT=str(replica_a), AIGIS_TEST_PYTHONPATH=str(ROOT / "tests"),
        AIGIS_TEST_HOMES=str(homes), AIGIS_TEST_SERVICE_RUNTIME=str(hub_dir / "service-runtime"),
    )
    hub_log = logs / "hub.log"
    with open(hub_log, "wb") as log:
        proc = subprocess.Popen([str(BIN / "jupyterhub"), "-f", "jupyterhub_config.py"],
                                cwd=hub_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    h = Hub(url=f"http://127.0.0.1:{hub_port}", password=password, master_key=master_key,
            store_url=pg["store_url"], store_password=pg["store_pw"], data_url=pg["data_url"],
            warehouse={"user": pg["wh_role"], "password": pg["wh_pw"]}, hub_dir=hub_dir,
            homes=homes, logs=logs, proxy=proxy, replica_ports=(replica_a, replica_c),
            hub_proc=proc)
    try:
        wait_for("the hub answering",
                 lambda: proc.poll() is None and httpx.get(h.url + "/hub/api/",
                                                           timeout=2).status_code == 200,
                 timeout=60, log=hub_log)
        for name in (*USERS, *OTHERS, ADMIN):
            session = login(h.url, name, password)
            h.tokens[name] = new_token(session, name)
            session.close()
        for name in USERS:  # as the home page's "Start My Server" does
            resp = httpx.post(f"{h.url}/hub/api/users/{name}/server", timeout=60,
                              headers={"Authorization": f"token {h.tokens[name]}"})
            assert resp.status_code in (201, 202), resp.text
        service_pid = wait_for("the hub starting the service", h.service_pid, log=hub_log)
        wait_for("the hub's replica answering", lambda: port_open(replica_a), log=hub_log)
        h.replica_env = proc_environ(service_pid)
        h.replica_argv = [a if not a.startswith("--ServerApp.port=")
                          else f"--ServerApp.port={replica_c}" for a in proc_cmdline(service_pid)]
        h.start_replica()
        for name in USERS:
            def ready(name: str = name) -> bool:
                resp = httpx.get(f"{h.url}/hub/api/users/{name}", timeout=5,
                                 headers={"Authorization": f"token {h.tokens[name]}"})
                return bool(resp.json()["servers"].get("", {}).get("ready"))

            wait_for(f"{name}'s server", ready, timeout=90, interval=0.5, log=hub_log)
        yield h
    finally:
        h.stop_replica()
        # users' servers, kernels, the proxy, the service: the hub stops what it started,
        # and whatever is left (by its command line, so never a reused pid) is stopped here
        started = [(p, proc_cmdline(p)) for p in descendants(proc.pid) if alive(p)]
        chp_pid = hub_dir / "jupyterhub-proxy.pid"
        if chp_pid.exists() and alive(pid := int(chp_pid.read_text().strip() or 0)):
            started.append((pid, proc_cmdline(pid)))
        terminate([proc.pid], timeout=20)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
        terminate([p for p, argv in started if alive(p) and proc_cmdline(p) == argv])
        proxy.stop()
        _pg_teardown(pg_server, pg)


@pytest.fixture(scope="module")
def kernels(hub: Hub) -> Iterator[dict[str, KernelClient]]:
    """A kernel per user, started through the user's own server, the extension loaded."""
    ks: dict[str, KernelClient] = {}
    try:
        for name in USERS:
            ks[name] = KernelClient(hub.server(name), hub.tokens[name])
        for name, k in ks.items():
            out = k.execute("%load_ext aigis_jupyter\nimport json, os\n"
                            "magics = get_ipython().magics_manager.registry['AigisMagics']")
            assert out["status"] == "ok", (name, out)
        yield ks
    finally:
        for k in ks.values():
            k.shutdown()


def run_cell(k: KernelClient, code: str) -> dict[str, Any]:
    out = k.execute(code)
    assert out["status"] == "ok", json.dumps(out, default=str)[:4000]
    return out


def kernel_json(k: KernelClient, expr: str) -> Any:
    """The value of a Python expression in the kernel, as JSON."""
    out = run_cell(k, f"print(json.dumps({expr}, default=str))")
    return json.loads(out["stdout"].strip().splitlines()[-1])


def pg_connection(hub: Hub, name: str, *, user: str = "postgres",
                  password: str | None = None) -> dict[str, Any]:
    url = sa.engine.make_url(hub.data_url)
    body = {"name": name, "db_type": "postgres", "host": url.host, "port": url.port,
            "database": url.database, "username": user}
    if password:
        body["password"] = password
    return body


def ensure_connection(hub: Hub, name: str, conn: str) -> dict[str, Any]:
    status, data = hub.call(name, "POST", "connections", pg_connection(hub, conn))
    if status == 409:
        return hub.ok(name, "GET", f"connections/{conn}")
    assert status == 201, data
    return data


def new_thread(hub: Hub, name: str, conn: str, **kw: Any) -> str:
    return hub.ok(name, "POST", "chat/thread", {"connection": conn, "model": MODEL_NAME,
                                                "title": f"{name} {conn}"}, **kw)["thread_id"]


def table_value(events: list[dict[str, Any]]) -> Any:
    tables = [e for e in events if e["type"] == "table"]
    assert tables and events[-1]["type"] == "end", events
    return tables[-1]["rows"][0][0]


def snapshot(hub: Hub, name: str, base: str | None = None) -> dict[str, list[tuple[int, str]]]:
    """Every thread of the user and its messages (id, role)."""
    threads = hub.ok(name, "GET", "chat/threads", base=base)
    return {t["id"]: [(m["id"], m["role"]) for m in
                      hub.ok(name, "GET", f"chat/{t['id']}", base=base)] for t in threads}


# -- the tests, in the order a session goes ----------------------------------------------------

def test_each_user_sees_only_their_own(hub: Hub, kernels: dict[str, KernelClient]) -> None:
    """Two users, each through their own server (REST) and kernel (magics): their
    connections and threads are theirs alone, and the other's ids are 404 everywhere."""
    mine: dict[str, dict[str, Any]] = {}
    for name in USERS:
        conn = ensure_connection(hub, name, f"{name}_db")
        tid = new_thread(hub, name, f"{name}_db")
        assert table_value(hub.ask(name, tid, "How many items are there?")) == 3
        k = kernels[name]
        url = sa.engine.make_url(hub.data_url)
        run_cell(k, f"%aigis connections add {name}_k --type postgres --host {url.host} "
                    f"--port {url.port} --database {url.database} --user postgres")
        run_cell(k, f"%aigis thread new {name}-notebook")
        out = run_cell(k, f"%%aigis --conn {name}_k --model {MODEL_NAME} -o df\n"
                          "How many items are there?")
        assert out["error"] is None and kernel_json(k, "int(df.iloc[0, 0])") == 3, out
        ktid = kernel_json(k, "magics._thread_id")
        mine[name] = {"conn": conn["id"], "thread": tid, "kthread": ktid}

    for name, other in (("alice", "bob"), ("bob", "alice")):
        conns = {c["name"] for c in hub.ok(name, "GET", "connections")}
        threads = {t["id"] for t in hub.ok(name, "GET", "chat/threads")}
        assert conns == {f"{name}_db", f"{name}_k"}
        assert threads == {mine[name]["thread"], mine[name]["kthread"]}
        k = kernels[name]  # the kernel sees the same rows: the same user, the same service
        assert set(kernel_json(k, "[c['name'] for c in magics.scope.list_connections()]")) \
            == conns
        assert set(kernel_json(k, "[t['id'] for t in magics.scope.list_threads()]")) == threads

        theirs = mine[other]
        for method, path, body in (
                ("GET", f"connections/{theirs['conn']}", None),
                ("PUT", f"connections/{theirs['conn']}", {"name": "stolen"}),
                ("DELETE", f"connections/{theirs['conn']}", None),
                ("POST", f"connections/{theirs['conn']}/query", {"sql": "SELECT 1"}),
                ("GET", f"connections/{theirs['conn']}/schema", None),
                ("GET", f"chat/{theirs['thread']}", None),
                ("GET", f"chat/{theirs['thread']}/result", None),
                ("GET", f"chat/{theirs['thread']}/state", None),
                ("POST", f"chat/{theirs['thread']}/cancel", {}),
                ("PUT", f"chat/{theirs['thread']}", {"title": "mine now"}),
                ("DELETE", f"chat/{theirs['kthread']}", None),
                ("POST", f"chat/{theirs['thread']}/message", {"text": "How many items?"})):
            status, data = hub.call(name, method, path, body)
            assert status == 404 and data["reason"] == "not_found", (name, method, path, data)
        out = k.execute(f"%%aigis sql --conn {theirs['conn']}\nSELECT 1")
        assert out["status"] == "error" and "You have no connection" in out["error"], out
        out = k.execute(f"magics.scope.get_messages({theirs['thread']!r})")
        assert out["status"] == "error" and out["error"].startswith("NotFound"), out
    # nothing of the other's changed
    for name in USERS:
        assert hub.ok(name, "GET", f"connections/{name}_db")["name"] == f"{name}_db"
        assert len(hub.ok(name, "GET", f"chat/{mine[name]['kthread']}")) == 2


def test_a_shared_connection_works_for_both_without_its_password(
        hub: Hub, kernels: dict[str, KernelClient]) -> None:
    """An admin shares a connection that logs in with a password; both users ask it
    questions (REST and magics) and nothing they can call shows how it logs in."""
    wh = hub.warehouse
    created = hub.ok(ADMIN, "POST", "connections",
                     pg_connection(hub, "warehouse", user=wh["user"], password=wh["password"]),
                     base=hub.service, params={"test": "true"})
    assert created["has_password"] is True
    for name in USERS:
        grants = hub.ok(ADMIN, "POST", f"connections/{created['id']}/grants", {"user": name},
                        base=hub.service)
        assert ("user", name) in {(g["kind"], g["name"]) for g in grants}
    seen: list[Any] = []
    for name in USERS:
        conn = hub.ok(name, "GET", "connections/warehouse")
        assert conn["shared"] is True and conn["id"] == created["id"]
        assert conn["username"] is None and conn["host"] is None and not conn["has_password"]
        res = hub.ok(name, "POST", "connections/warehouse/query",
                     {"sql": "SELECT SUM(amount) AS total FROM sales"})
        assert float(res["rows"][0][0]) == 42
        tid = new_thread(hub, name, "warehouse")
        events = hub.ask(name, tid, "What are the total sales?")
        assert float(table_value(events)) == 42
        k = kernels[name]
        run_cell(k, "%%aigis sql --conn warehouse -o wh\nSELECT SUM(amount) AS total FROM sales")
        assert kernel_json(k, "float(wh.iloc[0, 0])") == 42
        out = run_cell(k, "print(magics.scope.list_connections())")
        seen += [conn, res, events, out, hub.ok(name, "GET", "connections"),
                 hub.ok(name, "GET", "audit"), hub.ok(name, "GET", f"chat/{tid}"),
                 hub.ok(name, "GET", f"chat/{tid}/state")]
        # only its owner changes it or sees whom it is shared with
        for method, path, body in (("PUT", "connections/warehouse", {"name": "mine"}),
                                   ("GET", "connections/warehouse/grants", None),
                                   ("POST", "connections/warehouse/grants", {"user": "carol"}),
                                   ("DELETE", "connections/warehouse", None)):
            status, data = hub.call(name, method, path, body)
            assert status == 403, (name, method, path, data)
    text = json.dumps(seen, default=str)
    assert wh["password"] not in text and wh["user"] not in text
    # and the store keeps the password sealed: no row of any table holds it in clear
    store = sa.create_engine(hub.store_url, poolclass=NullPool)
    with store.connect() as c:
        tables = c.exec_driver_sql("SELECT tablename FROM pg_tables WHERE schemaname = "
                                   "'public'").scalars().all()
        assert "connections" in tables, tables
        for table in tables:
            rows = c.exec_driver_sql(f'SELECT t::text FROM "{table}" t').scalars().all()
            assert not [r for r in rows if wh["password"] in r], table
    store.dispose()


def test_no_secret_reaches_a_user_process_or_file(
        hub: Hub, kernels: dict[str, KernelClient]) -> None:
    """Users' servers and kernels hold the service's URL and their own token, never the
    master key, the store's URL or login, or a shared connection's password; nor does any
    file under their servers' working directories or the hub's (its database included:
    the service reads its secrets from its own env file, never through the hub)."""
    secrets_ = [hub.master_key, hub.store_password, hub.store_url, hub.warehouse["password"]]
    # the control: the service runs on that key and that store
    health = hub.ok("alice", "GET", "health")
    assert health["vault"]["mode"] == "master_key" and health["store"]["backend"] == "postgresql"
    assert sa.engine.make_url(hub.store_url).database in health["store"]["url"]
    assert hub.store_password not in json.dumps(health)
    service = hub.service_pid()
    assert service is not None
    assert proc_environ(service)["AIGIS_ENV_FILE"]
    for pid in (hub.hub_proc.pid, service):  # only a path went through the hub
        assert not [s for s in secrets_ if s.encode() in proc_environ_bytes(pid)]
    checked = []
    for name in USERS:
        server = hub.server_pid(name)
        kernel = kernel_json(kernels[name], "os.getpid()")
        assert kernel in descendants(server)  # the kernel is that server's child
        for pid in (server, kernel):
            env = proc_environ(pid)
            assert env["AIGIS_SERVICE_URL"].endswith(SERVICE_PREFIX)
            assert env["JUPYTERHUB_USER"] == name and env["JUPYTERHUB_API_TOKEN"]
            assert not {"MASTER_ENCRYPTION_KEY", "AIGIS_DATABASE_URL", "AIGIS_KEY_FILE",
                        "AIGIS_ENV_FILE"} & set(env)
            raw = proc_environ_bytes(pid)
            assert not [s for s in secrets_ if s.encode() in raw], (name, pid)
            checked.append(pid)
        # the server and kernel keep no store of their own either
        home = hub.homes / name
        assert home.is_dir()
        assert not [p for p in home.rglob("*") if p.name in ("aigis.sqlite", "master.key")]
    assert len(set(checked)) == 4
    # nor any log: the hub's, the service's and the users' servers' and kernels' (all
    # write to the hub's output here), and the second replica's
    assert (hub.logs / "hub.log").stat().st_size > 0
    leaks = files_holding([hub.homes, hub.hub_dir, hub.logs], secrets_)
    assert leaks == []


def test_the_service_serves_the_aigis_routes_alone(hub: Hub) -> None:
    """The service process holds the secrets, so nothing else of a Jupyter server may be
    reached on it: no kernels, terminals, files or contents (its authorizer), no JupyterLab
    or other extension of the environment (it loads the Aigis extension alone)."""
    tok = {"Authorization": f"token {hub.tokens['alice']}"}
    base = hub.service.rstrip("/")
    assert httpx.get(base + "/aigis/health", headers=tok, timeout=30).status_code == 200
    for method, path in (("POST", "/api/kernels"), ("GET", "/api/kernels"),
                         ("POST", "/api/sessions"), ("POST", "/api/terminals"),
                         ("GET", "/api/contents"), ("GET", "/api/contents/jupyterhub_config.py"),
                         ("GET", "/files/jupyterhub_config.py"), ("GET", "/api/kernelspecs"),
                         ("GET", "/lab"), ("GET", "/lab/api/settings"),
                         ("PUT", "/lab/api/workspaces/x"), ("GET", "/lsp/status")):
        resp = httpx.request(method, base + path, headers=tok, timeout=30,
                             json={} if method in ("POST", "PUT") else None)
        assert resp.status_code in (403, 404), (method, path, resp.status_code, resp.text[:200])


def test_a_browser_session_on_the_service_needs_xsrf(hub: Hub) -> None:
    """A hub login (OAuth cookie) reaches the service; it reads, but it changes nothing
    without the XSRF token (tokens are exempt, cookies are not)."""
    session = login(hub.url, "bob", hub.password)
    try:
        # a page of the service sends the browser through the hub's OAuth and back
        session.get(SERVICE_PREFIX + "files/x", follow_redirects=True)
        assert "service-aigis" in {c.name for c in session.cookies.jar}  # the OAuth cookie
        me = session.get(SERVICE_PREFIX + "aigis/auth/me")
        assert me.status_code == 200 and me.json()["username"] == "bob"
        refused = session.post(SERVICE_PREFIX + "aigis/chat/thread", json={"title": "csrf"})
        assert refused.status_code == 403 and "xsrf" in refused.text.lower()
        xsrf = next(c.value for c in session.cookies.jar
                    if c.name == "_xsrf" and c.path.startswith(SERVICE_PREFIX.rstrip("/")))
        ok = session.post(SERVICE_PREFIX + "aigis/chat/thread", json={"title": "with xsrf"},
                          headers={"X-XSRFToken": xsrf})
        assert ok.status_code == 201, ok.text
    finally:
        session.close()


def test_two_replicas_share_turns(hub: Hub) -> None:
    """A turn started on one replica is seen running, refused a second turn, cancelled
    (its SQL too) and followed by a new turn on the other; the round-robin proxy spreads the
    users' requests over both."""
    name = "alice"
    ensure_connection(hub, name, "alice_db")
    a, c = hub.replica_url(0), hub.replica_url(1)
    tid = new_thread(hub, name, "alice_db", base=a)
    events: list[dict[str, Any]] = []
    turn = threading.Thread(target=hub.ask, args=(name, tid, "Count forever, please"),
                            kwargs={"base": a, "events": events}, daemon=True)
    turn.start()
    data = sa.create_engine(hub.data_url, poolclass=NullPool)

    def long_query_running() -> bool:
        """A statement at work in the users' database (the long one runs as a cursor's
        FETCH), other than this check."""
        with data.connect() as conn:
            return bool(conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state = 'active'").scalar())

    try:
        wait_for("the long query running",
                 lambda: any(e.get("phase") == "executing" for e in events) and
                 long_query_running(), timeout=30)
        assert [e["sql"] for e in events if e["type"] == "sql"] == [LONG_SQL]
        running = {t["id"]: t["running"] for t in hub.ok(name, "GET", "chat/threads", base=c)}
        assert running[tid] is True
        refused = hub.ask(name, tid, "How many items are there?", base=c)
        assert refused[0]["type"] == "_refused" and refused[0]["status"] == 409, refused
        assert hub.ok(name, "POST", f"chat/{tid}/cancel", {}, base=c) == {"cancelled": True}
        turn.join(30)
        assert not turn.is_alive()
        assert events[-1]["type"] == "end"
        assert [e["reason"] for e in events if e["type"] == "error"] == ["cancelled"], events
        wait_for("the long query stopped", lambda: not long_query_running(), timeout=10)
    finally:
        if turn.is_alive():
            hub.call(name, "POST", f"chat/{tid}/cancel", {}, base=a)
            turn.join(30)
        data.dispose()
    # the thread goes on through the other replica, and either one shows all of it
    assert table_value(hub.ask(name, tid, "How many items are there?", base=c)) == 3
    assert not {t["id"]: t["running"] for t in hub.ok(name, "GET", "chat/threads")}[tid]
    roles = [m["role"] for m in hub.ok(name, "GET", f"chat/{tid}", base=a)]
    assert roles == ["user", "assistant", "user", "assistant"]
    page = hub.ok(name, "GET", f"chat/{tid}/result", base=a)
    assert page["rows"] == [[3]]
    assert page["process"].endswith(f":{hub.replica.pid}")  # the test's replica ran it
    # the whole frame (what a kernel fetches) from the replica that did not run it: the
    # stored SQL runs again there
    arrow = httpx.get(a + f"aigis/chat/{tid}/result", timeout=60,
                      headers={"Authorization": f"token {hub.tokens[name]}",
                               "Accept": "application/vnd.apache.arrow.stream"})
    assert arrow.status_code == 200, arrow.text
    df, _ = frame_from_arrow(arrow.content)
    assert df.to_dict("records") == [{"n": 3}]
    # and the users' own path (their server -> round-robin proxy) reaches both replicas
    before = dict(hub.proxy.served)
    for _ in range(6):
        hub.ok(name, "GET", "health")
    after = hub.proxy.served
    assert all(after[p] > before.get(p, 0) for p in hub.replica_ports), after


def test_restarting_the_service_loses_nothing(hub: Hub,
                                              kernels: dict[str, KernelClient]) -> None:
    """Every replica stops: servers answer 503 `service_unavailable` with a retry action,
    kernels say the service is not answering; when it is back, the same servers and kernels
    work on, in the same threads, with every thread and message still there."""
    url = sa.engine.make_url(hub.data_url)
    for name, k in kernels.items():  # a session under way: a thread in the server, one in
        ensure_connection(hub, name, f"{name}_db")  # the notebook
        tid = new_thread(hub, name, f"{name}_db")
        assert table_value(hub.ask(name, tid, "How many items are there?")) == 3
        run_cell(k, f"%aigis thread new restart-{name}")
        run_cell(k, f"%%aigis --conn {name}_db --model {MODEL_NAME} -o before\n"
                    "How many items are there?")
    before = {name: snapshot(hub, name) for name in USERS}
    kernel_threads = {name: kernel_json(k, "magics._thread_id") for name, k in kernels.items()}
    kernel_pids = {name: kernel_json(k, "os.getpid()") for name, k in kernels.items()}
    server_pids = {name: hub.server_pid(name) for name in USERS}

    managed = hub.service_pid()
    assert managed is not None
    # The hub starts its replica again when it next polls (up to 30 s; the last test waits
    # for it); until then the proxy sends nothing there, as a Kubernetes Service skips a pod
    # that is not ready, so "down" lasts exactly as long as this test says.
    hub.proxy.backends = [hub.replica_ports[1]]
    terminate([managed])
    hub.stop_replica()
    for name in USERS:
        for method, path, body in (("GET", "chat/threads", None),
                                   ("POST", "chat/thread", {"title": "down"}),
                                   ("GET", "connections", None)):
            status, data = hub.call(name, method, path, body)
            assert status == 503, (status, data)
            assert data["reason"] == "service_unavailable" and data["action"] == {"kind": "retry"}
            assert "not answering" in data["message"]
        refused = hub.ask(name, next(iter(before[name])), "How many items are there?")
        assert refused[0]["status"] == 503 and refused[0]["reason"] == "service_unavailable"
        out = kernels[name].execute("%aigis thread list")
        assert out["status"] == "error" and "not answering" in out["error"], out
        out = kernels[name].execute("%%aigis\nHow many items are there?")
        assert out["status"] == "error" and "not answering" in out["error"], out

    hub.start_replica()  # back: the same store, so everything is there
    for name, k in kernels.items():
        assert snapshot(hub, name) == before[name]
        assert set(kernel_json(k, "[t['id'] for t in magics.scope.list_threads()]")) \
            == set(before[name])
        run_cell(k, "%%aigis -o again\nHow many items are there?")
        assert kernel_json(k, "int(again.iloc[0, 0])") == 3
        tid = kernel_json(k, "magics._thread_id")
        assert tid == kernel_threads[name]
        assert len(hub.ok(name, "GET", f"chat/{tid}")) == len(before[name][tid]) + 2
        run_cell(k, f"%aigis connections add {name}_after --type postgres --host {url.host} "
                    f"--port {url.port} --database {url.database} --user postgres")
    # nobody restarted anything of theirs: the same server and kernel processes
    assert {n: hub.server_pid(n) for n in USERS} == server_pids
    assert {n: kernel_json(k, "os.getpid()") for n, k in kernels.items()} == kernel_pids


def test_an_admin_lists_and_deletes_a_user(hub: Hub) -> None:
    """The hub's admin lists every user and deletes one with all they own; others may not."""
    carol = "carol"  # a user who calls the service with her own token, no server needed
    me = hub.ok(carol, "GET", "auth/me", base=hub.service)
    assert me["username"] == carol and me["is_admin"] is False
    ensure_connection_via = hub.ok(carol, "POST", "connections",
                                   pg_connection(hub, "carol_db"), base=hub.service)
    new_thread(hub, carol, "carol_db", base=hub.service)

    admin_me = hub.ok(ADMIN, "GET", "auth/me", base=hub.service)
    assert admin_me["is_admin"] is True  # from the hub's admin flag
    users = {u["username"]: u for u in hub.ok(ADMIN, "GET", "auth/users", base=hub.service)}
    assert {"alice", "bob", carol, ADMIN} <= set(users)
    for name in USERS:
        status, data = hub.call(name, "GET", "auth/users")
        assert status == 403, data
        status, _ = hub.call(name, "DELETE", f"auth/users/{users[carol]['id']}")
        assert status == 403
    status, data = hub.call(ADMIN, "DELETE", f"auth/users/{admin_me['id']}", base=hub.service)
    assert status == 400, data  # not yourself

    status, _ = hub.call(ADMIN, "DELETE", f"auth/users/{users[carol]['id']}", base=hub.service)
    assert status == 204
    status, _ = hub.call(ADMIN, "GET", f"auth/users/{users[carol]['id']}", base=hub.service)
    assert status == 404
    assert carol not in {u["username"] for u in hub.ok(ADMIN, "GET", "auth/users",
                                                       base=hub.service)}
    # carol's rows went with her: calling again, she starts empty
    assert hub.ok(carol, "GET", "connections", base=hub.service) == []
    assert hub.ok(carol, "GET", "chat/threads", base=hub.service) == []
    status, _ = hub.call(carol, "GET", f"connections/{ensure_connection_via['id']}",
                         base=hub.service)
    assert status == 404
    assert {c["name"] for c in hub.ok("alice", "GET", "connections")} >= {"alice_db"}


def test_the_hub_restarts_its_replica_with_everything_there(hub: Hub) -> None:
    """The replica stopped in the restart test comes back by the hub's hand (it polls its
    managed services) and serves the same threads and messages; the proxy sends users'
    requests to both replicas again."""
    wait_for("the hub restarting its service replica", lambda: port_open(hub.replica_ports[0]),
             timeout=75, interval=0.5, log=hub.logs / "hub.log")
    a, c = hub.replica_url(0), hub.replica_url(1)
    wait_for("the restarted replica ready",
             lambda: hub.call("alice", "GET", "health", base=a)[0] == 200, timeout=30)
    for name in USERS:
        assert snapshot(hub, name, base=a) == snapshot(hub, name, base=c)
    hub.proxy.backends = list(hub.replica_ports)
    before = dict(hub.proxy.served)
    for _ in range(4):
        hub.ok("alice", "GET", "health")
    assert all(hub.proxy.served[p] > before.get(p, 0) for p in hub.replica_ports)
