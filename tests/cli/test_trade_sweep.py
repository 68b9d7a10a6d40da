"""``qtis trade sweep``: a grid's best cells and the deflated Sharpe of the best, its JSON, and
clear refusals of grids and options it cannot sweep."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from cli.app import app


@pytest.fixture
def trade(market, tmp_path):
    env = {"QTIS_DATABASE_URL": market, "QTIS_HOME": str(tmp_path / ".qtis")}
    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["trade", *args], env=env)


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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--fast", "50:5:5"), "--fast '50:5:5': needs start <= stop and a step above 0"),
        (("--slow", "20:200"), "--slow '20:200': a range is start:stop:step"),
        (("--fast", "five"), "--fast 'five': expected whole numbers"),
        (("--fast", "60", "--slow", "20:50:10"), "no cell with fast < slow"),
        (("--signal", "model"), "only sma-cross grids are swept"),
        (("--quantity", "100"), "--quantity goes with --sizing fixed"),
        (("--slippage-bps", "-1"), "slippage_bps"),
    ],
)
def test_a_grid_it_cannot_sweep_is_refused_with_the_reason(trade, args, message):
    result = trade("sweep", *args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
