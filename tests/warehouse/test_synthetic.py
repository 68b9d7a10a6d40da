import numpy as np

from warehouse.providers import SyntheticMarket
from warehouse.validation import validate_bars


def test_seeded_and_valid():
    a = SyntheticMarket(n_symbols=30, n_bars=500, seed=11).generate()
    b = SyntheticMarket(n_symbols=30, n_bars=500, seed=11).generate()
    assert a.equals(b)
    assert not a.equals(SyntheticMarket(n_symbols=30, n_bars=500, seed=12).generate())
    result = validate_bars(a)
    assert result.quarantine.empty and len(result.good) == 30 * 500


def test_correlated_assets_and_volatility_regimes():
    market = SyntheticMarket(n_symbols=40, n_bars=2000, seed=5)
    wide = market.generate().pivot(index="ts", columns="symbol", values="close")
    returns = np.log(wide).diff().dropna()
    corr = returns.corr().to_numpy()
    assert np.nanmean(corr[np.triu_indices(40, 1)]) > 0.2  # common market factor
    vol = returns.abs().mean(axis=1).rolling(50).mean().dropna()
    assert vol.max() / vol.min() > 1.8  # calm and stressed regimes


def test_intraday_bars_stay_inside_the_session():
    frame = SyntheticMarket(n_symbols=2, n_bars=200, freq="15min").generate()
    minutes = frame["ts"].dt.hour * 60 + frame["ts"].dt.minute
    assert minutes.min() >= 14 * 60 + 30 and minutes.max() < 21 * 60
    assert frame["ts"].dt.dayofweek.max() < 5


def test_momentum_plants_a_lagged_return_signal():
    """``momentum`` is the signal the tuning benchmark plants: each asset's bar return leans on
    the one before with that coefficient (the pooled lag-1 regression slope finds it), and
    without it the lagged return carries nothing."""

    def slope(momentum: float) -> float:
        bars = SyntheticMarket(n_symbols=20, n_bars=1500, seed=3, momentum=momentum).generate()
        wide = np.log(bars.pivot(index="ts", columns="symbol", values="close")).diff()
        now, before = wide.iloc[2:].to_numpy().ravel(), wide.iloc[1:-1].to_numpy().ravel()
        return float(np.dot(before, now) / np.dot(before, before))

    assert abs(slope(0.3) - 0.3) < 0.05
    assert abs(slope(0.0)) < 0.05
