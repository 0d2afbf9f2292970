"""Core settings: the single source of every operator setting.

Each field carries its help text and, where the original product had one, the environment
variable that fills it (`MASTER_ENCRYPTION_KEY`, ...), so every door reads the same values:
`Settings.from_env()` for the CLI, the kernel and tests; the server extension makes one
traitlet per field from `fields_help()`, with the same names. The core never reads Jupyter
config itself.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BadInput


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


def _split(raw: str | None) -> list[str]:
    """A comma-separated variable as a list (`MASTER_ENCRYPTION_KEY=new,old`)."""
    if not raw:
        return []
    return [k.strip() for k in raw.split(",") if k.strip()]


#: Business words and the schema words they usually mean; extend with `schema_synonyms`.
DEFAULT_SYNONYMS: dict[str, list[str]] = {
    "revenue": ["amount", "price", "total", "sale", "payment", "invoice", "order"],
    "sale": ["order", "invoice", "amount", "revenue"],
    "sold": ["order", "item", "quantity"],
    "client": ["customer"],
    "buyer": ["customer"],
    "spend": ["amount", "payment", "total"],
    "staff": ["employee"],
    "salesperson": ["employee"],
    "monthly": ["date"],
    "month": ["date"],
    "year": ["date"],
    "yearly": ["date"],
}


def _opt(help: str, env: str | None = None, **kw: Any) -> Any:
    return field(metadata={"help": help, "env": env}, **kw)


@dataclass
class Settings:
    """Everything the core needs to know about its environment."""

    data_dir: Path = _opt("Directory of the default SQLite store, key file and demo database.",
                          "AIGIS_DATA_DIR", default_factory=default_data_dir)
    database_url: str | None = _opt(
        "SQLAlchemy URL of the store (users, connections, threads, audit); default: SQLite "
        "in data_dir.", "AIGIS_DATABASE_URL", default=None)
    master_keys: list[str] = _opt(
        "Passphrases sealing connection passwords, first one encrypts (new,old rotates); "
        "default: a generated key file.", "MASTER_ENCRYPTION_KEY", default_factory=list,
        repr=False)
    key_file: Path | None = _opt("Key file used when no master key is set; default: "
                                 "data_dir/master.key.", "AIGIS_KEY_FILE", default=None)
    max_rows: int = _opt("Most rows a query returns (more are cut and flagged truncated).",
                         "AIGIS_MAX_ROWS", default=10_000)
    preview_rows: int = _opt("Rows of a result shown to the model and kept in the message.",
                             "AIGIS_PREVIEW_ROWS", default=20)
    statement_timeout_s: float = _opt("Seconds a query may run before the database stops it.",
                                      "AIGIS_STATEMENT_TIMEOUT", default=30.0)
    schema_token_budget: int = _opt("Tokens of schema a SQL prompt may carry.",
                                    "AIGIS_SCHEMA_TOKEN_BUDGET", default=3_000)
    sql_repairs: int = _opt("Times a failed query goes back to the model to be fixed.",
                            "AIGIS_SQL_REPAIRS", default=2)
    default_model: str | None = _opt("Model of threads that have not picked one.",
                                     "AIGIS_DEFAULT_MODEL", default=None)
    local_model_path: str | None = _opt("A GGUF file for the `local` model instead of the "
                                        "bundled Gemma 3 270M.", "AIGIS_LOCAL_MODEL_PATH",
                                        default=None)
    allowed_models: list[str] | None = _opt("Only these models (names or aliases) may be used; "
                                            "default: all.", "AIGIS_ALLOWED_MODELS", default=None)
    extra_models: dict[str, dict[str, str]] = _opt(
        "More OpenAI-compatible models: {name: {base_url, model, api_key_env}}.",
        "AIGIS_EXTRA_MODELS", default_factory=dict, repr=False)
    schema_synonyms: dict[str, list[str]] = _opt(
        "Words of questions and the schema words they mean, for picking tables.",
        "AIGIS_SCHEMA_SYNONYMS", default_factory=lambda: {k: list(v) for k, v in
                                                          DEFAULT_SYNONYMS.items()}, repr=False)
    refuse_privileged_logins: bool = _opt(
        "Refuse connections whose login is a superuser or may touch server files or settings "
        "(the parser alone would stand between a question and that power).",
        "AIGIS_REFUSE_PRIVILEGED", default=False)
    model_timeout_s: float = _opt(
        "Seconds a model may stay silent (before its first word, or between two) before the "
        "question fails with a timeout.", "AIGIS_MODEL_TIMEOUT_S", default=120.0)
    model_retries: int = _opt(
        "Times a model call is retried, with growing pauses, when the model server is "
        "rate limiting, failing (HTTP 5xx) or unreachable.", "AIGIS_MODEL_RETRIES", default=2)
    example_ranker: str = _opt(
        "How verified queries like a question are found: 'auto' (by meaning where the "
        "`embeddings` extra is installed, else by words), 'lexical' or 'embedding'.",
        "AIGIS_EXAMPLE_RANKER", default="auto")
    value_hints: bool = _opt(
        "Read the few distinct values of short text columns (never personal-looking ones) "
        "so that a question's words can be matched to real values.", "AIGIS_VALUE_HINTS",
        default=True)
    agent_tools: bool = _opt(
        "Let models with native tool calling drive their turn (look-ups, several queries, "
        "answers without SQL); off: every model takes the fixed two-call path.",
        "AIGIS_AGENT_TOOLS", default=True)
    query_candidates: bool = _opt(
        "For completion-style models (the embedded one): build candidate queries from the "
        "tables, columns and values a question names, run them beside the model's own, and "
        "keep the best; off: the model's query alone.", "AIGIS_QUERY_CANDIDATES",
        default=True)
    query_likelihood: bool = _opt(
        "When candidate queries disagree, also rank the close ones by the embedded model's "
        "likelihood of the question given each query (one short scoring pass per candidate). "
        "Off: with the bundled 270M model it did not choose better; try it with a larger "
        "GGUF.", "AIGIS_QUERY_LIKELIHOOD", default=False)
    agent_max_steps: int = _opt(
        "Tool calls a model with native tool calling may make in one turn (look-ups and "
        "queries) before it must answer.", "AIGIS_AGENT_MAX_STEPS", default=6)
    turn_lease_s: float = _opt("Seconds a running turn's lease lasts without a heartbeat; a "
                               "turn of a process that died frees its thread after this.",
                               "AIGIS_TURN_LEASE", default=15.0)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then the environment variables, then `overrides`."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = f.metadata.get("env")
            raw = env.get(name) if name else None
            if raw:
                values[f.name] = _parse(f, raw)
        values.update(overrides)
        return cls(**values)

    @classmethod
    def fields_help(cls) -> dict[str, tuple[Any, str, str | None]]:
        """`{name: (type annotation, help, env var)}` for doors that expose each setting."""
        return {f.name: (f.type, f.metadata.get("help", ""), f.metadata.get("env"))
                for f in dataclasses.fields(cls)}

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def store_url(self) -> str:
        """The store's SQLAlchemy URL; defaults to a SQLite file in the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'aigis.sqlite'}"

    @property
    def resolved_key_file(self) -> Path:
        return self.key_file or (self.data_dir / "master.key")


def _parse(f: dataclasses.Field[Any], raw: str) -> Any:
    """One environment value as the field's type; a bad one names the variable."""
    kind = str(f.type)
    try:
        if kind.startswith("Path"):
            return Path(raw).expanduser()
        if kind.startswith("bool"):
            low = raw.strip().lower()
            if low not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise ValueError("use true or false")
            return low in ("1", "true", "yes", "on")
        if kind.startswith("int"):
            return int(raw)
        if kind.startswith("float"):
            return float(raw)
        if kind.startswith("list"):
            return _split(raw)
        if kind.startswith("dict"):
            value = json.loads(raw)
            if not isinstance(value, dict):
                raise ValueError("not a JSON object")
            return value
    except ValueError as exc:
        raise BadInput(f"{f.metadata.get('env')}={raw!r} is not valid for {f.name}: {exc}. "
                       f"{f.metadata.get('help', '')}") from None
    return raw
