"""A jupyter-server identity for tests: a few users, each with a token of their own."""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.identity import IdentityProvider, User

USERS = ("alice", "bob", "root")


def token_of(name: str) -> str:
    return f"{name}-token-0123456789"


class TestUsers(IdentityProvider):
    __test__ = False  # not a pytest test class
    """`Authorization: token <name>-token-…` signs in as <name>; cookies work as usual."""

    async def get_user_token(self, handler: Any) -> User | None:
        given = self.get_token(handler)
        for name in USERS:
            if given == token_of(name):
                return User(username=name, name=name, display_name=name.title())
        return await super().get_user_token(handler)
