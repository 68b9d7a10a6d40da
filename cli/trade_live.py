"""``qtis trade live``: the supervised trading service - bars as they are committed, a broker,
reconciliation, ``/metrics`` and ``/healthz`` - until SIGTERM (or Ctrl-C) stops it."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from cli.common import console, err, fail, ready_url
from cli.render.trading import print_metrics
from monitoring.alerts import AlertSink
from monitoring.runtime_alerts import RuntimeAlerts
from monitoring.settings import AlertSettings
from serving.settings import ServingSettings
from trading_runtime import run_options as ro
from trading_runtime.settings import FixSettings, LiveSettings, RuntimeSettings
from training.settings import TrackingSettings
from warehouse.settings import AlpacaSettings, VendorSettings, WarehouseSettings

Feed = Annotated[
    str,
    typer.Option(
        help="warehouse (bars another process loads) | alpaca (Alpaca's bar stream, written"
        " to the warehouse here) | yahoo (Yahoo polled, written to the warehouse here)"
    ),
]
Broker = Annotated[
    str,
    typer.Option(
        help="sim (the simulated venue in process) | alpaca (Alpaca's trading API at"
        " QTIS_ALPACA_TRADING_URL) | fix (FIX 4.4 to QTIS_FIX_HOST:PORT)"
    ),
]


def live(
    stream: Annotated[str, typer.Option(help="the journal stream; the same stream resumes")],
    feed: Feed = "warehouse",
    broker: Broker = "sim",
    symbols: Annotated[list[str] | None, typer.Option(help="universe")] = None,
    signal_: Annotated[
        str, typer.Option("--signal", help="buy-and-hold | sma-cross | model")
    ] = "model",
    fast: int = 20,
    slow: int = 50,
    sizing: Annotated[str | None, typer.Option(help="fixed | equal | vol-target")] = None,
    model_url: Annotated[str | None, typer.Option(help="prediction API; else in process")] = None,
    limit: Annotated[list[str] | None, typer.Option(help="risk limit NAME=VALUE")] = None,
    strategies: Annotated[Path | None, typer.Option(help="YAML with several strategies")] = None,
    venue_log: Annotated[Path | None, typer.Option(help="sim: the venue's order log")] = None,
    metrics_open: Annotated[
        bool, typer.Option(help="allow /metrics and /healthz beyond loopback (a container)")
    ] = False,
) -> None:
    """Trade live until stopped: each new bar committed to market.bars is traded through the
    broker, every decision journaled first. SIGTERM finishes the bar, journals and disconnects;
    run it again with the same --stream to resume."""
    # deferred: the engine pulls sklearn and scipy (~2 s) that other qtis commands do not need
    from trading_runtime.engine import EngineHalted
    from trading_runtime.live import (  # deferred: as above
        BROKERS,
        LiveParts,
        first_live_day,
        run_live,
    )

    if broker not in BROKERS:
        raise fail(f"unknown broker {broker!r}: one of {', '.join(BROKERS)}")
    url = ready_url()
    raw: dict[str, Any] = {
        "symbols": symbols, "signal": signal_, "fast": fast, "slow": slow, "sizing": sizing,
        "model_url": model_url, "limit": limit, "start": None, "end": None,
        "execution": BROKERS[broker],
    }  # fmt: skip
    try:
        options = ro.run_options(raw)
        config, resumed = ro.live_config(url, stream, options, strategies, first_live_day)
    except (ro.OptionError, LookupError) as exc:
        raise fail(str(exc)) from exc
    if resumed:
        console.print(f"resuming stream {stream} (its options are the ones it started with)")
    warehouse = WarehouseSettings()
    parts = LiveParts(
        LiveSettings(), RuntimeSettings(), ServingSettings(), FixSettings(), AlpacaSettings(),
        VendorSettings(), warehouse, TrackingSettings(),
    )  # fmt: skip
    stop = threading.Event()
    started = time.perf_counter()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    home = warehouse.home
    alerts = RuntimeAlerts(stream, AlertSink(AlertSettings(), home))

    def ready(health) -> None:
        err.print(f"live: {health.url}/healthz and /metrics; SIGTERM stops", highlight=False)

    try:
        result = run_live(
            url, config, feed, parts, stop, venue_log or ro.venue_log(home, stream), [alerts],
            ready, metrics_open,
        )  # fmt: skip
    except EngineHalted as exc:
        raise fail(str(exc), code=3) from exc
    except (LookupError, ValueError, ConnectionError, OSError) as exc:
        raise fail(str(exc)) from exc
    finally:
        alerts.close()
    print_metrics(result, time.perf_counter() - started)
