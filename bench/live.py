"""Live trading (`qtis trade live`): (a) bar-to-order latency, from the commit of a bar's load
into ``market.bars`` to the broker receiving the order it caused; (b) the time of a
reconciliation of 500 positions; (c) 20 SIGKILL recoveries in one live session.

Every part runs the real service as ``trading_runtime.alpaca.rehearsal`` runs it: the stand-in
market (this process) continues synthetic stored bars, a real ``qtis trade live --feed alpaca
--broker alpaca`` process writes the streamed bars into the warehouse and trades them through
alpaca-py, and the rehearsal publishes one bar at a time, waiting each time until the service
has journaled it (no queueing: each bar's latency is its own).

(a) ``committed_at`` is the ``qtis_bars`` NOTIFY's clock_timestamp at commit (this process
listens with ``warehouse.announce.BarListener``; the bar's time is the latest commit of a load
covering it: the cross-section is complete then); the arrival is the stand-in's ``time.time()``
when the order's POST reached it. Both clocks are this machine's. p50/p99 over every order, and
over each bar's first order. The engine's own split (``stages_us`` of ``order_accepted``: bar
arrival in the engine -> features -> decided -> journal committed -> acknowledged) shows where
the time goes; commit -> engine = the rest. Signal: ``sma-cross`` (3/8) by default; ``--model``
also trades a small XGBoost champion (trained here on the first universe, as
``bench.runtime`` trains it; 600 stored sessions instead of 120, for its features) in process,
and ``--http`` over HTTP too (the BentoML service started as ``bench.serving`` starts it).
(b) ``reconcile()`` on a book of 500 positions and a ``BrokerState`` that agrees (p50/p99 of
repeated calls), and ``AlpacaExecution.broker_state()`` through alpaca-py against the stand-in
holding 500 positions.
(c) ``--kills`` SIGKILLs at seeded points (``Rehearsal.kill_at``: right after a bar's load
committed, as the first order reaches the broker, a random 0-300 ms after a bar, between bars),
each followed by a restart; recovery = from the restart to the first order of a bar published
after the service caught up reaching the broker (bars published as fast as it journals them).
Then a SIGTERM, and the audit: no order lost, journaled or sent twice, fills equal, the last
reconciliation matched.

    python -m bench.live [--symbols 10 500] [--bars 40] [--kills 20] [--seed 1] [--model [--http]]
    python -m bench.live --quick     # 10 and 100 symbols, 15 bars, 5 kills

``--model --http`` takes about 4 minutes on 2 cores (the training, the GARCH fits of 500
symbols, 20 restarts of the service); without, about 3.

Scratch databases bench_live_<symbols> on the QTIS server (dropped unless ``--keep``); the
service's home is a temporary directory. Everything shares the machine's cores.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from bench._results import write
from bench._timing import call_latency
from bench.runtime import GARCH_REFIT, train_champion
from bench.serving import free_port
from bench.serving import start as start_service
from trading_runtime import events as ev
from trading_runtime.alpaca.execution import AlpacaExecution
from trading_runtime.alpaca.market import Market
from trading_runtime.alpaca.rehearsal import KILL_POINTS, Rehearsal
from trading_runtime.alpaca.standin import StandIn
from trading_runtime.book import Book
from trading_runtime.instruments import Instrument
from trading_runtime.reconcile import BrokerState, reconcile
from trading_runtime.settings import CostModel
from transforms.garch import update_garch
from transforms.spec import default_spec
from warehouse.announce import BarListener
from warehouse.db import drop_database, recreate_database, sqlalchemy_url
from warehouse.ingest import ingest
from warehouse.providers.base import FrameProvider, RawBars
from warehouse.providers.base import Instrument as Listing
from warehouse.providers.continuation import next_sessions
from warehouse.schema import migrate
from warehouse.settings import AlpacaSettings, get_settings

HISTORY = 120  # stored sessions before the live ones (the signal's warm-up)
MODEL_HISTORY = 600  # the model's features: GARCH needs 250 bars, the serving probe more
TARGET_P99_MS = {10: 10.0, 500: 100.0}  # in process
TARGET_RECOVERY_S = 10.0
POSITIONS = 500


# --- set-up -------------------------------------------------------------------------------------


def symbols_of(n: int) -> list[str]:
    return [f"S{i:04d}" for i in range(n)]


def history(symbols: list[str], seed: int, sessions: int) -> RawBars:
    """``sessions`` XNYS sessions of random walks, stamped as the warehouse stamps daily bars,
    in five sectors (the model's features compare a symbol with its sector)."""
    rng = np.random.default_rng(seed)
    times = next_sessions(pd.Timestamp("2021-12-30", tz="UTC"), sessions)
    frames = []
    for k, symbol in enumerate(symbols):
        close = (20.0 + k % 200) * np.exp(np.cumsum(rng.normal(0, 0.02, len(times))))
        opens = close * np.exp(rng.normal(0, 0.005, len(times)))
        frames.append(pd.DataFrame({
            "symbol": symbol, "ts": times, "open": opens, "close": close,
            "volume": np.round(1e6 * np.exp(rng.normal(0, 0.3, len(times)))),
            "high": np.maximum(opens, close) * 1.01, "low": np.minimum(opens, close) * 0.99,
        }))  # fmt: skip
    frame = pd.concat(frames, ignore_index=True)
    listings = [Listing(s, sector=f"SECTOR{k % 5}") for k, s in enumerate(symbols)]
    return RawBars(frame, "bench", "bench", listings)


def database(console: Console, symbols: list[str], seed: int, sessions: int) -> str:
    url = recreate_database(f"bench_live_{len(symbols)}", get_settings())
    with console.status(f"a scratch warehouse of {len(symbols)} symbols x {sessions} sessions"):
        migrate(url)
        ingest(FrameProvider(history(symbols, seed, sessions)), url, get_settings())
    return url


def garch(console: Console, url: str) -> None:
    """The GARCH fits the model's online features replay (refit every ``GARCH_REFIT`` bars)."""
    spec = default_spec()
    spec = replace(spec, garch=replace(spec.garch, refit_every=GARCH_REFIT))
    with console.status("GARCH fits"):
        update_garch(url, spec=spec)


def champion(console: Console, url: str, home: Path, estimators: int) -> dict[str, Any]:
    """GARCH fits and a small XGBoost forced to @champion (``bench.runtime``'s), tracked in a
    scratch MLflow database with its artifacts under ``home`` (the service's home too)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow_url = recreate_database("bench_live_mlflow", get_settings())
    os.environ["QTIS_MLFLOW_TRACKING_URI"] = sqlalchemy_url(mlflow_url)
    os.environ["QTIS_DATABASE_URL"] = url  # before QTIS_HOME: the same server
    os.environ["QTIS_HOME"] = str(home)
    return train_champion(console, url, estimators, short=True) | {"mlflow_url": mlflow_url}


def rehearsal(url: str, symbols: list[str], bars: int, stream: str, home: Path, signal: list[str],
              seed: int) -> Rehearsal:  # fmt: skip
    args = ["--feed", "alpaca", "--broker", "alpaca", "--symbols", ",".join(symbols), *signal]
    env = {"QTIS_LIVE_HEALTH_PORT": "0", "QTIS_LIVE_GRACE_SECONDS": "30"}
    return Rehearsal(url, symbols, bars, stream, args, home, CostModel(), env, seed)


# --- (a) latency --------------------------------------------------------------------------------


class Announcements:
    """The ``qtis_bars`` NOTIFYs, each with when this process received it (a listening thread:
    commit -> delivery is the first leg of a bar's way to the engine)."""

    def __init__(self, url: str) -> None:
        self.url, self.got = url, []
        self._stop, self._ready = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._listen, daemon=True)

    def _listen(self) -> None:
        with BarListener(self.url) as listener:
            self._ready.set()
            while not self._stop.is_set():
                self.got += [(b, time.time()) for b in listener.wait(0.05)]

    def __enter__(self) -> Announcements:
        self._thread.start()
        self._ready.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def percentiles(values: list[float]) -> dict[str, float | int]:
    if not values:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "n": 0}
    ms = np.array(values) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "n": len(values)}  # fmt: skip


def latency(console: Console, url: str, symbols: list[str], bars: int, home: Path,
            signal: list[str], label: str) -> dict[str, Any]:  # fmt: skip
    """Bars published one at a time (after one not counted: the service may still be
    starting); each order's arrival at the broker minus the commit of its bar's load."""
    r = rehearsal(url, symbols, bars + 1, f"latency-{label}", home, signal, 1)
    with r, Announcements(url) as announced:
        r.start()
        with console.status(f"{label}: {bars} bars of {len(symbols)} symbols"):
            warmup = r.advance()  # the service may still be starting: not counted
            for _ in range(bars):
                r.advance()
        r.stop()
        arrivals = r.arrivals()
    loads = [b for b, _ in announced.got if b.first > warmup]
    delivered = [at - b.committed_at for b, at in announced.got if b.first > warmup]
    times = {p["step"]: pd.Timestamp(p["ts"]) for p in r.events("bar_closed")}
    per_order, bars_sent, slowest = [], {}, []
    for p in r.events("order_submitted"):
        cid, ts = p["order"]["client_id"], times.get(p["step"])
        if cid not in arrivals or ts is None or ts <= warmup:
            continue
        arrived = arrivals[cid]
        commits = [b.committed_at for b in loads
                   if b.first <= ts <= b.last and b.committed_at <= arrived]  # fmt: skip
        if commits:
            per_order.append(arrived - max(commits))
            slowest.append((per_order[-1] * 1e3, cid))
            earliest, latest, _ = bars_sent.get(ts, (arrived, arrived, 0.0))
            bars_sent[ts] = (min(earliest, arrived), max(latest, arrived), max(commits))
    return {
        "symbols": len(symbols),
        "bars": bars,
        "orders": percentiles(per_order),
        "first_order_of_bar": percentiles([a - c for a, _, c in bars_sent.values()]),
        "last_order_of_bar": percentiles([z - c for _, z, c in bars_sent.values()]),
        "notify_delivered_ms": percentiles(delivered),
        "engine_stages_ms": engine_stages(r),
        "slowest_orders_ms": sorted(slowest, reverse=True)[:5],
        "audit": r.audit(),
    }


def engine_stages(r: Rehearsal) -> dict[str, float]:
    """Medians of the engine's own split (ms from the bar's arrival in the engine)."""
    stages: dict[str, list[float]] = {}
    for p in r.events(ev.ORDER_ACCEPTED):
        if p.get("tick_to_order_us") is not None:
            stages.setdefault("acknowledged", []).append(p["tick_to_order_us"] / 1e3)
        for name, us in (p.get("stages_us") or {}).items():
            stages.setdefault(name, []).append(us / 1e3)
    return {name: float(np.median(v)) for name, v in stages.items()}


# --- (b) reconciliation -------------------------------------------------------------------------


def held_book(symbols: list[str]) -> Book:
    """One account holding 100 shares of each symbol (the broker agrees)."""
    spec = ev.AccountSpec("main", 1e9, {}, False)
    events: list[ev.Event] = [ev.RunStarted({}, (spec,), key=ev.RUN_STARTED)]
    events += [ev.BookCorrected("main", s, 0.0, 100.0, 50.0, 0.0, "bench") for s in symbols]
    return Book().apply_all(events)


def reconciliation(console: Console, repeats: int) -> dict[str, Any]:
    symbols = symbols_of(POSITIONS)
    book = held_book(symbols)
    state = BrokerState({s: (100.0, 50.0) for s in symbols}, 1e9, {}, pd.Timestamp.now("UTC"))
    assert reconcile(book, state, "start", "halt")[0].matched  # the baseline
    pure = call_latency(lambda _: reconcile(book, state, "periodic", "halt"), None, repeats, 5)
    prices = dict.fromkeys(("open", "high", "low", "close"), 50.0)
    frame = pd.DataFrame({"symbol": symbols, "ts": pd.Timestamp("2024-01-02", tz="UTC"),
                          **prices, "volume": 1e6})  # fmt: skip
    market = Market(frame, CostModel(), {s: Instrument(s) for s in symbols}, 1e9)
    for s in symbols:
        market.desk.inject_position(s, 100.0, 50.0)
    with (
        console.status(f"broker_state() of {POSITIONS} positions through alpaca-py"),
        StandIn(market) as standin,
    ):
        keys = {"key_id": standin.key_id, "secret_key": standin.secret}
        settings = AlpacaSettings(**keys, trading_url=standin.url, stream_url=standin.stream_url)
        execution = AlpacaExecution({s: Instrument(s) for s in symbols}, CostModel(), settings)
        fetched = execution.broker_state()
        assert len(fetched.positions) == POSITIONS
        remote = call_latency(lambda _: execution.broker_state(), None, max(5, repeats // 10), 2)
    return {"positions": POSITIONS, "reconcile": pure, "broker_state": remote}


# --- (c) recoveries -----------------------------------------------------------------------------


def recoveries(console: Console, url: str, symbols: list[str], kills: int, seed: int, home: Path,
               signal: list[str]) -> dict[str, Any]:  # fmt: skip
    rng = random.Random(seed)
    r = rehearsal(url, symbols, 15 * kills + 40, "recoveries", home, signal, seed)
    rows = []
    with r:
        r.start()
        r.advance()
        for k in range(kills):
            point = rng.choice(KILL_POINTS)
            with console.status(f"kill {k + 1}/{kills} ({point})"):
                r.kill_at(point, rng)
                started = time.time()
                r.restart()
                caught_up = time.time() - started
                before = set(r.arrivals())
                published = 0
                while set(r.arrivals()) <= before:
                    r.advance()
                    published += 1
                first = min(t for c, t in r.arrivals().items() if c not in before)
            rows.append({"point": point, "caught_up_s": caught_up, "trading_s": first - started,
                         "bars_to_an_order": published})  # fmt: skip
        r.advance()
        code = r.stop()
        audit = r.audit()
    seconds = [row["trading_s"] for row in rows]
    return {
        "kills": kills,
        "rows": rows,
        "within_target": sum(s < TARGET_RECOVERY_S for s in seconds),
        "trading_s": {"p50": float(np.median(seconds)), "max": float(max(seconds))},
        "stop_exit_code": code,
        "audit": audit,
    }


# --- report -------------------------------------------------------------------------------------


def show(console: Console, results: dict[str, Any]) -> None:
    table = Table(title="bar-to-order latency: the bar's load committed -> the order at the broker")
    columns = ("symbols", "signal", "orders", "every order p50 / p99 ms",
               "bar's first order p50 / p99 ms", "bar's last order p99 ms",
               "target (first order p99)", "engine: decided / committed / acked ms")  # fmt: skip
    for column in columns:
        table.add_column(column)
    for row in results["latency"]:
        o, f, z = row["orders"], row["first_order_of_bar"], row["last_order_of_bar"]
        target = TARGET_P99_MS.get(row["symbols"])
        verdict = (
            "-"
            if target is None
            else f"< {target:g} ms: " + ("met" if f["p99_ms"] < target else "NOT MET")
        )
        s = row["engine_stages_ms"]
        split = " / ".join(f"{s.get(k, float('nan')):.1f}" for k in ("decided", "committed",
                                                                       "acknowledged"))  # fmt: skip
        table.add_row(str(row["symbols"]), row["signal"], str(o["n"]),
                      f"{o['p50_ms']:.1f} / {o['p99_ms']:.1f}",
                      f"{f['p50_ms']:.1f} / {f['p99_ms']:.1f}", f"{z['p99_ms']:.1f}", verdict,
                      split)  # fmt: skip
    console.print(table)
    split = Table(title="where a bar's time goes (medians, ms)")
    for column in (
        "symbols",
        "signal",
        "commit -> NOTIFY at a listener",
        "engine: features",
        "decided",
        "journal committed",
        "orders acked",
        "first order at the broker",
    ):
        split.add_column(column)
    for row in results["latency"]:
        s = row["engine_stages_ms"]
        split.add_row(str(row["symbols"]), row["signal"],
                      f"{row['notify_delivered_ms']['p50_ms']:.1f}",
                      *(f"{s.get(k, float('nan')):.1f}"
                        for k in ("features", "decided", "committed", "acknowledged")),
                      f"{row['first_order_of_bar']['p50_ms']:.1f}")  # fmt: skip
    console.print(split)
    rec = results["reconciliation"]
    console.print(
        f"reconciliation of {rec['positions']} positions: reconcile() p50"
        f" {rec['reconcile']['p50_ms']:.2f} ms p99 {rec['reconcile']['p99_ms']:.2f} ms;"
        f" broker_state() through alpaca-py p50 {rec['broker_state']['p50_ms']:.1f} ms"
        f" p99 {rec['broker_state']['p99_ms']:.1f} ms"
    )
    if "recoveries" in results:
        rc = results["recoveries"]
        console.print(
            f"SIGKILL recoveries: {rc['within_target']}/{rc['kills']} trading again within"
            f" {TARGET_RECOVERY_S:g} s (median {rc['trading_s']['p50']:.1f} s, max"
            f" {rc['trading_s']['max']:.1f} s); audit ok: {rc['audit']['ok']}"
            f" ({rc['audit']['orders']} orders, {rc['audit']['fills']} fills, lost"
            f" {len(rc['audit']['lost'])}, sent twice {len(rc['audit']['sent_twice'])})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, nargs="+", default=[10, 500])
    parser.add_argument("--bars", type=int, default=40)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--model", action="store_true", help="the champion, in process (a small"
                        " one is trained on the first universe)")  # fmt: skip
    parser.add_argument("--estimators", type=int, default=30, help="--model: XGBoost trees")
    parser.add_argument("--http", action="store_true", help="--model: also over HTTP (the"
                        " BentoML service started here, as bench.serving starts it)")  # fmt: skip
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases")
    args = parser.parse_args()
    if args.http and not args.model:
        parser.error("--http serves the champion --model trains: give both")
    if args.quick:
        args.symbols, args.bars, args.kills, args.repeats = [10, 100], 15, 5, 50
    console, started = Console(width=160), time.perf_counter()
    signals = {"sma-cross": ["--signal", "sma-cross", "--fast", "3", "--slow", "8"]}
    if args.model:
        signals["model"] = ["--signal", "model", "--sizing", "vol-target"]
    home = Path(tempfile.mkdtemp(prefix="qtis-bench-live-"))
    targets = {"p99_ms": TARGET_P99_MS, "recovery_s": TARGET_RECOVERY_S}
    results: dict[str, Any] = {"latency": [], "targets": targets}
    urls = []
    sessions = MODEL_HISTORY if args.model else HISTORY
    server = None
    try:
        for k, n in enumerate(args.symbols):
            url = database(console, symbols_of(n), args.seed, sessions)
            urls.append(url)
            if args.model:
                garch(console, url)
            if args.model and k == 0:
                results["champion"] = champion(console, url, home, args.estimators)
                urls.append(results["champion"].pop("mlflow_url"))
            if (
                args.http and k == 0
            ):  # over HTTP, the first universe: the service reads its features
                port = free_port()
                with console.status("the BentoML service"):
                    server = start_service(port, batching=False)
                signals["model-http"] = [
                    *signals["model"],
                    "--model-url",
                    f"http://127.0.0.1:{port}",
                ]
            for name, signal in signals.items():
                row = latency(console, url, symbols_of(n), args.bars, home, signal, f"{n}-{name}")
                results["latency"].append(row | {"signal": name})
            if server is not None:
                server.terminate()
                server.wait(30)
                server = None
                del signals["model-http"]
        results["reconciliation"] = reconciliation(console, args.repeats)
        if args.kills:
            n = args.symbols[0]
            results["recoveries"] = recoveries(console, urls[0], symbols_of(n), args.kills,
                                               args.seed, home, signals["sma-cross"])  # fmt: skip
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        if not args.keep:
            for url in urls:
                drop_database(url)
    results["total_s"] = time.perf_counter() - started
    show(console, results)
    write("live", results, console)


if __name__ == "__main__":
    main()
