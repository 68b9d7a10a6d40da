"""Trading runtime speed: (a) bars/s of the engine loop vs backtrader on the same SMA-cross
strategy and the same data, with the fills checked identical; (b) bars/s of the full loop with
the in-process model (features, XGBoost champion, vol-target sizing, risk, execution, journal);
(c) tick-to-order latency p50/p99 from the journal of paper runs.

(a) Per universe (default 10 symbols x 2000 daily bars and 500 x 500): SMA(10) > SMA(30) of
close -> long 100 shares, else flat; market orders fill at the next bar's open; no costs
(``free_costs``), capital 1e12 and the risk limits (exposure, order rate, drawdown) off so that
no order is denied. The engine runs with its journal on (backtests COPY it in batches);
backtrader runs one PandasData per symbol, ``bt.indicators.SMA`` and its default broker. Timed:
the loop only - our ``Engine.run()`` after ``build_engine`` (bars and instruments loaded,
journal opened) and backtrader's ``Strategy.start()`` to ``stop()`` (after its feeds are
preloaded and the strategy built; its indicators' computation is inside). bars/s = symbols x
bars / seconds, median of ``--repeats``. Fills are compared as (symbol, day, signed quantity,
price rounded to 1e-9). After each round the run's own events are written again, alone, to a
scratch stream the way the backtest writes them (payloads, canonical JSON, hash chain, COPY into
the indexed table): backtrader's time over that is the ratio the engine could reach at most
while it keeps its journal (the "ceiling" column).
(b) The same universes, ``signal="model", sizing="vol-target"`` with the default costs and
limits (but no drawdown states: a halted account would skip the decisions), the champion loaded
in process; timed the same way.
(c) A paper run (``--paper-bars`` bars at ``--paper-rate`` bars/s, after the earlier bars of the
first universe as warm-up, a venue log like ``qtis trade paper``) per strategy: the journal's
``tick_to_order_us`` (bar arrival -> the order acknowledged by the venue, the bar's journal
transaction committed in between), and the engine's own per-stage split.

    python -m bench.runtime [--symbols 10 500] [--bars 2000 500] [--repeats 3]
                            [--paper-bars 1000] [--paper-rate 50] [--skip-model] [--keep]
    python -m bench.runtime --quick     # 10 x 400 and 50 x 300 bars, 2 repeats: about 2 minutes

The defaults take about 6 minutes on 2 cores, most of it backtrader at 500 symbols (about 50 s a
round with its preload) and the training.

Scratch databases bench_runtime_<symbols>x<bars> and bench_runtime_mlflow on the QTIS server
(dropped at the end unless ``--keep``). The champion is a small XGBoost (``--estimators`` trees,
2 folds, no SHAP) trained on the first universe's dbt features and forced to @champion; the other
universes only need the GARCH fits the online features replay, not a dbt build. GARCH is
estimated every 250 bars instead of every 21 (batch work outside the loop: the online filter
costs the same per bar; at 500 x 500 this saves about 100 s of fitting). The model needs 250
bars before GARCH gives its first value, so with 500 bars it trades in the second half only.
Everything shares the machine's cores with the database server.
"""

from __future__ import annotations

import argparse
import gc
import os
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from bench._results import write
from warehouse.settings import get_settings

FAST, SLOW, QUANTITY, CAPITAL = 10, 30, 100.0, 1e12
GARCH_REFIT = 250
# every limit that could deny an order of the reference strategy, off
NO_LIMITS = dict.fromkeys(
    (
        "max_order_notional", "max_order_quantity", "max_position_notional",
        "max_symbol_weight", "max_sector_weight", "max_gross_exposure", "max_net_exposure",
        "max_orders_per_bar", "reducing_drawdown", "halt_drawdown",
    )
)  # fmt: skip
TARGET_RATIO, TARGET_P99_MS = 10.0, 5.0  # issue 29: p99 < 5 ms at 10 symbols


# --- data -----------------------------------------------------------------------------------


def prepare(console: Console, url: str, n_symbols: int, n_bars: int, seed: int, garch: bool):
    from transforms.garch import update_garch
    from transforms.spec import default_spec
    from warehouse.ingest import ingest
    from warehouse.providers import SyntheticMarket
    from warehouse.schema import migrate

    market = SyntheticMarket(n_symbols=n_symbols, n_bars=n_bars, freq="1D", seed=seed)
    migrate(url)
    started = time.perf_counter()
    with console.status(f"loading {n_symbols} x {n_bars} synthetic bars"):
        report = ingest(market, url, get_settings())
    assert report.quarantined == 0, report.quarantine_reasons  # same bars for both engines
    seconds = {"ingest": time.perf_counter() - started}
    if garch:
        spec = default_spec()
        spec = replace(spec, garch=replace(spec.garch, refit_every=GARCH_REFIT))
        started = time.perf_counter()
        with console.status(f"GARCH fits of {n_symbols} symbols (every {GARCH_REFIT} bars)"):
            update_garch(url, spec=spec)
        seconds["garch"] = time.perf_counter() - started
    return market, seconds


def train_champion(console: Console, url: str, estimators: int, short: bool) -> dict:
    from mlflow.tracking import MlflowClient  # noqa: F401  (configures its logging first)

    from registry.aliases import force
    from serving.probe import serving_probe
    from training.promotion import PromotionSettings
    from training.runner import TrainConfig, run_training
    from training.settings import TrackingSettings
    from transforms.dbt_runner import build

    seconds, tracking = {}, TrackingSettings()
    started = time.perf_counter()
    with console.status("dbt features (full refresh) of the first universe"):
        result = build(url, full_refresh=True, tests=False)
    assert result.success, [(n.name, n.message) for n in result.failures()]
    seconds["dbt"] = time.perf_counter() - started
    started = time.perf_counter()
    with console.status(f"training a small XGBoost ({estimators} trees) and forcing @champion"):
        config = TrainConfig(
            models=("xgboost",), splits=2, xgb_estimators=estimators, explain_samples=0
        )
        if short:  # --quick: a history too short for the default 60-bar window and warm-up
            config = replace(config, window=20, min_history=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # constant-input correlations of tiny folds
            run = run_training(url, config, tracking=tracking)
        info = run.registered["xgboost"]
        name, version = info["registered"], str(info["version"])
        probe = serving_probe(url, samples=20, tracking=tracking)
        force(url, name, version, "runtime benchmark", probe, PromotionSettings(), actor="bench",
              tracking=tracking)  # fmt: skip
    seconds["train"] = time.perf_counter() - started
    return {"model": name, "version": version, "seconds": seconds}


# --- our engine -----------------------------------------------------------------------------


def sma_strategy():
    from trading_runtime.config import StrategyConfig

    return StrategyConfig(
        signal="sma-cross", fast=FAST, slow=SLOW, sizing="fixed", quantity=QUANTITY,
        capital=CAPITAL, limits=NO_LIMITS,
    )  # fmt: skip


def model_config(**fields):
    """A run of the champion with vol-target sizing, the default costs and limits except the
    drawdown states: a halted account decides nothing, and the loop would no longer be the full
    loop. It may trade the bars it was trained on (``in_sample``): this measures speed, not
    returns, and the 500-symbol universe lies inside the first universe's training dates."""
    from trading_runtime.config import RunConfig, StrategyConfig

    fields["in_sample"] = True
    limits = {"reducing_drawdown": None, "halt_drawdown": None}
    strategy = StrategyConfig(signal="model", sizing="vol-target", limits=limits)
    return RunConfig(strategies=[strategy], **fields)


def timed_engine(
    url: str, config, venue_log: Path | None = None, journal_alone: bool = False
) -> dict:
    """One run: build the engine (not timed), then its loop (timed), then its journal's report
    (``journal_alone``: and the time its events take to write alone, :func:`journal_only`)."""
    from serving.settings import ServingSettings
    from trading_runtime.analytics.conventions import conventions
    from trading_runtime.runs import build_engine, report
    from trading_runtime.settings import FixSettings, RuntimeSettings
    from training.settings import TrackingSettings

    runtime = RuntimeSettings()
    engine = build_engine(
        url, config, runtime, ServingSettings(), FixSettings(), venue_log=venue_log,
        tracking=TrackingSettings(),
    )  # fmt: skip
    journal = engine.journal
    try:
        if not journal.acquire():
            raise RuntimeError(f"stream {config.stream!r} is held by another engine")
        gc.collect()
        started, cpu = time.perf_counter(), time.process_time()
        engine.run()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        journal.close()
    result = report(url, config.stream, conventions(periods_per_year=runtime.bars_per_year))
    bars, symbols = len(engine.feed), len(engine.symbols)
    traded = bars - engine.feed.first_trading_step
    return {
        "seconds": seconds,
        "cpu_s": cpu,  # this process's threads (the loop, the journal's writer), not the server
        "symbols": symbols,
        "bars": bars,
        "traded_bars": traded,
        "bars_per_s": symbols * bars / seconds,
        "orders": int(result.metrics.get("total", {}).get("orders", 0)),
        "fills": result.fills,
        "denials": result.denials,
        "final_states": {a.name: str(a.state) for a in result.book.accounts.values()},
        "tick_to_order_ms": {
            k: (v / 1e3 if k != "orders" else v) for k, v in result.latency_us.items()
        },
        "stages_ms": stages(url, config.stream),
        "journal_only": (
            journal_only(url, config.stream, runtime.journal_batch) if journal_alone else None
        ),
    }


def journal_only(url: str, stream: str, batch: int) -> dict:
    """The run's own events written again to a scratch stream the way the backtest writes them
    (batched: payloads, canonical JSON, the hash chain, COPY): the time the journal alone takes,
    which the loop cannot go under while it keeps the journal."""
    from trading_runtime.journal import Journal

    source = Journal(url, stream)
    try:
        events = list(source.read())
    finally:
        source.close()
    copy = Journal(url, f"{stream}-journal-only", batched=True, batch_size=batch)
    try:
        gc.collect()
        started, cpu = time.perf_counter(), time.process_time()
        copy.write(events)
        copy.flush()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        copy.close()
    return {"events": len(events), "seconds": seconds, "cpu_s": cpu}


def stages(url: str, stream: str) -> dict[str, dict[str, float]]:
    """p50/p99 over the orders the venue acknowledged of the ``stages_us`` the engine journals
    with each acknowledgement (time from the bar's arrival to the end of each stage; "signals"
    is the signal sources' own time) and of the tick-to-order itself."""
    from trading_runtime import events as ev
    from trading_runtime.journal import Journal

    journal = Journal(url, stream)
    try:
        acks = list(journal.read(types=[ev.ORDER_ACCEPTED]))
    finally:
        journal.close()
    rows = [{**(a.stages_us or {}), "tick_to_order": a.tick_to_order_us} for a in acks
            if a.tick_to_order_us is not None]  # fmt: skip
    out = {}
    for key in rows[0] if rows else ():
        values = np.array([r[key] for r in rows if key in r]) / 1e3
        out[key] = {
            "p50_ms": float(np.percentile(values, 50)),
            "p99_ms": float(np.percentile(values, 99)),
        }
    return out


def fill_key(symbol: str, day: str, signed: float, price: float) -> tuple:
    return (symbol, day, float(signed), float(price))


def rounded(fills: list[tuple]) -> list[tuple]:
    return [(*f[:3], round(f[3], 9)) for f in fills]


def our_fills(fills: list[dict]) -> list[tuple]:
    return sorted(
        fill_key(
            f["symbol"], f["ts"][:10], f["quantity"] * (1 if f["side"] == "buy" else -1), f["price"]
        )
        for f in fills
    )


# --- backtrader -----------------------------------------------------------------------------


def backtrader_feeds(url: str) -> dict[str, Any]:
    """Per symbol, the bars as backtrader's PandasData wants them (naive UTC index)."""
    import pandas as pd

    from warehouse.reads import read_bars

    bars = read_bars(url).to_pandas()
    frames = {}
    for symbol, group in bars.groupby("symbol", sort=True):
        index = pd.DatetimeIndex(group["ts"]).tz_convert("UTC").tz_localize(None)
        frames[symbol] = group.set_index(index)[["open", "high", "low", "close", "volume"]]
    return frames


def run_backtrader(frames: dict[str, Any]) -> dict:
    import backtrader as bt

    class SmaCross(bt.Strategy):
        params = (("fast", FAST), ("slow", SLOW), ("quantity", QUANTITY))

        def __init__(self) -> None:
            self.fills: list[tuple] = []
            self.averages = [
                (d, bt.indicators.SMA(d.close, period=self.p.fast),
                 bt.indicators.SMA(d.close, period=self.p.slow))
                for d in self.datas
            ]  # fmt: skip

        def start(self) -> None:
            self.started, self.cpu = time.perf_counter(), time.process_time()

        def stop(self) -> None:
            self.stopped, self.cpu = time.perf_counter(), time.process_time() - self.cpu

        def next(self) -> None:
            for d, fast, slow in self.averages:
                held = self.getposition(d).size
                if fast[0] > slow[0]:
                    if held == 0:
                        self.buy(data=d, size=self.p.quantity)
                elif held != 0:
                    self.close(data=d)

        def notify_order(self, order) -> None:
            if order.status == order.Completed:
                for bit in order.executed.exbits:  # the execution prices themselves
                    day = bt.num2date(bit.dt).date().isoformat()
                    self.fills.append(fill_key(order.data._name, day, bit.size, bit.price))

    cerebro = bt.Cerebro(stdstats=False)
    for symbol, frame in frames.items():
        cerebro.adddata(bt.feeds.PandasData(dataname=frame, openinterest=None), name=symbol)
    cerebro.broker.setcash(CAPITAL)
    cerebro.addstrategy(SmaCross)
    gc.collect()
    started = time.perf_counter()
    strategy = cerebro.run()[0]
    total = time.perf_counter() - started
    seconds = strategy.stopped - strategy.started
    bars = sum(len(f) for f in frames.values())
    return {
        "seconds": seconds,
        "cpu_s": strategy.cpu,
        "run_total_s": total,  # with the feeds' preload and the strategy's construction
        "bars_per_s": bars / seconds,
        "fills": sorted(strategy.fills),
    }


def compare(ours: list[tuple], theirs: list[tuple]) -> dict:
    """Fills as (symbol, day, signed quantity, price): identical with prices rounded to 1e-9,
    and whether the prices are the very same doubles too."""
    a, b = set(rounded(ours)), set(rounded(theirs))
    only_ours, only_theirs = sorted(a - b), sorted(b - a)
    return {
        "identical": rounded(ours) == rounded(theirs),
        "bit_identical_prices": ours == theirs,
        "fills": len(ours),
        "backtrader_fills": len(theirs),
        "only_ours": [list(x) for x in only_ours[:10]],
        "only_backtrader": [list(x) for x in only_theirs[:10]],
        "differences": len(only_ours) + len(only_theirs),
    }


# --- the measurements -----------------------------------------------------------------------


def median(rows: list[dict], key: str) -> float:
    return float(np.median([r[key] for r in rows]))


def bench_rule(console: Console, url: str, label: str, repeats: int) -> dict:
    from trading_runtime.config import RunConfig

    ours, theirs = [], []
    frames = backtrader_feeds(url)
    for turn in range(repeats):  # in turns: a drift of the machine hits both alike
        config = RunConfig(
            mode="backtest", stream=f"sma-{turn}", strategies=[sma_strategy()],
            free_costs=True, warmup_bars=0,
        )  # fmt: skip
        with console.status(f"{label}: engine, SMA cross (round {turn + 1} of {repeats})"):
            ours.append(timed_engine(url, config, journal_alone=True))
        with console.status(f"{label}: backtrader, SMA cross (round {turn + 1} of {repeats})"):
            theirs.append(run_backtrader(frames))
    check = compare(our_fills(ours[0]["fills"]), theirs[0]["fills"])
    check["repeatable"] = all(
        our_fills(r["fills"]) == our_fills(ours[0]["fills"]) for r in ours
    ) and all(r["fills"] == theirs[0]["fills"] for r in theirs)
    first = ours[0]
    row = {
        "symbols": first["symbols"],
        "bars": first["bars"],
        "engine_bars_per_s": median(ours, "bars_per_s"),
        "engine_seconds": median(ours, "seconds"),
        "backtrader_bars_per_s": median(theirs, "bars_per_s"),
        "backtrader_seconds": median(theirs, "seconds"),
        "backtrader_run_total_s": median(theirs, "run_total_s"),
        "ratio": median(ours, "bars_per_s") / median(theirs, "bars_per_s"),
        # CPU seconds: less moved by other work on the machine than the wall clock
        "engine_cpu_s": median(ours, "cpu_s"),
        "backtrader_cpu_s": median(theirs, "cpu_s"),
        "cpu_ratio": median(theirs, "cpu_s") / median(ours, "cpu_s"),
        # the same events written alone: the most the ratio could be with the journal kept
        "journal_events": first["journal_only"]["events"],
        "journal_only_s": float(np.median([r["journal_only"]["seconds"] for r in ours])),
        "journal_ceiling_ratio": median(theirs, "seconds")
        / float(np.median([r["journal_only"]["seconds"] for r in ours])),
        "orders": first["orders"],
        "denials": first["denials"],
        "engine_tick_to_order_ms": first["tick_to_order_ms"],
        "fills_check": check,
        "rounds": {
            "engine_s": [r["seconds"] for r in ours],
            "backtrader_s": [r["seconds"] for r in theirs],
        },
    }
    return row


def bench_model(console: Console, url: str, label: str, repeats: int) -> dict:

    runs = []
    for turn in range(repeats):
        config = model_config(mode="backtest", stream=f"model-{turn}", warmup_bars=0)
        with console.status(f"{label}: engine, in-process model (round {turn + 1} of {repeats})"):
            runs.append(timed_engine(url, config))
    first = runs[0]
    return {
        "symbols": first["symbols"],
        "bars": first["bars"],
        "bars_per_s": median(runs, "bars_per_s"),
        "seconds": median(runs, "seconds"),
        "orders": first["orders"],
        "fills": len(first["fills"]),
        "denials": first["denials"],
        "final_states": first["final_states"],
        "tick_to_order_ms": first["tick_to_order_ms"],
        "stages_ms": first["stages_ms"],
        "rounds_s": [r["seconds"] for r in runs],
    }


def bench_paper(
    console: Console, url: str, market, paper_bars: int, rate: float, strategy: str, home: Path
) -> dict:
    from trading_runtime.config import RunConfig

    paper_bars = min(paper_bars, market.n_bars - 1)
    warmup = market.n_bars - paper_bars
    start = market.timestamps()[warmup].date()
    fields = dict(
        mode="paper", stream=f"paper-{strategy}", start=start, warmup_bars=warmup,
        bars_per_second=rate,
    )  # fmt: skip
    if strategy == "model":
        config = model_config(**fields)
    else:
        config = RunConfig(strategies=[sma_strategy()], free_costs=True, **fields)
    log = home / "venue" / f"{config.stream}.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    with console.status(f"paper, {strategy}: {paper_bars} bars at {rate:g} bars/s"):
        result = timed_engine(url, config, venue_log=log)
    return {
        "strategy": strategy,
        "symbols": result["symbols"],
        "paced_bars": result["traded_bars"],
        "warmup_bars": warmup,
        "bars_per_second": rate,
        "seconds": result["seconds"],
        "orders": result["orders"],
        "fills": len(result["fills"]),
        "denials": result["denials"],
        "final_states": result["final_states"],
        "tick_to_order_ms": result["tick_to_order_ms"],
        "stages_ms": result["stages_ms"],
    }


# --- output ---------------------------------------------------------------------------------


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def show(console: Console, results: dict, repeats: int) -> None:
    table = Table(
        "universe", "engine bars/s", "backtrader bars/s", "ratio", "CPU s (ours / bt)",
        "fills (ours / bt)", "identical", "journal alone s (events)", "ceiling",
        title=f"SMA({FAST}/{SLOW}) cross, no costs, market orders: loop only, median of "
        f"{repeats} rounds",
    )  # fmt: skip
    for r in results["rule"]:
        check = r["fills_check"]
        same = "yes" if check["identical"] else f"NO ({check['differences']} differ)"
        if check["identical"] and not check["bit_identical_prices"]:
            same += " (prices to 1e-9)"
        table.add_row(
            f"{r['symbols']:,} x {r['bars']:,}", f"{r['engine_bars_per_s']:,.0f}",
            f"{r['backtrader_bars_per_s']:,.0f}", f"{r['ratio']:.2f}x",
            f"{r['engine_cpu_s']:.2f} / {r['backtrader_cpu_s']:.2f}",
            f"{check['fills']:,} / {check['backtrader_fills']:,}", same,
            f"{r['journal_only_s']:.3f} ({r['journal_events']:,})",
            f"{r['journal_ceiling_ratio']:.1f}x",
        )  # fmt: skip
    console.print(table)
    for r in results["rule"]:
        check = r["fills_check"]
        if not check["identical"]:
            console.print(f"[bold red]{r['symbols']} symbols: fills differ[/]")
            console.print(f"  only ours: {check['only_ours'][:5]}")
            console.print(f"  only backtrader: {check['only_backtrader'][:5]}")
        if r["denials"]:
            console.print(f"[bold red]{r['symbols']} symbols: denials {r['denials']}[/]")
    if results.get("model"):
        table = Table(
            "universe", "bars/s", "orders", "denied", "features p50", "model p50",
            "tick-to-order p50 / p99",
            title=f"Full loop, in-process model, vol-target, default costs (ms): median of "
            f"{repeats} rounds",
        )  # fmt: skip
        for r in results["model"]:
            st, lat = r["stages_ms"], r["tick_to_order_ms"]
            table.add_row(
                f"{r['symbols']:,} x {r['bars']:,}", f"{r['bars_per_s']:,.0f}",
                f"{r['orders']:,}", f"{sum(r['denials'].values()):,}",
                ms(st.get("features", {}).get("p50_ms")), ms(st.get("signals", {}).get("p50_ms")),
                f"{ms(lat.get('p50'))} / {ms(lat.get('p99'))}",
            )  # fmt: skip
        console.print(table)
    if results.get("paper"):
        table = Table(
            "paper", "bars", "orders", "p50", "p99", "max", "p50 features/decided/committed",
            title="Paper tick-to-order (ms): bar arrival -> order acknowledged, from the journal",
        )  # fmt: skip
        for r in results["paper"]:
            lat, st = r["tick_to_order_ms"], r["stages_ms"]
            split = " / ".join(
                ms(st.get(k, {}).get("p50_ms")) for k in ("features", "decided", "committed")
            )
            table.add_row(
                f"{r['strategy']}, {r['symbols']} sym",
                f"{r['paced_bars']} @ {r['bars_per_second']:g}/s",
                f"{lat.get('orders', 0)}", ms(lat.get("p50")), ms(lat.get("p99")),
                ms(lat.get("max")), split,
            )  # fmt: skip
        console.print(table)


def targets(results: dict) -> dict:
    out = {}
    ratios = {str(r["symbols"]): r["ratio"] for r in results["rule"]}
    out["loop_vs_backtrader"] = {
        "target": f">= {TARGET_RATIO:g}x backtrader's bars/s on the same strategy and data",
        "measured": ratios,
        "met": all(v >= TARGET_RATIO for v in ratios.values()),
        "journal_ceiling": {str(r["symbols"]): r["journal_ceiling_ratio"] for r in results["rule"]},
    }
    same = {str(r["symbols"]): r["fills_check"]["identical"] for r in results["rule"]}
    out["identical_fills"] = {
        "target": "identical fills on the no-cost market-order strategy",
        "measured": same,
        "met": all(same.values()),
    }
    model = [r for r in results.get("paper", []) if r["strategy"] == "model"]
    if model:
        p99 = model[0]["tick_to_order_ms"].get("p99")
        out["paper_tick_to_order_p99_ms"] = {
            "target": f"< {TARGET_P99_MS:g} ms, in-process model, paper mode",
            "measured": p99,
            "met": p99 is not None and p99 < TARGET_P99_MS,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--symbols", type=int, nargs="+", default=[10, 500])
    parser.add_argument("--bars", type=int, nargs="+", default=[2000, 500], help="per universe")
    parser.add_argument("--repeats", type=int, default=3, help="rounds per measurement (median)")
    # 1,000 bars: ~110 model orders, ~400 sma-cross; over the 96 of 300 bars p99 was the max
    parser.add_argument("--paper-bars", type=int, default=1000)
    parser.add_argument("--paper-rate", type=float, default=50.0, help="paper pace, bars/s")
    parser.add_argument("--estimators", type=int, default=50, help="XGBoost trees")
    parser.add_argument("--skip-model", action="store_true", help="the rule comparison only")
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases")
    parser.add_argument("--quick", action="store_true", help="small smoke run (about 2 minutes)")
    args = parser.parse_args()
    if args.quick:
        args.symbols, args.bars, args.repeats = [10, 50], [400, 300], 2
        args.paper_bars, args.estimators = 100, 20
    if len(args.bars) == 1:
        args.bars = args.bars * len(args.symbols)
    if len(args.bars) != len(args.symbols):
        parser.error("give one --bars per --symbols (or one for all)")
    console = Console()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    from warehouse.db import drop_database, recreate_database, sqlalchemy_url

    universes = list(zip(args.symbols, args.bars, strict=True))
    urls = [recreate_database(f"bench_runtime_{n}x{b}", get_settings()) for n, b in universes]
    model = not args.skip_model
    results: dict[str, Any] = {"rule": [], "model": [], "paper": [], "prepare_s": {}}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / ".qtis"
        if model:
            mlflow_url = recreate_database("bench_runtime_mlflow", get_settings())
            os.environ["QTIS_MLFLOW_TRACKING_URI"] = sqlalchemy_url(mlflow_url)
            os.environ["QTIS_DATABASE_URL"] = urls[0]  # before QTIS_HOME: the same server
            os.environ["QTIS_HOME"] = str(home)  # MLflow's artifacts
        markets = []
        for k, ((n, b), url) in enumerate(zip(universes, urls, strict=True)):
            market, seconds = prepare(console, url, n, b, seed=21 + k, garch=model)
            markets.append(market)
            results["prepare_s"][f"{n}x{b}"] = seconds
        if model:
            results["champion"] = train_champion(console, urls[0], args.estimators, args.quick)
        for (n, b), url in zip(universes, urls, strict=True):
            label = f"{n} x {b}"
            results["rule"].append(bench_rule(console, url, label, args.repeats))
            if model:
                results["model"].append(bench_model(console, url, label, args.repeats))
        if model:
            for strategy in ("model", "sma-cross"):
                paper = bench_paper(
                    console, urls[0], markets[0], args.paper_bars, args.paper_rate, strategy, home
                )
                results["paper"].append(paper)
        if not args.keep:
            for url in urls + ([mlflow_url] if model else []):
                drop_database(url)
    results["total_s"] = time.perf_counter() - started

    show(console, results, args.repeats)
    results["targets"] = targets(results)
    for t in results["targets"].values():
        measured = t["measured"]
        if isinstance(measured, dict):
            shown = ", ".join(
                f"{k} symbols: {v:.2f}x" if isinstance(v, float) else f"{k} symbols: {v}"
                for k, v in measured.items()
            )
        else:
            shown = f"{measured:.2f} ms" if measured is not None else "no orders"
        console.print(f"{t['target']}: {shown} -> {'met' if t['met'] else '[bold]NOT met[/]'}")
    console.print(f"total {results['total_s']:.0f} s")

    params = {
        "universes": [{"symbols": n, "bars": b} for n, b in universes],
        "repeats": args.repeats,
        "paper_bars": args.paper_bars,
        "paper_rate": args.paper_rate,
        "estimators": args.estimators,
        "garch_refit_every": GARCH_REFIT,
        "quick": args.quick,
    }
    timed = {
        "engine": "Engine.run() after build_engine (feed, instruments, features, model and "
        "journal ready); includes the journal writes (COPY batches in backtests, a "
        "transaction per bar in paper mode)",
        "backtrader": "Strategy.start() to stop() inside cerebro.run(): indicators and the "
        "event loop, not the feeds' preload nor the strategy's construction",
        "bars_per_s": "symbols x bars / seconds, median of the rounds",
    }
    write("runtime", {"params": params, "timed": timed, **results}, console)


if __name__ == "__main__":
    main()
