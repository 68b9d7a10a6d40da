"""The sweep against the event engine: for several cells of a grid (windows, sizings, costs,
limits on and off, a volume cap that binds; model thresholds) the sweep's fills are the engine's
backtest's, fill for fill, on the bundled sample; and a grid that makes no sweep says what to
change."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from serving.predictor import Predictor
from serving.settings import ServingSettings
from tests.support.momentum import momentum_model
from trading_runtime import sweep_kernel as k
from trading_runtime.analytics.conventions import conventions
from trading_runtime.broker import CrossSection
from trading_runtime.config import RunConfig, StrategyConfig
from trading_runtime.instruments import load_instruments
from trading_runtime.runs import run
from trading_runtime.settings import CostModel, RiskLimits, RuntimeSettings
from trading_runtime.signals import SmaCross
from trading_runtime.sweep import (
    Grid,
    Market,
    Sweep,
    SweepError,
    cost_columns,
    load_market,
    parse_range,
    run_sweep,
)
from trading_runtime.sweep_model import load_model_market

START = date(2009, 1, 2)
MODEL_SPAN = {"start": START, "end": date(2011, 12, 30)}
OFF = dict.fromkeys(("max_order_notional", "max_order_quantity", "max_position_notional",
                     "max_symbol_weight", "max_gross_exposure", "max_net_exposure",
                     "reducing_drawdown", "halt_drawdown"))  # fmt: skip
TIGHT_VOLUME = {"participation": 0.0002, "commission_min": 1.0}


def fills_of(report) -> list[tuple]:
    return [(f["symbol"], f["ts"], f["side"], f["quantity"], f["price"], f["fee"])
            for f in report.fills]  # fmt: skip


def swept(fills: list[dict]) -> list[tuple]:
    return [(f["symbol"], f["ts"], f["side"], f["quantity"], f["price"], f["fee"]) for f in fills]


def same(a: list[tuple], b: list[tuple]) -> None:
    """Fill for fill, in time order (within a bar the engine fills the oldest order first
    across symbols, the sweep symbol by symbol: one symbol's fills keep their order)."""
    a, b = (sorted(x, key=lambda f: (f[1], f[0])) for x in (a, b))
    assert [x[:4] for x in a] == [x[:4] for x in b]
    for x, y in zip(a, b, strict=True):
        assert x[4] == pytest.approx(y[4], rel=1e-12) and x[5] == pytest.approx(y[5], rel=1e-9)


@pytest.mark.parametrize(
    ("sizing", "fast", "slow", "size", "costs", "limits"),
    [
        ("vol-target", 10, 40, 0.15, {}, {}),  # the backtest's defaults
        ("vol-target", 5, 30, 0.40, {}, {}),  # exposure and drawdown limits bite
        ("equal", 20, 50, None, {"latency_bars": 1}, {}),
        ("fixed", 15, 60, 300.0, {}, OFF),
        ("fixed", 10, 30, 5000.0, TIGHT_VOLUME, OFF),  # partial fills at the volume cap
    ],
)
def test_sweep_fills_equal_the_engines(market, sizing, fast, slow, size, costs, limits):
    runtime = RuntimeSettings()
    strategy = {"fixed": {"quantity": size}, "vol-target": {"target_vol": size}}.get(sizing, {})
    strategy = StrategyConfig(
        signal="sma-cross", fast=fast, slow=slow, sizing=sizing, limits=limits, **strategy
    )
    name = f"sweep-{sizing}-{fast}-{slow}"
    config = RunConfig(stream=name, strategies=[strategy], start=START, costs=costs)
    engine = run(market, config, settings=runtime)
    instruments = load_instruments(market)
    bars = load_market(market, instruments, START, None, config.warmup_bars, sizing)
    grid = Grid((fast, fast + 5), (slow,), sizing, (size or 0.0,), (runtime.max_weight,))
    per_year = conventions(periods_per_year=runtime.bars_per_year)
    limits = RiskLimits(**strategy.limits)
    sweep = Sweep(bars, grid, config.cost_model(), limits, runtime.capital, per_year)
    result = run_sweep(sweep)
    cell = result.cells[0]
    assert not cell["approximate"]
    expected = fills_of(engine)
    assert len(expected) > 10
    same(swept(sweep.fills(0)), expected)
    totals = engine.metrics["main"]
    assert cell["fills"] == len(expected)
    assert cell["denied"] == totals["denied"] and cell["orders"] == totals["orders"]
    assert cell["final_equity"] == pytest.approx(totals["final_equity"], abs=0.02)
    assert cell["sharpe"] == pytest.approx(totals["sharpe"], rel=1e-6)
    if strategy.limits != OFF and sizing == "vol-target" and size > 0.3:
        assert totals["denied"] > 0  # the checks were exercised, not only passed
    if costs is TIGHT_VOLUME:
        assert any(f[3] < size for f in expected)  # orders did fill in parts


@pytest.fixture(scope="module")
def momentum(market):
    """A model served by the in-process predictor, and its forecasts replayed once."""
    serving = ServingSettings(serve_shadow_log=False)
    predictor = Predictor.of(market, momentum_model(), serving)
    bars = load_model_market(market, load_instruments(market), predictor, MODEL_SPAN["start"],
                             MODEL_SPAN["end"], 250, batch=serving.serve_max_windows)  # fmt: skip
    return predictor, bars


def model_cells_fill_as_the_engine(market, momentum, grid, strategy) -> list[dict]:
    """Every cell of ``grid`` (thresholds x one size) against the engine's backtest of
    ``strategy`` at that threshold: fills, orders, denials, equity, Sharpe. Returns the
    engine's fills per cell."""
    runtime, (predictor, bars) = RuntimeSettings(), momentum
    per_year = conventions(periods_per_year=runtime.bars_per_year)
    costs = RunConfig(stream="costs").cost_model()
    sweep = Sweep(bars, grid, costs, RiskLimits(**strategy.limits), runtime.capital, per_year,
                  min_trade=runtime.min_trade)  # fmt: skip
    result = run_sweep(sweep)
    fills = []
    for i, threshold in enumerate(grid.thresholds):
        cell, name = result.cells[i], f"sweep-model-{strategy.sizing}-{i}"
        config = RunConfig(stream=name, **MODEL_SPAN, strategies=[strategy.model_copy(
            update={"threshold": threshold})])  # fmt: skip
        engine = run(market, config, settings=runtime, predictor=predictor)
        expected, totals = fills_of(engine), engine.metrics["main"]
        assert cell["threshold"] == threshold and not cell["approximate"]
        same(swept(sweep.fills(i)), expected)
        assert cell["fills"] == len(expected) and cell["orders"] == totals["orders"]
        assert cell["denied"] == totals["denied"]
        assert cell["final_equity"] == pytest.approx(totals["final_equity"], abs=0.02)
        assert cell["sharpe"] == pytest.approx(totals["sharpe"], rel=1e-6)
        fills.append(expected)
    return fills


def test_model_threshold_cells_fill_as_the_engine(market, momentum):
    """The served model's forecasts, replayed once, traded at three thresholds (none, one that
    drops the weaker forecasts, one that drops most): each cell's fills, orders and equity are
    the engine's backtest of that threshold (vol-target sizing: fractional strengths, so the
    model's rebalance band decides which orders go; no order denied)."""
    thresholds, bars = (0.0, 0.01, 0.03), momentum[1]
    forecasts = np.abs(bars.forecast[bars.first :])
    assert np.mean(forecasts[np.isfinite(forecasts)] < thresholds[-1]) > 0.5  # drops most
    grid = Grid(
        sizing="vol-target", sizes=(0.15,), caps=(0.15,), signal="model", thresholds=thresholds
    )  # a cap low enough that the cash check never denies
    strategy = StrategyConfig(signal="model", max_weight=0.15, limits=OFF)
    fills = model_cells_fill_as_the_engine(market, momentum, grid, strategy)
    assert len(fills[0]) > len(fills[1]) > len(fills[2]) > 10  # the thresholds did filter


def test_a_short_model_cell_fills_as_the_engine(market, momentum):
    """With ``allow_short`` a negative forecast goes short, in the sweep as in the engine."""
    grid = Grid(sizing="fixed", sizes=(100.0,), signal="model", thresholds=(0.01,))
    strategy = StrategyConfig(signal="model", sizing="fixed", quantity=100,
                              limits=OFF | {"allow_short": True})  # fmt: skip
    (fills,) = model_cells_fill_as_the_engine(market, momentum, grid, strategy)
    held, positions = dict.fromkeys({f[0] for f in fills}, 0.0), set()
    for symbol, _, side, quantity, *_ in fills:
        held[symbol] += quantity if side == "buy" else -quantity
        positions.add(held[symbol])
    assert len(fills) > 10 and positions == {-100.0, 0.0, 100.0}  # short, flat and long


def test_a_model_sweep_refuses_what_it_does_not_simulate():
    with pytest.raises(SweepError, match="--threshold goes with --signal model"):
        Grid((5,), (20,), thresholds=(0.001,)).cells()
    with pytest.raises(SweepError, match="--fast and --slow go with --signal sma-cross"):
        Grid((5,), (20,), signal="model").cells()
    assert parse_range("0:0.004:0.001", "threshold", integer=False, zero=True)[0] == 0.0
    bars = np.ones((3, 1))
    market = Market(["X"], None, 0, bars, bars, bars, np.ones(1), np.ones(1), np.zeros(1, int), 1)
    grid = Grid(sizing="equal", signal="model")
    with pytest.raises(SweepError, match="trades the champion's forecasts: load_model_market"):
        Sweep(market, grid)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5:50", "a range is start:stop:step"),
        ("50:5:5", "needs start <= stop and a step above 0"),
        ("5:50:0", "needs start <= stop and a step above 0"),
        ("a:b:c", "expected whole numbers"),
        ("0,5", "every value must be above 0"),
    ],
)
def test_a_bad_range_says_what_is_expected(text, message):
    with pytest.raises(SweepError, match=message):
        parse_range(text, "fast")


def test_ranges_include_their_stop_and_grids_skip_fast_above_slow():
    assert parse_range("5:50:5", "fast") == tuple(range(5, 55, 5))
    assert parse_range("0.1:0.3:0.1", "target-vol", integer=False) == (0.1, 0.2, 0.3)
    assert parse_range("7", "fast") == (7,) and parse_range("3,9", "fast") == (3, 9)
    assert len(Grid((5, 20, 30), (20, 25), "equal").cells()) == 3  # 5-20, 5-25, 20-25
    with pytest.raises(SweepError, match="no cell with fast < slow"):
        Grid((50,), (20,), "equal").cells()


def test_the_sweep_refuses_what_it_does_not_simulate():
    with pytest.raises(SweepError, match="fixed slippage only"):
        cost_columns(CostModel(slippage="impact"))


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.integers(1, 400), elements=st.floats(-1e6, 1e6)))
def test_the_exact_mean_sums_in_numpys_order(x):
    """Near ties are decided on sums made in numpy's order, as the engine's ``SmaCross``
    makes them (a row of a 2-D array summed along it)."""
    assert k.pairwise_sum(x, 0, len(x)) == x[None, :].sum(axis=1)[0]


@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 6),
    st.integers(7, 30),
    arrays(np.float64, (80, 3), elements=st.sampled_from([99.9, 100.0, 100.1, 0.3, np.nan])),
)
def test_signals_are_the_engines_even_on_ties_and_gaps(fast, slow, closes):
    """Prices from a few values make equal means common (flat stretches, repeats): the sweep's
    running sums, summed again exactly near a tie, give the engine's ``SmaCross`` signal on
    every bar, and symbols without a bar hold still as the engine's ring does."""
    comp, seen = k.compress(closes)
    means = k.rolling_means(comp, seen, np.array([fast, slow]))
    engine = SmaCross(3, fast, slow)
    for t, close in enumerate(closes):
        bar = CrossSection(t, datetime(2020, 1, 1), close, close, close, close, close)
        engine.observe(bar, None)
        expected, _ = engine.signals(bar)
        ours = [k.long_signal(means, comp, seen, 0, 1, fast, slow, t, s) for s in range(3)]
        assert ours == list(expected), t
