"""One configuration: every operator setting is a `Settings` field, filled from the
environment the same way in every door, and documented in the README."""

from __future__ import annotations

from pathlib import Path

import pytest

from aigis_jupyter.errors import BadInput
from aigis_jupyter.settings import DEFAULT_SYNONYMS, Settings

README = Path(__file__).resolve().parent.parent / "README.md"


def test_environment_fills_each_type() -> None:
    s = Settings.from_env({
        "AIGIS_MAX_ROWS": "500", "AIGIS_STATEMENT_TIMEOUT": "2.5",
        "MASTER_ENCRYPTION_KEY": "new, old", "AIGIS_ALLOWED_MODELS": "local,gpt5",
        "AIGIS_EXTRA_MODELS": '{"mine": {"base_url": "http://127.0.0.1:9/v1"}}',
        "AIGIS_DATA_DIR": "~/x", "AIGIS_DEFAULT_MODEL": "local",
    })
    assert s.max_rows == 500 and s.statement_timeout_s == 2.5
    assert s.master_keys == ["new", "old"] and s.allowed_models == ["local", "gpt5"]
    assert s.extra_models == {"mine": {"base_url": "http://127.0.0.1:9/v1"}}
    assert s.data_dir == Path("~/x").expanduser() and s.default_model == "local"
    assert "new" not in repr(s) and "old" not in repr(s)


def test_overrides_win_and_defaults_stand() -> None:
    s = Settings.from_env({"AIGIS_MAX_ROWS": "500"}, max_rows=7)
    assert s.max_rows == 7 and s.sql_repairs == 2
    assert s.schema_synonyms == DEFAULT_SYNONYMS and s.schema_synonyms is not DEFAULT_SYNONYMS


@pytest.mark.parametrize(("var", "value"), [("AIGIS_MAX_ROWS", "lots"),
                                            ("AIGIS_EXTRA_MODELS", "[1, 2]"),
                                            ("AIGIS_STATEMENT_TIMEOUT", "soon")])
def test_a_bad_value_names_its_variable(var: str, value: str) -> None:
    with pytest.raises(BadInput, match=var):
        Settings.from_env({var: value})


def test_every_setting_is_documented_with_its_variable() -> None:
    text = README.read_text()
    for name, (_type, help_text, env) in Settings.fields_help().items():
        assert help_text, f"{name} has no help text"
        assert env, f"{name} has no environment variable"
        assert f"| `{env}` | `{name}` |" in text, f"README does not document {name} ({env})"
