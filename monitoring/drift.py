"""Has the market, or the model, moved away from what the champion was trained on?

Four checks, each against the champion's own training period (the bars through its
``trained_through`` tag) and the most recent ``current_bars`` bars of the warehouse:

- **data**: Evidently's per-feature drift test (normed Wasserstein distance by default), each
  feature against its own calibrated threshold, the share of drifted features, and the data
  score: how many calibration standard deviations the ``top_columns`` most-moved features are
  beyond their usual values in a stable stretch of training (see ``Baseline``). Calibrated, the
  data has drifted when the score passes its limit; uncalibrated, when the share reaches
  ``drift_share``. Calendar features and features in price or volume units are left out by
  default;
- **prediction**: the same test and score on the model's forecasts, one column per horizon
  (uncalibrated: drifted when ``drift_share`` of the horizons did);
- **performance**, once labels have arrived: the pooled rank correlation (IC) and directional
  accuracy of its recent forecasts with what happened, and their mean absolute error against the
  training period's; decayed when the IC is below ``ic_floor``;
- **attribution**: Spearman correlation of today's SHAP importance ranking with the one saved at
  registration (``mlops.feature_attributions``); drifted below ``attribution_floor``.

Each run writes ``mlops.drift_results`` rows (one per measure) and an Evidently HTML report.
``as_of`` replays the check at a past bar: only the bars and the outcomes known by then count.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from monitoring.drift_results import DriftReport, Measure, save
from monitoring.settings import DriftSettings
from training.data import TrainingData, load_training_data
from training.settings import TrackingSettings
from transforms.spec import default_spec
from warehouse.db import connect

# Evidently's tests that return a p-value (drift when below the threshold); the others are
# distances (drift when at or above it)
P_VALUE_METHODS = {"ks", "chisquare", "z", "t_test", "mannw", "anderson", "cramer_von_mises",
                   "fisher_exact", "g_test", "epps_singleton", "empirical_mmd", "es"}  # fmt: skip


def tested_features(model, s: DriftSettings) -> list[str]:
    """The model's features that the data-drift test covers."""
    spec = default_spec()
    left_out = set() if s.calendar else set(spec.columns("calendar"))
    left_out |= set() if s.levels else set(spec.level_columns())
    return [f for f in model.features if f not in left_out]


def is_drift(value: float | None, threshold: float, method: str) -> bool:
    if value is None or not np.isfinite(value):
        return False
    return value < threshold if method in P_VALUE_METHODS else value >= threshold


# --- inputs -----------------------------------------------------------------------------------


def universe(url: str) -> list[str]:
    """Every symbol of the warehouse (market.instruments), sorted."""
    with connect(url) as conn:
        return [r[0] for r in conn.execute("select symbol from market.instruments order by 1")]


def drift_data(url: str, s: DriftSettings) -> TrainingData:
    """features.training_set of at most ``max_symbols`` symbols (a seeded sample of a larger
    universe, the same one each run): what the checks read, so that their memory and time do
    not grow with the number of symbols."""
    symbols = universe(url)
    if len(symbols) <= s.max_symbols:
        return load_training_data(url)
    chosen = np.random.default_rng(s.seed).choice(len(symbols), s.max_symbols, replace=False)
    return load_training_data(url, [symbols[k] for k in np.sort(chosen)])


def sample_notes(url: str, data: TrainingData) -> list[str]:
    """A note when ``data`` is a sample of the universe, saying how large."""
    read, total = len(np.unique(data.symbols)), len(universe(url))
    if read >= total:
        return []
    return [f"checked a seeded sample of {read} of {total} symbols (QTIS_DRIFT_MAX_SYMBOLS)"]


@dataclass(frozen=True)
class Baseline:
    """The champion's training period as the monitor sees it: a sample of its rows (features,
    forecasts, outcomes) and what a stable market looks like to the test.

    Calibration asks the monitor's question where the answer is "no change": windows of
    ``current_bars`` bars across the training period, each tested against the period's rows
    before it (a window's width apart). A column's threshold is the ``calibration_quantile`` of
    its test value over those windows, times the margin: features like a 60-bar volatility are
    smooth, so a short window of a stable market already looks unlike its past, and one fixed
    threshold for every column would flag it.

    The scores pool the columns of a kind (the features; the forecasts): per column the log of
    its test value, standardized by its median and standard deviation over the windows; the
    score is the mean of the ``top_columns`` largest. A column counts by how far it is beyond
    its own stable range, so correlated features that wander together in a trend (the
    oscillators) do not outvote the rest, and one that rarely moves (a one-bar return's
    spread) counts when it does. A score's limit is the same quantile of the score over the
    windows plus ``score_margin``."""

    reference: pd.DataFrame
    thresholds: dict[str, float]
    windows: int  # how many training-period windows calibrated it (0: fixed thresholds)
    spread: dict[str, tuple[float, float]] = field(default_factory=dict)  # log value: centre, sd
    limits: dict[str, float] = field(default_factory=dict)  # kind -> its score's limit


def make_baseline(data, model, s: DriftSettings) -> Baseline:
    # deferred: torch and lightning (~3.5 s measured) would load on every qtis command (cli.monitor)
    from training.windows import window_ends

    rows = window_ends(data, model.window)
    if model.trained_through is None:
        raise ValueError(f"{model.name} v{model.version} has no trained_through tag: retrain it")
    through = np.datetime64(model.trained_through.replace(tzinfo=None), "us")
    trained = rows[data.ts[rows] <= through]
    if not len(trained):
        raise ValueError("no training-period rows in features.training_set")
    period = _frame(data, model, trained, through, s.predict_rows)
    rng = np.random.default_rng(s.seed)
    keep = np.sort(rng.choice(len(period), min(len(period), s.reference_rows), replace=False))
    reference = period.iloc[keep].reset_index(drop=True)
    kinds = {"data": tested_features(model, s),
             "prediction": [f"pred_h{h}" for h in model.horizons]}  # fmt: skip
    columns = [c for group in kinds.values() for c in group]
    thresholds = dict.fromkeys(columns, s.threshold)
    times = np.sort(period["ts"].unique())
    width, first = s.current_bars, 3 * s.current_bars  # the first window has 1 width of past
    if s.calibration_windows == 0 or len(times) - first < 10:
        return Baseline(reference, thresholds, 0)
    count = min(s.calibration_windows, len(times) - first)
    ends = np.unique(np.linspace(first, len(times) - 1, count).astype(int))
    null: list[dict[str, float | None]] = []
    for end in ends:
        window = period[period["ts"].between(times[end - width + 1], times[end])]
        past = period[period["ts"] < times[end - 2 * width + 1]]
        if len(past) > s.calibration_rows:
            past = past.iloc[np.sort(rng.choice(len(past), s.calibration_rows, replace=False))]
        null.append(scores(past, window, columns, s.method))
    q, margin = s.calibration_quantile, s.calibration_margin
    spread: dict[str, tuple[float, float]] = {}
    for column in columns:
        values = [v for v in (n[column] for n in null) if v is not None and np.isfinite(v)]
        if len(values) < 5:
            continue
        if s.method in P_VALUE_METHODS:  # a p-value: drift below it
            thresholds[column] = min(s.threshold, float(np.quantile(values, 1 - q)) / margin)
        else:
            thresholds[column] = max(s.threshold, float(np.quantile(values, q)) * margin)
        logs = np.array([_log_test(v, s) for v in values])
        spread[column] = (float(np.median(logs)), max(float(logs.std()), _MIN_SPREAD))
    limits: dict[str, float] = {}
    for kind, group in kinds.items():
        stable = [v for v in (pooled_score(n, group, spread, s) for n in null) if v is not None]
        if len(stable) >= 5:
            limits[kind] = float(np.quantile(stable, q)) + s.score_margin
    return Baseline(reference, thresholds, len(ends), spread, limits)


# a column whose test barely moved over the calibration windows (a constant) is held to this
# spread of its log value, so that a small change in it is not thousands of deviations
_MIN_SPREAD = 0.1


def _log_test(value: float, s: DriftSettings) -> float:
    """The log of a test value, signed so that larger is further from the reference (a
    distance is floored at a tenth of the fixed threshold: below that, nothing moved)."""
    if s.method in P_VALUE_METHODS:
        return -float(np.log(max(value, 1e-12)))
    return float(np.log(max(value, s.threshold / 10)))


def pooled_score(values, columns, spread, s: DriftSettings) -> float | None:
    """The mean of the ``top_columns`` largest standardized log test values: about 0 in a
    typical stable window, in calibration standard deviations."""
    excess = []
    for column in columns:
        value, found = values.get(column), spread.get(column)
        if value is None or found is None or not np.isfinite(value):
            continue
        centre, sd = found
        excess.append((_log_test(value, s) - centre) / sd)
    if not excess:
        return None
    return float(np.mean(np.sort(excess)[-s.top_columns :]))


def current_frame(data, model, s: DriftSettings, as_of: datetime | None = None) -> pd.DataFrame:
    """Every row of the last ``current_bars`` bars through ``as_of`` (default the latest), with
    forecasts, and outcomes where they were known by then."""
    from training.windows import window_ends  # deferred: as in make_baseline

    rows = window_ends(data, model.window)
    last = data.ts.max() if as_of is None else np.datetime64(as_of.replace(tzinfo=None), "us")
    seen = rows[data.ts[rows] <= last]
    times = np.unique(data.ts[seen])
    recent = seen[data.ts[seen] >= times[max(0, len(times) - s.current_bars)]]
    if not len(recent):
        raise ValueError("no recent rows in features.training_set")
    return _frame(data, model, recent, last, s.predict_rows)


def forecasts(
    features: np.ndarray, model, rows: np.ndarray, batch: int, symbols: np.ndarray
) -> np.ndarray:
    """The model's forecast for the window ending at each of ``rows`` (of the row's symbol in
    ``symbols``: a fine-tuned model scores each by its copy), ``batch`` windows a call: the
    window tensor of every row of a large universe would not fit in memory."""
    out = np.empty((len(rows), len(model.horizons)))
    lags = np.arange(-model.window + 1, 1)
    for start in range(0, len(rows), batch):
        ends = rows[start : start + batch]
        windows = (
            features[ends][:, None, :] if model.window == 1 else features[ends[:, None] + lags]
        )
        out[start : start + len(ends)] = model.predict(
            windows.astype(np.float32, copy=False), list(symbols[ends])
        )
    return out


def _frame(data, model, rows: np.ndarray, known_by: np.datetime64, batch: int) -> pd.DataFrame:
    columns = [data.feature_names.index(f) for f in model.features]
    features = data.features[:, columns]
    forecast = forecasts(features, model, rows, batch, data.symbols)
    frame = pd.DataFrame(features[rows], columns=list(model.features))
    left = data.rows_left[rows]
    for k, h in enumerate(model.horizons):
        frame[f"pred_h{h}"] = forecast[:, k]
        # the label's bar is h rows on in the same symbol: known once that bar is in
        known = (left >= h) & (data.ts[np.minimum(rows + h, len(data) - 1)] <= known_by)
        frame[f"realized_h{h}"] = np.where(known, data.returns[rows, k], np.nan)
    frame["ts"] = pd.to_datetime(data.ts[rows], utc=True)
    return frame


# --- the checks -------------------------------------------------------------------------------


def scores(reference: pd.DataFrame, current: pd.DataFrame, columns, method: str):
    """Evidently's per-column test (the one its report runs), without rendering anything:
    column -> value, None where a side has fewer than 5 finite values. The default test is
    Evidently's formula (normed Wasserstein distance) on numpy arrays: calibration asks it
    hundreds of times, and Evidently's per-call overhead is most of the cost."""
    # deferred: evidently, sklearn and scipy (~4 s measured) would load on every qtis command
    # (cli.monitor)
    from evidently.legacy.calculations.stattests import get_stattest
    from evidently.legacy.core import ColumnType  # deferred: as above
    from scipy.stats import wasserstein_distance  # deferred: as above

    out: dict[str, float | None] = {}
    ref_values, cur_values = (
        reference[list(columns)].to_numpy(float),
        current[list(columns)].to_numpy(float),
    )
    for k, column in enumerate(columns):
        ref, cur = ref_values[:, k], cur_values[:, k]
        ref, cur = ref[np.isfinite(ref)], cur[np.isfinite(cur)]
        if len(ref) < 5 or len(cur) < 5:
            out[column] = None
        elif method == "wasserstein":  # evidently's wasserstein_distance_norm
            out[column] = float(wasserstein_distance(ref, cur) / max(float(np.std(ref)), 0.001))
        else:
            ref, cur = pd.Series(ref), pd.Series(cur)
            test = get_stattest(ref, cur, ColumnType.Numerical, method)
            out[column] = float(test(ref, cur, ColumnType.Numerical, None).drift_score)
    return out


def evidently_report(reference, current, features, horizons, s, thresholds=None):
    """One Evidently run: the data-drift preset over the features, a value drift per forecast
    (with the calibrated thresholds, so that its page shows the monitor's verdicts)."""
    # deferred: evidently, sklearn and scipy (~4 s measured) would load on every qtis command
    # (cli.monitor)
    from evidently import Report
    from evidently.metrics import ValueDrift  # deferred: as above
    from evidently.presets import DataDriftPreset  # deferred: as above

    thresholds = thresholds or {}
    predictions = [f"pred_h{h}" for h in horizons]
    metrics = [
        DataDriftPreset(columns=list(features), method=s.method, threshold=s.threshold,
                        drift_share=s.drift_share,
                        per_column_threshold={f: thresholds[f] for f in features
                                              if f in thresholds}),
        *(ValueDrift(column=c, method=s.method, threshold=thresholds.get(c, s.threshold))
          for c in predictions),
    ]  # fmt: skip
    columns = [*features, *predictions]
    return Report(metrics).run(current[columns], reference[columns])


def snapshot_scores(snapshot) -> dict[str, float]:
    """column -> test value, out of an Evidently snapshot."""
    values: dict[str, float] = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith("ValueDrift"):
            values[config["column"]] = float(metric["value"])
    return values


def drift_measures(values, features, horizons, s: DriftSettings, baseline=None):
    """The data and prediction measures from per-column test values. Calibrated, a kind has
    drifted when its pooled score reaches the baseline's limit; uncalibrated, when at least
    ``drift_share`` of its columns passed their thresholds."""
    baseline = baseline or Baseline(pd.DataFrame(), {}, 0)

    def measure(kind: str, column: str) -> Measure:
        value, limit = values.get(column), baseline.thresholds.get(column, s.threshold)
        return Measure(kind, column, value, limit, is_drift(value, limit, s.method))

    def score(kind: str, columns: list[str]) -> list[Measure]:
        if kind not in baseline.limits:
            return []
        value, limit = pooled_score(values, columns, baseline.spread, s), baseline.limits[kind]
        return [Measure(kind, "score", value, limit, value is not None and value >= limit)]

    data = [measure("data", f) for f in features]
    tested = [m for m in data if m.value is not None]
    share = sum(m.drifted for m in tested) / len(tested) if tested else None
    data.append(Measure("data", "share_drifted", share, s.drift_share,
                        share is not None and share >= s.drift_share))  # fmt: skip
    data += score("data", list(features))
    forecasts = [f"pred_h{h}" for h in horizons]
    predictions = [measure("prediction", c) for c in forecasts]
    need = max(1, int(np.ceil(s.drift_share * len(predictions))))
    drifted = sum(m.drifted for m in predictions)
    predictions.append(Measure("prediction", "horizons_drifted", float(drifted), float(need),
                               drifted >= need))  # fmt: skip
    predictions += score("prediction", forecasts)
    return data + predictions


def performance_measures(
    reference: pd.DataFrame, current: pd.DataFrame, horizons, s: DriftSettings
) -> list[Measure]:
    """Pooled rank IC, directional accuracy and mean absolute error (over the training
    period's) of the recent forecasts whose outcome is known; the decision rests on the longest
    horizon that has at least 20 known outcomes."""
    # deferred: scipy, arch and statsmodels (~1.5 s measured) would load on every qtis command
    # (cli.monitor)
    from scipy.stats import spearmanr

    from quant.intervals import directional_accuracy  # deferred: as above

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
        then = (reference[f"pred_h{h}"] - reference[f"realized_h{h}"]).abs().mean()
        ratio = float(np.abs(pred[known] - true[known]).mean() / then) if then > 0 else None
        out.append(Measure("performance", f"error_ratio_h{h}", ratio, s.error_ratio,
                           ratio is not None and ratio >= s.error_ratio))  # fmt: skip
        decided = (h, ic, ratio)
    if decided is not None:
        h, ic, ratio = decided
        out.append(Measure("performance", "ic", ic, s.ic_floor, ic < s.ic_floor))
        out.append(Measure("performance", "error_ratio", ratio, s.error_ratio,
                           ratio is not None and ratio >= s.error_ratio))  # fmt: skip
    return out


def attribution_measures(
    url: str,
    model,
    s: DriftSettings,
    notes: list[str],
    tracking: TrackingSettings,
    symbols: list[str] | None = None,
) -> list[Measure]:
    """Today's SHAP ranking against the one saved when the champion was registered (in
    ``tracking``'s store), on the bars of ``symbols`` (default: those it trained on)."""
    # deferred: shap, mlflow, torch and xgboost (~7 s measured) would load on every qtis command
    # (cli.monitor)
    from training.explain import explain_registered
    from training.tracking import REGISTERED_NAMES  # deferred: as above

    family = {v: k for k, v in REGISTERED_NAMES.items()}.get(model.name)
    if s.explain_samples == 0 or family is None or family == "ensemble":
        notes.append(f"attribution drift not measured for {model.name}")
        return []
    found = explain_registered(
        url, family, model.version, samples=s.explain_samples, tracking=tracking, symbols=symbols
    ).to_dict()
    agreement = found.get("agreement_with_reference")
    if not agreement:
        notes.append(f"{model.name} v{model.version} has no ranking saved at registration")
        return []
    rho = float(agreement["spearman"])
    return [Measure("attribution", "spearman", rho, s.attribution_floor,
                    rho < s.attribution_floor)]  # fmt: skip


# --- a run ------------------------------------------------------------------------------------


def drift_reports(home: Path) -> Path:
    """Where the entry points put drift pages: ``$QTIS_HOME/reports/drift``."""
    return home / "reports" / "drift"


def check_drift(
    url: str,
    settings: DriftSettings,
    reports: Path,
    model,
    as_of: datetime | None = None,
    data=None,
    baseline: Baseline | None = None,
    html: bool | None = True,
    *,
    tracking: TrackingSettings,
) -> DriftReport:
    """Every check for ``model`` (a ``registry.loaded.LoadedModel``: the champion, loaded by the
    entry point) on the bars through ``as_of`` (default all), its rows in
    ``mlops.drift_results`` and its Evidently HTML report under ``reports`` (the entry point's
    :func:`drift_reports`; ``html`` None: only when the inputs or the forecasts drifted).
    ``data`` and ``baseline``: already made, for a replay over many bars; ``tracking``: the
    MLflow store whose saved SHAP ranking the attributions are compared with."""
    data = drift_data(url, settings) if data is None else data
    baseline = baseline or make_baseline(data, model, settings)
    reference, current = baseline.reference, current_frame(data, model, settings, as_of)
    features = tested_features(model, settings)
    columns = [*features, *(f"pred_h{h}" for h in model.horizons)]
    values = scores(reference, current, columns, settings.method)
    notes = sample_notes(url, data)
    if baseline.windows:
        notes.append(
            f"thresholds and scores calibrated on {baseline.windows} training-period windows"
        )
    measures = drift_measures(values, features, model.horizons, settings, baseline)
    measures += performance_measures(reference, current, model.horizons, settings)
    if not any(m.kind == "performance" for m in measures):
        notes.append("no recent outcomes yet: performance drift waits for labels")
    read = np.unique(data.symbols).tolist()
    measures += attribution_measures(url, model, settings, notes, tracking, read)
    run_id = uuid.uuid4().hex[:12]
    span = lambda f: (f["ts"].min().to_pydatetime(), f["ts"].max().to_pydatetime())  # noqa: E731
    report = DriftReport(run_id, model.name, str(model.version), span(reference), span(current),
                         measures, None, notes)  # fmt: skip
    if html or (html is None and (report.drifted("data") or report.drifted("prediction"))):
        reports.mkdir(parents=True, exist_ok=True)
        stamp = report.current[1].strftime("%Y%m%d") + datetime.now(UTC).strftime("T%H%M%S")
        name = f"drift_{model.name}_v{model.version}_{stamp}_{run_id}.html"
        report.path = (reports / name).resolve()
        snapshot = evidently_report(reference, current, features, model.horizons, settings,
                                    baseline.thresholds)  # fmt: skip
        snapshot.save_html(str(report.path))
    save(url, report)
    return report
