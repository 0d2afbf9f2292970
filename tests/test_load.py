"""Under 50 concurrent users each message is kept once, in order, unleaked; store sessions bounded.

One real `jupyter server` (a subprocess) runs the extension on a fresh PostgreSQL store,
with `load_users.LoadUsers` (50 users, a token each) and `load_model` (a model that
echoes the question's marker into its SQL and answer) as extra server extensions. Each
user registers a SQLite connection to the demo database, opens a thread on it and asks 20
questions in sequence, each carrying a marker of its own (`MARK-load-07-13`: user 7,
question 13), reading each answer's Server-Sent Events to the end; all 50 users run at
once (one async HTTP client, at most 50 requests in flight).

What must hold:
* no request gets a 5xx (nor any other failure); every stream ends with exactly one `end`,
  as its last event, and carries no `error`;
* every thread holds exactly 20 questions and 20 answers, alternating, in the order asked;
  each answer, its SQL and its result rows carry the marker of their own question and no
  other (from the API and straight from the store's tables);
* each user lists only their own thread and gets 404 for a neighbour's;
* while the load runs, `pg_stat_activity` never shows more sessions on the store's
  database than the server's pools allow: the store engine's `pool_size + max_overflow`
  (`Store.max_connections`, 5 + 10) for its sessions (`application_name` aigis-store), the
  LangGraph checkpointer's pool `max_size` (4) for the rest, 19 in all (both bounds are
  read from the product, not copied here);
* afterwards no session of that database is `idle in transaction`, and no turn lease is
  left in the store;
* the server's log holds no traceback.

Throughput (turns per second), latencies and the peak session count are printed, never
asserted. Smaller runs for a quick look: AIGIS_LOAD_USERS=10 AIGIS_LOAD_MESSAGES=5.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from live_server import free_port, log_tail, stop_server
from load_model import MARKER, MODEL_NAME, marker_sql
from load_users import LOAD_USERS, token_of, user_name

TESTS = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
N_USERS = LOAD_USERS
N_MESSAGES = int(os.environ.get("AIGIS_LOAD_MESSAGES", "20"))
#: Requests the client keeps in flight at most: one per user.
CONCURRENCY = N_USERS
#: Seconds between two samples of `pg_stat_activity`.
SAMPLE_EVERY_S = 0.02
#: Model keys and store settings the server must not take from this environment.
SCRUBBED_ENV = ("OPENAI_API_KEY", "DEEPSEEK_API_KEY", "GOOGLE_API_KEY", "LM_STUDIO_ENDPOINT",
                "AIGIS_DEFAULT_MODEL", "AIGIS_EXTRA_MODELS", "AIGIS_ALLOWED_MODELS",
                "AIGIS_LOCAL_MODEL_PATH", "JUPYTERHUB_API_TOKEN", "JUPYTERHUB_USER",
                "AIGIS_SERVICE_URL")


def _libpq(url: str) -> str:
    """A SQLAlchemy URL as a libpq connection string (for psycopg directly)."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _pool_bound(store_url: str) -> dict[str, int]:
    """The most sessions the server may open on its store: the store engine's pool and the
    checkpointer's pool, as the product builds them for this URL."""
    from aigis_jupyter.agent.checkpoint import open_checkpointer
    from aigis_jupyter.store.db import Store

    store = Store(store_url, migrate=False)  # builds the engine; connects to nothing
    try:
        engine_max = store.max_connections
        assert engine_max and store.engine.pool.size() < engine_max  # type: ignore[attr-defined]
    finally:
        store.dispose()
    saver: Any = open_checkpointer(store_url)  # its tables: the server would create them too
    try:
        saver_max = int(saver.conn.max_size)
    finally:
        saver.close()
    return {"store_engine": engine_max, "checkpointer": saver_max,
            "total": engine_max + saver_max}


class ActivitySampler(threading.Thread):
    """Samples the store database's sessions from `pg_stat_activity` until stopped: all of
    them, and the store engine's own (its `application_name`); the rest are the
    checkpointer's, the only other client of that database.

    Its own connection goes to the admin database, so it never counts itself."""

    def __init__(self, admin_url: str, dbname: str) -> None:
        super().__init__(daemon=True, name="pg-activity-sampler")
        self.admin, self.dbname = _libpq(admin_url), dbname
        self.done = threading.Event()
        self.peak = {"total": 0, "store_engine": 0, "checkpointer": 0}
        self.peak_states: dict[str, int] = {}
        self.samples = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        import psycopg

        from aigis_jupyter.store.db import PG_APPLICATION_NAME

        try:
            with psycopg.connect(self.admin, autocommit=True) as conn:
                while not self.done.is_set():
                    rows = conn.execute(
                        "SELECT application_name = %s, coalesce(state, '?'), count(*) "
                        "FROM pg_stat_activity WHERE datname = %s GROUP BY 1, 2",
                        (PG_APPLICATION_NAME, self.dbname)).fetchall()
                    now = {"total": sum(n for _, _, n in rows),
                           "store_engine": sum(n for store, _, n in rows if store),
                           "checkpointer": sum(n for store, _, n in rows if not store)}
                    self.samples += 1
                    if now["total"] > self.peak["total"]:
                        self.peak_states = {state: n for _, state, n in rows}
                    self.peak = {k: max(v, now[k]) for k, v in self.peak.items()}
                    self.done.wait(SAMPLE_EVERY_S)
        except BaseException as exc:  # reported by the test
            self.error = exc

    def stop(self) -> None:
        self.done.set()
        self.join(10)


def _transactions(admin_url: str, dbname: str) -> int:
    """Transactions committed on the store's database so far (PostgreSQL's statistics)."""
    import psycopg

    with psycopg.connect(_libpq(admin_url), autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute("SELECT xact_commit + xact_rollback FROM pg_stat_database "
                           "WHERE datname = %s", (dbname,)).fetchone()
        return int(row[0]) if row else 0


def _idle_in_transaction(admin_url: str, dbname: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(_libpq(admin_url), autocommit=True) as conn:
        return conn.execute(
            "SELECT pid, state, now() - state_change, left(query, 200) FROM pg_stat_activity "
            "WHERE datname = %s AND state LIKE 'idle in transaction%%'", (dbname,)).fetchall()


@pytest.fixture
def load_server(pg_server: str, pg_db: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The server on a fresh PostgreSQL store, with the load users and the marker model."""
    from sqlalchemy.engine import make_url

    from aigis_jupyter.demo import build_demo_sqlite

    bound = _pool_bound(pg_db)
    dirs = {name: tmp_path / name for name in ("config", "data", "runtime", "root", "aigis")}
    for d in dirs.values():
        d.mkdir()
    (dirs["config"] / "jupyter_server_config.json").write_text(json.dumps(
        {"ServerApp": {"jpserver_extensions": {"aigis_jupyter": True, "load_model": True}}}))
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env.update({
        "JUPYTER_CONFIG_DIR": str(dirs["config"]), "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]), "AIGIS_DATA_DIR": str(dirs["aigis"]),
        "AIGIS_DATABASE_URL": pg_db, "MASTER_ENCRYPTION_KEY": "load-test-master-key",
        "AIGIS_LOAD_USERS": str(N_USERS),
        "PYTHONPATH": os.pathsep.join(p for p in (str(TESTS), env.get("PYTHONPATH")) if p),
    })
    port = free_port()
    args = [str(BIN / "jupyter"), "server", "--no-browser", "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={dirs['root']}",
            "--ServerApp.identity_provider_class=load_users.LoadUsers",
            "--AigisExtension.user_source=jupyter", "--AigisExtension.single_user_admin=False",
            f"--AigisExtension.local_model_path={tmp_path / 'no-model.gguf'}"]
    if os.geteuid() == 0:
        args.append("--allow-root")
    log_path = tmp_path / "server.log"
    url = f"http://127.0.0.1:{port}/"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT,
                                cwd=tmp_path, start_new_session=True)
        try:
            deadline = time.monotonic() + 90
            auth = {"Authorization": f"token {token_of(user_name(0))}"}
            while True:
                if proc.poll() is not None or "error adding extension" in log_path.read_text(
                        errors="replace"):
                    pytest.fail(f"jupyter server failed ({proc.poll()}):\n{log_tail(log_path)}")
                try:
                    req = urllib.request.Request(url + "aigis/models", headers=auth)
                    with urllib.request.urlopen(req, timeout=5) as resp:
                        if any(m["name"] == MODEL_NAME and m["available"]
                               for m in json.loads(resp.read())):
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"the server never offered {MODEL_NAME!r}:\n{log_tail(log_path)}")
                time.sleep(0.3)
            yield {"url": url, "log": log_path, "bound": bound,
                   "dbname": make_url(pg_db).database, "admin": pg_server, "store": pg_db,
                   "demo": str(build_demo_sqlite(tmp_path / "demo.sqlite"))}
        finally:
            stop_server(proc, dirs["runtime"])


# -- the client side ---------------------------------------------------------------------


@dataclass
class Turn:
    marker: str
    status: int
    events: list[dict[str, Any]]
    seconds: float


@dataclass
class UserRun:
    name: str
    thread_id: str = ""
    turns: list[Turn] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _question(marker: str) -> str:
    return f"{marker}: how many regions are there?"


def _sse_events(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in lines if line.startswith("data: ")]


async def _run_user(client: Any, i: int, demo: str, gate: asyncio.Semaphore) -> UserRun:
    """One user: a connection, a thread, then the questions in sequence, each read to `end`."""
    run = UserRun(user_name(i))
    headers = {"Authorization": f"token {token_of(run.name)}"}

    async def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with gate:
            resp = await client.request(method, "aigis/" + path, json=body, headers=headers)
        return resp.status_code, resp.json() if resp.content else None

    status, conn = await call("POST", "connections",
                              {"name": "demo", "db_type": "sqlite", "host": demo})
    if status != 201:
        run.problems.append(f"connection: {status} {conn}")
        return run
    status, thread = await call("POST", "chat/thread",
                                {"connection": conn["id"], "model": MODEL_NAME})
    if status != 201:
        run.problems.append(f"thread: {status} {thread}")
        return run
    run.thread_id = thread["thread_id"]
    for j in range(N_MESSAGES):
        marker = f"MARK-{run.name}-{j:02d}"
        t0 = time.perf_counter()
        async with gate, client.stream("POST", f"aigis/chat/{run.thread_id}/message",
                                       json={"text": _question(marker)},
                                       headers=headers) as resp:
            lines = [line async for line in resp.aiter_lines()]
        turn = Turn(marker, resp.status_code, _sse_events(lines), time.perf_counter() - t0)
        run.turns.append(turn)
        if resp.status_code != 200:
            run.problems.append(f"{marker}: HTTP {resp.status_code} {''.join(lines)[:300]}")
            return run  # a refused turn makes every later check of this thread moot
    return run


async def _load(url: str, demo: str) -> tuple[list[UserRun], float]:
    import httpx

    gate = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    timeout = httpx.Timeout(120.0, connect=30.0, pool=None)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as client:
        t0 = time.perf_counter()
        runs = await asyncio.gather(*(_run_user(client, i, demo, gate) for i in range(N_USERS)))
        return list(runs), time.perf_counter() - t0


async def _read_back(url: str, runs: list[UserRun]) -> dict[str, tuple[Any, Any, int]]:
    """Per user: their thread's messages, their thread list, and the status of a neighbour's
    thread read with their token."""
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=60.0) as client:
        async def one(k: int, run: UserRun) -> tuple[str, tuple[Any, Any, int]]:
            headers = {"Authorization": f"token {token_of(run.name)}"}
            msgs = await client.get(f"aigis/chat/{run.thread_id}", headers=headers)
            threads = await client.get("aigis/chat/threads", headers=headers)
            other = runs[(k + 1) % len(runs)].thread_id
            theirs = await client.get(f"aigis/chat/{other}", headers=headers)
            assert msgs.status_code == threads.status_code == 200, (msgs.text, threads.text)
            return run.name, (msgs.json(), threads.json(), theirs.status_code)

        return dict(await asyncio.gather(*(one(k, r) for k, r in enumerate(runs))))


# -- checks --------------------------------------------------------------------------------


def _stream_problems(turn: Turn) -> list[str]:
    kinds = [e.get("type") for e in turn.events]
    out = []
    if kinds.count("end") != 1 or kinds[-1:] != ["end"]:
        out.append(f"{turn.marker}: the stream did not end with one `end`: {kinds}")
    errors = [e for e in turn.events if e.get("type") == "error"]
    if errors:
        out.append(f"{turn.marker}: error event {errors[0]}")
    answer = "".join(str(e.get("content") or "") for e in turn.events if e.get("type") == "chunk")
    tables = [e for e in turn.events if e.get("type") == "table"]
    seen = set(MARKER.findall(json.dumps(turn.events)))
    if seen != {turn.marker}:
        out.append(f"{turn.marker}: markers in the stream {sorted(seen)}")
    if not answer.startswith(turn.marker) or not tables or tables[0]["rows"][0][0] != turn.marker:
        out.append(f"{turn.marker}: answer {answer!r}, tables {tables}")
    return out


def _thread_problems(run: UserRun, messages: list[dict[str, Any]]) -> list[str]:
    expected: list[tuple[str, str]] = []
    for j in range(N_MESSAGES):
        marker = f"MARK-{run.name}-{j:02d}"
        expected += [("user", marker), ("assistant", marker)]
    got = [(m["role"], (MARKER.findall(m["content"]) or ["-"])[0]) for m in messages]
    if got != expected:
        return [f"{run.name}: messages {got} (expected {len(expected)}, alternating, in order)"]
    out = []
    for m, (role, marker) in zip(messages, expected, strict=True):
        if m["thread_id"] != run.thread_id:
            out.append(f"{run.name}: message {m['id']} belongs to thread {m['thread_id']}")
        carried = set(MARKER.findall(m["content"] + json.dumps(m["payload"])))
        if carried != {marker}:
            out.append(f"{run.name}: message {m['id']} carries {sorted(carried)}, not {marker}")
        if role == "user" and m["content"] != _question(marker):
            out.append(f"{run.name}: question stored as {m['content']!r}")
        if role == "assistant":
            payload = m["payload"] or {}
            table = payload.get("table") or {}
            if (payload.get("sql") != marker_sql(marker) or not table.get("rows")
                    or table["rows"][0][0] != marker):
                out.append(f"{run.name}: answer {m['id']} payload {payload}")
    ids = [m["id"] for m in messages]
    if ids != sorted(set(ids)):
        out.append(f"{run.name}: message ids out of order {ids}")
    return out


def _store_problems(store_url: str, runs: list[UserRun]) -> list[str]:
    """The store's own tables, read directly: every message in its owner's thread, once."""
    import sqlalchemy as sa

    eng = sa.create_engine(store_url, poolclass=sa.pool.NullPool)
    try:
        with eng.connect() as c:
            rows = c.execute(sa.text(
                "SELECT u.username, m.thread_id, m.role, m.content, m.owner_id = t.owner_id "
                "FROM messages m JOIN threads t ON t.id = m.thread_id "
                "JOIN users u ON u.id = t.owner_id ORDER BY m.id")).all()
            leases = c.execute(sa.text("SELECT count(*) FROM turn_leases")).scalar()
    finally:
        eng.dispose()
    threads = {r.thread_id: r.name for r in runs}
    out = [f"{leases} turn lease(s) left behind"] if leases else []
    per_thread: dict[str, list[tuple[str, str]]] = {}
    for username, thread_id, role, content, same_owner in rows:
        if threads.get(thread_id) != username or not same_owner:
            out.append(f"a message of {username} in thread {thread_id} (owner mismatch)")
        per_thread.setdefault(thread_id, []).append((role, content))
    for run in runs:
        stored = per_thread.get(run.thread_id, [])
        questions = [c for role, c in stored if role == "user"]
        wanted = [_question(f"MARK-{run.name}-{j:02d}") for j in range(N_MESSAGES)]
        if questions != wanted or len(stored) != 2 * N_MESSAGES:
            out.append(f"{run.name}: the store holds {len(stored)} messages, questions "
                       f"{[MARKER.findall(q) for q in questions]}")
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def test_many_users_at_once_keep_their_messages_and_the_store_bounded(
        load_server: dict[str, Any]) -> None:
    bound = load_server["bound"]
    sampler = ActivitySampler(load_server["admin"], load_server["dbname"])
    xacts = _transactions(load_server["admin"], load_server["dbname"])
    sampler.start()
    try:
        runs, seconds = asyncio.run(_load(load_server["url"], load_server["demo"]))
    finally:
        sampler.stop()
    xacts = _transactions(load_server["admin"], load_server["dbname"]) - xacts
    turns = [t for r in runs for t in r.turns]
    latencies = [t.seconds for t in turns]
    print(f"\n{N_USERS} users x {N_MESSAGES} questions: {len(turns)} turns in {seconds:.1f} s "
          f"= {len(turns) / seconds:.1f} turns/s; turn latency p50 {_pct(latencies, .5):.2f} s, "
          f"p95 {_pct(latencies, .95):.2f} s, max {max(latencies, default=0):.2f} s, mean "
          f"{statistics.fmean(latencies) if latencies else 0:.2f} s")
    print("store sessions at peak (bound): " + ", ".join(
        f"{k} {sampler.peak[k]} ({bound[k]})" for k in bound)
        + f"; states at the peak {sampler.peak_states}; {sampler.samples} samples")
    print(f"store transactions: {xacts} ({xacts / max(1, len(turns)):.1f} per turn)")

    problems = [p for r in runs for p in r.problems]
    problems += [p for t in turns for p in _stream_problems(t)]
    assert not problems, "\n".join(problems[:30])
    assert len(turns) == N_USERS * N_MESSAGES

    assert sampler.error is None, sampler.error
    assert sampler.samples > 10, "pg_stat_activity was hardly sampled"
    over = {k: (sampler.peak[k], bound[k]) for k in bound if sampler.peak[k] > bound[k]}
    assert not over, f"more sessions on the store than its pools allow (peak, bound): {over}"
    assert sampler.peak["store_engine"] > 0, "the store engine's sessions went unseen"

    back = asyncio.run(_read_back(load_server["url"], runs))
    for run in runs:
        messages, threads, neighbour = back[run.name]
        problems += _thread_problems(run, messages)
        if [t["id"] for t in threads] != [run.thread_id]:
            problems.append(f"{run.name} lists threads {[t['id'] for t in threads]}")
        if neighbour != 404:
            problems.append(f"{run.name} read a neighbour's thread: {neighbour}")
    problems += _store_problems(load_server["store"], runs)
    assert not problems, "\n".join(problems[:30])

    left: list[tuple[Any, ...]] = []
    for _ in range(20):  # a statement that just finished may take a moment to report idle
        left = _idle_in_transaction(load_server["admin"], load_server["dbname"])
        if not left:
            break
        time.sleep(0.25)
    assert not left, f"sessions left idle in transaction: {left}"

    log = load_server["log"].read_text(errors="replace")
    assert "Traceback" not in log and "Uncaught exception" not in log, log_tail(
        load_server["log"], 80)
    assert not re.search(r"\] 5\d\d ", log), [
        line for line in log.splitlines() if re.search(r"\] 5\d\d ", line)][:20]
