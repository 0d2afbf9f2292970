"""What every route shares: identity, authorization, JSON in and out, and errors.

Handlers translate HTTP to the service protocol and back; no rule lives here. A core
error keeps its status and structured `action`: `{"message", "reason", "action"?}`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web

from ..errors import AigisError, BadInput

if TYPE_CHECKING:
    from ..service.aio import AsyncScope
    from .state import ServerState

#: The resource name an operator's `Authorizer` sees for every route of the extension.
AUTH_RESOURCE = "aigis"
#: Request bodies larger than this are refused before they are parsed.
MAX_BODY_BYTES = 1 << 20
#: No text the API takes may hold U+0000: a PostgreSQL store cannot keep it, nor can a file
#: path or a database name; refused at the door, before it reaches the core.
NUL_MESSAGE = "Text cannot contain the NUL character (U+0000)."

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def api(method: F) -> F:
    """Authenticated by jupyter-server, then authorized for the `aigis` resource."""
    return web.authenticated(authorized(method))  # type: ignore[return-value]


class AigisHandler(APIHandler):
    auth_resource = AUTH_RESOURCE

    def set_default_headers(self) -> None:
        """Beside jupyter-server's `default-src 'none'` policy: a response of this API (rows
        of the user's data among them) is never sniffed into a page, cached or referred."""
        super().set_default_headers()
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-store")
        self.set_header("Referrer-Policy", "no-referrer")

    def set_cors_headers(self) -> None:
        """Only origins the operator allowed (`ServerApp.allow_origin`, `allow_origin_pat`):
        jupyter-server would also echo any origin of a token-authenticated request, letting a
        page elsewhere read users' rows with a token it got hold of."""
        if self.allow_origin or self.allow_origin_pat:
            super().set_cors_headers()

    @property
    def aigis(self) -> ServerState:
        return self.settings["aigis"]

    async def scope(self) -> AsyncScope:
        """The acting user's scope: always the authenticated identity, never a request field."""
        cached = getattr(self, "_aigis_scope", None)
        if cached is None:
            if _has_nul(list(self.path_args)):  # every route asks for it before using an id
                raise BadInput(NUL_MESSAGE)
            cached = self._aigis_scope = await self.aigis.scope(self.current_user)
        return cached

    # -- input -------------------------------------------------------------------------------
    def body(self, *, allowed: Iterable[str] | None = None,
             required: Iterable[str] = ()) -> dict[str, Any]:
        """The JSON object of the request; a clear 400 for anything else."""
        raw = self.request.body or b""
        if len(raw) > MAX_BODY_BYTES:
            raise BadInput(f"The request body is too large (at most {MAX_BODY_BYTES} bytes).")
        if not raw.strip():
            data: Any = {}
        else:
            try:
                data = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                raise BadInput(f"The request body is not valid JSON: {exc}.") from None
        if not isinstance(data, dict):
            raise BadInput("The request body must be a JSON object.")
        if _has_nul(data):
            raise BadInput(NUL_MESSAGE)
        if allowed is not None:
            unknown = sorted(set(data) - set(allowed))
            if unknown:
                raise BadInput(f"Unknown field(s): {', '.join(unknown)}. Known: "
                               f"{', '.join(sorted(allowed))}.")
        missing = [k for k in required if k not in data]
        if missing:
            raise BadInput(f"Missing field(s): {', '.join(missing)}.")
        return data

    def field(self, data: dict[str, Any], key: str, kind: type | tuple[type, ...],
              default: Any = None) -> Any:
        """One field of a body, of the given JSON type (None allowed when absent)."""
        value = data.get(key, default)
        if value is None:
            return default
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            raise BadInput(f"'{key}' has the wrong type (got true/false).")
        if not isinstance(value, kind):
            names = " or ".join(t.__name__ for t in (kind if isinstance(kind, tuple) else (kind,)))
            raise BadInput(f"'{key}' must be {names.replace('str', 'text')}, got "
                           f"{type(value).__name__}.")
        return value

    def int_arg(self, name: str, default: int, lo: int, hi: int) -> int:
        raw = self.get_argument(name, None, strip=False)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise BadInput(f"'{name}' must be a whole number, got {raw!r}.") from None
        if not lo <= value <= hi:
            raise BadInput(f"'{name}' must be between {lo} and {hi}, got {value}.")
        return value

    def bool_arg(self, name: str, default: bool = False) -> bool:
        # unstripped: tornado would turn control characters into spaces and strip them away
        raw = self.get_argument(name, None, strip=False)
        if raw is None:
            return default
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off", ""):
            return False
        raise BadInput(f"'{name}' must be true or false, got {raw!r}.")

    # -- output ------------------------------------------------------------------------------
    def reply(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(data, default=str))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = (kwargs.get("exc_info") or (None, None, None))[1]
        if isinstance(exc, AigisError):
            self.set_status(exc.status)
            body: dict[str, Any] = exc.to_dict()
        elif isinstance(exc, web.HTTPError):
            body = {"message": exc.log_message or self._reason, "reason": _reason(status_code)}
        else:
            body = {"message": "The server failed unexpectedly; its log says why. Try again.",
                    "reason": "server_error"}
        if status_code == 405:  # RFC 9110: a 405 says which methods the resource has
            self.set_header("Allow", ", ".join(self.allowed_methods()))
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    @classmethod
    def allowed_methods(cls) -> list[str]:
        """The HTTP methods this route implements (OPTIONS, jupyter-server's, aside)."""
        return [m for m in cls.SUPPORTED_METHODS if m != "OPTIONS"
                and getattr(cls, m.lower()) is not web.RequestHandler._unimplemented_method]

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, AigisError):  # an answer to the user, not a server fault
            self.log.info("aigis %s %s: %s (%s)", self.request.method, self.request.path,
                          value.reason, value.status)
            return
        super().log_exception(typ, value, tb)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _reason(status: int) -> str:
    return {400: "bad_input", 401: "unauthorized", 403: "forbidden", 404: "not_found",
            405: "method_not_allowed", 409: "conflict"}.get(status, "http_error")
