import numpy as np
import pandas as pd
import pytest

from warehouse.providers.continuation import continuation, next_sessions


def _history(days: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    times = pd.bdate_range("2013-01-02", periods=days, tz="UTC")
    frames = []
    for symbol, start in (("AAA", 50.0), ("BBB", 200.0)):
        close = start * np.exp(np.cumsum(rng.normal(0, 0.01, days)))
        frames.append(pd.DataFrame({
            "symbol": symbol, "ts": times, "open": close * 0.999, "high": close * 1.01,
            "low": close * 0.99, "close": close, "volume": rng.integers(1e5, 1e6, days) * 1.0,
        }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def test_new_bars_follow_the_last_close_on_the_exchange_sessions():
    history = _history()
    bars = continuation(history, 6, seed=1)
    last = history[history["ts"] == history["ts"].max()].set_index("symbol")["close"]
    first = bars[bars["ts"] == bars["ts"].min()].set_index("symbol")
    shapes = history.pivot(index="ts", columns="symbol")
    ratios = (shapes["open"] / shapes["close"].shift(1)).iloc[1:]
    drawn = (first["open"] / last).reindex(ratios.columns)
    # the first new open is the last close times one day's open ratio, the same day for all
    assert np.isclose(ratios.to_numpy(), drawn.to_numpy()).all(axis=1).any()
    assert sorted(bars["ts"].unique()) == list(next_sessions(history["ts"].max(), 6))
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    assert continuation(history, 6, seed=1).equals(bars)  # seeded: the same bars again


def test_sessions_skip_weekends_and_holidays():
    thanksgiving_eve = pd.Timestamp("2024-11-27", tz="UTC")
    got = next_sessions(thanksgiving_eve, 3)
    assert [t.date().isoformat() for t in got] == ["2024-11-29", "2024-12-02", "2024-12-03"]


def test_a_market_too_short_to_continue_is_refused():
    with pytest.raises(ValueError, match="at least two days"):
        continuation(_history(1), 3)


def test_new_bars_are_stamped_at_the_time_of_day_of_the_last():
    history = _history()
    history["ts"] = history["ts"] + pd.Timedelta(hours=5)  # midnight in New York, in winter
    stamps = continuation(history, 3, seed=2)["ts"].unique()
    assert all(t.hour == 5 and t.minute == 0 for t in stamps)
