"""The model registry: names, aliases, availability from the environment, admin config."""

from __future__ import annotations

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

from aigis_jupyter.errors import BadInput, ModelError
from aigis_jupyter.models import ModelInfo, ModelRegistry, normalize_openai_base_url

KEY = "sk-test-DO-NOT-LEAK-1234567890"


def names(reg: ModelRegistry) -> list[str]:
    return [m.name for m in reg.list()]


def test_builtin_names_and_aliases(settings) -> None:
    reg = ModelRegistry(settings)
    assert {"qwen3-8b", "gpt-oss-20b", "deepseek-chat", "gemini-2.5-pro", "gpt-5", "local"} <= set(
        names(reg)
    )
    for alias, name in [("qwen", "qwen3-8b"), ("gpt_oss", "gpt-oss-20b"),
                        ("gpt-oss", "gpt-oss-20b"),
                        ("deepseek", "deepseek-chat"), ("gemini", "gemini-2.5-pro"),
                        ("gemini-pro", "gemini-2.5-pro"), ("gpt5", "gpt-5"), ("GPT5", "gpt-5")]:
        assert reg.resolve(alias, require_available=False).name == name


@pytest.mark.parametrize(
    ("var", "model"),
    [("LM_STUDIO_ENDPOINT", "qwen3-8b"), ("LM_STUDIO_ENDPOINT", "gpt-oss-20b"),
     ("DEEPSEEK_API_KEY", "deepseek-chat"), ("OPENAI_API_KEY", "gpt-5")],
)
def test_availability_follows_the_environment(settings, monkeypatch, var: str, model: str) -> None:
    reg = ModelRegistry(settings)
    info = reg.resolve(model, require_available=False)
    assert not info.available and var in info.reason
    with pytest.raises(BadInput) as exc:
        reg.resolve(model)
    assert var in exc.value.message and exc.value.reason == "model_unavailable"
    monkeypatch.setenv(var, "http://127.0.0.1:1234" if var == "LM_STUDIO_ENDPOINT" else KEY)
    assert reg.resolve(model).available  # read at call time: no restart needed


def test_gemini_needs_key_and_provider_package(settings, monkeypatch) -> None:
    import importlib.util

    monkeypatch.setenv("GOOGLE_API_KEY", KEY)
    info = ModelRegistry(settings).resolve("gemini", require_available=False)
    if importlib.util.find_spec("langchain_google_genai") is None:
        assert not info.available and "aigis-jupyter[gemini]" in info.reason
    else:
        assert info.available


def test_unknown_model_lists_available_ones(settings, monkeypatch) -> None:
    monkeypatch.setenv("DEEPSEEK_API_KEY", KEY)
    reg = ModelRegistry(settings)
    with pytest.raises(BadInput) as exc:
        reg.resolve("claude-9")
    msg = exc.value.message
    assert "Unknown model 'claude-9'" in msg and "deepseek-chat" in msg
    assert exc.value.reason == "unknown_model" and "%aigis" not in msg
    assert exc.value.action == {"kind": "pick_model", "choices": reg.available_names()}
    with pytest.raises(ModelError):
        reg.chat_model("claude-9")


def test_lm_studio_endpoint_is_normalised(settings, monkeypatch) -> None:
    assert normalize_openai_base_url("http://0.0.0.0:1234") == "http://0.0.0.0:1234/v1"
    assert normalize_openai_base_url("http://h:1/v1/") == "http://h:1/v1"
    assert normalize_openai_base_url("localhost:11434") == "http://localhost:11434/v1"
    monkeypatch.setenv("LM_STUDIO_ENDPOINT", "http://127.0.0.1:1234/")
    model = ModelRegistry(settings).chat_model("qwen")
    assert str(model.openai_api_base) == "http://127.0.0.1:1234/v1"
    assert model.model_name == "qwen/qwen3-8b"


def test_allowed_models_restricts_the_list(settings, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("DEEPSEEK_API_KEY", KEY)
    settings.allowed_models = ["deepseek", "local"]
    reg = ModelRegistry(settings)
    assert set(names(reg)) == {"deepseek-chat", "local"}
    with pytest.raises(BadInput) as exc:
        reg.resolve("gpt-5")
    assert exc.value.reason == "model_not_allowed" and "deepseek-chat" in exc.value.message


def test_extra_models_from_admin_config(settings, monkeypatch) -> None:
    settings.extra_models = {
        "llama3-70b": {"base_url": "http://10.0.0.5:8000", "model": "meta/llama3-70b",
                       "api_key_env": "VLLM_KEY", "aliases": "llama, l3"},
        "ollama-phi": {"base_url": "http://127.0.0.1:11434", "model": "phi3"},
    }
    reg = ModelRegistry(settings)
    assert reg.resolve("ollama-phi").available  # no key needed
    info = reg.resolve("llama", require_available=False)
    assert info.name == "llama3-70b" and info.provider == "openai_compatible"
    assert not info.available and "VLLM_KEY" in info.reason
    monkeypatch.setenv("VLLM_KEY", KEY)
    model = reg.chat_model("l3")
    assert str(model.openai_api_base) == "http://10.0.0.5:8000/v1"
    assert model.model_name == "meta/llama3-70b"
    settings.extra_models["ollama-phi"].update(max_tokens="64", prompt_style="completion")
    assert reg.resolve("ollama-phi").prompt_style == "completion"
    phi = reg.chat_model("ollama-phi")  # a base model: the completions endpoint, as written
    assert type(phi).__name__ == "CompletionChatModel" and phi.llm.max_tokens == 64


def test_local_model_reports_no_tools(settings) -> None:
    info = ModelRegistry(settings).resolve("local", require_available=False)
    assert info.supports_tools is False and info.prompt_style == "completion"
    assert info.provider == "llama_cpp"


def test_local_model_with_missing_gguf_path_is_unavailable(settings, tmp_path) -> None:
    settings.local_model_path = str(tmp_path / "nope.gguf")
    info = ModelRegistry(settings).resolve("local", require_available=False)
    assert not info.available and "nope.gguf" in info.reason


def test_register_and_cache(settings) -> None:
    reg = ModelRegistry(settings)
    built: list[int] = []

    def factory() -> GenericFakeChatModel:
        built.append(1)
        return GenericFakeChatModel(messages=iter(["hi"]))

    reg.register(ModelInfo(name="fake", provider="fake", aliases=("f",)), factory)
    assert reg.chat_model("f") is reg.chat_model("fake")
    assert len(built) == 1
    assert "fake" in reg.available_names()


def test_keys_never_in_reprs(settings, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("DEEPSEEK_API_KEY", KEY)
    settings.master_keys = ["also-secret-master-key"]
    reg = ModelRegistry(settings)
    texts = [repr(reg), str(reg), repr(reg.chat_model("gpt-5")), repr(reg.chat_model("deepseek")),
             repr(reg.list()), str([m.to_dict() for m in reg.list()])]
    for t in texts:
        assert KEY not in t and "also-secret-master-key" not in t


def test_chat_model_for_unavailable_model_is_a_model_error(settings) -> None:
    with pytest.raises(ModelError) as exc:
        ModelRegistry(settings).chat_model("gpt-5")
    assert "OPENAI_API_KEY" in exc.value.message
