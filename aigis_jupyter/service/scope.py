"""`UserScope`: everything one user may do, in process. It implements `ServiceAPI`.

Rules live here and below, never in a door: a connection, thread or message of somebody
else is `NotFound` (404, never 403), passwords go in and never come out, and every
statement run on a user's database leaves an audit row.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ..errors import BadInput, NotFound
from . import validation
from .contract import AuditEntry, Health, UserInfo
from .rows import audit_entry, user_info
from .threads import ThreadOps


class UserScope(ThreadOps):
    """One user's operations; other users' objects raise NotFound."""

    # -- users ----------------------------------------------------------------------------
    def me(self) -> UserInfo:
        from ..store.repo import UserRepo

        with self._session() as s:
            try:
                u = UserRepo(s).get(self.user_id)
            except NotFound:
                raise NotFound("Your user no longer exists; sign in again.") from None
            self.user = user_info(u)
        return dict(self.user)  # type: ignore[return-value]

    def update_me(self, **fields: Any) -> UserInfo:
        """Change your display name or email (the user name is your Jupyter identity)."""
        from ..store.repo import UserRepo

        allowed = {"display_name", "email"}
        unknown = sorted(set(fields) - allowed)
        if unknown:
            raise BadInput(f"Cannot change {', '.join(unknown)}; you can change: "
                           f"{', '.join(sorted(allowed))}.")
        values = {k: validation.opt_str(fields, k, max_len=320 if k == "email" else 255)
                  for k in fields}
        validation.email(values.get("email"))
        with self._session() as s:
            u = UserRepo(s).get(self.user_id)
            for k, v in values.items():
                setattr(u, k, v)
            u.updated_at = datetime.now(timezone.utc)
            s.flush()
            self.user = user_info(u)
        return dict(self.user)  # type: ignore[return-value]

    def list_users(self) -> list[UserInfo]:
        from ..store.repo import UserRepo

        self._require_admin()
        with self._session() as s:
            return [user_info(u) for u in UserRepo(s).list()]

    def get_user(self, user_id: str) -> UserInfo:
        from ..store.repo import UserRepo

        self._require_admin()
        with self._session() as s:
            return user_info(UserRepo(s).get(user_id))

    def delete_user(self, user_id: str) -> None:
        """Remove a user with their connections, threads and messages (audit rows stay)."""
        from ..store.repo import OwnerRepo, UserRepo

        self._require_admin()
        if user_id == self.user_id:
            raise BadInput("You cannot delete your own user while signed in as it.")
        with self._session() as s:
            repo = UserRepo(s)
            u = repo.get(user_id)
            conn_ids = [c.id for c in OwnerRepo(s, u.id).connections(shared=False)]
            repo.delete(u)
        for cid in conn_ids:
            self.service.forget_connection(cid)

    # -- audit and health -------------------------------------------------------------------
    def audit_log(self, *, limit: int = 100, all_users: bool = False) -> list[AuditEntry]:
        """Your statements, newest first (admins may ask for everyone's)."""
        from ..store.repo import UserRepo

        limit = max(1, min(int(limit), 10_000))
        with self._session() as s:
            if all_users:
                self._require_admin()
                rows = UserRepo(s).audit(limit=limit)
            else:
                rows = self._repo(s).audit(limit=limit)
            return [audit_entry(a) for a in rows]

    def health(self) -> Health:
        return self.service.health()


__all__ = ["UserScope"]
