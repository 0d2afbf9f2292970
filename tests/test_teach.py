"""Teaching a connection through every door: the core (owner rules, the guard, all or
none), the REST routes, and the notebook's `%aigis verify | examples | notes`.

Real store, real demo database; only the model is scripted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_util import caller, server_config
from test_magics import Recorder, SlowFake
from traitlets.config import Config

from aigis_jupyter.errors import BadInput, Conflict, Forbidden, NotFound, SQLRefused
from aigis_jupyter.models import ModelInfo
from aigis_jupyter.service import AigisService, UserScope
from aigis_jupyter.service.validation import NOTES_MAX
from aigis_jupyter.teach_commands import read_examples

COUNT = "SELECT COUNT(*) AS n FROM customers"


@pytest.fixture
def svc(settings: Any) -> Iterator[AigisService]:
    service = AigisService(settings)
    yield service
    service.close()


@pytest.fixture
def alice(svc: AigisService, tmp_path: Path) -> UserScope:
    scope = svc.user("alice")
    scope.ensure_demo(str(tmp_path / "demo.sqlite"))
    return scope


def scripted(svc: AigisService, *replies: str) -> None:
    from langchain_core.messages import AIMessage

    model = SlowFake(messages=iter([AIMessage(content=r) for r in replies]))
    svc.models.register(ModelInfo(name="scripted", provider="test", supports_tools=False),
                        lambda: model)


def drain(stream: Any) -> list[dict[str, Any]]:
    import asyncio

    async def go() -> list[dict[str, Any]]:
        return [e async for e in stream]

    return asyncio.run(go())


# -- the core ------------------------------------------------------------------------------


def test_teach_list_edit_remove(alice: UserScope) -> None:
    [ex] = alice.add_examples("demo", [{"question": "How many customers?", "sql": COUNT}])
    assert alice.list_examples("demo") == [ex]
    # the same question again (case, spacing, "?" aside) replaces the SQL
    [again] = alice.add_examples("demo", [{"question": "  how many CUSTOMERS ", "sql":
                                           "SELECT COUNT(id) FROM customers"}])
    assert again["id"] == ex["id"] and again["sql"] == "SELECT COUNT(id) FROM customers"
    assert len(alice.list_examples("demo")) == 1
    changed = alice.update_example("demo", ex["id"], {"question": "Number of customers"})
    assert changed["question"] == "Number of customers" and changed["sql"].startswith("SELECT")
    alice.delete_example("demo", ex["id"])
    assert alice.list_examples("demo") == []
    with pytest.raises(NotFound):
        alice.delete_example("demo", ex["id"])


def test_only_read_queries_are_taught_and_a_bad_file_teaches_nothing(alice: UserScope) -> None:
    with pytest.raises(SQLRefused):
        alice.add_examples("demo", [{"question": "wipe", "sql": "DELETE FROM customers"}])
    with pytest.raises(SQLRefused, match="Verified query 2"):
        alice.add_examples("demo", [{"question": "a", "sql": COUNT},
                                    {"question": "b", "sql": "DROP TABLE customers"}])
    with pytest.raises(BadInput, match=r"Verified query 2: .*both"):
        alice.add_examples("demo", [{"question": "a", "sql": COUNT}, {"question": "b"}])
    with pytest.raises(BadInput, match="Unknown"):
        alice.add_examples("demo", [{"question": "a", "sql": COUNT, "answer": 3}])
    assert alice.list_examples("demo") == []  # all or none
    _, b = alice.add_examples("demo", [{"question": "a", "sql": COUNT},
                                       {"question": "b", "sql": COUNT}])
    with pytest.raises(Conflict):
        alice.update_example("demo", b["id"], {"question": "A"})


def test_a_shared_connection_teaches_its_users_and_only_its_owner_teaches_it(
        svc: AigisService, tmp_path: Path) -> None:
    admin = svc.user("root", is_admin=True)
    admin.ensure_demo(str(tmp_path / "shared.sqlite"), name="shared")
    admin.add_examples("shared", [{"question": "How many customers?", "sql": COUNT}])
    admin.grant_connection("shared", user="bob")
    bob = svc.user("bob")
    assert [e["question"] for e in bob.list_examples("shared")] == ["How many customers?"]
    with pytest.raises(Forbidden, match="only its owner"):
        bob.add_examples("shared", [{"question": "x", "sql": COUNT}])
    eid = bob.list_examples("shared")[0]["id"]
    with pytest.raises(Forbidden):
        bob.delete_example("shared", eid)
    # deleting the connection takes its verified queries with it
    admin.delete_connection("shared")
    with svc.store.session() as s:
        from aigis_jupyter.store.models import VerifiedQuery

        assert s.query(VerifiedQuery).count() == 0


def test_notes_are_a_bounded_connection_field(alice: UserScope) -> None:
    info = alice.update_connection("demo", {"notes": "  Revenue means SUM(Invoice.Total).  "})
    assert info["notes"] == "Revenue means SUM(Invoice.Total)."
    assert alice.get_connection("demo")["notes"] == info["notes"]
    with pytest.raises(BadInput, match=f"at most {NOTES_MAX}"):
        alice.update_connection("demo", {"notes": "x" * (NOTES_MAX + 1)})
    assert alice.update_connection("demo", {"notes": ""})["notes"] is None


def test_verify_the_last_answer_then_the_same_question_is_verified(svc: AigisService,
                                                                   alice: UserScope) -> None:
    scripted(svc, COUNT, "There are 59 customers.", "select count(*) as n from customers",
             "59.")
    t = alice.create_thread("t", connection="demo", model="scripted")
    with pytest.raises(NotFound, match="no answered question"):
        alice.verify_turn(t["id"])
    drain(alice.chat(t["id"], "How many customers are there?", chart=False))
    ex = alice.verify_turn(t["id"])
    assert ex["question"] == "How many customers are there?" and ex["sql"] == COUNT
    events = drain(alice.chat(t["id"], "How many customers do we have?", chart=False))
    sql = next(e for e in events if e["type"] == "sql")
    assert sql["verified"] is True
    assert alice.get_messages(t["id"])[-1]["payload"]["verified"] is True


def test_read_examples_from_jsonl_and_yaml(tmp_path: Path) -> None:
    jl = tmp_path / "ex.jsonl"
    jl.write_text('{"question": "a", "sql": "SELECT 1"}\n\n{"question": "b", "sql": "SELECT 2"}\n')
    assert [e["question"] for e in read_examples(jl)] == ["a", "b"]
    yml = tmp_path / "ex.yaml"
    yml.write_text("- question: a\n  sql: SELECT 1\n- question: b\n  sql: |\n    SELECT 2\n")
    assert [e["sql"].strip() for e in read_examples(yml)] == ["SELECT 1", "SELECT 2"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "a", "sql": "SELECT 1"}\nnot json\n')
    with pytest.raises(BadInput, match="line 2"):
        read_examples(bad)
    with pytest.raises(BadInput, match="Cannot read"):
        read_examples(tmp_path / "missing.jsonl")


# -- REST --------------------------------------------------------------------------------------


@pytest.fixture
def jp_server_config(tmp_path: Path, settings: Any) -> Config:
    return server_config(tmp_path / "data", "teach tests")


@pytest.fixture
def call(jp_fetch: Any) -> Any:
    return caller(jp_fetch)


async def test_rest_teach_routes(call: Any, jp_serverapp: Any, tmp_path: Path) -> None:
    service = jp_serverapp.web_app.settings["aigis"].service()
    demo = (await call("alice", "POST", "demo", {})).json["id"]
    made = await call("alice", "POST", f"connections/{demo}/examples",
                      {"question": "How many customers?", "sql": COUNT})
    assert made.status == 201 and made.json["sql"] == COUNT
    again = await call("alice", "POST", f"connections/{demo}/examples",
                       {"question": "how many customers", "sql": COUNT})
    assert again.status == 200 and again.json["id"] == made.json["id"]
    bulk = await call("alice", "POST", f"connections/{demo}/examples/import", {"examples": [
        {"question": "Regions?", "sql": "SELECT name FROM regions"},
        {"question": "Products?", "sql": "SELECT name FROM products"}]})
    assert bulk.status == 201 and len(bulk.json) == 2
    listed = (await call("alice", "GET", f"connections/{demo}/examples")).json
    assert [e["question"] for e in listed] == ["how many customers", "Regions?", "Products?"]
    put = await call("alice", "PUT", f"connections/{demo}/examples/{made.json['id']}",
                     {"sql": "SELECT COUNT(id) FROM customers"})
    assert put.status == 200 and put.json["sql"] == "SELECT COUNT(id) FROM customers"
    refused = await call("alice", "POST", f"connections/{demo}/examples",
                         {"question": "wipe", "sql": "DELETE FROM customers"})
    assert refused.status == 422 and refused.json["reason"] == "sql_refused"
    # another user's connection is 404, never 403
    assert (await call("bob", "GET", f"connections/{demo}/examples")).status == 404
    gone = await call("alice", "DELETE", f"connections/{demo}/examples/{made.json['id']}")
    assert gone.status == 204
    assert len((await call("alice", "GET", f"connections/{demo}/examples")).json) == 2
    # notes through the connection
    noted = await call("alice", "PUT", f"connections/{demo}", {"notes": "Ignore test rows."})
    assert noted.status == 200 and noted.json["notes"] == "Ignore test rows."
    # verify a turn
    scripted(service, COUNT, "There are 59 customers.")
    tid = (await call("alice", "POST", "chat/thread", {"connection": demo,
                                                       "model": "scripted"})).json["id"]
    sse = await call("alice", "POST", f"chat/{tid}/message", {"text": "Customers count?",
                                                              "chart": False})
    events = sse.events()
    assert events[-1]["type"] == "end"
    suggested = [e for e in events if e["type"] == "suggestions"]
    assert suggested and all(isinstance(q, str) for q in suggested[0]["suggestions"])
    verified = await call("alice", "POST", f"chat/{tid}/verify", {})
    assert verified.status == 201 and verified.json["question"] == "Customers count?"


# -- the notebook ---------------------------------------------------------------------------


@pytest.fixture
def nb(svc: AigisService, alice: UserScope) -> Iterator[tuple[Any, Recorder]]:
    from IPython.core.interactiveshell import InteractiveShell

    from aigis_jupyter.magics import AigisMagics

    shell = InteractiveShell.instance()
    rec = Recorder(shell=shell)
    shell.display_pub = rec
    shell.register_magics(AigisMagics(shell=shell, scope=alice))
    yield shell, rec
    InteractiveShell.clear_instance()


def test_magics_verify_examples_and_notes(nb: Any, svc: AigisService, alice: UserScope,
                                          tmp_path: Path, capsys: Any) -> None:
    shell, rec = nb
    scripted(svc, COUNT, "There are 59 customers.", COUNT, "59 customers.")
    assert shell.run_cell("%%aigis --conn demo --model scripted --no-chart\n"
                          "How many customers are there?").error_in_exec is None
    assert shell.run_cell("%aigis verify").error_in_exec is None
    assert "Saved as a verified query" in capsys.readouterr().out
    res = shell.run_cell("%%aigis --no-chart\nHow many customers do we have?")
    assert res.error_in_exec is None
    assert "SQL (verified query)" in rec.records[-1]["data"]["text/html"]
    listed = shell.run_cell("%aigis examples").result
    assert list(listed["question"]) == ["How many customers are there?"]
    f = tmp_path / "more.jsonl"
    f.write_text(json.dumps({"question": "Regions?", "sql": "SELECT name FROM regions"}) + "\n")
    assert shell.run_cell(f"%aigis examples add {f}").error_in_exec is None
    out = tmp_path / "export.jsonl"
    assert shell.run_cell(f"%aigis examples export {out}").error_in_exec is None
    assert [e["question"] for e in read_examples(out)] == ["How many customers are there?",
                                                           "Regions?"]
    assert shell.run_cell("%%aigis notes\nRevenue is SUM(Invoice.Total).").error_in_exec is None
    assert alice.get_connection("demo")["notes"] == "Revenue is SUM(Invoice.Total)."
    capsys.readouterr()
    shell.run_cell("%aigis notes")
    assert "Revenue is SUM(Invoice.Total)." in capsys.readouterr().out
    bad = shell.run_cell('%aigis examples add "wipe" "DELETE FROM customers"')
    assert bad.error_in_exec is not None and "DELETE" not in str(alice.list_examples("demo"))
