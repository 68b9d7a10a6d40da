"""``qtis config show`` and how the command line ends on a user's error: one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from cli.config import SETTINGS
from core.settings import SETTINGS_MODULES, registered
from warehouse.db import sqlalchemy_url

runner = CliRunner()


def test_every_settings_class_is_shown():
    shown = set(SETTINGS)
    missing = [c for c in registered() if c not in shown and not c.__module__.startswith("tests")]
    assert missing == []


def test_the_environment_check_imports_every_settings_module():
    assert {c.__module__ for c in SETTINGS} == set(SETTINGS_MODULES)


def test_show_json_has_every_variable_its_value_and_source(monkeypatch):
    monkeypatch.setenv("QTIS_SERVE_PORT", "3999")
    monkeypatch.setenv("QTIS_API_TOKEN", "hunter2-hunter2-hunter2")
    result = runner.invoke(app, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    lines = {line["env"]: line for line in json.loads(result.output)}
    assert lines["QTIS_SERVE_PORT"] | {"description": ""} == {
        "env": "QTIS_SERVE_PORT",
        "value": "3999",
        "source": "env",
        "description": "",
        "group": "ServingSettings",
        "aliases": [],
    }
    assert lines["QTIS_API_TOKEN"]["value"] == "****"
    assert lines["QTIS_TUNE_STORAGE"]["aliases"] == ["QTIS_OPTUNA_STORAGE"]
    assert {"QTIS_HOME", "QTIS_RISK_MAX_VAR", "QTIS_DRIFT_METHOD", "QTIS_FIX_HOST"} <= set(lines)


def test_show_table_and_markdown(monkeypatch):
    monkeypatch.setenv("QTIS_TRADE_CAPITAL", "5")
    table = runner.invoke(app, ["config", "show"])
    assert table.exit_code == 0 and "QTIS_TRADE_CAPITAL" in table.output
    page = runner.invoke(app, ["config", "show", "--markdown"])
    assert page.exit_code == 0
    assert page.output.startswith("# Configuration")
    assert "| `QTIS_TRADE_CAPITAL` | `1000000.0` |" in page.output  # defaults, not this shell


def test_the_configuration_page_is_the_generators_output(monkeypatch):
    monkeypatch.setenv("QTIS_SERVE_PORT", "3999")  # the page shows defaults, not this shell
    page = Path(__file__).parents[2] / "docs" / "configuration.md"
    result = runner.invoke(app, ["config", "show", "--markdown"])
    assert result.exit_code == 0, result.output
    assert result.output == page.read_text(), (
        "stale: `qtis config show --markdown > docs/configuration.md`"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"QTIS_SERVE_PROT": "1"}, "unknown setting QTIS_SERVE_PROT (did you mean QTIS_SERVE_PORT"),
        ({"QTIS_SERVE_PORT": "x"}, "QTIS_SERVE_PORT: Input should be a valid integer"),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_2(env, message):
    result = runner.invoke(app, ["config", "show"], env=env)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_train_before_the_features_names_the_command_to_run(qtis_env):
    result = runner.invoke(app, ["train", "--model", "xgboost", "--no-tuned", "--no-track"])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert "features.training_set does not exist yet: run `qtis features build` first" in said
    assert "select" not in said  # not the SQL


def test_model_backtest_before_a_champion_names_the_command_to_run(qtis_env):
    env = {"QTIS_MLFLOW_TRACKING_URI": sqlalchemy_url(qtis_env)}
    result = runner.invoke(app, ["trade", "backtest", "--signal", "model"], env=env)
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert "no model holds @champion: promote one first (`qtis models promote`" in said
    assert result.exception is None or isinstance(result.exception, SystemExit)
