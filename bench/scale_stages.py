"""The stages of ``bench.scale``, each run by ``python -m bench.scale_stages STAGE`` in a process
of its own, so that its wall time and peak memory are its own. A stage reads its database, MLflow
store and home from the environment the runner sets (``QTIS_DATABASE_URL``, ``QTIS_HOME``,
``QTIS_MLFLOW_TRACKING_URI``) and the size of the universe from ``SCALE_BENCH_*``, and prints one
JSON line of what it did (rows, fits, orders...), which the runner records next to its cost."""

from __future__ import annotations

import json
import logging
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from warehouse.providers import SyntheticMarket
from warehouse.providers.base import FrameProvider

BARS_PER_YEAR = 252
# LAZY: each stage imports its libraries in its function: a stage's process loads only what it
# uses (torch, MLflow, dbt...), whose memory is part of the peak this benchmark measures


@dataclass(frozen=True)
class Universe:
    """The synthetic universe a run trades: ``symbols`` x ``years`` of daily bars, the last one
    held back for the incremental day; the LSTM trains on ``lstm_symbols`` of them."""

    symbols: int
    years: float
    seed: int = 11
    lstm_symbols: int = 50

    @classmethod
    def from_env(cls) -> Universe:
        return cls(
            int(os.environ["SCALE_BENCH_SYMBOLS"]),
            float(os.environ["SCALE_BENCH_YEARS"]),
            int(os.environ.get("SCALE_BENCH_SEED", "11")),
            int(os.environ.get("SCALE_BENCH_LSTM_SYMBOLS", "50")),
        )

    @property
    def bars(self) -> int:
        return round(self.years * BARS_PER_YEAR)

    def market(self) -> SyntheticMarket:
        return SyntheticMarket(n_symbols=self.symbols, n_bars=self.bars + 1, seed=self.seed)

    def days(self) -> tuple[FrameProvider, FrameProvider]:
        """(every bar but the last day's, the last day's) of the market."""
        whole = FrameProvider(self.market().load())
        last = whole.raw.frame["ts"] == whole.raw.frame["ts"].max()
        return whole.where(~last), whole.where(last)


def _url() -> str:
    return os.environ["QTIS_DATABASE_URL"]


def ingest_stage(u: Universe) -> dict[str, Any]:
    from warehouse.ingest import ingest  # deferred: see LAZY
    from warehouse.settings import WarehouseSettings  # deferred: see LAZY

    head, _ = u.days()
    report = ingest(head, _url(), WarehouseSettings())
    return {"rows": report.rows_in, "inserted": report.inserted, "quarantined": report.quarantined}


def garch_stage(u: Universe) -> dict[str, Any]:
    from transforms.garch import update_garch  # deferred: see LAZY

    report = update_garch(_url())
    return {"symbols": len(report.symbols), "fits": report.fits, "rows": report.rows_written}


def _build(full_refresh: bool) -> dict[str, Any]:
    from transforms.dbt_runner import build  # deferred: see LAZY
    from transforms.store import summary  # deferred: see LAZY

    report = build(_url(), full_refresh=full_refresh)
    if not report.success:
        raise RuntimeError(f"feature build failed: {[n.name for n in report.failures()]}")
    return {"bar_features": summary(_url()).rows.get("bar_features", 0)}


def features_stage(u: Universe) -> dict[str, Any]:
    return _build(full_refresh=True)


def incremental_stage(u: Universe) -> dict[str, Any]:
    """The next day's bar of every symbol: ingest, GARCH and the incremental feature build."""
    from transforms.garch import update_garch  # deferred: see LAZY
    from warehouse.ingest import ingest  # deferred: see LAZY
    from warehouse.settings import WarehouseSettings  # deferred: see LAZY

    _, tail = u.days()
    report = ingest(tail, _url(), WarehouseSettings())
    garch = update_garch(_url())
    return {"rows": report.inserted, "garch_rows": garch.rows_written} | _build(False)


def _train(config, symbols=None) -> dict[str, Any]:
    from training.runner import run_training  # deferred: see LAZY
    from training.settings import TrackingSettings  # deferred: see LAZY

    run = run_training(_url(), config, symbols=symbols, tracking=TrackingSettings())
    (family,) = config.models
    info = run.registered[family]
    return {"registered": f"{info['registered']} v{info['version']}"}


def xgboost_stage(u: Universe) -> dict[str, Any]:
    """XGBoost over the whole universe, purged walk-forward folds then the final fit."""
    from training.runner import TrainConfig  # deferred: see LAZY

    config = TrainConfig(models=("xgboost",), splits=3, xgb_estimators=200, explain_samples=100)
    return _train(config)


def lstm_stage(u: Universe) -> dict[str, Any]:
    """A small LSTM on a seeded sample of ``lstm_symbols`` symbols, one epoch per fold."""
    from training.runner import TrainConfig  # deferred: see LAZY

    names = u.market().symbols
    rng = np.random.default_rng(u.seed)
    chosen = sorted(rng.choice(names, min(u.lstm_symbols, len(names)), replace=False).tolist())
    config = TrainConfig(models=("lstm",), size="small", epochs=1, splits=2, explain_samples=0)
    return _train(config, chosen) | {"symbols": len(chosen)}


def promotion_stage(u: Universe) -> dict[str, Any]:
    """The gates on both new versions; a universe of noise may pass none of them, and the rest
    of the chain needs a champion: then the XGBoost is forced (recorded as forced)."""
    from registry.aliases import force, promote  # deferred: see LAZY
    from registry.promotions import status  # deferred: see LAZY
    from serving.probe import serving_probe  # deferred: see LAZY
    from training.settings import PromotionSettings, TrackingSettings  # deferred: see LAZY

    # the p99 budget of one forecast is judged on this machine, shared with the rest of the
    # chain: the bench measures scale, not the latency of a lone forecast (bench.serving does)
    tracking, settings = TrackingSettings(), PromotionSettings(latency_budget_ms=1000.0)
    probe = serving_probe(_url(), tracking=tracking)
    decisions = promote(_url(), probe, settings, tracking=tracking)
    champion = status(_url(), limit=0, tracking=tracking)["champion"]
    forced = champion is None
    if forced:  # the XGBoost version just judged (a resumed run registers a new one)
        version = next(d.version for d in decisions if d.model == "qtis-xgboost")
        force(_url(), "qtis-xgboost", version, "scale bench: no version passed the gates", probe,
              settings, tracking=tracking)  # fmt: skip
        champion = ("qtis-xgboost", version)
    return {"champion": f"{champion[0]} v{champion[1]}", "forced": forced,
            "decisions": {d.model: d.decision for d in decisions}}  # fmt: skip


def _trade(mode: str) -> dict[str, Any]:
    from serving.settings import ServingSettings  # deferred: see LAZY
    from trading_runtime.config import RunConfig, StrategyConfig  # deferred: see LAZY
    from trading_runtime.runs import model_client, out_of_sample, run  # deferred: see LAZY
    from training.settings import TrackingSettings  # deferred: see LAZY

    tracking = TrackingSettings()
    card = model_client(_url(), None, ServingSettings(), tracking).info().champion
    # long and short on a margin account: a model of a noise market may forecast every symbol
    # down, and a long-only book would then send no order at all
    strategy = StrategyConfig(name="champion", signal="model",
                              limits={"allow_short": True, "cash_account": False})  # fmt: skip
    config = RunConfig(mode=mode, stream=f"scale-{mode}-{datetime.now(UTC):%H%M%S}",
                       strategies=[strategy])  # fmt: skip
    result = run(_url(), out_of_sample(config, card), tracking=tracking)
    m = next(iter(result.metrics.values()))
    return {"bars": m["bars"], "orders": m["orders"], "denied": m["denied"],
            "denials": result.denials, "fills": len(result.fills),
            "tick_to_order_p99_ms": (result.latency_us.get("p99") or 0) / 1e3}  # fmt: skip


def backtest_stage(u: Universe) -> dict[str, Any]:
    """The champion over every symbol, on the bars after its training."""
    return _trade("backtest")


def paper_stage(u: Universe) -> dict[str, Any]:
    """The same as a paper session (flat out): each decision journaled before it is sent."""
    return _trade("paper")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve() -> tuple[subprocess.Popen, str]:
    from serving.client import ServingClient  # deferred: see LAZY
    from serving.launch import service_command, service_env  # deferred: see LAZY

    port = _free_port()
    env = service_env() | {"QTIS_SERVE_RELOAD_SECONDS": "0", "QTIS_API_RATE_LIMIT": "1000000"}
    log = open(Path(os.environ["QTIS_HOME"]) / "scale-serving.log", "w")  # noqa: SIM115
    service = subprocess.Popen(service_command("127.0.0.1", port), env=env, stdout=log,
                               stderr=subprocess.STDOUT)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    with ServingClient(base) as client:
        deadline = time.monotonic() + 300
        while not client.ready():
            if service.poll() is not None or time.monotonic() > deadline:
                service.kill()
                raise RuntimeError(f"the service did not start: see {log.name}")
            time.sleep(1)
    return service, base


def predictions_stage(u: Universe) -> dict[str, Any]:
    """Forecasts for every symbol of the universe from the prediction service (its process is
    this stage's child), as many symbols a request as the service takes."""
    from serving.client import ServingClient  # deferred: see LAZY
    from serving.schemas import PredictRequest  # deferred: see LAZY
    from serving.settings import ServingSettings  # deferred: see LAZY

    names = u.market().symbols
    per_request = ServingSettings().serve_max_windows
    service, base = _serve()
    try:
        with ServingClient(base, timeout=120) as client:
            seconds, answered = [], 0
            for start in range(0, len(names), per_request):
                began = time.perf_counter()
                reply = client.predict(PredictRequest(symbols=names[start : start + per_request]))
                seconds.append(time.perf_counter() - began)
                answered += len(reply.predictions)
    finally:
        service.terminate()
        service.wait(30)
    return {"symbols": answered, "requests": len(seconds), "symbols_per_request": per_request,
            "request_p50_ms": float(np.median(seconds)) * 1e3}  # fmt: skip


def drift_stage(u: Universe) -> dict[str, Any]:
    """The champion's drift check, with its Evidently page."""
    from monitoring.drift import check_drift, drift_reports  # deferred: see LAZY
    from monitoring.settings import DriftSettings  # deferred: see LAZY
    from serving.predictor import Predictor  # deferred: see LAZY
    from serving.settings import ServingSettings  # deferred: see LAZY
    from training.settings import TrackingSettings  # deferred: see LAZY

    tracking = TrackingSettings()
    champion = Predictor(_url(), ServingSettings(), tracking=tracking).champion
    home = Path(os.environ["QTIS_HOME"])
    report = check_drift(_url(), DriftSettings(), drift_reports(home), champion,
                         tracking=tracking)  # fmt: skip
    return {"measures": len(report.measures), "notes": report.notes}


STAGES: dict[str, Callable[[Universe], dict[str, Any]]] = {
    "ingest": ingest_stage,
    "garch": garch_stage,
    "features": features_stage,
    "incremental": incremental_stage,
    "xgboost": xgboost_stage,
    "lstm": lstm_stage,
    "promotion": promotion_stage,
    "backtest": backtest_stage,
    "predictions": predictions_stage,
    "drift": drift_stage,
    "paper": paper_stage,
}


def main() -> None:
    import mlflow  # noqa: F401  # deferred: see LAZY (it sets its loggers' levels: quieted after)

    for name in ("mlflow", "psycopg"):
        logging.getLogger(name).setLevel(logging.ERROR)
    found = STAGES[sys.argv[1]](Universe.from_env())
    own, children = (
        resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    # the high-water marks of this process and of its largest child (kB on Linux); the CPU
    # seconds of both (not the database server's): on a shared machine, steadier than wall time
    found["maxrss_bytes"] = max(own.ru_maxrss, children.ru_maxrss) * 1024
    found["cpu_s"] = sum(u.ru_utime + u.ru_stime for u in (own, children))
    print("SCALE-STAGE " + json.dumps(found, default=str), flush=True)


if __name__ == "__main__":
    main()
