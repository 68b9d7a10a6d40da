"""Walk-forward backtests: the plan purges the label horizon between training and trading, no
window is traded by a model that saw its labels, the windows stitch into one out-of-sample
curve (per-window fits: tests/training/test_walkforward_fit.py; the champion source, with real
registered models: tests/serving/test_service.py and test_champion_source.py)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import numpy as np
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cli.app import app
from quant.conventions import Conventions
from registry.promotions import champions
from registry.settings import TrackingSettings
from serving.settings import ServingSettings
from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.runs import report
from trading_runtime.settings import RuntimeSettings
from trading_runtime.walkforward import (
    LeakageError,
    PlanError,
    WalkForwardSettings,
    Window,
    assert_unseen,
    plan_windows,
    walk_forward,
)
from trading_runtime.walkforward_sources import model_source

SYMBOLS = ["AAPL", "MSFT"]
SMALL = {"train_bars": 250, "test_bars": 40, "xgb_estimators": 15}
STRATEGY = StrategyConfig(signal="model", sizing="fixed", quantity=100, rebalance=False)


# --- the plan ---------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(
    n_days=st.integers(60, 700),
    windows=st.integers(1, 6),
    train_bars=st.integers(20, 200),
    test_bars=st.integers(2, 60),
    horizon=st.integers(1, 25),
    extra=st.integers(0, 5),
    anchored=st.booleans(),
    repeats=st.integers(1, 3),
)
def test_windows_are_purged_and_tile_the_traded_span(
    n_days, windows, train_bars, test_bars, horizon, extra, anchored, repeats
):
    days = np.arange(np.datetime64("2001-01-01"), np.datetime64("2001-01-01") + n_days)
    timeline = np.tile(days, repeats)  # one date per bar and symbol: repeats are fine
    mode = "anchored" if anchored else "rolling"
    purge = horizon + extra
    need = train_bars + purge + windows * test_bars
    if n_days < need:
        with pytest.raises(PlanError, match=f"need {need} bars; there are {n_days}"):
            plan_windows(timeline, windows, train_bars, test_bars, horizon, mode, purge)
        return
    plan = plan_windows(timeline, windows, train_bars, test_bars, horizon, mode, purge)
    at = {d.item(): i for i, d in enumerate(days)}
    assert [w.number for w in plan] == list(range(windows))
    traded = [i for w in plan for i in range(at[w.test_start], at[w.test_end] + 1)]
    assert traded == list(range(n_days - windows * test_bars, n_days))  # tiled, no overlap
    for w in plan:
        assert at[w.test_end] - at[w.test_start] + 1 == test_bars
        assert w.train_start <= w.train_end < w.test_start
        gap = at[w.test_start] - at[w.train_end] - 1
        assert gap == w.purged == purge >= horizon  # a training label ends before trading
        span = at[w.train_end] - at[w.train_start] + 1
        first = w.number == 0 or not anchored
        assert span == (train_bars if first else train_bars + w.number * test_bars)
    assert len({w.train_start for w in plan}) == (1 if anchored else windows)


def test_an_impossible_plan_or_a_short_purge_is_refused():
    days = np.arange(np.datetime64("2010-01-01"), np.datetime64("2010-04-11"))
    with pytest.raises(PlanError, match=r"need 210 bars; there are 100 \(2010-01-01 to"):
        plan_windows(days, 3, 100, 30, 20)
    with pytest.raises(PlanError, match="at least the longest horizon"):
        plan_windows(days, 1, 20, 10, 20, purge=5)


def test_a_model_that_saw_the_labels_of_a_window_may_not_trade_it():
    window = Window(0, date(2011, 1, 3), date(2011, 12, 1), date(2012, 1, 3), date(2012, 3, 1), 20)
    assert_unseen(window, date(2012, 1, 2))
    assert_unseen(window, datetime(2011, 12, 30, tzinfo=UTC))
    for seen in (date(2012, 1, 3), date(2012, 2, 1), datetime(2012, 1, 3, tzinfo=UTC)):
        with pytest.raises(LeakageError, match=r"w00 trades 2012-01-03 to 2012-03-01.*2012-"):
            assert_unseen(window, seen)
    with pytest.raises(LeakageError, match="label end is unknown"):
        assert_unseen(window, None)
    assert issubclass(LeakageError, ValueError)


# --- retrain: a model per window --------------------------------------------------------------


@pytest.mark.slow
def test_retrain_walk_forward_trades_each_window_unseen_and_stitches(built):
    url, _ = built
    config = RunConfig(stream="wf-retrain", symbols=SYMBOLS, strategies=[STRATEGY])
    settings = WalkForwardSettings(windows=3, mode="rolling", **SMALL)
    found = walk_forward(
        url,
        config,
        model_source(url, settings, ServingSettings(), TrackingSettings()),
        settings,
        RuntimeSettings(),
        Conventions(),
    )

    assert [w.stream for w in found.windows] == [f"wf-retrain-w0{k}" for k in range(3)]
    for r in found.windows:
        w = r.window
        assert r.skipped is None and r.model == f"xgboost fit on {w.name}"
        assert w.train_end <= r.trained_through <= r.label_end < w.test_start
        assert r.training_rows > 0 and r.metrics["total"]["bars"] > 0
        curve = report(url, r.stream, Conventions()).equity_curve
        assert w.test_start <= date.fromisoformat(curve[0]["ts"][:10])
        assert date.fromisoformat(curve[-1]["ts"][:10]) <= w.test_end
        book = report(
            url, r.stream, Conventions()
        ).book  # flattened at the window's end: its P&L is its own
        assert not any(p.quantity for p in book.accounts["main"].positions.values())
    assert sum(r.fills for r in found.windows) == len(found.fills) > 0
    assert {f["window"] for f in found.fills} <= {"w00", "w01", "w02"}

    initial = found.metrics["initial"]
    equity = [p["equity"] for p in found.equity_curve]
    assert equity[0] == pytest.approx(initial)
    chained = initial * np.prod([1 + r.metrics["total"]["total_return"] for r in found.windows])
    assert equity[-1] == pytest.approx(chained, rel=1e-9)
    assert found.metrics["total_return"] == pytest.approx(equity[-1] / initial - 1)
    assert found.metrics["bars"] == len(equity) == len(found.baseline["equity_curve"])
    assert found.baseline["equity_curve"][0]["equity"] == pytest.approx(initial)
    assert {"sharpe", "max_drawdown", "alpha", "beta"} <= set(found.metrics)
    assert json.dumps(found.to_json(), default=str)


# --- champion: the champion of each window's day ----------------------------------------------


def _promote(url: str, when: date, version: str, decision: str = "promoted") -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "insert into mlops.promotions (decided_at, model, version, run_id, decision, gates,"
            " reason, actor) values (%s, 'qtis-xgboost', %s, %s, %s, '{}', 'test', 'test')",
            (datetime.combine(when, datetime.min.time(), UTC), version, f"run-{version}", decision),
        )


def test_champions_are_the_versions_that_held_the_alias_in_decision_order(built):
    url, _ = built
    with psycopg.connect(url) as conn:
        conn.execute("delete from mlops.promotions")
    assert champions(url) == []
    _promote(url, date(2001, 1, 1), "1")
    _promote(url, date(2001, 2, 1), "2", "rejected")  # a rejection installs nothing
    _promote(url, date(2001, 3, 1), "3", "forced")
    assert champions(url) == [("qtis-xgboost", "1"), ("qtis-xgboost", "3")]
    _promote(url, date(2001, 4, 1), "1", "rolled_back")
    assert champions(url) == [("qtis-xgboost", "3"), ("qtis-xgboost", "1")]


# --- the command --------------------------------------------------------------------------------


@pytest.mark.slow
def test_walkforward_command_prints_windows_and_writes_json(built, tmp_path):
    url, _ = built
    env = {
        "QTIS_DATABASE_URL": url,
        "QTIS_HOME": str(tmp_path / ".qtis"),
        "QTIS_WALKFORWARD_XGB_ESTIMATORS": "10",
    }
    runner = CliRunner()

    def trade(*args: str):
        return runner.invoke(app, ["trade", "walkforward", *args], env=env)

    out = tmp_path / "wf.json"
    common = ["--symbols", "AAPL,MSFT", "--sizing", "fixed", "--quantity", "100"]
    plan = ["--windows", "2", "--train-bars", "250", "--test-bars", "30", "--mode", "anchored"]
    result = trade(*common, *plan, "--stream", "cli-wf", "--json-out", str(out))
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "w00" in text and "w01" in text and "buy-and-hold" in text and "Sharpe" in text
    written = json.loads(out.read_text())
    assert {"metrics", "windows", "equity_curve", "fills", "baseline"} <= set(written)
    assert [w["stream"] for w in written["windows"]] == ["cli-wf-w00", "cli-wf-w01"]
    assert all(w["label_end"] < w["test_start"] for w in written["windows"])
    assert written["settings"]["mode"] == "anchored" and written["settings"]["purge"] == 20

    again = trade(*common, *plan, "--stream", "cli-wf")
    assert again.exit_code == 2 and "already exists" in again.output
    huge = trade(*common, "--windows", "50", "--test-bars", "500", "--stream", "cli-wf-huge")
    assert huge.exit_code == 2 and "need" in huge.output and "--windows" in huge.output
    bad = trade(*common, "--mode", "sideways")
    assert bad.exit_code == 2 and "--mode" in bad.output
    pairs = tmp_path / "pairs.yaml"  # rules walk forward too: nothing fitted, warm-up only
    pairs.write_text(
        "strategies:\n  - {name: pairs, signal: pairs, sizing: equal,"
        " limits: {allow_short: true}, pairs: {formation: 120, entry_z: 1.5}}\n"
    )
    rules = trade(*plan, "--strategies", str(pairs), "--stream", "cli-wf-pairs")
    text = " ".join(rules.output.split())
    assert rules.exit_code == 0 and "w01" in text and "rules" in text, rules.output

    with psycopg.connect(url) as conn:
        conn.execute("delete from mlops.promotions")
    nobody = trade(*common, *plan, "--source", "champion", "--stream", "cli-wf-champion")
    text = " ".join(nobody.output.split())
    assert nobody.exit_code == 1 and "no model has held @champion" in text, nobody.output
    assert "no window was traded" in text
