"""Has the market, or the model, moved away from what the champion was trained on?

Four checks, each against the champion's own training period (the bars through its
``trained_through`` tag) and the most recent ``current_bars`` bars of the warehouse:

- **data**: Evidently's per-feature drift test (PSI by default) and the share of drifted
  features; the data has drifted when that share reaches ``drift_share``;
- **prediction**: the same test on the model's forecasts, one column per horizon;
- **performance**, once labels have arrived: the pooled rank correlation (IC) and directional
  accuracy of its recent forecasts with what happened; drifted below ``ic_floor``;
- **attribution**: Spearman correlation of today's SHAP importance ranking with the one saved at
  registration (``mlops.feature_attributions``); drifted below ``attribution_floor``.

Each run writes one Evidently HTML report and one ``mlops.drift_results`` row per measure.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Evidently's tests that return a p-value (drift when below the threshold); the others are
# distances (drift when at or above it)
P_VALUE_METHODS = {"ks", "chisquare", "z", "t_test", "mannw", "anderson", "cramer_von_mises",
                   "fisher_exact", "g_test", "epps_singleton", "empirical_mmd", "es"}  # fmt: skip


class DriftSettings(BaseSettings):
    """What counts as drift (``QTIS_DRIFT_*``)."""

    model_config = SettingsConfigDict(env_prefix="QTIS_DRIFT_", extra="ignore", frozen=True)

    current_bars: int = Field(63, ge=5, description="the recent bars compared with training")
    reference_rows: int = Field(5000, ge=100, description="training rows sampled as reference")
    method: str = Field("psi", description="Evidently's per-column test (psi, ks, wasserstein…)")
    threshold: float = Field(0.2, gt=0, description="of the test: PSI >= 0.2 is a shift")
    drift_share: float = Field(0.3, gt=0, le=1, description="drifted features that flag data")
    ic_floor: float = Field(0.0, description="recent pooled rank IC below it: decayed")
    attribution_floor: float = Field(0.5, description="SHAP ranking Spearman below it: drifted")
    explain_samples: int = Field(100, ge=0, description="recent bars SHAP explains; 0: skip")
    calendar: bool = Field(
        False,
        description="test calendar features too (a window shorter than their cycle"
        " always differs from a year of training)",
    )
    seed: int = 7


def tested_features(model, s: DriftSettings) -> list[str]:
    """The model's features that the data-drift test covers."""
    from transforms.spec import default_spec

    calendar = set() if s.calendar else set(default_spec().columns("calendar"))
    return [f for f in model.features if f not in calendar]


@dataclass(frozen=True)
class Measure:
    kind: str  # data | prediction | performance | attribution
    measure: str  # e.g. "share_drifted", "rsi_14", "pred_h1", "ic_h5"
    value: float | None
    threshold: float | None
    drifted: bool


@dataclass
class DriftReport:
    run_id: str
    model: str
    version: str
    reference: tuple[datetime, datetime]
    current: tuple[datetime, datetime]
    measures: list[Measure]
    path: Path
    notes: list[str] = field(default_factory=list)

    def drifted(self, kind: str) -> bool:
        return any(m.drifted for m in self.measures if m.kind == kind and m.measure in _HEADLINE)

    def value(self, kind: str, measure: str) -> float | None:
        found = [m.value for m in self.measures if m.kind == kind and m.measure == measure]
        return found[0] if found else None

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "model": f"{self.model} v{self.version}",
            "reference": [t.isoformat() for t in self.reference],
            "current": [t.isoformat() for t in self.current],
            "data_drift_share": self.value("data", "share_drifted"),
            "drifted": {k: self.drifted(k) for k in KINDS},
            "report": str(self.path),
            "notes": self.notes,
        }


KINDS = ("data", "prediction", "performance", "attribution")
# the measures that decide a kind (per-column rows are the detail behind them)
_HEADLINE = {"share_drifted", "any_prediction", "ic", "spearman"}


def is_drift(value: float | None, threshold: float, method: str) -> bool:
    if value is None or not np.isfinite(value):
        return False
    return value < threshold if method in P_VALUE_METHODS else value >= threshold


# --- inputs -----------------------------------------------------------------------------------


def frames(data, model, s: DriftSettings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reference, current): features, forecasts per horizon and the realized returns, for a
    sample of the model's training rows and for every row of the last ``current_bars`` bars."""
    from training.windows import window_ends

    rows = window_ends(data, model.window)
    if model.trained_through is None:
        raise ValueError(f"{model.name} v{model.version} has no trained_through tag: retrain it")
    through = np.datetime64(model.trained_through.replace(tzinfo=None), "us")
    trained = rows[data.ts[rows] <= through]
    times = np.unique(data.ts[rows])
    recent = rows[data.ts[rows] >= times[max(0, len(times) - s.current_bars)]]
    if not len(trained) or not len(recent):
        raise ValueError("no training-period or recent rows in features.training_set")
    rng = np.random.default_rng(s.seed)
    if len(trained) > s.reference_rows:
        trained = np.sort(rng.choice(trained, s.reference_rows, replace=False))
    return _frame(data, model, trained), _frame(data, model, recent)


def _frame(data, model, rows: np.ndarray) -> pd.DataFrame:
    columns = [data.feature_names.index(f) for f in model.features]
    features = data.features[:, columns]
    if model.window == 1:
        windows = features[rows][:, None, :]
    else:
        windows = features[rows[:, None] + np.arange(-model.window + 1, 1)]
    forecast = np.asarray(model.predict(windows.astype(np.float32)), dtype=float)
    frame = pd.DataFrame(features[rows], columns=list(model.features))
    for k, h in enumerate(model.horizons):
        frame[f"pred_h{h}"] = forecast[:, k]
        frame[f"realized_h{h}"] = data.returns[rows, k]
    frame["ts"] = pd.to_datetime(data.ts[rows], utc=True)
    return frame


# --- the checks -------------------------------------------------------------------------------


def evidently_report(reference: pd.DataFrame, current: pd.DataFrame, features, horizons, s):
    """One Evidently run: the data-drift preset over the features, a value drift per forecast."""
    from evidently import Report
    from evidently.metrics import ValueDrift
    from evidently.presets import DataDriftPreset

    predictions = [f"pred_h{h}" for h in horizons]
    metrics = [
        DataDriftPreset(columns=list(features), method=s.method, threshold=s.threshold,
                        drift_share=s.drift_share),
        *(ValueDrift(column=c, method=s.method, threshold=s.threshold) for c in predictions),
    ]  # fmt: skip
    columns = [*features, *predictions]
    return Report(metrics).run(current[columns], reference[columns])


def drift_measures(snapshot, features, horizons, s: DriftSettings) -> list[Measure]:
    """The data and prediction measures out of an Evidently snapshot."""
    values: dict[str, float] = {}
    share = None
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
        elif config.get("type", "").endswith("ValueDrift"):
            values[config["column"]] = float(metric["value"])
    out = [
        Measure("data", f, values.get(f), s.threshold, is_drift(values.get(f), s.threshold,
                                                                 s.method))
        for f in features
    ]  # fmt: skip
    out.append(Measure("data", "share_drifted", share, s.drift_share,
                       share is not None and share >= s.drift_share))  # fmt: skip
    predictions = []
    for h in horizons:
        value = values.get(f"pred_h{h}")
        predictions.append(
            Measure("prediction", f"pred_h{h}", value, s.threshold,
                    is_drift(value, s.threshold, s.method))
        )  # fmt: skip
    out += predictions
    out.append(Measure("prediction", "any_prediction", float(sum(m.drifted for m in predictions)),
                       1.0, any(m.drifted for m in predictions)))  # fmt: skip
    return out


def performance_measures(current: pd.DataFrame, horizons, s: DriftSettings) -> list[Measure]:
    """Pooled rank IC and directional accuracy of the recent forecasts whose outcome is known;
    the decision rests on the longest horizon that has at least 20 known outcomes."""
    from scipy.stats import spearmanr

    from training.metrics import directional_accuracy

    out, decided = [], None
    for h in horizons:
        pred, true = current[f"pred_h{h}"].to_numpy(), current[f"realized_h{h}"].to_numpy()
        known = np.isfinite(pred) & np.isfinite(true)
        if known.sum() < 20:
            continue
        ic = float(spearmanr(pred[known], true[known]).statistic)
        accuracy = directional_accuracy(pred[known], true[known], overlap=h)["accuracy"].value
        out.append(Measure("performance", f"ic_h{h}", ic, s.ic_floor, ic < s.ic_floor))
        out.append(Measure("performance", f"accuracy_h{h}", accuracy, 0.5, False))
        decided = (h, ic)
    if decided is not None:
        h, ic = decided
        out.append(Measure("performance", "ic", ic, s.ic_floor, ic < s.ic_floor))
    return out


def attribution_measures(url: str, model, s: DriftSettings, notes: list[str]) -> list[Measure]:
    """Today's SHAP ranking against the one saved when the champion was registered."""
    from training import tracking
    from training.explain import explain_registered

    family = {v: k for k, v in tracking.REGISTERED_NAMES.items()}.get(model.name)
    if s.explain_samples == 0 or family is None or family == "ensemble":
        notes.append(f"attribution drift not measured for {model.name}")
        return []
    found = explain_registered(url, family, model.version, samples=s.explain_samples).to_dict()
    agreement = found.get("agreement_with_reference")
    if not agreement:
        notes.append(f"{model.name} v{model.version} has no ranking saved at registration")
        return []
    rho = float(agreement["spearman"])
    return [Measure("attribution", "spearman", rho, s.attribution_floor,
                    rho < s.attribution_floor)]  # fmt: skip


# --- a run ------------------------------------------------------------------------------------


def check_drift(
    url: str,
    model=None,
    settings: DriftSettings | None = None,
    reports: Path | None = None,
) -> DriftReport:
    """Every check for ``model`` (a ``serving.predictor.LoadedModel``; default the champion),
    its HTML report under ``reports`` (default ``$QTIS_HOME/reports/drift``) and its rows in
    ``mlops.drift_results``."""
    from training.data import load_training_data
    from warehouse.settings import get_settings

    s = settings or DriftSettings()
    if model is None:
        from serving.predictor import Predictor

        model = Predictor(url).champion
    data = load_training_data(url)
    reference, current = frames(data, model, s)
    features = tested_features(model, s)
    snapshot = evidently_report(reference, current, features, model.horizons, s)
    notes: list[str] = []
    measures = drift_measures(snapshot, features, model.horizons, s)
    measures += performance_measures(current, model.horizons, s)
    if not any(m.kind == "performance" for m in measures):
        notes.append("no recent outcomes yet: performance drift waits for labels")
    measures += attribution_measures(url, model, s, notes)
    run_id = uuid.uuid4().hex[:12]
    folder = reports or get_settings().home / "reports" / "drift"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    path = (folder / f"drift_{model.name}_v{model.version}_{stamp}_{run_id}.html").resolve()
    snapshot.save_html(str(path))
    span = lambda f: (f["ts"].min().to_pydatetime(), f["ts"].max().to_pydatetime())  # noqa: E731
    report = DriftReport(run_id, model.name, str(model.version), span(reference), span(current),
                         measures, path, notes)  # fmt: skip
    save(url, report)
    return report


def save(url: str, report: DriftReport) -> None:
    from warehouse.db import connect

    rows = [
        (report.run_id, report.model, report.version, m.kind, m.measure, m.value, m.threshold,
         m.drifted, *report.reference, *report.current, str(report.path))
        for m in report.measures
    ]  # fmt: skip
    with connect(url) as conn, conn.cursor() as cur:
        cur.executemany(
            "insert into mlops.drift_results (run_id, model, version, kind, measure, value,"
            " threshold, drifted, reference_start, reference_end, current_start, current_end,"
            " report_path) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
        conn.commit()


def load_report(url: str, run_id: str) -> DriftReport:
    """A run as stored in ``mlops.drift_results`` (what the sensors read)."""
    from warehouse.db import connect

    with connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "select model, version, kind, measure, value, threshold, drifted, reference_start,"
            " reference_end, current_start, current_end, report_path from mlops.drift_results"
            " where run_id = %s order by id",
            (run_id,),
        )
        rows = cur.fetchall()
    if not rows:
        raise LookupError(f"no drift run {run_id!r} in mlops.drift_results")
    first = rows[0]
    measures = [Measure(*r[2:7]) for r in rows]
    return DriftReport(run_id, first[0], first[1], (first[7], first[8]), (first[9], first[10]),
                       measures, Path(first[11]))  # fmt: skip


def latest_run(url: str) -> str | None:
    """The newest drift run's id."""
    from warehouse.db import connect

    with connect(url) as conn, conn.cursor() as cur:
        cur.execute("select run_id from mlops.drift_results order by id desc limit 1")
        row = cur.fetchone()
    return row[0] if row else None
