"""Promotion gates on real registered runs: an oracle (a model whose walk-forward predictions are
the true returns plus noise) must pass and become the first champion, a noise model must not
replace it; every decision lands in mlops.promotions; rollback walks the history back."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quant import significance
from registry import aliases
from registry.model_registry import ModelRegistry
from registry.promotions import history
from serving.probe import serving_probe
from tests.support.planted import register
from tests.support.promotion import relaxed
from training import promotion
from training.settings import PromotionSettings


def test_gates_promote_skill_reject_noise_and_record_every_decision(planted_store):
    url, data, tracking = planted_store
    probe = serving_probe(url, samples=20, tracking=tracking)
    settings = relaxed()
    noise = register(url, data, skill=0.0, seed=1)
    [first] = aliases.promote(url, probe, settings, [("qtis-xgboost", noise)], tracking=tracking)
    assert first.decision == "rejected"
    assert first.gate("beats_champion").passed is None  # no champion yet
    assert first.gate("deflated_sharpe").passed is False
    assert first.gate("beats_baselines").passed is False
    assert first.gate("servable").passed is True
    assert ModelRegistry(url, tracking).champion() is None

    oracle = register(url, data, skill=1.0, seed=2, trials=50)
    [decision] = aliases.promote(
        url, probe, settings, [("qtis-xgboost", oracle)], tracking=tracking
    )
    assert decision.decision == "promoted", decision.reason
    assert decision.reason == "passed every gate: first champion"
    dsr = decision.gate("deflated_sharpe")
    assert dsr.value > 0.95 and "best of 50" in dsr.detail  # deflated by the 50 tuning trials
    assert decision.numbers["oos_sharpe"] > max(decision.numbers["baselines"].values())
    assert ModelRegistry(url, tracking).champion() == ("qtis-xgboost", oracle)

    # noise against the oracle champion: the paired test fails too, and it must not win
    noise2 = register(url, data, skill=0.0, seed=3)
    [against] = aliases.promote(url, probe, settings, [("qtis-xgboost", noise2)], tracking=tracking)
    assert against.decision == "challenger"  # shadowed, never served
    assert against.gate("beats_champion").passed is False
    assert against.gate("beats_champion").value > 0.5  # p-value: not better at all
    assert ModelRegistry(url, tracking).champion() == ("qtis-xgboost", oracle)
    assert ModelRegistry(url, tracking).challenger() == ("qtis-xgboost", noise2)

    rows = history(url)
    assert list(rows["decision"]) == ["challenger", "promoted", "rejected"]
    recorded = rows.iloc[1]["gates"]
    names = [g["name"] for g in recorded["gates"]]
    assert names == [
        "beats_champion", "deflated_sharpe", "beats_baselines", "servable", "backtest_overfitting"
    ]  # fmt: skip
    assert all("detail" in g and "value" in g for g in recorded["gates"])
    assert rows.iloc[0]["champion_version"] == oracle  # the champion it was compared with

    # a forced promotion is recorded with its failed gates; rollback restores the oracle
    forced = aliases.force(url, "qtis-xgboost", noise2, "drill", probe, settings, tracking=tracking)
    assert forced.decision == "forced" and "failed gates" in forced.reason
    assert ModelRegistry(url, tracking).champion() == ("qtis-xgboost", noise2)
    assert ModelRegistry(url, tracking).challenger() is None  # never both
    back = aliases.rollback(url, probe, "drill over", tracking=tracking)
    assert (back.model, back.version, back.decision) == ("qtis-xgboost", oracle, "rolled_back")
    assert ModelRegistry(url, tracking).champion() == ("qtis-xgboost", oracle)
    with pytest.raises(ValueError, match="first champion"):
        aliases.rollback(url, probe, tracking=tracking)


def test_a_forced_promotion_needs_a_reason(planted_store):
    url, _, tracking = planted_store
    probe = serving_probe(url, samples=10, tracking=tracking)
    with pytest.raises(ValueError, match="reason"):
        aliases.force(url, "qtis-xgboost", "1", " ", probe, PromotionSettings(), tracking=tracking)


def test_a_model_slower_than_the_latency_budget_is_never_served(planted_store):
    """The servable gate with a p99 budget no probe can meet: the candidate is rejected (not
    even shadowed) with the gate's reason, a forced promotion is refused, the champion stays."""
    url, data, tracking = planted_store
    probe = serving_probe(url, samples=10, tracking=tracking)
    tight = PromotionSettings(latency_budget_ms=1e-6)
    before = ModelRegistry(url, tracking).champion()
    version = register(url, data, skill=1.0, seed=5, trials=50)
    [decision] = aliases.promote(url, probe, tight, [("qtis-xgboost", version)], tracking=tracking)
    gate = decision.gate("servable")
    assert gate.passed is False and gate.threshold == 1e-6 and gate.value > 1e-6
    assert gate.detail.endswith("over the 1e-06 ms budget")
    assert decision.decision == "rejected" and f"servable: {gate.detail}" in decision.reason
    with pytest.raises(ValueError, match=r"cannot be served, not forcing it: .* 1e-06 ms budget"):
        aliases.force(url, "qtis-xgboost", version, "drill", probe, tight, tracking=tracking)
    assert ModelRegistry(url, tracking).champion() == before


def _evidence(pred: np.ndarray, true: np.ndarray, ts, symbols) -> promotion.Evidence:
    frame = pd.DataFrame({"symbol": symbols, "ts": ts, "fold": 0})
    frame["pred_h1"], frame["true_h1"] = pred, true
    return promotion.Evidence("m", "1", "r", frame, {}, 1, 5.0, (1,))


def test_the_paired_test_compares_the_same_bars_only():
    """Paired losses come from the (symbol, bar) pairs both models predicted, averaged per bar;
    a champion that shares too few bars fails the gate with a reason instead of a number."""
    rng = np.random.default_rng(0)
    ts = np.repeat(pd.date_range("2020-01-01", periods=300, freq="D").to_numpy(), 2)
    symbols = np.tile(["A", "B"], 300)
    true = rng.normal(0, 0.01, len(ts))
    good = _evidence(true + rng.normal(0, 0.002, len(ts)), true, ts, symbols)
    bad = _evidence(rng.normal(0, 0.01, len(ts)), true, ts, symbols)
    champion_losses, candidate_losses = promotion.paired_losses(good, bad, 1)
    assert len(champion_losses) == len(candidate_losses) == 300  # one per bar, not per row
    gate = promotion.champion_gate(good, bad, PromotionSettings())
    assert gate.passed and gate.value < 1e-6
    reverse = promotion.champion_gate(bad, good, PromotionSettings())
    assert reverse.passed is False and reverse.value > 0.99
    late = _evidence(bad.predictions["pred_h1"], true, ts + np.timedelta64(600, "D"), symbols)
    apart = promotion.champion_gate(late, good, PromotionSettings())
    assert apart.passed is False and apart.value is None and "shares only 0" in apart.detail


def test_overfitting_is_reported_from_the_candidates_returns():
    rng = np.random.default_rng(1)
    ts = pd.date_range("2020-01-01", periods=400, freq="D").to_numpy()
    true = rng.normal(0, 0.01, 400)
    noise = [_evidence(rng.normal(size=400), true, ts, np.full(400, "A")) for _ in range(4)]
    gate, pbo = promotion.overfitting_gate(noise, PromotionSettings())
    assert gate.passed is None  # reported, not a gate unless QTIS_PROMOTION_MAX_PBO is set
    assert pbo.n_configurations == 4 and 0 <= gate.value <= 1
    strict, _ = promotion.overfitting_gate(noise, PromotionSettings(max_pbo=0.0))
    assert strict.passed is (pbo.probability <= 0.0)
    # the deflated Sharpe of the chosen noise strategy, deflated by four trials, is no pass
    best = max(noise, key=lambda e: e.strategy().sharpe.value)
    dsr = significance.deflated_sharpe_ratio(best.strategy().returns, n_trials=4)
    assert dsr.probability < 0.95
