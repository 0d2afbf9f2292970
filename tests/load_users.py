"""A jupyter-server identity for load tests: many users, each with a token of their own.

Like `server_users.TestUsers`, but for `LOAD_USERS` users named `load-00`, `load-01`, …
so one server can be driven by dozens of people at once. The count comes from the server's
environment (`AIGIS_LOAD_USERS`, default 50), so the test and the server agree on it.
"""

from __future__ import annotations

import os
from typing import Any

from jupyter_server.auth.identity import IdentityProvider, User

LOAD_USERS = int(os.environ.get("AIGIS_LOAD_USERS", "50"))


def user_name(i: int) -> str:
    return f"load-{i:02d}"


def token_of(name: str) -> str:
    return f"{name}-token-5f2b9c7e41"


class LoadUsers(IdentityProvider):
    """`Authorization: token load-NN-token-…` signs in as load-NN; cookies work as usual."""

    __test__ = False  # not a pytest test class

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._by_token = {token_of(user_name(i)): user_name(i) for i in range(LOAD_USERS)}

    async def get_user_token(self, handler: Any) -> User | None:
        name = self._by_token.get(self.get_token(handler) or "")
        if name is not None:
            return User(username=name, name=name, display_name=name)
        return await super().get_user_token(handler)
