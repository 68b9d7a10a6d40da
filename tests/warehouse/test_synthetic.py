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
