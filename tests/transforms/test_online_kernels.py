"""The numba online engine gives exactly what the numpy engine it replaced gives (issue 29).

tests/support/online_reference holds that numpy engine unchanged; both are fed the same random
cross-sections - flat stretches, zero ranges, missing bars, sectors, a benchmark - and every
value of every column must be equal (NaN where the other is NaN).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pandas as pd
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tests.support.online_reference.engine import NumpyEngine
from transforms.online import OnlineFeatureEngine, cross_asset, recursive, rolling, windowed
from transforms.online.rolling import pairwise_sum
from transforms.spec import SPEC_PATH, FeatureSpec, default_spec, parse_spec

WINDOW_KEYS = ("window", "fast", "slow", "signal", "k_window", "d_window")


def small_spec(benchmark: str | None) -> FeatureSpec:
    """The default spec with every window a tenth as long (at least 2), so that a few dozen bars
    fill, wrap and re-centre every window."""
    raw = yaml.safe_load(SPEC_PATH.read_text())
    for entry in [*raw["recursive"], *raw["windowed"], *raw["cross_asset"]["features"]]:
        for key in WINDOW_KEYS:
            if key in entry:
                entry[key] = max(2, entry[key] // 10)
    raw["cross_asset"]["benchmark"] = benchmark
    return parse_spec(raw)


def feed(spec: FeatureSpec, bars: dict[str, np.ndarray], sectors: list[str | None]) -> None:
    """Both engines over ``bars`` (time x symbols arrays), compared after every cross-section."""
    symbols = [f"S{i}" for i in range(bars["close"].shape[1])]
    by_symbol = dict(zip(symbols, sectors, strict=True))
    new = OnlineFeatureEngine(symbols, spec, sectors=by_symbol)
    old = NumpyEngine(symbols, spec, sectors=by_symbol)
    assert new.columns == old.columns
    start = pd.Timestamp("2020-01-01", tz="UTC")
    for t in range(bars["close"].shape[0]):
        row = {k: v[t] for k, v in bars.items()}
        ts = start + pd.Timedelta(days=t)
        got, want = new.update(ts, **row), old.update(ts, **row)
        assert got.shape == want.shape == (len(symbols), len(new.columns))
        np.testing.assert_array_equal(got, want, err_msg=f"bar {t}")


def make_bars(
    returns: np.ndarray, spread: np.ndarray, volume: np.ndarray, missing: np.ndarray
) -> dict[str, np.ndarray]:
    """A random walk with highs and lows around it; a missing bar is NaN in every field."""
    close = 100 * np.exp(np.cumsum(returns, axis=0))
    bars = {
        "open": close * np.exp(spread[..., 0] - spread[..., 1]),
        "high": close * np.exp(spread[..., 0]),
        "low": close * np.exp(-spread[..., 1]),
        "close": close,
        "volume": volume,
    }
    return {k: np.where(missing, np.nan, v) for k, v in bars.items()}


@st.composite
def cross_sections(draw: st.DrawFn, max_bars: int) -> tuple[dict[str, np.ndarray], list]:
    n = draw(st.integers(1, 5))
    t = draw(st.integers(1, max_bars))
    returns = draw(hnp.arrays(float, (t, n), elements=st.floats(-0.2, 0.2)))
    spread = draw(hnp.arrays(float, (t, n, 2), elements=st.floats(0, 0.05)))
    volume = draw(hnp.arrays(float, (t, n), elements=st.floats(0, 1e6)))
    missing = draw(hnp.arrays(bool, (t, n)))
    sectors = draw(st.lists(st.sampled_from([None, "tech", "energy"]), min_size=n, max_size=n))
    return make_bars(returns, spread, volume, missing), sectors


@settings(max_examples=60, deadline=None)
@given(data=cross_sections(max_bars=60), benchmark=st.booleans())
def test_kernels_equal_numpy_engine_on_short_windows(data, benchmark):
    bars, sectors = data
    feed(small_spec("S0" if benchmark else None), bars, sectors)


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), gaps=st.floats(0, 0.3))
def test_kernels_equal_numpy_engine_on_the_default_spec(seed, gaps):
    """Long enough (420 bars) for sma_200 to wrap twice: sums over more than 128 values."""
    rng = np.random.default_rng(seed)
    shape = (420, 4)
    bars = make_bars(
        rng.normal(0, 0.02, shape),
        rng.uniform(0, 0.03, (*shape, 2)),
        rng.integers(0, 10**6, shape).astype(float),
        rng.random(shape) < gaps,
    )
    feed(default_spec(), bars, ["tech", "tech", None, "energy"])


def test_market_mean_over_many_symbols():
    """300 symbols: the equal-weight market return sums more than 128 values (pairwise halves)."""
    rng = np.random.default_rng(7)
    shape = (30, 300)
    bars = make_bars(
        rng.normal(0, 0.02, shape),
        rng.uniform(0, 0.03, (*shape, 2)),
        rng.integers(0, 10**6, shape).astype(float),
        rng.random(shape) < 0.1,
    )
    feed(small_spec(None), bars, [None, "tech", "energy"] * 100)


@settings(max_examples=200, deadline=None)
@given(
    a=hnp.arrays(float, st.integers(0, 700), elements=st.floats(-1e12, 1e12)),
    lo=st.integers(0, 20),
)
def test_pairwise_sum_is_numpys_sum(a, lo):
    """The order of numpy's add.reduce, so window sums are the numpy engine's to the bit."""
    lo = min(lo, len(a))
    assert pairwise_sum(a, lo, len(a) - lo) == np.sum(a[lo:])


def test_kernels_run_on_the_calling_thread_only():
    """One core: no kernel is compiled with ``parallel`` (numba's thread pool)."""
    modules = (rolling, recursive, windowed, cross_asset)
    kernels = {
        name: obj.targetoptions
        for module in modules
        for name, obj in vars(module).items()
        if isinstance(obj, numba.core.dispatcher.Dispatcher)
    }
    assert len(kernels) >= 20
    assert [name for name, options in kernels.items() if options.get("parallel")] == []


def test_without_a_writable_cache_the_kernels_compile_in_process():
    """A read-only install (systemd's ProtectSystem, no home) leaves numba no cache directory:
    importing the engine must not fail, its kernels are then compiled without a disk cache."""
    code = (
        "import numba.core.caching as c; c.CacheImpl._locator_classes = []; "  # no place to write
        "import numpy as np; from transforms.online import rolling; "
        "print(type(rolling.pairwise_sum._cache).__name__, "
        "rolling.pairwise_sum(np.arange(300.0), 0, 300))"
    )
    root = Path(__file__).resolve().parents[2]
    env = os.environ | {"PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["NullCache", "44850.0"]
