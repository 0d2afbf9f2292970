"""A failing model server never breaks a turn's contract or its thread.

Real turns run through `AigisService` on a small SQLite shop, with the model reached over
real HTTP at a scripted OpenAI-compatible server (`fake_openai`), built by the product's
own registry from `LM_STUDIO_ENDPOINT`. Each fault the server can produce (429, 5xx, a
hang, a broken tool call, a body that is not JSON, a stream that never ends or is cut)
must end in a clear `error` then `end` (or in a repaired answer), with bounded retries
where they help, and the same thread must answer the next question with its stored
messages still consistent. The request log of the server is the evidence: how many
attempts were made, and whether the client really hung up.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_openai import FakeOpenAI, Step, cut, endless, hang, not_json, status, tool_call
from server_util import caller, server_config
from traitlets.config import Config

from aigis_jupyter.agent import faults
from aigis_jupyter.service import AigisService, UserScope

MODEL = "qwen3-8b"  # what LM_STUDIO_ENDPOINT makes available
Q1, SQL1, A1 = "How many regions are there?", "SELECT COUNT(*) AS n FROM regions", \
    "There are 4 regions."
Q2, SQL2, A2 = "How many customers are there?", "SELECT COUNT(*) AS n FROM customers", \
    "There are 25 customers."
#: The model timeout of these tests: roomy, so a loaded machine does not look like a hang.
ROOMY_S = 10.0
#: The model timeout where a hang is the point.
SHORT_S = 2.0


# -- fixtures -------------------------------------------------------------------------------

@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, settings: Any) -> Iterator[FakeOpenAI]:
    """The scripted server, as the LM Studio endpoint (after `settings` cleared the env)."""
    with FakeOpenAI() as server:
        monkeypatch.setenv("LM_STUDIO_ENDPOINT", server.root)
        yield server


@pytest.fixture
def timeout_s() -> float:
    return ROOMY_S


@pytest.fixture
def svc(settings: Any, fake: FakeOpenAI, timeout_s: float) -> Iterator[AigisService]:
    # the fixed path: its two calls are the script (the tool loop over HTTP: test_explore)
    service = AigisService(settings.replace(model_timeout_s=timeout_s, agent_tools=False))
    yield service
    service.close()


@pytest.fixture
def alice(svc: AigisService, shop: Path) -> UserScope:
    scope = svc.user("alice")
    scope.create_connection({"name": "shop", "db_type": "sqlite", "host": str(shop)})
    return scope


@pytest.fixture
def tid(alice: UserScope) -> str:
    return alice.create_thread("faults", connection="shop", model=MODEL)["id"]


# -- helpers --------------------------------------------------------------------------------

async def ask(scope: UserScope, thread_id: str, text: str) -> list[dict[str, Any]]:
    return [e async for e in scope.chat(thread_id, text)]


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def failed(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The turn's error event, after checking the contract: `error` then `end`, once each."""
    ks = kinds(events)
    assert ks[-2:] == ["error", "end"], events
    assert ks.count("error") == 1 and ks.count("end") == 1, events
    err = events[-2]
    assert err["reason"] == "model_error" and err["message"].endswith("."), err
    assert "Traceback" not in err["message"] and "File \"" not in err["message"], err
    return err


def answered(events: list[dict[str, Any]], answer: str) -> None:
    assert "error" not in kinds(events), events
    assert kinds(events)[-1] == "end" and events[-1]["full_response"] == answer, events


async def next_turn_works(scope: UserScope, thread_id: str, fake: FakeOpenAI,
                          asked: list[str]) -> None:
    """The same thread answers another question, and its history holds each turn once."""
    fake.script(SQL2, A2)
    answered(await ask(scope, thread_id, Q2), A2)
    asked = [*asked, Q2]
    msgs = scope.get_messages(thread_id)
    assert [m["role"] for m in msgs] == ["user", "assistant"] * len(asked), msgs
    assert [m["content"] for m in msgs if m["role"] == "user"] == asked
    assert msgs[-1]["content"] == A2
    state = scope.thread_state(thread_id)
    humans = [m["content"] for m in state["messages"] if m["role"] == "human"]
    assert humans == asked, state["messages"]
    assert state["sql_result"]["rows"] == [[25]]


def same_request(fake: FakeOpenAI, indexes: range) -> None:
    """The attempts of one call carry the same messages: a retry, not a new question."""
    bodies = [fake.chats()[i].body["messages"] for i in indexes]
    assert all(b == bodies[0] for b in bodies), bodies


# -- the double itself ----------------------------------------------------------------------

def test_the_fake_server_speaks_openai_over_http(settings: Any, fake: FakeOpenAI) -> None:
    """The scripted server answers the product's own client, streamed and not, over HTTP."""
    import openai

    from aigis_jupyter.models import ModelRegistry

    model = ModelRegistry(settings).chat_model(MODEL)
    fake.script("SELECT 1", "Hello there friend", tool_call("nope", "{bad"))
    assert model.invoke("hi").content == "SELECT 1"
    pieces = [p.content for p in model.stream("hi")]
    assert "".join(pieces) == "Hello there friend" and len([p for p in pieces if p]) == 3
    broken = model.invoke("hi")
    assert broken.invalid_tool_calls and broken.invalid_tool_calls[0]["name"] == "nope"
    client = openai.OpenAI(base_url=fake.url, api_key="x", max_retries=0)
    assert [m.id for m in client.models.list()] == [fake.model]
    assert [r.stream for r in fake.chats()] == [False, True, False]
    assert all(r.completed and not r.disconnected for r in fake.requests)


# -- HTTP errors: retried with pauses, then a clear error -----------------------------------

@pytest.mark.parametrize("fault", [status(429, retry_after="0"), status(500), status(503)],
                         ids=["429", "500", "503"])
async def test_a_passing_server_error_is_retried_and_the_turn_succeeds(
        alice: UserScope, tid: str, fake: FakeOpenAI, fault: Step) -> None:
    """Two 429/5xx answers in a row are retried and the question is then answered.

    The retries repeat the same request, each after the previous answer, and use up exactly
    the script."""
    fake.script(fault, fault, SQL1, A1)
    answered(await ask(alice, tid, Q1), A1)
    chats = fake.chats()
    assert [c.step for c in chats] == [f"status {fault.status}"] * 2 + ["reply", "reply"]
    same_request(fake, range(3))
    for before, after in itertools.pairwise(chats):  # one attempt at a time
        assert before.done_at is not None and after.at >= before.done_at
    assert fake.pending == 0


@pytest.mark.parametrize(
    ("fault", "attempts", "said", "kind"),
    [(status(429, retry_after="0"), 3, "rate limiting", "retry"),
     (status(429, retry_after="3600"), 1, "It asks to wait 3600 s", "retry"),
     (status(500), 3, "(HTTP 500) (3 attempts)", "pick_model"),
     (status(502), 3, "(HTTP 502) (3 attempts)", "pick_model"),
     (status(400), 1, "refused the request", "pick_model")],
    ids=["429", "429-long-wait", "500", "502", "400-not-retried"])
async def test_a_lasting_server_error_is_a_clear_error_and_the_thread_goes_on(
        alice: UserScope, tid: str, fake: FakeOpenAI, fault: Step, attempts: int, said: str,
        kind: str) -> None:
    """A lasting 429/5xx ends the turn after bounded attempts with a clear, actionable error.

    A 429 asking to wait longer than is worth it, and a 400, are not retried at all."""
    fake.script(*[fault] * attempts)
    err = failed(await ask(alice, tid, Q1))
    assert said in err["message"] and f"'{MODEL}'" in err["message"], err
    assert err["action"]["kind"] == kind
    assert "pick another model" in err["message"]
    assert len(fake.chats()) == attempts and fake.pending == 0
    same_request(fake, range(attempts))
    await next_turn_works(alice, tid, fake, [Q1])


async def test_an_unreachable_server_is_a_clear_error(
        alice: UserScope, tid: str, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model server refusing connections is a clear error, and the thread recovers after."""
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("LM_STUDIO_ENDPOINT", dead)
    err = failed(await ask(alice, tid, Q1))
    assert "could not be reached (3 attempts)" in err["message"], err
    assert "is running" in err["message"] and err["action"]["kind"] == "pick_model"
    monkeypatch.setenv("LM_STUDIO_ENDPOINT", fake.root)
    await next_turn_works(alice, tid, fake, [Q1])


def test_retry_after_in_each_form_sets_the_pause() -> None:
    """`Retry-After` in seconds, milliseconds or as a date sets the pause; too long: no retry."""
    import email.utils
    import time
    from types import SimpleNamespace

    def rate_limited(**headers: str) -> Exception:
        exc = Exception("Error code: 429 - slow down")
        exc.status_code = 429  # type: ignore[attr-defined]
        exc.response = SimpleNamespace(headers=headers)  # type: ignore[attr-defined]
        return exc

    date = email.utils.formatdate(time.time() + 600, usegmt=True)
    assert faults.classify(rate_limited(**{"retry-after": "3"}), started=False).retry_after == 3
    seen = faults.classify(rate_limited(**{"retry-after-ms": "250"}), started=False)
    assert seen.kind == "rate_limited" and faults.pause_s(seen, 1) == 0.25
    late = faults.classify(rate_limited(**{"retry-after": date}), started=False)
    assert late.retry_after is not None and 500 < late.retry_after <= 600
    assert faults.pause_s(late, 1) is None  # more than is worth waiting inside a question
    plain = faults.classify(rate_limited(), started=False)
    pauses = [faults.pause_s(plain, n) for n in (1, 2, 3, 10)]
    assert all(p is not None for p in pauses)
    assert pauses[0] < pauses[1] < pauses[2] <= pauses[3] <= faults.MAX_PAUSE_S  # type: ignore[operator]


# -- a model that says nothing ----------------------------------------------------------------

@pytest.mark.parametrize("timeout_s", [SHORT_S])
@pytest.mark.parametrize("phase", ["sql", "answer"])
async def test_a_silent_model_times_out_once(alice: UserScope, tid: str, fake: FakeOpenAI,
                                             phase: str, timeout_s: float) -> None:
    """A model silent past `model_timeout_s` fails the turn once, naming the limit, unretried."""
    fake.script(*([SQL1] if phase == "answer" else []), hang(30 * timeout_s))
    events = await ask(alice, tid, Q1)
    err = failed(events)
    assert f"did not answer within {timeout_s:g} s" in err["message"], err
    assert "AIGIS_MODEL_TIMEOUT_S" in err["message"] and err["action"]["kind"] == "pick_model"
    assert [c.step for c in fake.chats()] == ["reply"] * (phase == "answer") + ["hang"]
    assert ("table" in kinds(events)) == (phase == "answer")
    await next_turn_works(alice, tid, fake, [Q1])


# -- replies that cannot be used ----------------------------------------------------------------

@pytest.mark.parametrize(
    ("script", "answer"),
    [([tool_call("ask_database", '{"query": SELECT'), SQL1, A1], A1),
     ([tool_call("drop_everything", '{"table": "regions"}'), SQL1, A1], A1),
     ([SQL1, tool_call("ask_analyst", "{not json")], "The answer is 4 (n).")],
    ids=["bad-arguments", "unknown-tool", "bad-arguments-while-answering"])
async def test_a_malformed_tool_call_is_ignored_and_repaired(
        alice: UserScope, tid: str, fake: FakeOpenAI, script: list[Any], answer: str) -> None:
    """A malformed or unknown tool call is ignored and the turn still answers correctly.

    Writing SQL, the model is asked again; answering, the result is stated plainly."""
    fake.script(*script)
    events = await ask(alice, tid, Q1)
    answered(events, answer)
    assert next(e for e in events if e["type"] == "table")["rows"] == [[4]]
    assert len(fake.chats()) == len(script) and fake.pending == 0
    await next_turn_works(alice, tid, fake, [Q1])


@pytest.mark.parametrize("phase", ["sql", "answer"])
async def test_a_reply_that_is_not_json_is_a_clear_error(
        alice: UserScope, tid: str, fake: FakeOpenAI, phase: str) -> None:
    """A reply that is not JSON fails the turn once with an error saying it was unreadable."""
    fake.script(*([SQL1] if phase == "answer" else []), not_json())
    err = failed(await ask(alice, tid, Q1))
    assert "could not be read" in err["message"] and "OpenAI-compatible" in err["message"]
    assert [c.step for c in fake.chats()][-1] == "not_json" and fake.pending == 0
    await next_turn_works(alice, tid, fake, [Q1])


# -- streams that do not end well ----------------------------------------------------------------

@pytest.mark.parametrize("phase", ["sql", "answer"])
async def test_an_endless_stream_is_cut_and_closed(
        alice: UserScope, tid: str, fake: FakeOpenAI, phase: str) -> None:
    """A never-ending reply is cut at the length bound and its HTTP connection is closed.

    The turn ends with what arrived (kept in the thread) and an error, then `end`."""
    piece = "There are 4 regions and so on. " * 20
    fake.script(*([SQL1] if phase == "answer" else []), endless(piece))
    events = await ask(alice, tid, Q1)
    err = failed(events)
    assert f"cut after {faults.MAX_REPLY_CHARS} characters" in err["message"], err
    endless_call = fake.chats()[-1]
    assert endless_call.step == "endless"
    assert fake.wait_for(lambda: endless_call.disconnected), "the stream was never closed"
    shown = "".join(e["content"] for e in events if e["type"] == "chunk")
    if phase == "answer":  # what arrived is shown and kept, up to the bound
        assert shown.startswith("There are 4 regions")
        assert faults.MAX_REPLY_CHARS < len(shown) <= faults.MAX_REPLY_CHARS + len(piece)
        stored = alice.get_messages(tid)[-1]
        assert stored["content"] == shown and stored["payload"]["error"]["message"] == \
            err["message"]
    else:
        assert shown == "" and "sql" not in kinds(events)
    await next_turn_works(alice, tid, fake, [Q1])


@pytest.mark.parametrize("phase", ["sql", "answer"])
async def test_a_stream_cut_midway(alice: UserScope, tid: str, fake: FakeOpenAI,
                                   phase: str) -> None:
    """A stream dropped mid-reply is retried only while none of it has reached the user.

    Writing SQL it is retried and the turn succeeds. Answering, an unfinished sentence has
    not been shown (each is checked whole first): retried too; once a sentence was shown,
    it is an error keeping the words already shown."""
    if phase == "sql":
        fake.script(cut(SQL1, pieces=2), SQL1, A1)
        answered(await ask(alice, tid, Q1), A1)
        assert [c.step for c in fake.chats()] == ["cut", "reply", "reply"]
        same_request(fake, range(2))
    else:
        fake.script(SQL1, cut("There are 4 regions in all.", pieces=3), A1)
        answered(await ask(alice, tid, Q1), A1)  # "There are 4" never showed: asked again
        assert [c.step for c in fake.chats()] == ["reply", "cut", "reply"]
        fake.script(SQL1, cut("There are 4 regions. They are North, South", pieces=5))
        events = await ask(alice, tid, Q1)
        err = failed(events)
        assert "dropped the connection in the middle of its reply" in err["message"], err
        assert events[-1]["full_response"] == "There are 4 regions."
        assert [c.step for c in fake.chats()][3:] == ["reply", "cut"]  # shown: no retry
    await next_turn_works(alice, tid, fake, [Q1] if phase == "sql" else [Q1, Q1])


async def test_a_cancel_ends_the_pause_between_attempts(
        alice: UserScope, tid: str, fake: FakeOpenAI) -> None:
    """A cancel during the pause before a retry ends the turn with no further attempt."""
    fake.script(status(429, retry_after="15"), SQL1, A1)
    events = []
    async for e in alice.chat(tid, Q1):
        events.append(e)
        if e == {"type": "status", "phase": "sql"}:
            for _ in range(500):  # the first attempt reaches the server (a bound, not a timing)
                if fake.chats():
                    break
                await asyncio.sleep(0.02)
            assert alice.cancel(tid) is True
    assert kinds(events)[-2:] == ["error", "end"] and events[-2]["reason"] == "cancelled"
    assert len(fake.chats()) == 1 and fake.pending == 2
    answered(await ask(alice, tid, Q1), A1)  # the two unused replies answer it now


# -- the REST + SSE door -------------------------------------------------------------------------

@pytest.fixture
def jp_server_config(tmp_path: Path, settings: Any) -> Config:
    return server_config(tmp_path / "data", "fault tests", model_timeout_s=ROOMY_S)


async def test_the_sse_door_ends_a_failed_turn_with_error_then_end(
        jp_fetch: Any, fake: FakeOpenAI, shop: Path) -> None:
    """Over REST + SSE a lasting 503 is an `error` then `end`, and the thread answers next."""
    call = caller(jp_fetch)
    made = await call("alice", "POST", "connections", {"name": "shop", "db_type": "sqlite",
                                                       "host": str(shop)})
    assert made.status == 201
    tid = (await call("alice", "POST", "chat/thread", {"connection": "shop"})).json["id"]
    assert (await call("alice", "POST", f"chat/{tid}/model", {"name": "qwen"})).status == 200
    fake.script(status(503), status(503), status(503))
    reply = await call("alice", "POST", f"chat/{tid}/message", {"text": Q1})
    assert reply.status == 200
    events = reply.events()
    err = failed(events)
    assert "(HTTP 503) (3 attempts)" in err["message"] and len(fake.chats()) == 3
    fake.script(SQL2, A2)
    reply = await call("alice", "POST", f"chat/{tid}/message", {"text": Q2})
    answered(reply.events(), A2)
    msgs = (await call("alice", "GET", f"chat/{tid}")).json
    assert [(m["role"], m["content"]) for m in msgs][::2] == [("user", Q1), ("user", Q2)]
    assert msgs[1]["payload"]["error"]["message"] == err["message"] and msgs[3]["content"] == A2
