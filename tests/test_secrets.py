"""A password goes into the vault and never comes out in clear, end to end.

One real chat turn on a password-protected MariaDB connection, then every place a secret
could leak is searched: API results, events, the prompts the model received, logs, the
store file, the LangGraph checkpoint file and the rendered notebook output.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage

from aigis_jupyter.client import stream_sync
from aigis_jupyter.models import ModelInfo
from aigis_jupyter.rendering import TurnView


class RecordingFake(GenericFakeChatModel):
    """Scripted replies; remembers every message it was sent."""

    seen: list[str] = []

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any):  # type: ignore[override]
        self.seen.extend(str(m.content) for m in messages)
        return super()._generate(messages, *args, **kwargs)


def test_password_never_leaves_the_vault(settings, pets_login, caplog, tmp_path: Path) -> None:
    from aigis_jupyter.service import AigisService

    password = pets_login["password"]
    caplog.set_level(logging.DEBUG)
    svc = AigisService(settings)
    scope = svc.user("alice")
    created = scope.create_connection({"name": "pets", **pets_login}, test=True)
    model = RecordingFake(messages=iter([
        AIMessage("SELECT COUNT(*) AS n FROM pets"), AIMessage("There are 2 pets."),
    ]))
    svc.models.register(ModelInfo(name="scripted", provider="test"), lambda: model)
    tid = scope.create_thread("t", connection="pets", model="scripted")["id"]
    events = list(stream_sync(lambda: scope.chat(tid, "How many pets?")))
    view = TurnView()
    for e in events:
        view.feed(e)
    assert view.table and view.table["rows"] == [[2]], events

    outputs = [
        json.dumps(created), json.dumps(scope.list_connections()),
        json.dumps(scope.get_connection("pets")), json.dumps(events),
        json.dumps(scope.get_messages(tid), default=str), json.dumps(scope.audit_log()),
        json.dumps(scope.thread_state(tid), default=str), view.html(), view.text(),
        "\n".join(model.seen), caplog.text, repr(svc), repr(scope.connection_spec("pets")),
    ]
    svc.close()
    for text in outputs:
        assert password not in text
    assert model.seen, "the model was called"
    files = [p for p in settings.data_dir.rglob("*") if p.is_file()]
    assert any("checkpoints" in p.name for p in files), files
    for p in files:  # store, checkpoints, WAL files, key file
        assert password.encode() not in p.read_bytes(), p
    assert created["has_password"] is True and "password" not in created
