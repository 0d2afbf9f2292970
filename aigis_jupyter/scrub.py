"""The one secret scrubber: every message that may echo a secret passes through here.

Driver errors, provider errors and audit rows can carry a password or an API key (a
connection URL in a message, a key echoed by a provider). Each door shows, logs or stores
such text only after `scrub`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: Shorter secrets are replaced only where one is obviously written (`:pw@`, `password=pw`):
#: replacing a two-letter password everywhere would garble every message.
MIN_SECRET_LEN = 3
MASK = "***"
_URL_USERINFO = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


def scrub(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with every secret masked, and any password in a URL's userinfo too."""
    if not text:
        return text
    for secret in secrets:
        if not secret:
            continue
        if len(secret) >= MIN_SECRET_LEN:
            text = text.replace(secret, MASK)
        else:
            text = text.replace(f":{secret}@", f":{MASK}@")
            text = text.replace(f"password={secret}", f"password={MASK}")
    return _URL_USERINFO.sub(rf"\1{MASK}@", text)


__all__ = ["MASK", "MIN_SECRET_LEN", "scrub"]
