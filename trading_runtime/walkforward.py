"""Walk-forward backtest: a model per training window, trading only the window after it.

The bar timeline (the trading days of the run's symbols in ``market.bars``) is cut into windows
by ``quant.splits.PurgedWalkForward``: each trains on ``train_bars`` bars (``rolling``) or on
everything since the first window's start (``anchored``), skips ``purge`` >= the longest label
horizon bars, and trades the next ``test_bars`` bars. The model of a window comes from the source
the caller hands in: fitted on its training rows only (``retrain``:
``serving.retrain_source``) or the version that held @champion most recently among those whose
labels end before the window (``champion``: ``serving.champion_source``). Before a
window trades, :func:`assert_unseen` checks the last bar whose label its model saw against the
window's first traded bar: no period is traded by a model that saw its outcome.

Every window is an ordinary backtest (``trading_runtime.runs``) with costs on its own journal
stream ``<stream>-wNN``, flattened at its end so its P&L is its own; the next window starts from
its ending equity, so the out-of-sample equity curve is the windows' curves end to end. The
baseline is an equal-weight buy-and-hold of the same symbols over the same traded bars.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

from core.errors import InputError
from quant.conventions import Conventions
from quant.performance import curve_returns, performance
from quant.splits import PurgedWalkForward
from serving.window_model import Skip, WindowModel
from trading_runtime.analytics.analysis import equal_weight
from trading_runtime.config import RunConfig
from trading_runtime.instruments import load_instruments
from trading_runtime.journal import Journal
from trading_runtime.runs import run
from trading_runtime.settings import RuntimeSettings, WalkForwardSettings
from transforms.spec import default_spec
from warehouse.db import connect
from warehouse.reads import read_bars

BASELINE = "equal-weight buy-and-hold of the universe"


class LeakageError(ValueError, InputError):
    """A window would be traded by a model that saw labels of the bars it trades."""


class PlanError(ValueError, InputError):
    """The windows asked for do not fit the bars there are."""


@dataclass(frozen=True)
class Window:
    """One walk-forward window, in trading days (all ends inclusive)."""

    number: int
    train_start: date
    train_end: date
    test_start: date
    test_end: date
    purged: int  # bars between train_end and test_start

    @property
    def name(self) -> str:
        return f"w{self.number:02d}"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, **{k: str(v) for k, v in asdict(self).items()}} | {
            "number": self.number,
            "purged": self.purged,
        }


# --- the plan -------------------------------------------------------------------------------


def longest_horizon() -> int:
    """The longest label horizon: every model is fitted on all of them."""
    return max(default_spec().horizons)


def feature_warmup() -> int:
    """Bars before the first traded one that every online feature needs to be defined."""
    return max(default_spec().warmups.values(), default=0) + 1


def _days(values) -> np.ndarray:
    return np.unique(np.asarray(values, dtype="datetime64[D]"))


def _date(day: np.datetime64) -> date:
    return day.astype("datetime64[D]").item()


def plan_windows(
    timeline: Sequence[date] | np.ndarray,
    windows: int,
    train_bars: int,
    test_bars: int,
    horizon: int,
    mode: Literal["anchored", "rolling"] = "anchored",
    purge: int | None = None,
) -> list[Window]:
    """Windows over the last ``train_bars + purge + windows * test_bars`` bars of ``timeline``
    (bar dates; repeats are fine): test windows tile the end of it, each after a training span
    ``purge`` (>= ``horizon``) bars earlier, so a training label never reaches a traded bar."""
    purge = horizon if purge is None else purge
    if purge < horizon:
        raise PlanError(f"purge ({purge} bars) must be at least the longest horizon ({horizon})")
    days = _days(timeline)
    need = train_bars + purge + windows * test_bars
    if len(days) < need:
        span = f" ({_date(days[0])} to {_date(days[-1])})" if len(days) else ""
        raise PlanError(
            f"{windows} windows of {test_bars} bars after {train_bars} training bars and a"
            f" purge of {purge} need {need} bars; there are {len(days)}{span}: ask fewer or"
            " smaller windows (--windows, --test-bars, --train-bars) or widen the dates"
        )
    days = days[-need:]  # anchored: training starts at the first window's start
    splitter = PurgedWalkForward(
        n_splits=windows,
        horizon=horizon,
        embargo=purge,
        mode="expanding" if mode == "anchored" else "rolling",
        train_bars=train_bars,
        validation=0.0,
        test_bars=test_bars,
    )
    return [
        Window(
            s.number,
            _date(days[s.train_start]),
            _date(days[s.train_end]),
            _date(days[s.test_start]),
            _date(days[s.test_end]),
            s.test_start - s.train_end - 1,
        )
        for s in splitter.spans(len(days))
    ]


def bar_timeline(
    url: str, symbols: Sequence[str], start: date | None = None, end: date | None = None
) -> np.ndarray:
    """The trading days (UTC dates) with a bar of any of ``symbols``, from ``start`` and before
    ``end``."""
    with connect(url) as conn:
        rows = conn.execute(
            "select distinct (ts at time zone 'UTC')::date from market.bars"
            " where symbol = any(%s) and (%s::date is null or ts >= %s::date)"
            " and (%s::date is null or ts < %s::date) order by 1",
            (list(symbols), start, start, end, end),
        ).fetchall()
    return np.array([r[0] for r in rows], dtype="datetime64[D]")


def assert_unseen(window: Window, label_end: date | datetime | None) -> None:
    """The guarantee: ``window`` is traded only by a model whose last seen label (the last bar
    any of its training labels looked at) is before the window's first traded bar."""
    if label_end is None:
        raise LeakageError(
            f"window {window.name} ({window.test_start} to {window.test_end}): its model's label"
            " end is unknown, so it cannot be shown never to have seen these bars"
        )
    seen = label_end.date() if isinstance(label_end, datetime) else label_end
    if seen >= window.test_start:
        raise LeakageError(
            f"window {window.name} trades {window.test_start} to {window.test_end}, but its model"
            f" saw labels through {seen}: it would trade bars whose outcome it was trained on"
        )


# --- the model of a window ------------------------------------------------------------------


class ModelSource(Protocol):
    """Gives each window the model that trades it, or raises ``Skip`` with the reason
    (``serving.retrain_source.RetrainSource``, ``serving.champion_source.ChampionSource``)."""

    def model(self, window: Window) -> WindowModel: ...


SourceFactory = Callable[[list[str], int], ModelSource]
"""(the run's symbols, the longest label horizon) -> the source, built once the plan stands."""


# --- trading the windows --------------------------------------------------------------------


@dataclass
class WindowResult:
    window: Window
    stream: str | None = None
    model: str | None = None
    trained_through: date | None = None
    label_end: date | None = None
    training_rows: int | None = None
    metrics: dict[str, Any] | None = None  # the window's own, all accounts and total
    fills: int = 0
    skipped: str | None = None

    def to_json(self) -> dict[str, Any]:
        return self.window.to_json() | {
            "stream": self.stream,
            "model": self.model,
            "trained_through": str(self.trained_through) if self.trained_through else None,
            "label_end": str(self.label_end) if self.label_end else None,
            "training_rows": self.training_rows,
            "metrics": self.metrics,
            "fills": self.fills,
            "skipped": self.skipped,
        }


@dataclass
class WalkForwardResult:
    stream: str
    settings: dict[str, Any]
    symbols: list[str]
    horizon: int
    windows: list[WindowResult]
    metrics: dict[str, Any]
    equity_curve: list[dict[str, Any]]
    fills: list[dict[str, Any]]
    baseline: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "settings": self.settings,
            "symbols": self.symbols,
            "horizon": self.horizon,
            "metrics": self.metrics,
            "windows": [w.to_json() for w in self.windows],
            "equity_curve": self.equity_curve,
            "fills": self.fills,
            "baseline": self.baseline,
        }


def _check(config: RunConfig) -> None:
    models = [s for s in config.strategies if s.signal == "model"]
    if any(s.model_role != "champion" for s in models):
        raise ValueError("a walk-forward trades one model per window: no challenger strategies")
    if config.model_url or config.in_sample:
        raise ValueError("a walk-forward trades in process and out of sample only")


def _trades_model(config: RunConfig) -> bool:
    return any(s.signal == "model" for s in config.strategies)


def _window_config(
    config: RunConfig, window: Window, stream: str, capital: dict[str, float], warmup: int
) -> RunConfig:
    strategies = [
        s.model_copy(update={"capital": capital[s.name]}).model_dump() for s in config.strategies
    ]
    return RunConfig.model_validate(
        config.model_dump()
        | {
            "mode": "backtest",
            "stream": stream,
            "start": window.test_start,
            "end": window.test_end + timedelta(days=1),
            "strategies": strategies,
            "warmup_bars": warmup,
            "flatten_at_end": True,
        }
    )


def _refuse_existing(url: str, streams: list[str]) -> None:
    for stream in streams:
        journal = Journal(url, stream)
        try:
            if journal.exists():
                raise ValueError(
                    f"stream {stream!r} already exists: a walk-forward writes new streams"
                    " (choose another --stream)"
                )
        finally:
            journal.close()


def walk_forward(
    url: str,
    config: RunConfig,
    source: SourceFactory,
    settings: WalkForwardSettings,
    runtime: RuntimeSettings,
    conventions: Conventions,
    progress: Callable[[int, int, WindowResult | None], None] | None = None,
) -> WalkForwardResult:
    """Plan the windows over ``config``'s symbols and dates, then for each: its model from
    ``source`` (fitted, or the champion of its day), the leakage check, and a costed backtest
    on stream ``<config.stream>-wNN`` that ends flat; then the stitched out-of-sample result.
    The entry point builds the settings and ``conventions`` (QTIS_ANALYTICS_*, with the
    engine's bars per year)."""
    _check(config)
    symbols = sorted(load_instruments(url, config.symbols))
    horizon = longest_horizon()
    timeline = bar_timeline(url, symbols, config.start, config.end)
    windows = plan_windows(
        timeline, settings.windows, settings.train_bars, settings.test_bars, horizon,
        settings.mode, settings.purge,
    )  # fmt: skip
    streams = [f"{config.stream}-{w.name}" for w in windows]
    _refuse_existing(url, streams)
    if progress:
        progress(0, len(windows), None)
    # rules (pairs, SMA, a hedge) fit nothing: each window only warms up on the bars before it
    models = source(symbols, horizon) if _trades_model(config) else None
    capital = {s.name: config.capital(s, runtime) for s in config.strategies}
    initial = _live_total(config, capital)
    warmup = feature_warmup() if settings.warmup_bars is None else settings.warmup_bars
    warmup = max(warmup, *(s.history_bars for s in config.strategies))
    results, reports = [], []
    for window, stream in zip(windows, streams, strict=True):
        result = WindowResult(window)
        try:
            model = _window_model(models, window, result, settings.source)
        except Skip as exc:
            result.skipped = str(exc)
        else:
            window_config = _window_config(config, window, stream, capital, warmup)
            report = run(
                url,
                window_config,
                settings=runtime,
                predictor=model.predictor if model else None,
                conventions=conventions,
            )
            capital = {a: report.equity_curve[-1]["equity"][a] for a in capital}
            result.stream, result.metrics, result.fills = stream, report.metrics, len(report.fills)
            reports.append((window, report))
        results.append(result)
        if progress:
            progress(len(results), len(windows), result)
    return _stitch(url, config, settings, symbols, horizon, initial, results, reports, conventions)


def _window_model(
    models: ModelSource | None, window: Window, result: WindowResult, source: str
) -> WindowModel | None:
    """The window's model, noted on ``result``, once shown never to have seen the window's
    bars (``Skip`` otherwise); None when the strategies trade rules only."""
    if models is None:
        return None
    model = models.model(window)
    result.model, result.trained_through = model.label, model.trained_through
    result.label_end, result.training_rows = model.label_end, model.training_rows
    try:
        assert_unseen(window, model.label_end)
    except LeakageError as exc:
        if source == "retrain":
            raise  # a fit on its own window's labels is a bug, never a skip
        raise Skip(f"refused: {exc}") from exc
    return model


def _live_total(config: RunConfig, values: dict[str, float]) -> float:
    live = [s.name for s in config.strategies if not s.shadow] or list(values)
    return float(sum(values[a] for a in live))


# --- stitching ------------------------------------------------------------------------------


def _stitch(
    url: str,
    config: RunConfig,
    settings: WalkForwardSettings,
    symbols: list[str],
    horizon: int,
    initial: float,
    results: list[WindowResult],
    reports: list,
    conventions: Conventions,
) -> WalkForwardResult:
    """The windows' equity curves end to end (each began with the last one's ending equity),
    their fills, metrics of the whole out-of-sample record, and the buy-and-hold baseline."""
    curve, fills, benchmark = [], [], []
    for window, report in reports:
        for point in report.equity_curve:
            total = _live_total(config, point["equity"])
            curve.append({"ts": point["ts"], "window": window.name, "equity": total})
        fills += [{**f, "window": window.name} for f in report.fills]
        benchmark.append(_buy_and_hold(url, symbols, report.equity_curve))
    equity = np.array([p["equity"] for p in curve], dtype=float)
    returns = curve_returns(initial, equity)
    bench = np.concatenate(benchmark) if benchmark else np.empty(0)
    totals = [r.metrics["total"] for r in results if r.metrics]
    final = float(equity[-1]) if len(equity) else initial
    metrics = {
        "initial": initial,
        "final_equity": round(final, 2),
        **performance(returns, bench if len(bench) else None, conventions),
        "total_return": final / initial - 1,
        **{k: round(sum(t[k] for t in totals), 2) for k in ("fees", "slippage")},
        **{k: int(sum(t[k] for t in totals)) for k in ("orders", "denied", "filled_orders")},
        "fills": len(fills),
        "bars": len(returns),
        "windows_traded": len(reports),
        "windows_skipped": sum(r.skipped is not None for r in results),
    }
    bench_equity = initial * np.cumprod(1 + bench)
    baseline = {
        "name": BASELINE,
        "metrics": {
            "initial": initial,
            "final_equity": round(float(bench_equity[-1]) if len(bench) else initial, 2),
            **performance(bench, conventions=conventions),
            "bars": len(bench),
        },
        "equity_curve": [
            {"ts": p["ts"], "window": p["window"], "equity": float(v)}
            for p, v in zip(curve, bench_equity, strict=True)
        ],
    }
    plan = settings.model_dump() | {"purge": settings.purge or horizon}
    if not _trades_model(config):
        plan["source"] = "rules"  # no model per window
    return WalkForwardResult(
        config.stream, plan, symbols, horizon, results, metrics, curve, fills, baseline
    )


def _buy_and_hold(url: str, symbols: list[str], equity_curve: list[dict]) -> np.ndarray:
    """Per-bar returns of the equal-weight buy-and-hold over one window's bars (bought at its
    first bar's close, as the window's own first bar holds nothing yet)."""
    index = pd.DatetimeIndex([pd.Timestamp(p["ts"]) for p in equity_curve], name="ts")
    if index.empty:
        return np.empty(0)
    end = index[-1].to_pydatetime() + timedelta(microseconds=1)
    bars = read_bars(url, symbols, index[0].to_pydatetime(), end).to_pandas()
    bars["ts"] = pd.to_datetime(bars["ts"], utc=True)
    return equal_weight(bars, index).to_numpy()
