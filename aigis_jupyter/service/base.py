"""What every part of a user's scope shares: the service, the user, sessions, repositories."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..errors import Forbidden
from .contract import UserInfo

if TYPE_CHECKING:
    from ..settings import Settings
    from ..store.repo import OwnerRepo
    from .core import AigisService


class ScopeBase:
    """Bound to one user; every store query goes through an owner-filtered repository."""

    def __init__(self, service: AigisService, user: UserInfo,
                 groups: Iterable[str] = ()) -> None:
        self.service = service
        self.user = user
        self.groups = frozenset(groups)  # the identity provider's (hub) groups

    def __repr__(self) -> str:
        return f"{type(self).__name__}(user={self.user['username']!r})"

    @property
    def settings(self) -> Settings:
        return self.service.settings

    @property
    def user_id(self) -> str:
        return str(self.user["id"])

    @property
    def username(self) -> str:
        return str(self.user["username"])

    @property
    def is_admin(self) -> bool:
        return bool(self.user.get("is_admin"))

    def _session(self) -> Any:
        return self.service.store.session()

    def _repo(self, s: Any) -> OwnerRepo:
        from ..store.repo import OwnerRepo

        return OwnerRepo(s, self.user_id, username=self.username, groups=self.groups)

    def _require_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden("Only administrators can manage other users.")
