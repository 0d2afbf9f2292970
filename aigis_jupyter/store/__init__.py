"""The extension's own database: models, owner-scoped queries, migrations."""

from __future__ import annotations

from .db import Store, StoreError, StoreUnavailable

__all__ = ["Store", "StoreError", "StoreUnavailable"]
