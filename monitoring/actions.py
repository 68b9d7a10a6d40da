"""What a drift run calls for: retrain when the inputs or the forecasts moved (not more often
than the cooldown allows), demote the champion when its recent accuracy decayed below the floor;
and what a shadow comparison calls for: replace it by the challenger that traded better.
Plain functions of a stored run and the time of the last retrain, so the Dagster sensor that
acts on them stays thin and every decision can be replayed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from monitoring.drift_results import DriftReport
from monitoring.settings import ActionSettings


@dataclass(frozen=True)
class Verdict:
    action: Literal["retrain", "demote", "replace", "wait"]
    reason: str


def decide_shadow(
    stream: str, bars: int, p_shadow_better: float, settings: ActionSettings
) -> Verdict:
    """The champion's live book against the challenger's shadow book of the same bars
    (Diebold-Mariano, one-sided): replace the champion when the challenger traded better
    with significance."""
    where = f"stream {stream}, {bars} bars"
    if bars < settings.shadow_min_bars:
        return Verdict("wait", f"{where}: fewer than {settings.shadow_min_bars} bars to compare")
    if p_shadow_better < settings.shadow_significance:
        return Verdict("replace", f"the challenger's shadow book beat the champion's live book"
                       f" ({where}, one-sided p={p_shadow_better:.3g} < "
                       f"{settings.shadow_significance:g})")  # fmt: skip
    return Verdict("wait", f"{where}: the challenger did not trade significantly better "
                   f"(p={p_shadow_better:.3g})")  # fmt: skip


def decide(
    report: DriftReport,
    last_retrain: datetime | None,
    now: datetime,
    settings: ActionSettings,
) -> list[Verdict]:
    """The actions ``report`` calls for, each with the reason a person would want to read."""
    out: list[Verdict] = []
    label = f"{report.model} v{report.version}"
    if report.drifted("performance") and settings.demote_on_decay:
        ic = report.value("performance", "ic")
        floor = next(m.threshold for m in report.measures if m.measure == "ic")
        out.append(Verdict("demote", f"{label} decayed: recent rank IC {ic:.3f} < {floor:.3f}"))
    moved = [k for k in ("data", "prediction") if report.drifted(k)]
    if moved:
        details = []
        for kind in moved:
            score, share = report.value(kind, "score"), report.value(kind, "share_drifted")
            if score is not None:
                details.append(f"{kind} score {score:.2f}")
            elif share is not None:
                details.append(f"{share:.0%} of features")
        why = f"{' and '.join(moved)} drift of {label}"
        why += f" ({', '.join(details)})" if details else ""
        until = (
            last_retrain + timedelta(hours=settings.retrain_cooldown_hours)
            if last_retrain
            else None
        )
        if until is not None and now < until:
            out.append(Verdict("wait", f"{why}; retrain cooldown until {until:%Y-%m-%d %H:%M}"))
        else:
            out.append(Verdict("retrain", why))
    return out
