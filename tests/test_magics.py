"""The notebook front door, driven through a real IPython InteractiveShell.

The model is scripted (a LangChain fake chat model, the one allowed stand-in); the database,
store, vault, guard and agent are the real ones on a demo SQLite file.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from IPython.core.displaypub import DisplayPublisher
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from aigis_jupyter.models import ModelInfo
from aigis_jupyter.rendering import VEGALITE_MIME

SECRET = "s3cr3t-Pa55word!"


class SlowFake(GenericFakeChatModel):
    """Scripted replies, streamed word by word with a pause, like a real model."""

    delay: float = 0.0

    def _stream(self, *args: Any, **kwargs: Any):  # type: ignore[override]
        for chunk in super()._stream(*args, **kwargs):
            if self.delay:
                time.sleep(self.delay)
            yield chunk


class Recorder(DisplayPublisher):
    """Keeps every display and display update the magic publishes."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.records: list[dict[str, Any]] = []

    def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kw):
        self.records.append({"data": data, "transient": transient or {}, "update": update})

    def all_text(self) -> str:
        return "\n".join(str(r["data"]) for r in self.records)


@pytest.fixture
def demo_db(tmp_path: Path) -> Path:
    from aigis_jupyter.demo import build_demo_sqlite

    return build_demo_sqlite(tmp_path / "demo.sqlite")


@pytest.fixture
def env(settings, demo_db):
    """A shell with the extension loaded on a fresh store, a demo connection and a model slot."""
    from aigis_jupyter.magics import AigisMagics
    from aigis_jupyter.service import AigisService

    svc = AigisService(settings)
    scope = svc.user("alice", is_admin=True)
    scope.create_connection({"name": "demo", "db_type": "sqlite", "host": str(demo_db)})
    shell = InteractiveShell.instance()
    rec = Recorder(shell=shell)
    shell.display_pub = rec
    magics = AigisMagics(shell=shell, scope=scope)
    shell.register_magics(magics)

    def script(*replies: str, delay: float = 0.0) -> None:
        model = SlowFake(messages=iter([AIMessage(content=r) for r in replies]), delay=delay)
        svc.models.register(ModelInfo(name="scripted", provider="test", supports_tools=False),
                            lambda: model)

    yield shell, rec, magics, scope, script
    svc.close()
    InteractiveShell.clear_instance()


def demo_count(path: Path, sql: str) -> Any:
    return sqlite3.connect(path).execute(sql).fetchone()[0]


def test_cell_magic_returns_dataframe_binds_var_and_renders(env, demo_db):
    shell, rec, magics, _scope, script = env
    n = demo_count(demo_db, "SELECT COUNT(*) FROM customers")
    script("SELECT COUNT(*) AS n FROM customers", f"There are {n} customers.")
    res = shell.run_cell(
        "%%aigis --conn demo --model scripted -o df --no-chart\nHow many customers are there?"
    )
    assert res.error_in_exec is None
    df = res.result
    assert int(df.iloc[0, 0]) == n
    assert shell.user_ns["df"] is df
    final = rec.records[-1]["data"]
    assert f"There are {n} customers." in final["text/plain"]
    assert "SELECT COUNT(*)" in final["text/html"] and "<details>" in final["text/html"]
    assert magics.last_sql and "customers" in magics.last_sql


def test_display_updates_while_tokens_stream(env, demo_db):
    shell, rec, _m, _s, script = env
    n = demo_count(demo_db, "SELECT COUNT(*) FROM products")
    parts = ["first", "second", "third", "fourth", "fifth", "sixth"]
    # each sentence is shown once it is complete and checked against the result
    answer = f"There are {n} products. " + " ".join(f"that is the {p} part." for p in parts)
    script("SELECT COUNT(*) FROM products", answer, delay=0.03)
    shell.run_cell("%%aigis --conn demo --model scripted --no-chart\nHow many products?")
    ids = {r["transient"].get("display_id") for r in rec.records if r["update"]}
    assert len(ids) == 1, "one display, updated in place"
    answers = [r["data"]["text/plain"] for r in rec.records if r["update"]]
    partial = [a for a in answers if f"There are {n} products." in a and "sixth" not in a]
    assert len(partial) >= 3, f"expected several partial updates, got {answers}"
    assert answer in answers[-1]


def test_chart_is_native_vegalite(env, demo_db):
    shell, rec, _m, _s, script = env
    script(
        "SELECT c.name AS category, COUNT(*) AS products FROM products p "
        "JOIN categories c ON c.category_id = p.category_id GROUP BY c.name",
        "{}",  # the analyst proposes nothing usable: the recommender draws it
        "Products per category, as a bar chart.",
    )
    shell.run_cell("%%aigis --conn demo --model scripted\nProducts per category as a bar chart")
    charts = [r["data"] for r in rec.records if VEGALITE_MIME in r["data"]]
    assert charts, rec.all_text()
    spec = charts[-1][VEGALITE_MIME]
    assert spec["data"]["values"] and "url" not in spec["data"]


def test_interpolates_notebook_variables(env, demo_db):
    shell, rec, _m, scope, script = env
    script("SELECT COUNT(*) FROM orders", "Counted.")
    shell.user_ns["year"] = 2023
    shell.run_cell("%%aigis --conn demo --model scripted --no-chart\nHow many orders in {year}?")
    msgs = scope.get_messages(scope.list_threads()[0]["id"])
    assert msgs[0]["content"] == "How many orders in 2023?"
    shell.run_cell("%%aigis\nOrders in {nope}?")
    assert "names no notebook variable" in rec.records[-1]["data"]["text/plain"]


@pytest.mark.parametrize(
    ("line", "expect"),
    [
        ("%%aigis --conn demo\nHow many customers?", "model"),  # no model picked yet
        ("%%aigis --conn nowhere --model scripted\nHow many?", "nowhere"),
        ("%%aigis --conn demo --model no-such-model\nHow many?", "no-such-model"),
    ],
)
def test_errors_are_short_messages(env, line, expect):
    shell, rec, _m, _s, script = env
    script("SELECT 1", "one")
    res = shell.run_cell(line)
    assert isinstance(res.error_in_exec, UsageError), "the cell fails, without a traceback"
    assert expect in str(res.error_in_exec)
    out = rec.records[-1]["data"]["text/plain"]
    assert "Error" in out and expect in out and "Traceback" not in out
    assert "POST /" not in out and "%aigis" in out + str(res.error_in_exec)


def test_refused_sql_is_an_error_not_a_write(env, demo_db):
    shell, rec, _m, _s, script = env
    before = demo_count(demo_db, "SELECT COUNT(*) FROM customers")
    script("DELETE FROM customers", "DELETE FROM customers", "DELETE FROM customers", "x")
    # a question the model answers with a write (a plain "delete ..." never reaches it)
    res = shell.run_cell("%%aigis --conn demo --model scripted --no-chart\n"
                         "What if there were no customers?")
    assert res.result is None
    assert "Error" in rec.records[-1]["data"]["text/plain"]
    assert demo_count(demo_db, "SELECT COUNT(*) FROM customers") == before


def test_sql_only_does_not_run(env):
    shell, rec, _magics, scope, script = env
    script("SELECT COUNT(*) FROM customers")
    res = shell.run_cell("%%aigis --conn demo --model scripted --sql-only\nHow many customers?")
    assert res.result is None
    assert "SELECT COUNT(*) FROM customers" in rec.records[-1]["data"]["text/html"]
    assert not [a for a in scope.audit_log() if a.get("status") == "ok"]


def test_line_subcommands(env, capsys, monkeypatch, pg_server):
    shell, rec, _magics, scope, _script = env
    monkeypatch.setattr("aigis_jupyter.commands.getpass", lambda prompt="": SECRET)
    shell.run_cell("%aigis connections add other --type sqlite --host /nonexistent/x.db")
    assert "SQLite file not found" in rec.records[-1]["data"]["text/plain"]
    assert "other" not in [c["name"] for c in scope.list_connections()], "nothing saved"
    shell.run_cell(
        "%aigis connections add pg --type postgres --host 127.0.0.1 --database postgres "
        "--user postgres --password"
    )
    conns = shell.run_cell("%aigis connections list").result
    assert "pg" in list(conns["name"]) and bool(conns.set_index("name").loc["pg", "has_password"])
    models = shell.run_cell("%aigis model list").result
    assert "local" in list(models["name"])
    shell.run_cell("%aigis thread new sales")
    threads = shell.run_cell("%aigis thread list").result
    assert "sales" in list(threads["title"])
    shell.run_cell("%aigis connections remove pg")
    assert "pg" not in [c["name"] for c in scope.list_connections()]
    shell.run_cell("%aigis help")
    shell.run_cell("%aigis bogus")
    out = capsys.readouterr().out
    assert "%%aigis" in out
    assert "Unknown subcommand" in rec.records[-1]["data"]["text/plain"]
    # the password never reaches any output, the store's plain columns or the history
    everything = rec.all_text() + out + str(scope.list_connections())
    assert SECRET not in everything


def test_config_traits(env):
    shell, _rec, magics, _s, _script = env
    shell.run_cell("%config AigisMagics.chart = False")
    assert magics.chart is False


def test_load_ext_is_cheap():
    import subprocess
    import sys

    code = (
        "import sys\nfrom IPython.core.interactiveshell import InteractiveShell\n"
        "sh = InteractiveShell.instance()\nsh.run_line_magic('load_ext', 'aigis_jupyter')\n"
        "heavy = [m for m in ('pandas', 'sqlalchemy', 'langgraph', 'langchain_core') "
        "if m in sys.modules]\nprint(heavy)"
    )
    env = {**os.environ, "AIGIS_PREWARM": "0"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def _fresh_kernel(code: str) -> tuple[str, str]:
    """What `code` prints in a fresh process, the prewarm as shipped (stdout, stderr)."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "AIGIS_PREWARM"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    return out.stdout.strip(), out.stderr


def test_load_ext_prewarms_in_the_background():
    code = (
        "import sys, time\nfrom IPython.core.interactiveshell import InteractiveShell\n"
        "sh = InteractiveShell.instance()\nsh.run_line_magic('load_ext', 'aigis_jupyter')\n"
        "deadline = time.time() + 60\n"
        "while 'aigis_jupyter.agent.graph' not in sys.modules and time.time() < deadline:\n"
        "    time.sleep(0.05)\n"
        "print('aigis_jupyter.agent.graph' in sys.modules)"
    )
    out, err = _fresh_kernel(code)
    assert out.endswith("True"), out + err


def test_a_question_asked_at_once_waits_for_the_prewarm_and_leaves_pandas_for_later():
    """Two importing threads slow each other down: the question waits for the imports it
    needs, and the prewarm then skips pandas (only the returned DataFrame needs it)."""
    code = (
        "import sys, threading\nfrom IPython.core.interactiveshell import InteractiveShell\n"
        "sh = InteractiveShell.instance()\nsh.run_line_magic('load_ext', 'aigis_jupyter')\n"
        "from aigis_jupyter.magics import _prewarm\n_prewarm.question()\n"
        "ready = all(m in sys.modules for m in _prewarm.NEEDED)\n"
        "for t in threading.enumerate():\n"
        "    t.name == 'aigis-prewarm' and t.join(60)\n"
        "print(ready, 'pandas' in sys.modules)"
    )
    out, err = _fresh_kernel(code)
    assert out.endswith("True False"), out + err


def test_chat_widget_streams_answer_table_and_chart(env, demo_db):
    _shell, _rec, _m, scope, script = env
    from aigis_jupyter.widgets import ChatWidget

    n = demo_count(demo_db, "SELECT COUNT(*) FROM regions")
    script(
        "SELECT name, COUNT(*) AS customers FROM regions GROUP BY name",
        "{}",
        f"There are {n} regions.",
        delay=0.01,
    )
    w = ChatWidget(scope)
    w.connection.value = "demo"
    w.model.value = "scripted"
    w.question.value = "Customers per region as a bar chart"
    w.send.click()
    w.wait(30)
    answer_html = w.transcript.children[-2].value
    assert f"There are {n} regions." in answer_html
    assert "<table" in answer_html and "</td>" in answer_html
    charts = w.transcript.children[-1].outputs
    assert charts and VEGALITE_MIME in charts[0]["data"]
    assert not w.send.disabled


def test_one_turn_at_a_time_per_thread(env):
    _shell, _rec, _m, scope, script = env
    from aigis_jupyter.client import stream_sync
    from aigis_jupyter.errors import Conflict

    script("SELECT COUNT(*) FROM customers", "one two three four five six", delay=0.05)
    tid = scope.create_thread("busy", connection="demo", model="scripted")["id"]
    first = stream_sync(lambda: scope.chat(tid, "How many customers?"))
    next(first)  # the first turn is under way
    with pytest.raises(Conflict, match="already running"):
        list(stream_sync(lambda: scope.chat(tid, "And products?")))
    assert list(first)[-1]["type"] == "end"
    assert [m["role"] for m in scope.get_messages(tid)] == ["user", "assistant"]


def test_tab_completion(env):
    _shell, _rec, magics, _scope, _script = env
    from aigis_jupyter.magics import complete

    assert complete(magics, "%aigis con") == ["connections"]
    assert "use" in complete(magics, "%aigis connections ")
    assert complete(magics, "%aigis connections use d") == ["demo"]
    assert "local" in complete(magics, "%aigis model use ")


def test_schema_command_lists_tables_with_rows_and_one_tables_columns(env, demo_db):
    shell, _rec, _m, _scope, _script = env
    shell.run_cell("%aigis connections use demo")
    tables = shell.run_cell("%aigis schema").result
    assert set(tables["table"]) >= {"customers", "orders", "order_items"}
    counts = dict(zip(tables["table"], tables["rows"], strict=True))
    assert counts["customers"] == demo_count(demo_db, "SELECT COUNT(*) FROM customers")
    cols = shell.run_cell("%aigis schema orders").result
    assert "customer_id" in list(cols["column"])
    row = cols.set_index("column").loc["customer_id"]
    assert row["key"] == "FK" and row["references"] == "customers.customer_id"
    res = shell.run_cell("%aigis schema order")
    assert isinstance(res.error_in_exec, UsageError)
    assert "Did you mean orders" in str(res.error_in_exec)


def test_sql_runs_through_the_guard_and_a_write_is_refused(env, demo_db):
    shell, _rec, magics, scope, _script = env
    shell.run_cell("%aigis connections use demo")
    before = demo_count(demo_db, "SELECT COUNT(*) FROM customers")
    res = shell.run_cell("%aigis sql DELETE FROM customers")
    assert isinstance(res.error_in_exec, UsageError)
    assert "Only read queries" in str(res.error_in_exec)
    df = shell.run_cell("%%aigis sql\nSELECT COUNT(*) AS n FROM customers WHERE segment <> 'x'"
                        ).result
    assert int(df.iloc[0, 0]) == before == demo_count(demo_db, "SELECT COUNT(*) FROM customers")
    assert magics.last_sql and "segment <> 'x'" in magics.last_sql  # quotes kept
    statuses = [a["status"] for a in scope.audit_log()]
    assert statuses[:2] == ["ok", "refused"]  # both audited, newest first


def test_no_connection_says_which_command_picks_one(env):
    shell, _rec, _m, _scope, _script = env
    res = shell.run_cell("%aigis schema")
    assert isinstance(res.error_in_exec, UsageError)
    assert "%aigis connections use NAME" in str(res.error_in_exec)


def test_answers_keep_dollar_signs_out_of_math_and_spin_without_emoji(env):
    from aigis_jupyter.rendering import TurnView

    view = TurnView()
    view.feed({"type": "status", "phase": "sql"})
    html = view.html()
    assert "⏳" not in html and "aigis-spinner" in html
    view.feed({"type": "chunk", "content": "Prices run from $49.00 to $6.00."})
    view.feed({"type": "end", "full_response": ""})
    html = view.html()
    assert "$49.00 to $6.00" in html and "tex2jax_ignore" in html and "mathjax_ignore" in html


def test_thread_labels_tell_threads_apart(env):
    _shell, _rec, _m, scope, _script = env
    from aigis_jupyter.widgets import ChatWidget

    for _ in range(3):
        scope.create_thread(title="quickstart", connection="demo")
    scope.create_thread(title="quickstart")
    w = ChatWidget(scope)
    labels = [label for label, _id in w.thread.options]
    assert len(set(labels)) == len(labels) or all("·" in lab for lab in labels)
    assert labels[0].startswith("quickstart · no connection")  # newest first
    assert all(lab.startswith("quickstart · ") for lab in labels)


@pytest.mark.parametrize("flag", ["--user", "--username"])
def test_user_and_username_are_one_option(env, flag, demo_db):
    shell, _rec, _m, scope, _script = env
    shell.run_cell(f"%aigis connections add lite --type sqlite --host {demo_db} {flag} me")
    assert "lite" in [c["name"] for c in scope.list_connections()]


def test_sql_cell_reproduces_an_answer_without_the_model(env, demo_db):
    shell, rec, _m, _scope, _script = env
    res = shell.run_cell("%%aigis sql --conn demo -o seg --chart bar\n"
                         "SELECT segment, COUNT(*) AS n FROM customers GROUP BY segment")
    assert res.error_in_exec is None
    df = shell.user_ns["seg"]
    assert res.result is df and int(df["n"].sum()) == demo_count(
        demo_db, "SELECT COUNT(*) FROM customers")
    charts = [r for r in rec.records if VEGALITE_MIME in r["data"]]
    assert charts and charts[-1]["data"][VEGALITE_MIME]["mark"]["type"] == "bar"
    bad = shell.run_cell("%%aigis sql --conn demo\nDELETE FROM customers")
    assert isinstance(bad.error_in_exec, UsageError)
