"""``qtis trade sweep``: a grid's best cells and the deflated Sharpe of the best, its JSON, and
clear refusals of grids and options it cannot sweep."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cli import trade_sweep
from cli.app import app
from serving.predictor import Predictor
from serving.settings import ServingSettings
from tests.support.momentum import momentum_model
from warehouse.db import sqlalchemy_url


@pytest.fixture
def trade(market, tmp_path):
    base = {"QTIS_DATABASE_URL": market, "QTIS_HOME": str(tmp_path / ".qtis")}
    runner = CliRunner()
    return lambda *args, env=None: runner.invoke(app, ["trade", *args], env=base | (env or {}))


def test_sweep_prints_the_best_cells_and_the_deflated_sharpe(trade, tmp_path):
    out = tmp_path / "sweep.json"
    args = ("--fast", "5:20:5", "--slow", "30:60:10", "--start", "2011-01-03")
    result = trade("sweep", *args, "--target-vol", "0.1,0.2", "--json-out", str(out))
    assert result.exit_code == 0, result.output
    assert "best 10 of 32 cells" in result.output and "deflated Sharpe" in result.output
    written = json.loads(out.read_text())
    assert written["n_cells"] == 32 == len(written["cells"])  # 4 fast x 4 slow x 2 vol targets
    assert written["deflated_sharpe"]["n_trials"] == 32
    best = written["best"]
    assert best["sharpe"] == max(c["sharpe"] for c in written["cells"])
    assert {c["size"] for c in written["cells"]} == {0.1, 0.2}
    # the kernel's one-off compile (or cache load) is reported apart from the grid's trading
    assert written["compile_seconds"] > 0 and written["seconds"] > 0
    assert "s compiling the kernel" in " ".join(result.output.split())


def test_a_model_sweep_grids_thresholds_with_sizing(trade, market, tmp_path, monkeypatch):
    """The champion's forecasts (here a stand-in served by the real in-process predictor, as
    `qtis trade backtest` would load it) traded at each threshold x target vol."""
    model = Predictor.of(market, momentum_model(), ServingSettings(serve_shadow_log=False))
    monkeypatch.setattr(trade_sweep, "model_client", lambda *args: model)
    out = tmp_path / "model.json"
    args = ("--signal", "model", "--threshold", "0:0.02:0.01", "--target-vol", "0.1,0.2")
    result = trade("sweep", *args, "--start", "2011-01-03", "--json-out", str(out))
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "best 6 of 6 cells" in said and "best cell threshold" in said
    written = json.loads(out.read_text())
    cells = written["cells"]
    assert {(c["threshold"], c["size"]) for c in cells} == {
        (h, v) for h in (0.0, 0.01, 0.02) for v in (0.1, 0.2)
    }
    assert written["deflated_sharpe"]["n_trials"] == 6 and "fast" not in cells[0]
    by = {(c["threshold"], c["size"]): c["fills"] for c in cells}
    assert by[0.0, 0.1] > by[0.02, 0.1] > 0  # a higher threshold acts on fewer forecasts


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--fast", "50:5:5"), "--fast '50:5:5': needs start <= stop and a step above 0"),
        (("--slow", "20:200"), "--slow '20:200': a range is start:stop:step"),
        (("--fast", "five"), "--fast 'five': expected whole numbers"),
        (("--fast", "60", "--slow", "20:50:10"), "no cell with fast < slow"),
        (("--signal", "rsi"), "--signal 'rsi': sma-cross or model"),
        (("--threshold", "0:0.004:0.001"), "--threshold goes with --signal model"),
        (("--signal", "model", "--fast", "5:20:5"), "--fast and --slow go with --signal sma-cross"),
        (("--signal", "model", "--threshold", "-1"), "--threshold '-1': every value must be"),
        (("--in-sample",), "--in-sample goes with --signal model"),
        (("--quantity", "100"), "--quantity goes with --sizing fixed"),
        (("--slippage-bps", "-1"), "slippage_bps"),
    ],
)
def test_a_grid_it_cannot_sweep_is_refused_with_the_reason(trade, args, message):
    result = trade("sweep", *args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


def test_a_model_sweep_without_a_champion_says_to_promote_one(trade, market):
    result = trade("sweep", "--signal", "model", "--threshold", "0:0.004:0.001",
                   env={"QTIS_MLFLOW_TRACKING_URI": sqlalchemy_url(market)})  # fmt: skip
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert "no model holds @champion: promote one first (`qtis models promote`" in said
