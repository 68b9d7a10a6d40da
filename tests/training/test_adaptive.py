"""The adaptive combiners: the weights at a bar see only labels known at that bar, the member
that has been better lately gets the weight (vote) or the choice (select), every combiner is
scored next to the members, and the weights over time are stored in mlops and read back
(`qtis models weights`)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.app import app
from quant.splits import PurgedWalkForward
from training.adaptive import REGIMES, SelectionEnsemble, VotingEnsemble, fit_out_of_fold
from training.data import TrainingData
from training.ensemble import evaluate_ensemble
from training.ensemble_series import load_series, save_series, weight_series
from training.evaluate import evaluate
from training.models.tabular import ZeroModel

HORIZONS = (1, 5)


def _data(n_times: int = 400, symbols: int = 2, seed: int = 0) -> TrainingData:
    rng = np.random.default_rng(seed)
    n = n_times * symbols
    ts = np.tile(np.arange(n_times).astype("datetime64[D]").astype("datetime64[us]"), symbols)
    returns = rng.normal(0, 0.01, size=(n, len(HORIZONS))).astype(np.float32)
    return TrainingData(
        symbols=np.repeat([f"S{i}" for i in range(symbols)], n_times), ts=ts,
        features=rng.lognormal(size=(n, 1)).astype(np.float32), returns=returns,
        volatility=np.abs(returns), feature_names=("hv_20",), horizons=HORIZONS,
    )  # fmt: skip


def _noisy(truth: np.ndarray, scale: np.ndarray | float, seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).normal(size=truth.shape)
    return (truth + noise * np.reshape(scale, (-1, 1))).astype(np.float32)


@pytest.mark.parametrize("kind", ["vote", "select"])
def test_the_weights_at_a_bar_never_see_a_label_unknown_there(kind):
    """Labels and predictions of the bars at or after t - h + 1 (whose horizon-h label is not
    known at t) are changed at will: the weights at t stay; changing bar t - h moves them."""
    data = _data()
    rows = np.flatnonzero(data.ts >= data.ts[100])  # out of fold from bar 100
    steps = np.searchsorted(np.unique(data.ts), data.ts[rows])
    truth = data.returns[rows]
    predictions = np.stack([_noisy(truth, 0.01, 1), _noisy(truth, 0.02, 2)], axis=1)
    t = 250

    def weights(data, predictions):
        combiner = fit_out_of_fold(kind, ("a", "b"), data, rows, predictions, "hv_20", 30)
        return combiner.weights_at(np.array([t]))[0]

    before = weights(data, predictions)
    assert not np.allclose(before, 1 / 2)  # errors were known: not the equal weights
    rng = np.random.default_rng(3)
    for i, h in enumerate(HORIZONS):
        for first_changed, moves in ((t - h + 1, False), (t - h, True)):
            late = rows[steps >= first_changed]
            returns = data.returns.copy()
            returns[late, i] = rng.normal(0, 0.05, len(late))  # the member "b" looks perfect
            changed = predictions.copy()
            changed[steps >= first_changed, 1, i] = returns[late, i]
            changed[steps >= first_changed, 0, i] += 1.0
            after = weights(replace(data, returns=returns), changed)
            other = [j for j in range(len(HORIZONS)) if j != i]
            np.testing.assert_array_equal(after[:, other], before[:, other])
            assert np.array_equal(after[:, i], before[:, i]) is not moves, (h, first_changed)


def test_the_recently_better_member_gets_the_weight_and_the_choice():
    """'early' is the better member for the first 150 bars, 'late' afterwards; in the high
    regime 'early' stays better throughout. Weights follow with a lag of at most lookback + h."""
    n, lookback, min_rows = 300, 20, 10
    steps = np.arange(n)
    rng = np.random.default_rng(0)
    returns = rng.normal(0, 0.01, size=(n, 1))
    regime = np.where(steps % 2 == 0, 0.0, 1.0)  # even bars low, odd bars high
    late_wins = (steps >= 150) & (regime == 0)
    high_later = (steps >= 150) & (regime == 1)
    early = _noisy(returns, np.where(late_wins, 0.03, np.where(high_later, 0.003, 0.005)), 1)
    late = _noisy(returns, np.where(late_wins, 0.005, np.where(high_later, 0.01, 0.03)), 2)
    predictions = np.stack([early, late], axis=1)
    known = (steps + 1)[:, None]
    vote = VotingEnsemble(("early", "late"), (1,), lookback, min_rows)
    vote.fit(predictions, regime, returns, known, threshold=0.5)
    select = SelectionEnsemble(("early", "late"), (1,), lookback, min_rows)
    select.fit(predictions, regime, returns, known, threshold=0.5)
    pooled, low, high = (REGIMES.index(r) for r in ("pooled", "low_vol", "high_vol"))
    at = vote.weights_at(np.array([140, 299]))[:, pooled, 0]  # (bars, members)
    assert at[0, 0] > 0.9 and at[1, 1] > 0.6  # early, then late ahead (pooled over regimes)
    np.testing.assert_allclose(vote.weights_at(steps).sum(axis=-1), 1.0)
    chosen = select.weights_at(np.array([5, 140, 299]))[..., 0, :]  # (bars, regimes, members)
    np.testing.assert_array_equal(chosen[0], 0.5)  # too few known errors yet: equal weights
    np.testing.assert_array_equal(chosen[1, low], [1, 0])
    np.testing.assert_array_equal(chosen[2, low], [0, 1])  # the low regime switched to 'late'
    np.testing.assert_array_equal(chosen[2, high], [1, 0])  # the high one did not
    mixed = select.combine(predictions[-2:], regime[-2:], steps[-2:])
    np.testing.assert_array_equal(mixed[:, 0], [late[-2, 0], early[-1, 0]])  # low, then high


def test_every_combiner_is_scored_and_the_registered_weights_are_the_last_known():
    """evaluate_ensemble reports the chosen combiner as 'ensemble' and the other two next to
    the members; the registered weights are the selection's as of the last bar, and the series
    holds the weights of every out-of-sample bar."""
    data = _data(n_times=500)
    splitter = PurgedWalkForward(n_splits=3, horizon=max(HORIZONS), first_test=0.4)
    baselines = evaluate(data, {"zero": ZeroModel}, splitter, window=1)
    rows = np.concatenate(baselines.fold_rows)
    folds = np.concatenate([np.full(len(r), k) for k, r in enumerate(baselines.fold_rows)])
    truth = data.returns[rows]
    members = {"sharp": _noisy(truth, 0.002, 1), "blunt": _noisy(truth, 0.02, 2)}
    frames = {
        name: pd.DataFrame({"symbol": data.symbols[rows], "ts": data.ts[rows], "fold": folds})
        .assign(**{f"pred_h{h}": pred[:, i] for i, h in enumerate(HORIZONS)})
        for name, pred in members.items()
    }  # fmt: skip
    result = evaluate_ensemble(data, frames, baselines, combiner="select", lookback=30)
    report = result.evaluation.to_dict()["models"]
    assert {"sharp", "blunt", "ensemble", "ensemble_stack", "ensemble_vote", "zero"} == set(report)
    assert result.combiner == "select"
    mse = {name: report[name]["horizons"]["h1"]["mse"] for name in report}
    # near 'sharp' (4e-6, 'blunt' 4e-4): equal weights only until min_rows errors are known
    assert mse["ensemble"] < 2 * mse["sharp"] and mse["ensemble_vote"] < 2 * mse["sharp"]
    assert mse["ensemble_stack"] < 0.1 * mse["blunt"]
    final = result.final.weights()
    for regime in ("low_vol", "high_vol"):
        assert final[regime]["h5"] == {"sharp": 1.0, "blunt": 0.0, "intercept": 0.0}
    series = result.series
    assert set(series["regime"]) == {"low_vol", "high_vol"}
    assert series["ts"].nunique() == len(np.unique(data.ts[rows]))
    last = series[series["ts"] == series["ts"].max()]
    assert set(last.loc[last["member"] == "sharp", "weight"]) == {1.0}


def test_the_series_is_stored_in_mlops_and_read_back(db_url, monkeypatch):
    """The weights over time go to mlops.ensemble_weights and come back as they were; a later
    version is what is read by default, and a rerun of the same run replaces its rows."""
    monkeypatch.setenv("QTIS_DATABASE_URL", db_url)
    bars = np.arange(3).astype("datetime64[D]").astype("datetime64[us]")
    weights = np.random.default_rng(0).dirichlet([1, 1], size=(3, 3, 2))  # (bars, 3, h, members)
    series = weight_series(bars, weights, ("a", "b"), HORIZONS, ("low_vol", "high_vol"))
    assert len(series) == 3 * 2 * 2 * 2
    assert save_series(db_url, "qtis-ensemble", "1", "run1", "select", series) == len(series)
    save_series(db_url, "qtis-ensemble", "2", "run2", "vote", series.iloc[:4])
    save_series(db_url, "qtis-ensemble", "2", "run2", "vote", series.iloc[:8])
    assert len(load_series(db_url)) == 8 and set(load_series(db_url)["version"]) == {"2"}
    back = load_series(db_url, version="1")
    assert set(back["combiner"]) == {"select"}
    back["ts"] = back["ts"].dt.tz_convert(None).astype("datetime64[us]")
    expected = series.sort_values(["ts", "horizon", "regime", "member"], ignore_index=True)
    pd.testing.assert_frame_equal(back[list(series.columns)], expected, check_dtype=False)
    assert load_series(db_url, version="9").empty
    shown = CliRunner().invoke(app, ["models", "weights", "1", "--horizon", "5", "--last", "2"])
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())  # the table's title wraps at the terminal width
    assert "qtis-ensemble v1 (select): weights at the last 2 of 3" in text
    mean = series[series["horizon"] == 5].groupby(["regime", "member"])["weight"].mean()
    assert all(f"{w:.3f}" in text for w in mean)
    missing = CliRunner().invoke(app, ["models", "weights", "9"])
    assert missing.exit_code == 2 and "no weights stored for qtis-ensemble v9" in missing.output
