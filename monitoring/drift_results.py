"""A drift run's record: its measures, the report the sensors and the CLI read, and its rows in
``mlops.drift_results`` (``monitoring.drift`` computes it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from warehouse.db import connect


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
    path: Path | None  # the Evidently page, when one was written
    notes: list[str] = field(default_factory=list)

    def drifted(self, kind: str) -> bool:
        headline = [m for m in self.measures if m.kind == kind and m.measure in _HEADLINE]
        # a calibrated score decides; the share of drifted columns only without one
        decisive = [m for m in headline if m.measure == "score"] or headline
        return any(m.drifted for m in decisive)

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
            "data_drift_score": self.value("data", "score"),
            "prediction_drift_score": self.value("prediction", "score"),
            "drifted": {k: self.drifted(k) for k in KINDS},
            "report": None if self.path is None else str(self.path),
            "notes": self.notes,
        }


KINDS = ("data", "prediction", "performance", "attribution")
# the measures that decide a kind (per-column rows are the detail behind them)
_HEADLINE = {"score", "share_drifted", "horizons_drifted", "ic", "spearman"}


def save(url: str, report: DriftReport) -> None:
    rows = [
        (report.run_id, report.model, report.version, m.kind, m.measure, m.value, m.threshold,
         m.drifted, *report.reference, *report.current,
         None if report.path is None else str(report.path))
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
                       measures, Path(first[11]) if first[11] else None)  # fmt: skip


def latest_run(url: str) -> str | None:
    """The newest drift run's id."""
    with connect(url) as conn, conn.cursor() as cur:
        cur.execute("select run_id from mlops.drift_results order by id desc limit 1")
        row = cur.fetchone()
    return row[0] if row else None
