"""Close-only price panels end to end: a wide file -> market.bars -> dbt features -> training set.

IBM is loaded as OHLCV; the same closes (read back from market.bars) go into a wide CSV as IBMC,
beside MSFT's closes as MSFC and one bad cell. Features that read high, low or volume must be null
for the close-only symbols; every other feature of IBMC must equal IBM's; the online engine must
agree with the SQL; the training set must load and scale.
"""

from __future__ import annotations

import numpy as np
import psycopg
import pytest

from tests.support.bars import load_bars, read_table
from tests.support.db import copy_database
from training.data import load_training_data
from training.windows import FeatureScaler
from transforms.dbt_runner import build
from transforms.online import OnlineFeatureEngine
from transforms.spec import default_spec
from warehouse.ingest import ingest
from warehouse.providers import FileProvider
from warehouse.quality import missing_inputs
from warehouse.settings import WarehouseSettings

pytestmark = pytest.mark.slow  # a dbt build of three symbols (~13 s)

SPEC = default_spec()
SPAN = ("2011-06-01", "2013-03-01")  # ~440 bars: every window of the spec fills
NULL = SPEC.columns_needing("ohlv")
SAME = [c for c in SPEC.columns() if c not in NULL]


@pytest.fixture(scope="module")
def panel(pg_server, migrated_template, bundled, tmp_path_factory):
    """(url, ingest report of the wide file): IBM OHLCV, IBMC and MSFC close-only, built."""
    url = copy_database(pg_server, migrated_template)
    in_span = lambda f: f["symbol"].isin(["IBM", "MSFT"]) & f["ts"].between(*SPAN)  # noqa: E731
    load_bars(url, bundled, in_span)
    stored = read_table(url, "market.bars")
    closes = stored.pivot(index="ts", columns="symbol", values="close")
    closes.index = closes.index.tz_convert("America/New_York").strftime("%Y-%m-%d")
    wide = closes.rename(columns={"IBM": "IBMC", "MSFT": "MSFC"}).rename_axis("Date")
    wide.loc[wide.index[5], "MSFC"] = -1.0  # a bad cell: quarantined, the rest loads
    path = tmp_path_factory.mktemp("panel") / "panel.csv"
    wide.to_csv(path)
    with psycopg.connect(url) as conn:  # registered as the originals: New York, their sector
        conn.execute(
            "insert into market.instruments (symbol, sector, exchange_tz) "
            "select left(symbol, 3) || 'C', sector, exchange_tz from market.instruments "
            "where symbol in ('IBM', 'MSFT')"
        )
        conn.execute("delete from market.bars where symbol = 'MSFT'")
    wide_report = ingest(FileProvider(path, "csv"), url, WarehouseSettings())
    result = build(url, full_refresh=True)
    assert result.success, [(n.name, n.message) for n in result.failures()]
    return url, wide_report, len(wide)


def test_wide_file_loads_closes_and_quarantines_bad_cells(panel):
    url, report, days = panel
    assert report.symbols == ["IBMC", "MSFC"]
    assert (report.loaded, report.quarantined) == (2 * days - 1, 1)
    assert report.quarantine_reasons == {"close: must be > 0": 1}
    with psycopg.connect(url) as conn:
        raw = conn.execute("select raw, reason from market.bars_quarantine").fetchall()
        nulls = conn.execute(
            "select count(*) from market.bars where symbol in ('IBMC', 'MSFC') and open is null "
            "and high is null and low is null and volume is null"
        ).fetchone()[0]
    assert raw[0][0]["close"] == "-1.0" and raw[0][0]["symbol"] == "MSFC"
    assert nulls == report.loaded
    gaps = {g.symbol: g.lacks_all for g in missing_inputs(url)}
    assert gaps == {s: ["open", "high", "low", "volume"] for s in ("IBMC", "MSFC")}


def test_close_only_features_are_null_or_equal_to_the_ohlcv_path(panel):
    url, _, _ = panel
    table = read_table(url, "features.training_set", "symbol in ('IBM', 'IBMC')")
    ibm = table[table["symbol"] == "IBM"].reset_index(drop=True)
    ibmc = table[table["symbol"] == "IBMC"].reset_index(drop=True)
    assert len(ibm) == len(ibmc) > 400 and (ibm["ts"] == ibmc["ts"]).all()
    assert {"atr_14", "obv", "vpt", "ad", "stoch_k_14", "volume_z_20", "pivot"} <= set(NULL)
    assert ibmc[NULL].isna().all().all()  # not 0, not high = low = close garbage
    assert ibm[NULL].iloc[-1].notna().all()  # the OHLCV symbol has them
    a, b = ibm[SAME].astype(float).to_numpy(), ibmc[SAME].astype(float).to_numpy()
    assert (np.isnan(a) == np.isnan(b)).all()
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    # close-based features are defined (garch_vol too, once `qtis features build` fits GARCH)
    assert set(ibmc[SAME].columns[ibmc[SAME].iloc[-1].isna()]) == {SPEC.garch.name}


def test_online_engine_agrees_for_close_only_symbols(panel):
    url, _, _ = panel
    sql = read_table(url, "features.bar_features")
    engine = OnlineFeatureEngine.from_warehouse(url, warm_up=False)
    online = engine.replay(read_table(url, "market.bars"))
    assert (online["symbol"].to_numpy() == sql["symbol"].to_numpy()).all()
    for column in SPEC.columns():
        a, b = sql[column].astype(float).to_numpy(), online[column].to_numpy()
        assert (np.isnan(a) == np.isnan(b)).all(), column
        np.testing.assert_allclose(b[~np.isnan(a)], a[~np.isnan(a)], rtol=1e-9, err_msg=column)


def test_training_set_of_a_close_only_universe_loads_and_scales(panel):
    url, _, _ = panel
    data = load_training_data(url, ["IBMC", "MSFC"])
    null = [data.feature_names.index(c) for c in NULL]
    assert np.isnan(data.features[:, null]).all()
    scaled = FeatureScaler().fit(data.features).transform(data.features)
    assert np.isfinite(scaled).all() and (scaled[:, null] == 0).all()
