"""Core settings: one plain object the front doors fill from traitlets or the environment.

The core never reads Jupyter config itself; front doors translate their traits into a
`Settings`. `Settings.from_env()` gives the embedded defaults used by the CLI and tests.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path


def default_data_dir() -> Path:
    """Where Jupyter keeps per-user data (mirrors jupyter_core's rule, without importing it)."""
    if os.environ.get("AIGIS_DATA_DIR"):
        return Path(os.environ["AIGIS_DATA_DIR"]).expanduser()
    if os.environ.get("JUPYTER_DATA_DIR"):
        base = Path(os.environ["JUPYTER_DATA_DIR"]).expanduser()
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Jupyter"
    elif os.name == "nt":
        base = Path(os.environ.get("APPDATA", Path.home())) / "jupyter"
    else:
        xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        base = Path(xdg) / "jupyter"
    return base / "aigis"


def _split_keys(raw: str | None) -> list[str]:
    """`MASTER_ENCRYPTION_KEY` may hold several keys separated by commas: first encrypts."""
    if not raw:
        return []
    return [k.strip() for k in raw.split(",") if k.strip()]


@dataclass
class Settings:
    """Everything the core needs to know about its environment."""

    data_dir: Path = field(default_factory=default_data_dir)
    database_url: str | None = None
    master_keys: list[str] = field(default_factory=list, repr=False)  # secrets: never shown
    key_file: Path | None = None
    max_rows: int = 10_000
    preview_rows: int = 20
    statement_timeout_s: float = 30.0
    schema_token_budget: int = 3_000
    sql_repairs: int = 2
    default_model: str | None = None
    local_model_path: str | None = None
    allowed_models: list[str] | None = None
    extra_models: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        s = cls(
            database_url=os.environ.get("AIGIS_DATABASE_URL") or None,
            master_keys=_split_keys(os.environ.get("MASTER_ENCRYPTION_KEY")),
            default_model=os.environ.get("AIGIS_DEFAULT_MODEL") or None,
            local_model_path=os.environ.get("AIGIS_LOCAL_MODEL_PATH") or None,
        )
        for k, v in overrides.items():
            setattr(s, k, v)
        return s

    @property
    def store_url(self) -> str:
        """The store's SQLAlchemy URL; defaults to a SQLite file in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'aigis.sqlite'}"

    @property
    def resolved_key_file(self) -> Path:
        return self.key_file or (self.data_dir / "master.key")
