"""The error vocabulary shared by the core and every front door.

Each error carries an HTTP-like status and a short machine `reason`, so the REST API,
the magics and the CLI all render the same failure the same way; the `message` always
says what happened and what to do next.
"""

from __future__ import annotations


class AigisError(Exception):
    """Base class: a failure the user can act on (never a bug)."""

    status: int = 400
    reason: str = "bad_request"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason is not None:
            self.reason = reason

    def to_dict(self) -> dict[str, str]:
        return {"message": self.message, "reason": self.reason}


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
