"""The settings base: unknown QTIS_ keys refused with the closest names, .env read beside the
environment, renamed variables kept as aliases, frozen values, and where each value came from."""

from __future__ import annotations

import pydantic
import pytest
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from core.errors import ConfigError, QtisError
from core.settings import QtisSettings, check_environment, describe, known_keys, to_markdown
from serving.settings import ServingSettings
from trading_runtime.settings import RiskLimits
from training.settings import TuningSettings


class Example(QtisSettings):
    model_config = SettingsConfigDict(env_prefix="QTIS_EXAMPLE_")

    port: int = Field(3100, description="a port")
    password: SecretStr | None = Field(None, description="a secret")
    url: str | None = Field(None, description="a URL with its password")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """No QTIS_ variable of the test runner's own, and a working directory without .env."""
    import os

    for key in [k for k in os.environ if k.upper().startswith("QTIS_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def test_an_unknown_key_is_refused_with_the_closest_names():
    with pytest.raises(ConfigError) as caught:
        check_environment({"QTIS_SERVE_PROT": "1", "PATH": "/bin"}, classes=[ServingSettings])
    message = str(caught.value)
    assert "unknown setting QTIS_SERVE_PROT" in message
    assert "did you mean QTIS_SERVE_PORT" in message
    assert isinstance(caught.value, QtisError)


def test_known_keys_and_other_prefixes_pass(tmp_path):
    env = {"QTIS_SERVE_PORT": "1", "QTIS_DBT_HOST": "h", "QTIS_OPTUNA_STORAGE": "x", "HOME": "/"}
    check_environment(env, env_file=tmp_path / "none", classes=[ServingSettings, TuningSettings])
    assert {"QTIS_TUNE_STORAGE", "QTIS_OPTUNA_STORAGE"} <= known_keys([TuningSettings])


def test_dotenv_is_read_its_unknown_qtis_keys_refused_and_others_ignored(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("QTIS_EXAMPLE_PORT=4000\nOTHER_TOOL=1\n")
    assert Example().port == 4000  # OTHER_TOOL is not an extra of Example (extra="forbid")
    monkeypatch.setenv("QTIS_EXAMPLE_PORT", "5000")
    assert Example().port == 5000  # the environment wins
    check_environment({}, classes=[Example])
    (tmp_path / ".env").write_text("QTIS_EXAMPLE_PROT=4000\n")
    with pytest.raises(ConfigError, match=r"QTIS_EXAMPLE_PROT.*QTIS_EXAMPLE_PORT"):
        check_environment({}, classes=[Example])


def test_a_renamed_variable_keeps_its_old_name(monkeypatch):
    monkeypatch.setenv("QTIS_OPTUNA_STORAGE", "postgresql://old")
    assert TuningSettings().storage == "postgresql://old"
    monkeypatch.setenv("QTIS_TUNE_STORAGE", "postgresql://new")
    assert TuningSettings().storage == "postgresql://new"  # the current name wins
    assert TuningSettings(storage="given").storage == "given"


def test_settings_are_frozen_and_refuse_unknown_fields():
    with pytest.raises(pydantic.ValidationError):
        Example().port = 1
    with pytest.raises(pydantic.ValidationError, match="bogus"):
        RiskLimits(bogus=1)


def test_describe_says_where_each_value_came_from_and_masks_secrets():
    settings = Example(url="postgresql://me:hunter2@db/qtis", password="hunter2")
    env = {"QTIS_EXAMPLE_PORT": "1"}
    lines = {line.env: line for line in describe(settings, environ=env, dotenv={})}
    assert lines["QTIS_EXAMPLE_PORT"].source == "env"
    assert lines["QTIS_EXAMPLE_PASSWORD"].value == "****"
    assert lines["QTIS_EXAMPLE_URL"].value == "postgresql://me:****@db/qtis"
    assert lines["QTIS_EXAMPLE_URL"].source == "argument"
    token = {
        line.env: line
        for line in describe(ServingSettings(api_token="a-token-of-16-chars"), {}, {})
    }
    assert token["QTIS_API_TOKEN"].value == "****"
    assert token["QTIS_SERVE_PORT"].source == "default"
    dotenv = {line.env: line for line in describe(Example(), {}, {"QTIS_EXAMPLE_PORT": "2"})}
    assert dotenv["QTIS_EXAMPLE_PORT"].source == ".env"


def test_markdown_names_the_old_names_of_renamed_variables():
    table = to_markdown(describe(TuningSettings.model_construct(), {}, {}))
    assert "| `QTIS_TUNE_STORAGE` (or `QTIS_OPTUNA_STORAGE`) |" in table
    assert "### TuningSettings" in table
