"""Owner-scoped queries: the one place that reads and writes user-owned rows.

`OwnerRepo` is bound to one owner; every statement it builds filters on that owner, so
a row of somebody else is indistinguishable from a missing one (`NotFound`, which the
API maps to 404, never 403). Only `UserRepo` (admin operations, user lookup by
identity) works across owners.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..errors import Forbidden, NotFound, action
from .models import (
    AuditLog,
    Base,
    Connection,
    ConnectionGrant,
    Message,
    Thread,
    TurnLease,
    User,
    VerifiedQuery,
    utcnow,
)

M = TypeVar("M", bound=Base)


class UserRepo:
    """Users by identity; cross-owner by nature (admin listing, get-or-create at login)."""

    def __init__(self, session: Session) -> None:
        self.s = session

    def by_username(self, username: str) -> User | None:
        return self.s.scalars(sa.select(User).where(User.username == username)).one_or_none()

    def get(self, user_id: str) -> User:
        user = self.s.get(User, user_id)
        if user is None:
            raise NotFound(f"No user with id {user_id}.")
        return user

    def list(self) -> Sequence[User]:
        return self.s.scalars(sa.select(User).order_by(User.username)).all()

    def add(self, username: str, *, display_name: str | None = None,
            is_admin: bool = False) -> User:
        user = User(username=username, display_name=display_name, is_admin=is_admin)
        self.s.add(user)
        self.s.flush()
        return user

    def delete(self, user: User) -> None:
        # Keep audit rows (owner_id goes NULL, the username copy stays) on every backend,
        # whether or not it enforces ON DELETE SET NULL.
        self.s.execute(sa.update(AuditLog).where(AuditLog.owner_id == user.id)
                       .values(owner_id=None))
        conn_ids = sa.select(Connection.id).where(Connection.owner_id == user.id)
        self.s.execute(sa.update(AuditLog).where(AuditLog.connection_id.in_(conn_ids))
                       .values(connection_id=None))
        self.s.execute(sa.delete(ConnectionGrant).where(
            sa.or_(ConnectionGrant.connection_id.in_(conn_ids),
                   sa.and_(ConnectionGrant.grantee_kind == "user",
                           ConnectionGrant.grantee == user.username))))
        self.s.execute(sa.delete(Message).where(Message.owner_id == user.id))
        self.s.execute(sa.delete(VerifiedQuery).where(VerifiedQuery.owner_id == user.id))
        self.s.execute(sa.delete(TurnLease).where(TurnLease.owner_id == user.id))
        self.s.execute(sa.delete(Thread).where(Thread.owner_id == user.id))
        self.s.execute(sa.delete(Connection).where(Connection.owner_id == user.id))
        self.s.delete(user)
        self.s.flush()

    def audit(self, *, limit: int = 100) -> Sequence[AuditLog]:
        return self.s.scalars(sa.select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)).all()

    def all_connections(self) -> Sequence[Connection]:
        """Every connection row of every owner, locked where the backend can: for key
        rotation only (a concurrent edit must not be overwritten with a stale token)."""
        return self.s.scalars(
            sa.select(Connection).order_by(Connection.id).with_for_update()).all()


class OwnerRepo:
    """Every query here is filtered on ``owner_id``; connections also on what was shared
    with the owner (by user name or hub group), read-only."""

    def __init__(self, session: Session, owner_id: str, *, username: str | None = None,
                 groups: Iterable[str] = ()) -> None:
        if not owner_id:
            raise ValueError("OwnerRepo needs an owner id")
        self.s = session
        self.owner_id = owner_id
        self.username = username
        self.groups = tuple(groups)

    def _select(self, model: type[M]) -> sa.Select[tuple[M]]:
        return sa.select(model).where(model.owner_id == self.owner_id)  # type: ignore[attr-defined]

    def _granted_ids(self) -> sa.Select[tuple[str]]:
        """Ids of connections shared with this user, directly or through a group."""
        who = []
        if self.username:
            who.append(sa.and_(ConnectionGrant.grantee_kind == "user",
                               ConnectionGrant.grantee == self.username))
        if self.groups:
            who.append(sa.and_(ConnectionGrant.grantee_kind == "group",
                               ConnectionGrant.grantee.in_(self.groups)))
        return sa.select(ConnectionGrant.connection_id).where(sa.or_(sa.false(), *who))

    # -- connections ----------------------------------------------------------------
    def connections(self, *, shared: bool = True) -> Sequence[Connection]:
        """Your connections by name, then (with `shared`) those shared with you."""
        own = self.s.scalars(self._select(Connection).order_by(Connection.name)).all()
        if not shared:
            return own
        granted = self.s.scalars(
            sa.select(Connection).where(Connection.id.in_(self._granted_ids()),
                                        Connection.owner_id != self.owner_id)
            .order_by(Connection.name)).all()
        return [*own, *granted]

    def connection(self, ref: str, *, own: bool = False) -> Connection:
        """By id, then by name; yours first, then (unless `own`) one shared with you.
        NotFound when neither; Forbidden when `own` and it is only shared with you."""
        if not isinstance(ref, str) or not ref:
            raise NotFound("No connection given: pass a connection id or name.")
        for where in (Connection.id == ref, Connection.name == ref):
            row = self.s.scalars(self._select(Connection).where(where)).one_or_none()
            if row is not None:
                return row
        for where in (Connection.id == ref, Connection.name == ref):
            row = self.s.scalars(
                sa.select(Connection).where(where, Connection.id.in_(self._granted_ids()))
                .order_by(Connection.created_at).limit(1)).first()
            if row is not None:
                if own:
                    raise Forbidden(f"The connection {row.name!r} is shared with you; only "
                                    "its owner can change it.")
                return row
        raise NotFound(f"You have no connection {ref!r}.", action=action("add_connection"))

    def grants(self, connection: Connection) -> Sequence[ConnectionGrant]:
        self._own(connection)
        return self.s.scalars(sa.select(ConnectionGrant).where(
            ConnectionGrant.connection_id == connection.id).order_by(
            ConnectionGrant.grantee_kind, ConnectionGrant.grantee)).all()

    def grant(self, connection: Connection, kind: str, grantee: str) -> None:
        self._own(connection)
        exists = self.s.scalars(sa.select(ConnectionGrant).where(
            ConnectionGrant.connection_id == connection.id,
            ConnectionGrant.grantee_kind == kind, ConnectionGrant.grantee == grantee)).first()
        if exists is None:
            self.s.add(ConnectionGrant(connection_id=connection.id, grantee_kind=kind,
                                       grantee=grantee))
            self.s.flush()

    def revoke(self, connection: Connection, kind: str, grantee: str) -> bool:
        self._own(connection)
        res = self.s.execute(sa.delete(ConnectionGrant).where(
            ConnectionGrant.connection_id == connection.id,
            ConnectionGrant.grantee_kind == kind, ConnectionGrant.grantee == grantee))
        return bool(res.rowcount)

    def connection_by_name(self, name: str) -> Connection | None:
        return self.s.scalars(
            self._select(Connection).where(Connection.name == name)).one_or_none()

    def add_connection(self, row: Connection) -> Connection:
        row.owner_id = self.owner_id
        self.s.add(row)
        self.s.flush()
        return row

    def delete_connection(self, row: Connection) -> None:
        self._own(row)
        # Explicit, so it holds on backends that do not enforce ON DELETE SET NULL.
        self.s.execute(sa.update(Thread).where(Thread.owner_id == self.owner_id,
                                               Thread.connection_id == row.id)
                       .values(connection_id=None))
        self.s.execute(sa.update(AuditLog).where(AuditLog.connection_id == row.id)
                       .values(connection_id=None))
        self.s.execute(sa.delete(ConnectionGrant).where(ConnectionGrant.connection_id == row.id))
        self.s.execute(sa.delete(VerifiedQuery).where(VerifiedQuery.connection_id == row.id))
        self.s.delete(row)
        self.s.flush()

    # -- verified queries -------------------------------------------------------------
    def examples(self, connection: Connection) -> Sequence[VerifiedQuery]:
        """A connection's verified queries; `connection` came through `connection()`, so
        it is yours or shared with you (its users read what its owner taught)."""
        return self.s.scalars(sa.select(VerifiedQuery).where(
            VerifiedQuery.connection_id == connection.id,
            VerifiedQuery.owner_id == connection.owner_id)
            .order_by(VerifiedQuery.created_at, VerifiedQuery.id)).all()

    def example(self, connection: Connection, example_id: str) -> VerifiedQuery:
        row = None
        if isinstance(example_id, str) and example_id:
            row = self.s.scalars(sa.select(VerifiedQuery).where(
                VerifiedQuery.id == example_id, VerifiedQuery.connection_id == connection.id,
                VerifiedQuery.owner_id == connection.owner_id)).one_or_none()
        if row is None:
            raise NotFound(f"The connection {connection.name!r} has no verified query "
                           f"{example_id!r}.")
        return row

    def example_by_key(self, connection: Connection, key: str) -> VerifiedQuery | None:
        return self.s.scalars(sa.select(VerifiedQuery).where(
            VerifiedQuery.connection_id == connection.id,
            VerifiedQuery.question_key == key)).one_or_none()

    def add_example(self, connection: Connection, row: VerifiedQuery) -> VerifiedQuery:
        self._own(connection)
        row.owner_id, row.connection_id = self.owner_id, connection.id
        self.s.add(row)
        self.s.flush()
        return row

    def delete_example(self, row: VerifiedQuery) -> None:
        self._own(row)
        self.s.delete(row)
        self.s.flush()

    # -- threads --------------------------------------------------------------------
    def threads(self) -> Sequence[Thread]:
        return self.s.scalars(
            self._select(Thread).order_by(Thread.updated_at.desc(), Thread.id)).all()

    def thread(self, thread_id: str) -> Thread:
        row = None
        if isinstance(thread_id, str) and thread_id:
            row = self.s.scalars(
                self._select(Thread).where(Thread.id == thread_id)).one_or_none()
        if row is None:
            raise NotFound(f"You have no chat thread {thread_id!r}.",
                           action=action("new_thread"))
        return row

    def add_thread(self, row: Thread) -> Thread:
        row.owner_id = self.owner_id
        self.s.add(row)
        self.s.flush()
        return row

    def delete_thread(self, row: Thread) -> None:
        self._own(row)
        self.s.execute(sa.delete(Message).where(Message.owner_id == self.owner_id,
                                                Message.thread_id == row.id))
        self.s.execute(sa.delete(TurnLease).where(TurnLease.thread_id == row.id))
        self.s.delete(row)
        self.s.flush()

    # -- messages -------------------------------------------------------------------
    def messages(self, thread_id: str) -> Sequence[Message]:
        thread = self.thread(thread_id)
        return self.s.scalars(
            self._select(Message).where(Message.thread_id == thread.id).order_by(Message.id)
        ).all()

    def add_message(self, thread_id: str, role: str, content: str,
                    payload: dict[str, Any] | None = None) -> Message:
        thread = self.thread(thread_id)
        msg = Message(thread_id=thread.id, owner_id=self.owner_id, role=role, content=content,
                      payload=payload)
        self.s.add(msg)
        thread.updated_at = utcnow()
        self.s.flush()
        return msg

    def last_assistant_payload(self, thread_id: str) -> tuple[dict[str, Any] | None, Any]:
        """The payload of the thread's newest assistant message that has a table, if any."""
        thread = self.thread(thread_id)
        rows = self.s.scalars(
            self._select(Message).where(Message.thread_id == thread.id,
                                        Message.role == "assistant")
            .order_by(Message.id.desc()).limit(20)).all()
        for m in rows:
            if isinstance(m.payload, dict) and m.payload.get("table"):
                return m.payload, m
        return None, None

    # -- turn leases ------------------------------------------------------------------
    def running_threads(self, now: float) -> set[str]:
        """Ids of this owner's threads with a live lease."""
        q = sa.select(TurnLease.thread_id).where(TurnLease.owner_id == self.owner_id,
                                                  TurnLease.expires_at > now)
        return set(self.s.scalars(q).all())

    def request_cancel(self, thread_id: str, now: float) -> bool:
        """Flag the thread's live turn for cancelling; False when none runs."""
        res = self.s.execute(
            sa.update(TurnLease).where(TurnLease.thread_id == thread_id,
                                       TurnLease.owner_id == self.owner_id,
                                       TurnLease.expires_at > now)
            .values(cancel_requested=True))
        return bool(res.rowcount)

    # -- audit ----------------------------------------------------------------------
    def add_audit(self, **fields: Any) -> AuditLog:
        row = AuditLog(owner_id=self.owner_id, **fields)
        self.s.add(row)
        self.s.flush()
        return row

    def audit(self, *, limit: int = 100, since: datetime | None = None) -> Sequence[AuditLog]:
        q = self._select(AuditLog)
        if since is not None:
            q = q.where(AuditLog.created_at >= since)
        return self.s.scalars(q.order_by(AuditLog.id.desc()).limit(limit)).all()

    def _own(self, row: Any) -> None:
        if getattr(row, "owner_id", None) != self.owner_id:  # defence in depth
            raise NotFound("Not found.")


class LeaseRepo:
    """Turn leases by thread: the only cross-process coordination the service needs.

    Every change is one conditional statement, so two processes racing for a thread agree
    on one winner whatever the backend (the primary key refuses a second insert; a takeover
    only succeeds where the old holder's lease has expired).
    """

    def __init__(self, session: Session) -> None:
        self.s = session

    def acquire(self, lease: TurnLease, now: float) -> TurnLease | None:
        """Insert `lease`, or take over an expired one; the live holder's row when refused."""
        taken = self.s.execute(
            sa.update(TurnLease).where(TurnLease.thread_id == lease.thread_id,
                                       TurnLease.expires_at <= now)
            .values(owner_id=lease.owner_id, holder=lease.holder, process=lease.process,
                    started_at=lease.started_at, expires_at=lease.expires_at,
                    cancel_requested=False))
        if taken.rowcount:
            return None
        current = self.s.get(TurnLease, lease.thread_id)
        if current is not None:
            return current
        self.s.add(lease)
        self.s.flush()
        return None

    def look(self, held: Mapping[str, str], renew_until: float | None = None) -> dict[str, bool]:
        """The cancel flags of many held leases (thread id -> holder) in one round trip,
        renewed first to `renew_until` when given; a lease no longer held is left out."""
        if not held:
            return {}
        ids = list(held)
        if renew_until is not None:
            self.s.execute(sa.update(TurnLease).where(
                TurnLease.thread_id.in_(ids), TurnLease.holder.in_(list(held.values())))
                .values(expires_at=renew_until))
        rows = self.s.execute(sa.select(TurnLease.thread_id, TurnLease.holder,
                                        TurnLease.cancel_requested)
                              .where(TurnLease.thread_id.in_(ids))).all()
        return {tid: bool(flag) for tid, holder, flag in rows if held.get(tid) == holder}

    def release(self, thread_id: str, holder: str) -> None:
        self.s.execute(sa.delete(TurnLease).where(TurnLease.thread_id == thread_id,
                                                  TurnLease.holder == holder))


__all__ = ["LeaseRepo", "OwnerRepo", "UserRepo"]
