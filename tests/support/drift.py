"""A drift run's record made by hand: what the verdicts and the sensors are tested against."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from monitoring.drift_results import DriftReport, Measure

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)
SPAN = (datetime(2010, 1, 4, tzinfo=UTC), datetime(2011, 1, 3, tzinfo=UTC))


def report(data: bool = False, decayed: bool = False, model: str = "qtis-xgboost",
           version: str = "1", run_id: str = "r1") -> DriftReport:  # fmt: skip
    measures = [
        Measure("data", "share_drifted", 0.6 if data else 0.1, 0.3, data),
        Measure("prediction", "horizons_drifted", 0.0, 1.0, False),
        Measure("performance", "ic", -0.2 if decayed else 0.05, 0.0, decayed),
    ]
    return DriftReport(run_id, model, version, SPAN, (SPAN[1], NOW), measures, Path("r.html"))
