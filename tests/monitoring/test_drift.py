"""Drift checks: the test tells a shifted market from a stable one (over seeds), and against a
real registered champion a run writes its Evidently report, its mlops.drift_results rows and the
CLI summary (the drift_report asset's materialization: tests/orchestration/)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import psycopg
import pytest

from monitoring.drift import (
    Baseline,
    DriftSettings,
    check_drift,
    drift_measures,
    evidently_report,
    scores,
    snapshot_scores,
)
from monitoring.drift_results import DriftReport
from monitoring.replay import replay
from serving.predictor import Predictor
from serving.settings import ServingSettings
from tests.support.cli import qtis
from tests.support.db import fresh_database
from training.settings import TrackingSettings
from warehouse.db import sqlalchemy_url

FEATURES = [f"f{i}" for i in range(6)]
HORIZONS = (1,)


def market(seed: int, shift: float, rows: int) -> pd.DataFrame:
    """Six features and a forecast; the first three features move by ``shift`` sd."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, 6)), columns=FEATURES)
    frame[FEATURES[:3]] += shift
    frame["pred_h1"] = 0.01 * frame["f0"] + rng.normal(0, 0.01, rows)
    return frame


def verdict(seed: int, shift: float) -> dict[str, bool]:
    s = DriftSettings(method="psi", threshold=0.2)  # fixed thresholds: the rows are iid
    reference, current = market(seed, 0.0, 5000), market(seed + 1000, shift, 252)
    values = scores(reference, current, [*FEATURES, "pred_h1"], s.method)
    found = {(m.kind, m.measure): m for m in drift_measures(values, FEATURES, HORIZONS, s)}
    return {
        "data": found[("data", "share_drifted")].drifted,
        "prediction": found[("prediction", "horizons_drifted")].drifted,
        "shifted_columns": sum(found[("data", f)].drifted for f in FEATURES[:3]),
        "stable_columns": sum(found[("data", f)].drifted for f in FEATURES[3:]),
    }


def test_a_shift_is_flagged_and_a_stable_market_is_not_over_20_seeds():
    """PSI >= 0.2 per feature, data drift when 30% of features drift: a one-sd move of half of
    them is caught every time; a sample of the training distribution raises no alarm."""
    stable = [verdict(seed, 0.0) for seed in range(20)]
    moved = [verdict(seed, 1.0) for seed in range(20)]
    assert sum(v["data"] for v in stable) == 0  # false alarms: 0 of 20 (the target is <= 5%)
    assert sum(v["stable_columns"] for v in stable) <= 1
    assert all(v["data"] and v["shifted_columns"] == 3 for v in moved)
    assert sum(v["stable_columns"] for v in moved) <= 1  # the unmoved columns stay quiet
    assert all(v["prediction"] for v in moved)  # the forecast follows f0
    assert sum(v["prediction"] for v in stable) == 0


def test_the_pooled_score_counts_a_column_by_how_far_it_is_beyond_its_own_stable_spread():
    """Standardized per column, averaged over the top 3: many columns just over their usual
    values score less than three far beyond theirs, and the score, not the share, decides."""
    s = DriftSettings()
    spread = {f: (np.log(0.2), 0.2) for f in FEATURES} | {"pred_h1": (np.log(0.1), 0.5)}
    baseline = Baseline(pd.DataFrame(), dict.fromkeys([*FEATURES, "pred_h1"], 0.22), 40, spread,
                        {"data": 2.0, "prediction": 2.0})  # fmt: skip

    def found(values):
        return {(m.kind, m.measure): m for m in drift_measures(values, FEATURES, HORIZONS, s,
                                                               baseline)}  # fmt: skip

    usual = dict.fromkeys(FEATURES, 0.2) | {"pred_h1": 0.1}
    assert found(usual)[("data", "score")].value == pytest.approx(0.0)
    # every feature 20% over its usual value: all over their thresholds, but 0.9 sd each
    wander = found(dict.fromkeys(FEATURES, 0.24) | {"pred_h1": 0.1})
    assert wander[("data", "share_drifted")].drifted and not wander[("data", "score")].drifted
    report = DriftReport("r", "m", "1", (None, None), (None, None), list(wander.values()), None)
    assert not report.drifted("data")
    # three features at twice their usual value (3.5 sd), the rest as usual
    far = found(usual | {"f0": 0.4, "f1": 0.4, "f2": 0.4})
    assert far[("data", "score")].value == pytest.approx(np.log(2) / 0.2)
    assert far[("data", "score")].drifted and not far[("prediction", "score")].drifted
    # the forecast's spread is wider: three times its usual value is 2.2 sd
    assert found(usual | {"pred_h1": 0.3})[("prediction", "score")].drifted


def test_the_evidently_page_shows_the_values_the_monitor_decided_on():
    s = DriftSettings()
    reference, current = market(0, 0.0, 2000), market(1, 1.0, 120)
    columns = [*FEATURES, "pred_h1"]
    thresholds = dict.fromkeys(columns, 0.3)
    page = snapshot_scores(evidently_report(reference, current, FEATURES, HORIZONS, s, thresholds))
    fast = scores(reference, current, columns, s.method)
    assert fast.keys() == page.keys()
    assert all(fast[c] == pytest.approx(page[c], rel=1e-9) for c in columns)


@pytest.mark.slow
def test_the_cli_prints_the_verdicts_and_writes_json(champion, tmp_path):
    _, env, _ = champion
    out = tmp_path / "drift.json"
    done = qtis("monitor", "drift", "--current-bars", "40", "--json-out", str(out), env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    text = " ".join(done.stdout.split())
    assert "drift of qtis-xgboost v1" in text and "share_drifted" in text
    assert "drift report:" in text
    written = json.loads(out.read_text())
    assert set(written["drifted"]) == {"data", "prediction", "performance", "attribution"}
    tested = {m["measure"] for m in written["measures"] if m["kind"] == "data"}
    assert "rsi_14" in tested and "sma_20" not in tested  # levels are left out by default
    bad = qtis("monitor", "drift", "--current-bars", "2", env=env)
    assert bad.returncode == 2 and "invalid drift settings" in bad.stderr


@pytest.mark.slow
def test_no_champion_is_a_clear_error(db_url, tmp_path, pg_server):
    env = {"QTIS_DATABASE_URL": db_url, "QTIS_HOME": str(tmp_path / ".qtis"),
           "QTIS_MLFLOW_TRACKING_URI": sqlalchemy_url(fresh_database(pg_server))}  # fmt: skip
    done = qtis("monitor", "drift", env=env)
    assert done.returncode == 2 and "@champion" in done.stderr


@pytest.mark.slow
def test_check_drift_refuses_a_model_without_its_training_span(champion, tmp_path):
    url, env, _ = champion
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        tracking = TrackingSettings()
        model = Predictor(url, ServingSettings(), tracking=tracking).champion
        model.trained_through = None
        with pytest.raises(ValueError, match="no trained_through tag"):
            check_drift(url, DriftSettings(), tmp_path, model, tracking=tracking)


@pytest.mark.slow
def test_a_replay_checks_as_of_past_bars_with_only_what_was_known(champion, tmp_path):
    url, env, _ = champion
    env = env | {"QTIS_DRIFT_EXPLAIN_SAMPLES": "0"}  # SHAP per checked bar is the slow part
    done = qtis("monitor", "replay", "--since", "2013-01-02", "--every", "10", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    text = " ".join(done.stdout.split())
    # thresholds calibrated on the champion's training bars: as of every tenth bundled bar since
    # 2013-01-02 (4 checks, through the last bar) nothing calls for a retrain - no false alarm
    assert "4 checks, 0 calling for a retrain" in text and text.endswith("no alarm")
    with psycopg.connect(url) as conn:
        ends = conn.execute(
            "select distinct current_end from mlops.drift_results where current_end >"
            " '2013-01-02' order by 1"
        ).fetchall()
    assert len(ends) >= 3 and all(e[0].year == 2013 for e in ends)  # one run per checked bar
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        tracking = TrackingSettings()
        model = Predictor(url, ServingSettings(), tracking=tracking).champion
    with pytest.raises(ValueError, match="no bars after 2030-01-01"):  # exit code 2 in the CLI
        replay(url, datetime(2030, 1, 1, tzinfo=UTC), DriftSettings(), tmp_path, model,
               tracking=tracking)  # fmt: skip
