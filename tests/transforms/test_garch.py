"""GARCH volatility: incremental = full refresh, no look-ahead, online filter = table."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import psycopg
import pytest

from tests.support.bars import load_bars, read_table
from tests.support.db import fresh_database
from transforms.garch import GarchFilter, load_fits, percent_log_returns, update_garch
from transforms.settings import FeatureSettings
from transforms.spec import default_spec
from warehouse.ingest import ingest
from warehouse.providers import SyntheticMarket
from warehouse.providers.base import FrameProvider
from warehouse.schema import migrate
from warehouse.settings import WarehouseSettings

pytestmark = pytest.mark.storage  # runs on the embedded server and on TimescaleDB

# a small estimation setup keeps the test fast; the schedule logic is the same
SPEC = dataclasses.replace(
    default_spec(),
    garch=dataclasses.replace(default_spec().garch, window=300, min_obs=200, refit_every=100),
)
SYMBOLS = ["IBM", "MSFT"]


def _symbols(frame: pd.DataFrame) -> pd.Series:
    return frame["symbol"].isin(SYMBOLS)


def test_incremental_equals_full_refresh(db_url, bundled):
    cut = pd.Timestamp("2009-06-30")
    load_bars(db_url, bundled, lambda f: _symbols(f) & (pd.to_datetime(f["ts"]) <= cut))
    first = update_garch(db_url, spec=SPEC)
    assert first.fits > 0 and first.failed_fits == 0
    load_bars(db_url, bundled, _symbols)
    second = update_garch(db_url, spec=SPEC)
    assert 0 < second.rows_written < first.rows_written  # only the new bars
    assert update_garch(db_url, spec=SPEC).rows_written == 0  # nothing new, nothing written
    incremental = {t: read_table(db_url, f"features.{t}") for t in ("garch_vol", "garch_fits")}
    update_garch(db_url, spec=SPEC, full_refresh=True)
    for table, frame in incremental.items():
        pd.testing.assert_frame_equal(frame, read_table(db_url, f"features.{table}"))


def test_no_look_ahead_and_plausible(db_url, pg_server, bundled):
    from warehouse.schema import migrate

    load_bars(db_url, bundled, _symbols)
    report = update_garch(db_url, spec=SPEC)
    cut = pd.Timestamp("2008-01-15")
    frame = bundled.frame.copy()
    later = pd.to_datetime(frame["ts"]) > cut
    for col in ("open", "high", "low", "close", "adj_close"):
        frame.loc[later, col] *= np.random.default_rng(1).uniform(0.7, 1.3, later.sum())
    frame.loc[later, "high"] = frame.loc[later, ["open", "high", "low", "close"]].max(axis=1)
    frame.loc[later, "low"] = frame.loc[later, ["open", "high", "low", "close"]].min(axis=1)
    other = fresh_database(pg_server)
    migrate(other)
    load_bars(other, dataclasses.replace(bundled, frame=frame), _symbols)
    update_garch(other, spec=SPEC)
    where = "ts <= '2008-01-15 23:59:59+00'"
    pd.testing.assert_frame_equal(
        read_table(db_url, "features.garch_vol", where),
        read_table(other, "features.garch_vol", where),
    )

    vol = read_table(db_url, "features.garch_vol")
    assert len(vol) == report.rows_written and (vol["garch_vol"] > 0).all()
    fits = read_table(db_url, "features.garch_fits")
    assert ((fits["alpha"] + fits["beta"]) < 1).mean() > 0.9
    bars = read_table(db_url, "market.bars", "symbol = 'IBM'")
    realized = np.std(np.diff(np.log(bars["close"].to_numpy(float)))) * np.sqrt(252)
    ratio = vol.loc[vol["symbol"] == "IBM", "garch_vol"].median() / realized
    assert 0.3 < ratio < 3, ratio


def test_online_filter_replays_the_table(db_url, bundled):
    load_bars(db_url, bundled, _symbols)
    update_garch(db_url, spec=SPEC)
    bars = read_table(db_url, "market.bars", "symbol in ('IBM', 'MSFT')")
    wide = bars.pivot(index="ts", columns="symbol", values="close")[SYMBOLS]
    online = GarchFilter(SYMBOLS, SPEC.bars_per_year, load_fits(db_url, SYMBOLS))
    prev = np.full(len(SYMBOLS), np.nan)
    out = []
    for ts, close in zip(wide.index, wide.to_numpy(float), strict=True):
        mask = ~np.isnan(close)
        r = np.full(len(SYMBOLS), np.nan)
        ok = mask & ~np.isnan(prev)
        r[ok] = percent_log_returns(np.stack([prev[ok], close[ok]]))[0]
        vol = online.step(ts, mask, r)
        out += [(s, ts, v) for s, v, m in zip(SYMBOLS, vol, mask, strict=True) if m and v == v]
        prev = np.where(mask, close, prev)
    replay = pd.DataFrame(out, columns=["symbol", "ts", "garch_vol"]).sort_values(["symbol", "ts"])
    table = read_table(db_url, "features.garch_vol")
    assert len(replay) == len(table)
    np.testing.assert_array_equal(replay["garch_vol"].to_numpy(), table["garch_vol"].to_numpy())


def test_short_history_is_skipped(db_url, bundled):
    load_bars(
        db_url, bundled, lambda f: f["symbol"].eq("IBM") & (pd.to_datetime(f["ts"]) < "2000-06-01")
    )
    report = update_garch(db_url, spec=SPEC)
    assert "IBM" in report.skipped_symbols and report.rows_written == 0
    with psycopg.connect(db_url) as conn:
        assert conn.execute("select count(*) from features.garch_vol").fetchone()[0] == 0


@pytest.mark.parametrize("n", [1, 5])
def test_percent_log_returns(n):
    close = np.linspace(100, 110, n + 1)
    np.testing.assert_allclose(percent_log_returns(close), 100 * np.diff(np.log(close)))


def test_fits_in_worker_processes_equal_fits_in_one(db_url, pg_server):
    """A universe's GARCH fitted by two worker processes, a symbol each at a time, is the
    table one process writes, bit for bit (and an incremental day on top of it too)."""
    raw = FrameProvider(SyntheticMarket(n_symbols=16, n_bars=420, seed=3).load())
    last = raw.raw.frame["ts"] == raw.raw.frame["ts"].max()
    tables = []
    for workers in (2, 1):
        url = fresh_database(pg_server)
        migrate(url)
        ingest(raw.where(~last), url, WarehouseSettings())
        report = update_garch(url, spec=SPEC, settings=FeatureSettings(garch_workers=workers))
        assert report.workers == workers and report.fits == 16 * 3
        ingest(raw.where(last), url, WarehouseSettings())
        update_garch(url, spec=SPEC, settings=FeatureSettings(garch_workers=workers))
        tables.append({t: read_table(url, f"features.{t}") for t in ("garch_vol", "garch_fits")})
    for table in ("garch_vol", "garch_fits"):
        pd.testing.assert_frame_equal(tables[0][table], tables[1][table])


@pytest.mark.parametrize(
    ("asked", "symbols", "expected"),
    [(4, 100, 4), (4, 16, 2), (4, 7, 1), (1, 2000, 1), (0, 8, 1)],
)
def test_workers_never_exceed_one_per_eight_symbols(asked, symbols, expected):
    assert FeatureSettings(garch_workers=asked).workers(symbols) == expected
