"""Independent references for every feature TA-Lib does not cover, against the dbt build.

The SQL and the online engine read the same spec, so their parity test cannot catch a shared
misreading of it. Here each feature is recomputed from its formula in docs/features.md with
pandas/numpy (GARCH with `arch`, the calendar from the sample's own trading days) and compared
with ``features.bar_features`` on the bundled sample; ``test_matches_talib`` covers the rest.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd
import psycopg
import pytest
from arch import arch_model

from tests.support.bars import read_table
from tests.support.references import talib_reference
from transforms.dbt_runner import build
from transforms.spec import CALENDAR_COLUMNS, default_spec

SPEC = default_spec()
BARS_PER_YEAR = SPEC.bars_per_year
TOLERANCE = 1e-9


class Sample(NamedTuple):
    bars: pd.DataFrame  # market.bars, ordered by symbol, ts
    features: pd.DataFrame  # features.bar_features, the same rows
    sectors: dict[str, str]  # symbols that have one
    zones: dict[str, str]  # exchange time zone per symbol


@pytest.fixture(scope="module")
def sample(built) -> Sample:
    """Bars, bar_features, sectors and exchange time zones; GOOG's sector is cleared (and the
    cross-asset features rebuilt) so that a symbol without one is in the check too."""
    url, _ = built
    with psycopg.connect(url) as conn:
        conn.execute("update market.instruments set sector = null where symbol = 'GOOG'")
        rows = conn.execute("select symbol, sector, exchange_tz from market.instruments")
        sectors, zones = {}, {}
        for symbol, sector, zone in rows:
            zones[symbol] = zone
            if sector is not None:
                sectors[symbol] = sector
    assert build(url, full_refresh=True, select="feat_cross_asset bar_features").success
    bars = read_table(url, "market.bars")
    features = read_table(url, "features.bar_features")
    assert (bars[["symbol", "ts"]] == features[["symbol", "ts"]]).all().all()
    return Sample(bars, features, sectors, zones)


def relative_errors(ours: pd.DataFrame, reference: pd.DataFrame) -> dict[str, float]:
    """Per column: max |ours - ref| / max(|ref|, median |ref|), after asserting equal nulls.

    The median floor keeps values near zero (%B, relative strength) from turning rounding noise
    into large relative numbers.
    """
    errors = {}
    for col in reference.columns:
        a, b = ours[col].astype(float).to_numpy(), reference[col].astype(float).to_numpy()
        differ = np.flatnonzero(np.isnan(a) != np.isnan(b))
        assert not len(differ), f"{col}: null in one side only at rows {differ[:5]}"
        ok = ~np.isnan(b)
        floor = np.median(np.abs(b[ok])) or 1.0
        errors[col] = float(np.max(np.abs(a[ok] - b[ok]) / np.maximum(np.abs(b[ok]), floor)))
    return errors


def assert_close(ours: pd.DataFrame, reference: pd.DataFrame, tolerance: float) -> None:
    errors = relative_errors(ours, reference)
    assert max(errors.values()) <= tolerance, {k: v for k, v in errors.items() if v > tolerance}


def own_reference(bars: pd.DataFrame) -> pd.DataFrame:
    """One symbol's single-series windowed and recursive features without a TA-Lib twin."""
    c, h, lo, v = (
        bars[k].astype(float).reset_index(drop=True) for k in ("close", "high", "low", "volume")
    )
    r = np.log(c).diff()
    vpt_step = v * c.diff() / c.shift()
    vpt_step.iloc[0] = 0.0
    ref = {"ret_1": r, "vpt": vpt_step.cumsum()}
    mid, sd = c.rolling(20).mean(), c.rolling(20).std(ddof=0)
    upper, lower = mid + 2 * sd, mid - 2 * sd
    ref["bb_pctb_20"] = (c - lower) / (upper - lower).replace(0, np.nan)
    ref["bb_width_20"] = (upper - lower) / mid
    ref["volume_z_20"] = (v - v.rolling(20).mean()) / v.rolling(20).std(ddof=1).replace(0, np.nan)
    for n in (20, 60):
        ref[f"hv_{n}"] = r.rolling(n).std(ddof=1) * math.sqrt(BARS_PER_YEAR)
    for n in (20, 50):
        high, low = h.rolling(n).max(), lo.rolling(n).min()
        ref |= {f"high_{n}": high, f"low_{n}": low}
        ref |= {f"dist_high_{n}": c / high - 1, f"dist_low_{n}": c / low - 1}
    ph, pl, pc = h.shift(), lo.shift(), c.shift()
    p = (ph + pl + pc) / 3
    ref |= {"pivot": p, "pivot_r1": 2 * p - pl, "pivot_s1": 2 * p - ph}
    ref |= {"pivot_r2": p + (ph - pl), "pivot_s2": p - (ph - pl)}
    return pd.DataFrame(ref)


def cross_asset_reference(bars: pd.DataFrame, sectors: dict[str, str]) -> pd.DataFrame:
    """Market and sector features for every row of ``bars`` (ordered by symbol, ts)."""
    bars = bars.assign(r=bars.groupby("symbol")["close"].transform(lambda c: np.log(c).diff()))
    wide = bars.pivot(index="ts", columns="symbol", values="r")
    market = wide.mean(axis=1)  # over the symbols with a return at ts
    groups = pd.Series(sectors).reindex(wide.columns)
    sector_mean = wide.T.groupby(groups).mean().T  # ts x sector
    parts = []
    for symbol, rows in bars.groupby("symbol", sort=True):
        r = rows["r"].reset_index(drop=True)
        m = market.reindex(rows["ts"]).reset_index(drop=True).where(r.notna())
        part = {
            "corr_mkt_60": r.rolling(60).corr(m),
            "beta_mkt_60": r.rolling(60).cov(m) / m.rolling(60).var().replace(0, np.nan),
            "rel_strength_20": r.rolling(20).sum() - m.rolling(20).sum(),
        }
        sector = sectors.get(symbol)
        own_sector = (
            sector_mean[sector].reindex(rows["ts"]).reset_index(drop=True) if sector else np.nan
        )
        part["sector_rel_ret"] = r - own_sector
        parts.append(pd.DataFrame(part))
    return pd.concat(parts, ignore_index=True)


def calendar_reference(bars: pd.DataFrame, zones: dict[str, str]) -> pd.DataFrame:
    """Calendar columns from the trading days the sample itself traded on (any symbol).

    Rows in the first and last month of the sample are null: there the month's trading days
    are not all observed.
    """
    local = pd.Series(
        [ts.tz_convert(zones[s]).date() for s, ts in zip(bars["symbol"], bars["ts"], strict=True)]
    )
    days = pd.DatetimeIndex(sorted(set(local)))
    month = days.to_period("M")
    frame = pd.DataFrame({"month": month}, index=days)
    frame["elapsed"] = frame.groupby("month").cumcount() + 1
    frame["to_end"] = frame.groupby("month")["elapsed"].transform("max") - frame["elapsed"]
    weekdays = pd.bdate_range(days[0], days[-1])
    holiday = pd.Series(~weekdays.isin(days), index=weekdays)
    ref = pd.DataFrame(index=days)
    ref["day_of_week"] = days.dayofweek + 1
    ref["month"] = days.month
    ref["days_to_month_end"] = frame["to_end"]
    ref["is_month_end"] = (frame["to_end"] == 0).astype(int)
    ref["is_quarter_end"] = ref["is_month_end"] * days.month.isin([3, 6, 9, 12])
    ref["is_turn_of_month"] = ((frame["to_end"] == 0) | (frame["elapsed"] <= 3)).astype(int)
    ref["is_pre_holiday"] = holiday.shift(-1).reindex(days).astype(float)
    ref["is_post_holiday"] = holiday.shift(1).reindex(days).astype(float)
    ref = ref.astype(float)
    ref[(month == month[0]) | (month == month[-1])] = np.nan
    return ref.loc[pd.DatetimeIndex(local)][list(CALENDAR_COLUMNS)].reset_index(drop=True)


def garch_reference(close: np.ndarray) -> np.ndarray:
    """garch_vol per bar: an `arch` fit every 21 bars once 250 returns exist, on the last 1000,
    and the GARCH(1,1) recursion with the last fit's parameters from its fitted variance on.

    Not `res.forecast`: it recomputes the variance backcast from the residuals at the fitted
    mean while the fit used the starting mean, which moves near-integrated windows (beta ~
    0.997 in AAPL 2004-2006) by up to 7e-4 relative; the feature follows the fitted path.
    """
    g = SPEC.garch
    # ln(c_t / c_{t-1}) as docs/features.md writes it: the fit is sensitive to the last bit of
    # its input, and ln(c_t) - ln(c_{t-1}) moves the parameters by ~1e-6 relative
    returns = 100 * np.log(close[1:] / close[:-1])  # returns[k] is bar k + 1's
    variance = np.full(len(close), np.nan)
    fits = list(range(g.min_obs, len(close), g.refit_every))  # bar t, with t returns so far
    for t, end in zip(fits, [*fits[1:], len(close)], strict=True):
        model = arch_model(
            returns[max(0, t - g.window) : t],
            mean="Constant",
            vol="GARCH",
            p=g.p,
            q=g.q,
            rescale=False,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = model.fit(disp="off")
        assert res.convergence_flag == 0, f"fit at bar {t} did not converge"
        mu, omega, alpha, beta = (res.params[k] for k in ("mu", "omega", "alpha[1]", "beta[1]"))
        s2 = res.conditional_volatility[-1] ** 2  # bar t's variance given bars up to t - 1
        for k in range(t, end):  # forecast made at bar k for bar k + 1
            s2 = omega + alpha * (returns[k - 1] - mu) ** 2 + beta * s2
            variance[k] = s2
    return np.sqrt(variance) / 100 * math.sqrt(BARS_PER_YEAR)


def test_every_feature_has_an_independent_reference(sample):
    one = sample.bars[sample.bars["symbol"] == "IBM"]
    covered = [
        *talib_reference(one),
        *own_reference(one),
        *cross_asset_reference(sample.bars, sample.sectors),
        *calendar_reference(one, sample.zones),
        SPEC.garch.name,
    ]
    assert sorted(covered) == sorted(SPEC.columns())


def test_own_features_match_pandas(sample):
    for symbol, rows in sample.bars.groupby("symbol"):
        ours = sample.features[sample.features["symbol"] == symbol].reset_index(drop=True)
        assert_close(ours, own_reference(rows), TOLERANCE)  # measured: 3e-11 (bb_pctb_20)


def test_cross_asset_features_match_pandas(sample):
    # the bundled sectors: AAPL, IBM, MSFT share one; GOOG's was cleared
    assert sorted(sample.sectors) == ["AAPL", "IBM", "MSFT"]
    assert len(set(sample.sectors.values())) == 1
    reference = cross_asset_reference(sample.bars, sample.sectors)
    assert_close(sample.features, reference, TOLERANCE)  # measured: 5e-14
    assert reference["sector_rel_ret"].notna().sum() > 9000


def test_calendar_matches_the_days_the_sample_traded(sample):
    """The holiday seed and the calendar flags agree with the exchange's actual trading days."""
    reference = calendar_reference(sample.bars, sample.zones)
    known = reference["month"].notna()
    assert known.sum() > 11000
    pd.testing.assert_frame_equal(
        sample.features.loc[known, list(CALENDAR_COLUMNS)].astype(float),
        reference[known],
        check_exact=True,
    )


@pytest.mark.parametrize("symbol", ["AAPL", "GOOG", "IBM", "MSFT"])
def test_garch_matches_arch(sample, symbol):
    rows = sample.bars["symbol"] == symbol
    ours = sample.features.loc[rows, ["garch_vol"]].reset_index(drop=True)
    reference = pd.DataFrame(
        {"garch_vol": garch_reference(sample.bars.loc[rows, "close"].to_numpy(float))}
    )
    assert_close(ours, reference, TOLERANCE)  # measured: 4e-16
