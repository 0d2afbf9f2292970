"""The error vocabulary shared by the core and every front door.

Each error carries an HTTP-like status, a short machine `reason` and, where the user has
an obvious next step, a structured `action`. The `message` says what happened in neutral
words; it never names a magic, a REST route or a CLI command. Each door renders the
action in its own terms (a notebook command, a button in the sidebar, a route in REST),
so one core error reads right everywhere.
"""

from __future__ import annotations

from typing import Any

#: The kinds of `action` a door may be asked to render, with the fields each carries.
ACTION_KINDS = {
    "pick_model": ("choices",),  # choose a model for the thread
    "pick_connection": ("choices",),  # choose a connection for the thread
    "add_connection": (),  # the user has no connection of that name: add or list them
    "new_thread": (),  # the thread is gone: start or pick another
    "set_env": ("name",),  # set an environment variable (an API key, an endpoint)
    "install_extra": ("name",),  # install the package extra that brings a feature
    "readonly_role": (),  # create a read-only login for the connection and use it
    "rotate_keys": (),  # re-seal the stored secrets with the current key
    "upgrade_store": (),  # apply the store's migrations
    "retry": (),  # a passing failure: ask again
}


def action(kind: str, **fields: Any) -> dict[str, Any]:
    """A structured next step (`{"kind": "pick_model", "choices": [...]}`)."""
    if kind not in ACTION_KINDS:
        raise ValueError(f"unknown action kind {kind!r}")
    return {"kind": kind, **fields}


class AigisError(Exception):
    """Base class: a failure the user can act on (never a bug)."""

    status: int = 400
    reason: str = "bad_request"

    def __init__(self, message: str, *, reason: str | None = None,
                 action: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.action = action
        if reason is not None:
            self.reason = reason

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"message": self.message, "reason": self.reason}
        if self.action:
            out["action"] = self.action
        return out


class BadInput(AigisError):
    status = 400
    reason = "bad_input"


class Unauthorized(AigisError):
    status = 401
    reason = "unauthorized"


class Forbidden(AigisError):
    status = 403
    reason = "forbidden"


class NotFound(AigisError):
    """Missing, or owned by someone else: both look the same on purpose."""

    status = 404
    reason = "not_found"


class Conflict(AigisError):
    status = 409
    reason = "conflict"


class SQLRefused(AigisError):
    """The SQL guard refused a statement (parser or database layer)."""

    status = 422
    reason = "sql_refused"


class UpstreamError(AigisError):
    status = 502
    reason = "upstream_error"


class DatabaseError(UpstreamError):
    """The user's database failed: unreachable, bad credentials, query error, timeout."""

    reason = "database_error"


class QueryTimeout(DatabaseError):
    reason = "query_timeout"


class QueryCancelled(DatabaseError):
    reason = "cancelled"


class ModelError(UpstreamError):
    """The language model failed: unreachable, timed out, or returned garbage."""

    reason = "model_error"


class NoModelSelected(BadInput):
    reason = "no_model"


class VaultError(AigisError):
    """A secret could not be sealed or opened (wrong key, tampering)."""

    status = 500
    reason = "vault_error"


class ServiceUnavailable(UpstreamError):
    """The shared service (hub mode) does not answer: it may be restarting."""

    status = 503
    reason = "service_unavailable"


_BY_STATUS: dict[int, type[AigisError]] = {
    400: BadInput, 401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict,
    422: SQLRefused, 500: AigisError, 502: UpstreamError, 503: ServiceUnavailable,
}
_BY_REASON: dict[str, type[AigisError]] = {
    "database_error": DatabaseError, "query_timeout": QueryTimeout, "cancelled": QueryCancelled,
    "model_error": ModelError, "no_model": NoModelSelected, "vault_error": VaultError,
}


def error_from(status: int, body: dict[str, Any]) -> AigisError:
    """The core error a `{"message", "reason", "action"?}` answer stands for (remote clients
    raise the same errors as the in-process service)."""
    reason = str(body.get("reason") or "")
    cls = _BY_REASON.get(reason) or _BY_STATUS.get(status, AigisError)
    exc = cls(str(body.get("message") or f"The service answered {status}."),
              reason=reason or None, action=body.get("action") or None)
    if cls is AigisError:
        exc.status = status
    return exc
