"""Champion/challenger promotion: a registered model version serves only after gates it earned.

Every candidate is judged on its walk-forward out-of-sample record (the ``oof_predictions.parquet``
its training run logged, joined with the labels in the warehouse), against the current champion
on the bars both predicted, and against the baselines scored on its own test bars:

- ``beats_champion``: Diebold-Mariano on the squared errors at ``QTIS_PROMOTION_HORIZON``, averaged
  across symbols per bar, one-sided at ``QTIS_PROMOTION_SIGNIFICANCE``;
- ``deflated_sharpe``: the probability that the after-cost Sharpe ratio of its trading rule beats
  the best of the tuning study's trials by luck (tag ``tuning_trials``), at least
  ``QTIS_PROMOTION_MIN_DEFLATED_SHARPE``;
- ``beats_baselines``: a higher after-cost Sharpe ratio than every baseline on the same bars;
- ``servable``: loads and predicts through the serving schema, p99 single-window latency within
  ``QTIS_PROMOTION_LATENCY_BUDGET_MS`` (the probe is the serving package's; it is passed in, since
  serving sits above training);
- ``backtest_overfitting``: the probability of backtest overfitting (CSCV) of choosing among this
  round's candidates and the champion, reported, and a gate only when
  ``QTIS_PROMOTION_MAX_PBO`` is set.

With no champion, the first candidate that passes the absolute gates becomes champion. This
module judges; ``registry.aliases`` moves the aliases it decides on and records every decision in
``mlops.promotions``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import pandas as pd
from mlflow.artifacts import download_artifacts
from mlflow.exceptions import MlflowException

from core.errors import InputError
from quant import significance
from training import metrics
from training.data import load_training_data
from training.lineage import VersionMeta
from training.settings import PromotionSettings


@dataclass(frozen=True)
class Gate:
    name: str
    passed: bool | None  # None: not applicable (e.g. no champion yet), does not block
    value: float | None
    threshold: float | None
    detail: str


class Served(Protocol):
    """What the serving probe saw (``registry.promotions.ServingCheck``): it loaded and answered
    through the schema, and how fast."""

    ok: bool
    p50_ms: float | None
    p99_ms: float | None
    detail: str


@dataclass(frozen=True)
class Decision:
    model: str
    version: str
    decision: str  # promoted | rejected | challenger | forced | rolled_back
    champion_model: str | None  # the champion when the decision was taken
    champion_version: str | None
    gates: tuple[Gate, ...]
    reason: str
    actor: str
    numbers: dict[str, Any] = field(default_factory=dict)  # headline figures, for displays
    run_id: str | None = None  # the MLflow run behind the version

    @property
    def passed(self) -> bool:
        return all(g.passed is not False for g in self.gates)

    def gate(self, name: str) -> Gate | None:
        return next((g for g in self.gates if g.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rule(
    frame: pd.DataFrame, horizon: int, cost_bps: float, name: str = ""
) -> metrics.StrategyResult:
    """The trading rule every model is scored with, as in the training report: the sign of the
    first horizon's forecast, long/short, one bar, after costs (buy-and-hold: always long)."""
    hold = name == "buy_and_hold"
    signal = np.ones(len(frame)) if hold else frame[f"pred_h{horizon}"].to_numpy()
    return metrics.strategy(
        signal,
        frame[f"true_h{horizon}"].to_numpy(),
        frame["symbol"].to_numpy(),
        frame["ts"].to_numpy(),
        cost_bps=cost_bps,
        long_short=not hold,
    )


@dataclass(frozen=True)
class Evidence:
    """One registered version's out-of-sample record: its walk-forward predictions and the
    baselines' on the same test bars, each with the true labels."""

    model: str
    version: str
    run_id: str
    predictions: pd.DataFrame  # symbol, ts, fold, pred_h<h>, true_h<h>
    baselines: dict[str, pd.DataFrame]  # baseline -> the same columns
    tuning_trials: int
    cost_bps: float
    horizons: tuple[int, ...]

    @property
    def label(self) -> str:
        return f"{self.model} v{self.version}"

    def strategy(self) -> metrics.StrategyResult:
        return rule(self.predictions, self.horizons[0], self.cost_bps)

    def baseline_sharpes(self) -> dict[str, float]:
        return {
            b: rule(frame, self.horizons[0], self.cost_bps, b).sharpe.value
            for b, frame in self.baselines.items()
        }


class NoEvidence(ValueError, InputError):
    """The version has no walk-forward record to judge it on (e.g. an online update)."""


def _with_labels(frame: pd.DataFrame, labels: pd.DataFrame, what: str) -> pd.DataFrame:
    frame = frame.assign(ts=frame["ts"].astype("datetime64[us]"))
    merged = frame.merge(labels, on=["symbol", "ts"], how="inner")
    if len(merged) < len(frame):
        raise NoEvidence(
            f"{len(frame) - len(merged)} of {what}'s out-of-sample bars are no longer in "
            "features.training_set: rebuild the features or retrain"
        )
    return merged.sort_values(["ts", "symbol"]).reset_index(drop=True)


def load_evidence(client, url: str, name: str, version: str) -> Evidence:
    found = client.get_model_version(name, str(version))
    run = client.get_run(found.run_id)
    try:
        oof, baselines = (
            pd.read_parquet(download_artifacts(run_id=found.run_id, artifact_path=artifact))
            for artifact in ("oof_predictions.parquet", "oof_baselines.parquet")
        )
    except (MlflowException, OSError) as exc:
        raise NoEvidence(
            f"{name} v{version} has no walk-forward out-of-sample record with baselines (run "
            f"{found.run_id}): only versions trained by `qtis train` or the ensemble (this "
            "release on) can be judged"
        ) from exc
    data = load_training_data(url, sorted(set(oof["symbol"])), labels_only=True)
    labels = pd.DataFrame({"symbol": data.symbols, "ts": data.ts})
    for i, h in enumerate(data.horizons):
        labels[f"true_h{h}"] = data.returns[:, i]
    what = f"{name} v{version}"
    return Evidence(
        model=name,
        version=str(version),
        run_id=found.run_id,
        predictions=_with_labels(oof, labels, what),
        baselines={
            b: _with_labels(frame.drop(columns="baseline"), labels, f"{what}'s {b} baseline")
            for b, frame in baselines.groupby("baseline")
        },
        tuning_trials=VersionMeta.from_tags(run.data.tags).tuning_trials,
        cost_bps=float(run.data.params.get("cost_bps", 5.0)),
        horizons=tuple(data.horizons),
    )


def paired_losses(
    candidate: Evidence, champion: Evidence, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per bar (time order) mean squared error across symbols of the champion and the candidate,
    on the (symbol, bar) pairs both predicted."""
    keys = ["symbol", "ts"]
    column, truth = f"pred_h{horizon}", f"true_h{horizon}"
    both = candidate.predictions[[*keys, column, truth]].merge(
        champion.predictions[[*keys, column]], on=keys, suffixes=("_candidate", "_champion")
    )
    both = both[np.isfinite(both[truth])]
    both["loss_candidate"] = (both[f"{column}_candidate"] - both[truth]) ** 2
    both["loss_champion"] = (both[f"{column}_champion"] - both[truth]) ** 2
    per_bar = both.groupby("ts")[["loss_champion", "loss_candidate"]].mean().sort_index()
    return per_bar["loss_champion"].to_numpy(), per_bar["loss_candidate"].to_numpy()


def champion_gate(
    candidate: Evidence, champion: Evidence | None, settings: PromotionSettings
) -> Gate:
    if champion is None:
        return Gate("beats_champion", None, None, settings.significance, "no champion yet")
    champ, cand = paired_losses(candidate, champion, settings.horizon)
    if len(champ) < 10:
        return Gate(
            "beats_champion",
            False,
            None,
            settings.significance,
            f"shares only {len(champ)} out-of-sample bars with the champion {champion.label}: "
            "train both on the same data",
        )
    test = significance.diebold_mariano(champ, cand, horizon=settings.horizon)
    passed = test.p_value < settings.significance
    verdict = "lower" if passed else "not significantly lower"
    return Gate(
        "beats_champion",
        passed,
        test.p_value,
        settings.significance,
        f"h{settings.horizon} squared errors {verdict} than {champion.label}'s: DM "
        f"{test.statistic:.2f}, p={test.p_value:.3f} over {test.n} bars",
    )


def deflated_sharpe_gate(
    returns: np.ndarray, trials: int, settings: PromotionSettings
) -> tuple[Gate, significance.DeflatedSharpe | None]:
    threshold = settings.min_deflated_sharpe
    try:
        dsr = significance.deflated_sharpe_ratio(returns, n_trials=max(1, trials))
    except ValueError as exc:
        return Gate("deflated_sharpe", False, None, threshold, str(exc)), None
    passed = dsr.probability >= threshold
    return (
        Gate(
            "deflated_sharpe",
            passed,
            dsr.probability,
            threshold,
            f"P(true Sharpe > best of {dsr.n_trials} unskilled trials) = {dsr.probability:.3f}"
            f" (Sharpe {dsr.sharpe * math.sqrt(252):.2f}/yr over {dsr.n_obs} bars)",
        ),
        dsr,
    )


def baselines_gate(sharpe: float, baselines: dict[str, float | None]) -> Gate:
    compared = {b: s for b, s in baselines.items() if s is not None and math.isfinite(s)}
    if not compared:
        return Gate("beats_baselines", False, sharpe, None, "no baseline was scored on its bars")
    best = max(compared, key=compared.get)
    losers = [f"{b} {s:.2f}" for b, s in compared.items() if not sharpe > s]
    text = ", ".join(f"{b} {s:.2f}" for b, s in compared.items())
    if not math.isfinite(sharpe):
        return Gate("beats_baselines", False, None, compared[best], "its rule never traded")
    detail = f"after-cost Sharpe {sharpe:.2f} vs {text}" + (
        f": not above {', '.join(losers)}" if losers else ""
    )
    return Gate("beats_baselines", not losers, sharpe, compared[best], detail)


def servable_gate(check: Served, settings: PromotionSettings) -> Gate:
    budget = settings.latency_budget_ms
    if not check.ok:
        return Gate("servable", False, None, budget, check.detail)
    passed = check.p99_ms is not None and check.p99_ms <= budget
    return Gate(
        "servable",
        passed,
        check.p99_ms,
        budget,
        f"{check.detail}; p50 {check.p50_ms:.2f} ms, p99 {check.p99_ms:.2f} ms"
        + ("" if passed else f", over the {budget:g} ms budget"),
    )


def overfitting_gate(
    evidence: Sequence[Evidence], settings: PromotionSettings
) -> tuple[Gate, significance.BacktestOverfitting | None]:
    """PBO of picking the best of these configurations by Sharpe ratio, on the bars they share."""
    limit = settings.max_pbo
    if len(evidence) < 2:
        return Gate("backtest_overfitting", None, None, limit, "one configuration: no choice"), None
    series = [pd.Series(s.returns, index=s.times) for s in (e.strategy() for e in evidence)]
    common = pd.concat(series, axis=1, join="inner")
    try:
        pbo = significance.probability_of_backtest_overfitting(
            common.to_numpy(), n_blocks=settings.pbo_blocks
        )
    except ValueError as exc:
        return Gate("backtest_overfitting", None, None, limit, f"not computed: {exc}"), None
    passed = None if limit is None else pbo.probability <= limit
    detail = (
        f"PBO {pbo.probability:.2f} choosing among {pbo.n_configurations} configurations "
        f"({pbo.n_splits} CSCV splits over {len(common)} bars)"
    )
    return Gate("backtest_overfitting", passed, pbo.probability, limit, detail), pbo


def judge(
    candidate: Evidence,
    champion: Evidence | None,
    check: Served,
    settings: PromotionSettings,
    overfitting: Gate,
) -> tuple[tuple[Gate, ...], dict[str, Any]]:
    """Every gate of one candidate, and its headline numbers."""
    trading = candidate.strategy()
    baselines = candidate.baseline_sharpes()
    dsr_gate, dsr = deflated_sharpe_gate(trading.returns, candidate.tuning_trials, settings)
    gates = (
        champion_gate(candidate, champion, settings),
        dsr_gate,
        baselines_gate(trading.sharpe.value, baselines),
        servable_gate(check, settings),
        overfitting,
    )
    numbers = {
        "oos_sharpe": trading.sharpe.value,
        "deflated_sharpe": dsr.probability if dsr else None,
        "tuning_trials": candidate.tuning_trials,
        "test_bars": len(trading.returns),
        "baselines": baselines,
    }
    return gates, numbers


def failed_reason(gates: Sequence[Gate]) -> str:
    return "; ".join(f"{g.name}: {g.detail}" for g in gates if g.passed is False)


# --- one round of decisions -----------------------------------------------------------------


def _champion_evidence(client, url: str, current: tuple[str, str] | None) -> Evidence | None:
    """The champion's record; None without a champion, or when it has none (e.g. a forced online
    update): candidates are then judged on the absolute gates only."""
    if current is None:
        return None
    try:
        return load_evidence(client, url, *current)
    except NoEvidence:
        return None


def _drafts(client, url, probe, candidates, champion, before, settings, actor) -> list[Decision]:
    """Every candidate judged, each still "rejected" with no reason: the round decides."""
    evidence: dict[tuple[str, str], Evidence | NoEvidence] = {}
    for name, version in candidates:
        try:
            evidence[(name, str(version))] = load_evidence(client, url, name, str(version))
        except NoEvidence as exc:
            evidence[(name, str(version))] = exc
    judged = [e for e in evidence.values() if isinstance(e, Evidence)]
    overfitting, _ = overfitting_gate([*judged, *([champion] if champion else [])], settings)
    drafts: list[Decision] = []
    for (name, version), found in evidence.items():
        run_id = client.get_model_version(name, version).run_id
        if isinstance(found, NoEvidence):
            gate = Gate("evidence", False, None, None, str(found))
            drafts.append(
                Decision(name, version, "rejected", *before, (gate,), str(found), actor, {}, run_id)
            )
            continue
        gates, numbers = judge(found, champion, probe(name, version), settings, overfitting)
        drafts.append(
            Decision(name, version, "rejected", *before, gates, "", actor, numbers, run_id)
        )
    return drafts


def judge_round(
    client,
    url: str,
    probe: Callable[[str, str], Served],
    candidates: Sequence[tuple[str, str]],
    current: tuple[str, str] | None,
    settings: PromotionSettings,
    actor: str,
) -> list[Decision]:
    """Judge ``candidates`` against the champion ``current``: the one passing every gate with
    the highest deflated Sharpe ratio is "promoted", the best other servable one the shadow
    "challenger" (when there is a champion), the rest "rejected"; each with its reason."""
    champion = _champion_evidence(client, url, current)
    candidates = [c for c in candidates if current is None or tuple(map(str, c)) != current]
    before = current or (None, None)
    drafts = _drafts(client, url, probe, candidates, champion, before, settings, actor)
    passing = [d for d in drafts if d.passed]
    winner = max(passing, key=lambda d: d.numbers["deflated_sharpe"] or 0.0, default=None)
    holds_champion = winner is not None or current is not None
    shadow = [
        d
        for d in drafts
        if d is not winner and d.gate("servable") is not None and d.gate("servable").passed
    ]
    challenger = max(shadow, key=lambda d: d.numbers["oos_sharpe"] or -math.inf, default=None)
    if not holds_champion:
        challenger = None
    decisions = []
    for d in drafts:
        if d is winner:
            first = current is None
            reason = "passed every gate" + (": first champion" if first else "")
            kind = "promoted"
        elif d is challenger:
            reason = f"shadow challenger; not promoted: {failed_reason(d.gates) or 'outranked'}"
            kind = "challenger"
        else:
            reason = failed_reason(d.gates) or f"passed, outranked by {winner.model}"
            kind = "rejected"
        decisions.append(replace(d, decision=kind, reason=reason))
    return decisions


def judge_forced(
    client,
    url: str,
    name: str,
    version: str,
    reason: str,
    check: Served,
    current: tuple[str, str] | None,
    settings: PromotionSettings,
    actor: str,
) -> Decision:
    """The "forced" decision for ``name`` ``version``: its statistical gates are computed and
    recorded whatever they say, but a version the service could not load is refused."""
    champion = _champion_evidence(client, url, current)
    try:
        found = load_evidence(client, url, name, str(version))
        gates, numbers = judge(
            found, champion, check, settings, overfitting_gate([found], settings)[0]
        )
    except NoEvidence as exc:
        gates = (Gate("evidence", False, None, None, str(exc)), servable_gate(check, settings))
        numbers = {}
    servable = next(g for g in gates if g.name == "servable")
    if not servable.passed:
        raise ValueError(f"{name} v{version} cannot be served, not forcing it: {servable.detail}")
    failed = failed_reason(gates)
    text = f"forced by {actor}: {reason}" + (f"; failed gates: {failed}" if failed else "")
    run_id = client.get_model_version(name, str(version)).run_id
    return Decision(
        name, str(version), "forced", *(current or (None, None)), gates, text, actor, numbers,
        run_id,
    )  # fmt: skip
