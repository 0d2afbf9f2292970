"""Store rows as the contract's shapes: the only place that decides what leaves the store.

A connection's sealed password never appears here; only whether one is set.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .contract import (
    AuditEntry,
    ConnectionInfo,
    Example,
    Grant,
    MessageInfo,
    ModelEntry,
    ThreadInfo,
    UserInfo,
)

if TYPE_CHECKING:
    from ..models import ModelInfo, ModelRegistry
    from ..store.models import (
        AuditLog,
        Connection,
        ConnectionGrant,
        Message,
        Thread,
        User,
        VerifiedQuery,
    )


def iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    if dt.tzinfo is None:  # SQLite and MySQL hand back naive UTC
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.isoformat()


def user_info(u: User) -> UserInfo:
    return {"id": u.id, "username": u.username, "display_name": u.display_name,
            "email": u.email, "is_admin": bool(u.is_admin), "created_at": iso(u.created_at),
            "updated_at": iso(u.updated_at)}


def connection_info(c: Connection, viewer_id: str) -> ConnectionInfo:
    """Shared with the viewer by its owner: usable, but where and as whom it logs in stay
    the owner's (host, port, user, options and whether there is a password)."""
    shared = c.owner_id != viewer_id
    return {"id": c.id, "name": c.name, "db_type": c.db_type,
            "host": None if shared else c.host, "port": None if shared else c.port,
            "database": c.database, "username": None if shared else c.username,
            "has_password": False if shared else bool(c.password_sealed),
            "allow_write": bool(c.allow_write), "options": {} if shared else dict(c.options or {}),
            "notes": c.notes, "shared": shared, "created_at": iso(c.created_at),
            "updated_at": iso(c.updated_at)}


def example_info(e: VerifiedQuery) -> Example:
    return {"id": e.id, "connection_id": e.connection_id, "question": e.question, "sql": e.sql,
            "created_at": iso(e.created_at), "updated_at": iso(e.updated_at)}


def grant_info(g: ConnectionGrant) -> Grant:
    return {"kind": g.grantee_kind, "name": g.grantee,  # type: ignore[typeddict-item]
            "created_at": iso(g.created_at)}


def thread_info(t: Thread, connection_name: str | None = None, *,
                running: bool = False) -> ThreadInfo:
    return {"id": t.id, "title": t.title, "connection_id": t.connection_id,
            "connection_name": connection_name, "model_name": t.model_name,
            "created_at": iso(t.created_at), "updated_at": iso(t.updated_at),
            "running": running}


def message_info(m: Message) -> MessageInfo:
    return {"id": m.id, "thread_id": m.thread_id, "role": m.role, "content": m.content,
            "payload": m.payload, "created_at": iso(m.created_at)}


def audit_entry(a: AuditLog) -> AuditEntry:
    return {"id": a.id, "created_at": iso(a.created_at), "username": a.username,
            "connection_id": a.connection_id, "connection_name": a.connection_name,
            "db_type": a.db_type, "thread_id": a.thread_id, "sql": a.sql, "status": a.status,
            "row_count": a.row_count, "duration_ms": a.duration_ms, "error": a.error}


def model_entry(info: ModelInfo, registry: ModelRegistry) -> ModelEntry:
    return {"name": info.name, "provider": info.provider, "aliases": list(info.aliases),
            "available": bool(info.available), "reason": info.reason or None,
            "supports_tools": info.supports_tools,
            "action": None if info.available else registry.enable_action(info)}  # type: ignore[typeddict-item]


def jsonable(payload: Any) -> Any:
    """A payload as plain JSON (what the store can keep), or ValueError."""
    import json

    return json.loads(json.dumps(payload, allow_nan=False, default=str))
