"""Monitoring speed: (a) an Evidently data-drift report (PSI per column, the share of drifted
columns) for 50 features x 100,000 reference rows against 10,000 current rows, next to the same
PSI computed with numpy histograms in the same run (the floor: binning and one sum per column);
(b) the drift sensor's decision latency: from new bars to its decision, i.e. a drift check of the
champion (``monitoring.drift.check_drift``: calibration on its training period, features,
forecasts, Evidently, SHAP, rows stored) and one sensor tick on it. (b) uses the regime-change
market of the scenario test (``monitoring.scenario``, seed 0) in scratch databases on the QTIS
server: a champion trained before the change, checked as of a bar of the same regime (the
sensor should skip) and as of a bar after the change (it should request a retrain).

    python -m bench.monitoring [--features 50] [--reference 100000] [--current 10000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from bench._results import write
from warehouse.settings import get_settings


def frames(features: int, reference: int, current: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    columns = [f"f{i}" for i in range(features)]
    ref = pd.DataFrame(rng.standard_t(5, (reference, features)), columns=columns)
    cur = pd.DataFrame(rng.standard_t(5, (current, features)), columns=columns)
    cur[columns[: features // 5]] += 1.0  # a fifth of them moved (by 0.8 sd)
    return ref, cur


def numpy_psi(ref: pd.DataFrame, cur: pd.DataFrame, bins: int = 10) -> np.ndarray:
    """PSI per column on the reference's quantile bins (the computation Evidently wraps)."""
    out = []
    for column in ref.columns:
        r, c = ref[column].to_numpy(), cur[column].to_numpy()
        edges = np.unique(np.quantile(r, np.linspace(0, 1, bins + 1)))
        p = np.histogram(r, edges)[0] / len(r) + 1e-4
        q = np.histogram(np.clip(c, edges[0], edges[-1]), edges)[0] / len(c) + 1e-4
        out.append(float(np.sum((q - p) * np.log(q / p))))
    return np.array(out)


def timed(fn, repeats: int) -> tuple[float, Any]:
    seconds, value = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        value = fn()
        seconds.append(time.perf_counter() - started)
    return float(np.median(seconds)), value


def bench_report(features: int, reference: int, current: int, repeats: int) -> dict[str, Any]:
    from monitoring.drift import drift_measures, evidently_report, snapshot_scores
    from monitoring.settings import DriftSettings

    ref, cur = frames(features, reference, current)
    names = list(ref.columns)
    ref["pred_h1"], cur["pred_h1"] = ref["f0"], cur["f0"]
    s = DriftSettings(method="psi", threshold=0.2)  # the computation numpy_psi repeats

    def evidently():
        snapshot = evidently_report(ref, cur, names, (1,), s)
        return drift_measures(snapshot_scores(snapshot), names, (1,), s)

    seconds, measures = timed(evidently, repeats)
    base_s, psi = timed(lambda: numpy_psi(ref[names], cur[names]), repeats)
    share = next(m.value for m in measures if m.measure == "share_drifted")
    return {"features": features, "reference_rows": reference, "current_rows": current,
            "evidently_s": seconds, "numpy_psi_s": base_s, "ratio": seconds / base_s,
            "share_drifted": share, "numpy_share": float((psi >= s.threshold).mean()),
            "moved": features // 5}  # fmt: skip


def bench_sensor(console: Console, bars_from_change: tuple[int, ...]) -> list[dict[str, Any]]:
    """New bars -> drift check -> sensor tick -> decision, as of bars before and after the
    change (``k`` bars from it; ``k`` < 0: the same regime as training)."""
    from dagster import DagsterInstance, build_sensor_context

    from monitoring.drift import check_drift, drift_reports
    from monitoring.scenario import RegimeChange
    from monitoring.settings import DriftSettings
    from orchestration.definitions import defs
    from orchestration.resources import WarehouseResource
    from serving.predictor import Predictor
    from serving.settings import ServingSettings
    from training.promotion import PromotionSettings
    from training.runner import TrainConfig
    from training.settings import TrackingSettings
    from warehouse.db import drop_database, recreate_database, sqlalchemy_url
    from warehouse.schema import migrate

    urls = [
        recreate_database("bench_monitoring", get_settings()),
        recreate_database("bench_monitoring_mlflow", get_settings()),
    ]
    scenario = RegimeChange(seed=0)
    sensor = defs.get_sensor_def("drift_sensor")
    rows = []
    with tempfile.TemporaryDirectory(prefix="qtis-bench-monitoring-") as tmp:
        os.environ.update(QTIS_DATABASE_URL=urls[0], QTIS_HOME=str(Path(tmp) / ".qtis"),
                          QTIS_MLFLOW_TRACKING_URI=sqlalchemy_url(urls[1]),
                          QTIS_MONITOR_DEMOTE_ON_DECAY="false")  # fmt: skip
        tracking = TrackingSettings()
        try:
            with console.status("regime-change market: build it, train the champion"):
                migrate(urls[0])
                scenario.build(urls[0], get_settings())
                config = TrainConfig(models=("xgboost",), splits=2)
                scenario.train_champion(urls[0], config, PromotionSettings(), tracking)
            change = scenario.train_bars + scenario.stable_bars
            for k in bars_from_change:
                as_of = scenario.times[change + k].to_pydatetime()
                with console.status(f"drift check as of {k:+d} bars from the change, one tick"):
                    began = time.perf_counter()
                    champion = Predictor(urls[0], ServingSettings(), tracking=tracking).champion
                    folder = drift_reports(get_settings().home)
                    report = check_drift(urls[0], DriftSettings(), folder, champion, as_of=as_of,
                                         tracking=tracking)  # fmt: skip
                    checked = time.perf_counter()
                    # a fresh instance each time: no cooldown left by the previous tick
                    context = build_sensor_context(
                        instance=DagsterInstance.ephemeral(),
                        resources={"warehouse": WarehouseResource()},
                    )
                    result = sensor(context)
                    ticked = time.perf_counter()
                requests = result.run_requests or []
                reason = (requests[0].tags["qtis/reason"] if requests
                          else result.skip_reason.skip_message)  # fmt: skip
                rows.append({"bars_from_change": k, "as_of": as_of.isoformat(),
                             "model": f"{report.model} v{report.version}",
                             "check_s": checked - began, "tick_s": ticked - checked,
                             "total_s": ticked - began, "retrain_requested": bool(requests),
                             "reason": reason})  # fmt: skip
        finally:
            for url in urls:
                drop_database(url)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)  # fmt: skip
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--reference", type=int, default=100_000)
    parser.add_argument("--current", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--bars-from-change", type=int, nargs="+", default=[-10, 10],
        help="check as of these bars from the regime change (< 0: before it)",
    )  # fmt: skip
    args = parser.parse_args()
    console = Console()
    started = time.perf_counter()
    with console.status("drift report"):
        report = bench_report(args.features, args.reference, args.current, args.repeats)
    sensor = bench_sensor(console, tuple(args.bars_from_change))
    table = Table("measurement", "result", "baseline (same run)", "ratio",
                  title="monitoring")  # fmt: skip
    table.add_row(
        f"Evidently drift report, {report['features']} features x {report['reference_rows']:,}"
        f" ref / {report['current_rows']:,} current rows",
        f"{report['evidently_s']:.2f} s (share drifted {report['share_drifted']:.0%},"
        f" {report['moved']} moved)",
        f"numpy PSI {report['numpy_psi_s']:.3f} s (share {report['numpy_share']:.0%})",
        f"{report['ratio']:.0f}x",
    )
    for row in sensor:
        decision = "retrain requested" if row["retrain_requested"] else "skipped"
        table.add_row(
            f"new bars -> sensor decision ({row['model']}, {row['bars_from_change']:+d} bars"
            " from the change)",
            f"{row['total_s']:.1f} s (check {row['check_s']:.1f} s, tick"
            f" {row['tick_s'] * 1e3:.0f} ms): {decision}",
            "-",
            "-",
        )
    console.print(table)
    for row in sensor:
        console.print(f"{row['bars_from_change']:+d} bars: {row['reason']}", highlight=False)
    figures = {
        "params": vars(args),
        "report": report,
        "sensor": sensor,
        "total_s": time.perf_counter() - started,
    }
    write("monitoring", figures, console)


if __name__ == "__main__":
    main()
