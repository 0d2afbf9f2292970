"""Shared connections: an administrator shares a connection with users or hub groups; they
ask it questions, never see how it logs in, cannot change it, and lose it on revocation."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from aigis_jupyter.errors import BadInput, Forbidden, NotFound
from aigis_jupyter.service.core import AigisService

PASSWORD = "Shared-s3cret!"


@pytest.fixture
def svc(settings: Any) -> Iterator[AigisService]:
    service = AigisService(settings)
    yield service
    service.close()


@pytest.fixture
def shared(svc: AigisService, pg_db: str) -> dict[str, Any]:
    u = sa.engine.make_url(pg_db)
    eng = sa.create_engine(pg_db, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(sa.text("CREATE TABLE sales (id int PRIMARY KEY, amount numeric)"))
        c.execute(sa.text("INSERT INTO sales VALUES (1, 10), (2, 32)"))
    eng.dispose()
    root = svc.user("root", is_admin=True)
    return root.create_connection({"name": "warehouse", "db_type": "postgres", "host": u.host,
                                   "port": u.port, "database": u.database,
                                   "username": u.username, "password": PASSWORD})


@pytest.mark.postgres
def test_a_shared_connection_is_usable_and_its_login_stays_hidden(
        svc: AigisService, shared: dict[str, Any]) -> None:
    root = svc.user("root", is_admin=True)
    grants = root.grant_connection("warehouse", user="bob")
    assert [(g["kind"], g["name"]) for g in grants] == [("user", "bob")]
    root.grant_connection("warehouse", group="analysts")
    bob, carol = svc.user("bob"), svc.user("carol", groups=["analysts"])
    dave = svc.user("dave", groups=["sales"])
    for user in (bob, carol):
        seen = user.get_connection("warehouse")
        assert seen["shared"] is True and seen["id"] == shared["id"]
        assert seen["host"] is None and seen["username"] is None and seen["port"] is None
        assert not seen["has_password"] and seen["options"] == {}
        assert [c["name"] for c in user.list_connections()] == ["warehouse"]
        assert user.run_sql("warehouse", "SELECT SUM(amount) AS total FROM sales"
                            ).df.iloc[0, 0] == 42
        tid = user.create_thread("q", connection="warehouse")["id"]
        assert user.get_thread(tid)["connection_name"] == "warehouse"
        assert PASSWORD not in repr(user.list_connections()) + repr(user.audit_log())
    with pytest.raises(NotFound):
        dave.get_connection("warehouse")
    assert root.get_connection("warehouse")["shared"] is False  # the owner sees it all
    assert root.get_connection("warehouse")["has_password"] is True


@pytest.mark.postgres
def test_only_the_owner_changes_a_shared_connection(svc: AigisService,
                                                    shared: dict[str, Any]) -> None:
    root = svc.user("root", is_admin=True)
    root.grant_connection("warehouse", user="bob")
    bob = svc.user("bob")
    for attempt in (lambda: bob.update_connection("warehouse", {"name": "mine"}),
                    lambda: bob.delete_connection("warehouse"),
                    lambda: bob.connection_grants("warehouse"),
                    lambda: bob.revoke_connection("warehouse", user="bob"),
                    lambda: bob.readonly_role("warehouse")):
        with pytest.raises(Forbidden, match="only its owner"):
            attempt()
    with pytest.raises(Forbidden):  # sharing is for administrators
        bob.grant_connection("warehouse", user="eve")
    assert root.get_connection("warehouse")["name"] == "warehouse"


@pytest.mark.postgres
def test_revoking_takes_effect_on_the_next_question(svc: AigisService,
                                                    shared: dict[str, Any]) -> None:
    root = svc.user("root", is_admin=True)
    root.grant_connection("warehouse", group="analysts")
    carol = svc.user("carol", groups=["analysts"])
    assert carol.run_sql("warehouse", "SELECT 1 AS one").row_count == 1
    root.revoke_connection("warehouse", group="analysts")
    with pytest.raises(NotFound):
        carol.run_sql("warehouse", "SELECT 1 AS one")
    with pytest.raises(NotFound):
        root.revoke_connection("warehouse", group="analysts")
    with pytest.raises(BadInput, match="exactly one"):
        root.grant_connection("warehouse", user="a", group="b")


@pytest.mark.postgres
def test_deleting_a_user_removes_what_was_shared_with_them(svc: AigisService,
                                                           shared: dict[str, Any]) -> None:
    root = svc.user("root", is_admin=True)
    root.grant_connection("warehouse", user="bob")
    bob = svc.user("bob")
    root.delete_user(bob.user_id)
    assert root.connection_grants("warehouse") == []
    assert svc.user("bob").list_connections() == []  # a new bob is not the old one
