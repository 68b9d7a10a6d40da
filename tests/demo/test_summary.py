"""The demo's summary reads back what the run stored: the backtest and walk-forward JSON as the
runtime writes them, and ``--synthetic`` refuses what would mix with another warehouse."""

from __future__ import annotations

import json
import os

import pytest

from demo.run import synthetic_home
from demo.summary import _backtest_line, _walk_forward_line


def metrics(total: float, sharpe: float) -> dict:
    return {"total_return": total, "sharpe": sharpe, "max_drawdown": -0.1, "bars": 490}


def test_the_summary_lines_come_from_the_stored_reports(tmp_path):
    for name, m in {"champion": metrics(0.05, 0.7), "buy_and_hold": metrics(0.2, 0.8)}.items():
        (tmp_path / f"backtest_{name}.json").write_text(json.dumps({"metrics": {"acct": m}}))
    line = _backtest_line(tmp_path)
    assert "champion: return 5.00%, Sharpe 0.70" in line and "buy_and_hold: return 20.00%" in line
    assert "490 bars out of sample" in line
    walk = tmp_path / "walkforward.json"
    assert _walk_forward_line(walk) == "not run"
    baseline = {"name": "b&h", "metrics": metrics(0.03, 0.3)}
    stored = {"metrics": metrics(0.01, 0.4), "windows": [{}, {}, {}], "baseline": baseline}
    walk.write_text(json.dumps(stored))
    assert _walk_forward_line(walk) == (
        "stitched return 1.00%, Sharpe 0.40; buy-and-hold 3.00%, Sharpe 0.30 (3 windows)"
    )
    assert _backtest_line(tmp_path / "none") == "no backtest ran"


def test_synthetic_runs_in_a_home_of_its_own(tmp_path, monkeypatch):
    monkeypatch.setenv("QTIS_HOME", str(tmp_path))
    monkeypatch.delenv("QTIS_DATABASE_URL", raising=False)
    with pytest.raises(SystemExit, match="at least 2 symbols"):
        synthetic_home(1)
    synthetic_home(8)
    assert os.environ["QTIS_HOME"] == str(tmp_path / "synthetic-8")
    assert os.environ["DAGSTER_HOME"] == str(tmp_path / "synthetic-8" / "dagster")
    monkeypatch.setenv("QTIS_DATABASE_URL", "postgresql://elsewhere/db")
    with pytest.raises(SystemExit, match="unset QTIS_DATABASE_URL"):
        synthetic_home(8)
