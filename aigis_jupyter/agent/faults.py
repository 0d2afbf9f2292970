"""What went wrong with a model call, whether to try again, and what to tell the user.

Model clients are built with no retries of their own (see `models._openai_chat`): the turn
decides here, the same way for every provider. The rule:

* retried: rate limiting (429), a failing server (5xx, 408), no connection, a connection
  dropped mid-reply. These pass; a model that answers a second later is worth the wait.
* not retried: a timeout (the user already waited the whole model timeout), a reply that
  cannot be read or did not stop (a broken server sends the same again), any other 4xx
  (the request itself is refused), and anything after words reached the user (a retry
  would repeat them).
* at most `Settings.model_retries` retries (default 2), pausing 0.5 s, then 1 s, ... (up
  to 8 s, less up to a quarter at random so clients do not retry in step); a server's
  `Retry-After` is honoured when it asks for no more than 20 s, and when it asks for
  longer the call fails at once saying how long to wait.
"""

from __future__ import annotations

import email.utils
import math
import random
import re
import time
from dataclasses import dataclass, replace
from typing import Any

from ..errors import ModelError, action

#: Retries of one model call when the settings do not say.
RETRIES = 2
#: The first pause between two attempts; each next one doubles, up to `MAX_PAUSE_S`.
FIRST_PAUSE_S = 0.5
MAX_PAUSE_S = 8.0
#: The longest `Retry-After` worth waiting for inside a question.
MAX_RETRY_AFTER_S = 20.0
#: Characters one reply may have: a reply still going past this did not stop by itself.
MAX_REPLY_CHARS = 32_000

_RETRIED = frozenset({"rate_limited", "server_error", "unreachable", "cut"})
_TIMEOUT_NAMES = frozenset({"APITimeoutError", "TimeoutException", "ReadTimeout",
                            "ConnectTimeout", "WriteTimeout", "PoolTimeout", "TimeoutError",
                            "DeadlineExceeded"})
_CONNECTION_NAMES = frozenset({"APIConnectionError", "ConnectError", "RemoteProtocolError",
                               "ReadError", "NetworkError", "ConnectionError"})
_BAD_REPLY_NAMES = frozenset({"JSONDecodeError", "APIResponseValidationError",
                              "ValidationError", "UnicodeDecodeError"})


@dataclass(frozen=True)
class Fault:
    """One failed model call, classified."""

    kind: str  # rate_limited, server_error, unreachable, cut, rejected, timeout, bad_reply, other
    status: int | None = None
    retry_after: float | None = None
    detail: str = ""

    @property
    def retried(self) -> bool:
        return self.kind in _RETRIED


def _names(exc: BaseException) -> set[str]:
    """Class names of `exc` and of the exceptions it wraps (providers wrap transport ones)."""
    out: set[str] = set()
    seen = 0
    cur: BaseException | None = exc
    while cur is not None and seen < 5:
        out |= {c.__name__ for c in type(cur).__mro__}
        cur = cur.__cause__ or (None if cur.__suppress_context__ else cur.__context__)
        seen += 1
    return out


def _status(exc: BaseException) -> int | None:
    for value in (getattr(exc, "status_code", None),
                  getattr(getattr(exc, "response", None), "status_code", None),
                  getattr(exc, "code", None)):
        if isinstance(value, int) and 400 <= value <= 599:
            return value
    return None


def retry_after_s(exc: BaseException) -> float | None:
    """The wait a server asked for (`retry-after-ms`, `retry-after` in seconds or a date)."""
    headers: Any = getattr(getattr(exc, "response", None), "headers", None)
    if headers is None:
        return None
    for name, per_s in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            return max(0.0, float(raw) / per_s)
        except ValueError:
            when = email.utils.parsedate_tz(str(raw))
            if when is not None:
                return max(0.0, email.utils.mktime_tz(when) - time.time())
    return None


def classify(exc: BaseException, *, started: bool) -> Fault:
    """What `exc` means; `started`: part of the reply had arrived when it was raised."""
    detail = re.sub(r"^Error code: \d+ - ", "", " ".join(str(exc).split()))[:200]
    detail = detail or type(exc).__name__
    status = _status(exc)
    names = _names(exc)
    if status == 429:
        return Fault("rate_limited", status, retry_after_s(exc), detail)
    if status is not None and (status >= 500 or status == 408):
        return Fault("server_error", status, retry_after_s(exc), detail)
    if status is not None:
        return Fault("rejected", status, None, detail)
    if names & _TIMEOUT_NAMES:
        return Fault("timeout", None, None, detail)
    if names & _CONNECTION_NAMES:
        return Fault("cut" if started else "unreachable", None, None, detail)
    if names & _BAD_REPLY_NAMES:
        return Fault("bad_reply", None, None, detail)
    return Fault("other", None, None, detail)


def pause_s(fault: Fault, attempt: int) -> float | None:
    """Seconds to wait before attempt `attempt + 1`, or None when retrying is pointless."""
    if not fault.retried:
        return None
    if fault.retry_after is not None:
        return fault.retry_after if fault.retry_after <= MAX_RETRY_AFTER_S else None
    pause = min(FIRST_PAUSE_S * 2 ** (attempt - 1), MAX_PAUSE_S)
    return pause * (1 - 0.25 * random.random())


def model_error(fault: Fault, *, model: str, attempts: int, timeout_s: float,
                choices: list[str]) -> ModelError:
    """The error the user sees: what happened, and what to do next."""
    tries = f" ({attempts} attempts)" if attempts > 1 else ""
    fault = replace(fault, detail=fault.detail.rstrip(". ") or fault.kind)
    pick = action("pick_model", choices=choices)
    what, todo, act = {
        "rate_limited": (
            f"The model server is rate limiting requests to '{model}' (HTTP 429){tries}.",
            "Wait a little and ask again, or pick another model.", action("retry")),
        "server_error": (
            f"The model server failed to answer for '{model}' (HTTP {fault.status}){tries}: "
            f"{fault.detail}.", "Ask again in a moment, or pick another model.", pick),
        "unreachable": (
            f"The model server of '{model}' could not be reached{tries}: {fault.detail}.",
            "Check that it is running and its address is right, or pick another model.", pick),
        "cut": (
            f"The model server of '{model}' dropped the connection in the middle of its "
            f"reply{tries}.", "Ask again, or pick another model.", pick),
        "rejected": (
            f"The model server refused the request for '{model}' (HTTP {fault.status}): "
            f"{fault.detail}.", "Check the model's name and key, or pick another model.",
            pick),
        "timeout": (
            f"The model '{model}' did not answer within {timeout_s:g} s.",
            "Ask again, or pick a faster model; an operator can allow more time with the "
            "model_timeout_s setting (AIGIS_MODEL_TIMEOUT_S).", pick),
        "bad_reply": (
            f"The model server sent a reply for '{model}' that could not be read "
            f"({fault.detail}).", "Ask again, or pick another model; if it keeps "
            "happening, check that the model's address is an OpenAI-compatible server.",
            pick),
    }.get(fault.kind, (f"The model '{model}' failed: {fault.detail}.",
                       "Try again, or pick another model.", pick))
    if fault.kind in ("rate_limited", "server_error") and fault.retry_after:
        wait = math.ceil(fault.retry_after)
        todo = f"It asks to wait {wait} s; ask again then, or pick another model."
    return ModelError(f"{what} {todo}", action=act)


def too_long(model: str, chars: int, choices: list[str]) -> ModelError:
    """A reply that went on past `MAX_REPLY_CHARS`: its stream was closed there."""
    return ModelError(
        f"The model '{model}' did not stop: its reply was cut after {chars} characters. "
        "What arrived is kept; ask again, or pick another model.",
        action=action("pick_model", choices=choices),
    )
