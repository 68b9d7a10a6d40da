"""The Dagster layer: real in-process materializations against the test database."""

import psycopg
from dagster import DagsterInstance, materialize

from orchestration.assets.ingest import raw_bars, raw_bars_checks
from orchestration.definitions import daily_schedule, defs
from orchestration.resources import WarehouseResource


def run(url, config, instance=None):
    return materialize(
        [raw_bars, *raw_bars_checks],
        resources={"warehouse": WarehouseResource(database_url=url)},
        run_config={"ops": {"raw_bars": {"config": config}}},
        instance=instance or DagsterInstance.ephemeral(),
    )


def test_raw_bars_materializes_with_checks(db_url):
    result = run(db_url, {"source": "bundled", "symbols": ["MSFT", "IBM"]})
    assert result.success
    meta = result.asset_materializations_for_node("raw_bars")[0].metadata
    assert meta["loaded"].value == 6540 and meta["quarantined"].value == 0
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["raw_bars_row_count"].passed
    assert checks["raw_bars_quarantine_ratio"].passed
    assert not checks["raw_bars_freshness"].passed  # the sample ends in 2013
    assert checks["raw_bars_freshness"].severity.value == "WARN"
    with psycopg.connect(db_url) as conn:
        assert conn.execute("select count(*) from market.bars").fetchone()[0] == 6540


def test_quarantine_ratio_check_fails_on_mostly_bad_data(db_url, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        "symbol,date,open,high,low,close,volume\n"
        "A,2020-01-02,1,2,0.5,1.5,10\nA,2020-01-03,1,0.1,0.5,1.5,10\n"
        "A,2020-01-06,x,2,0.5,1.5,10\n"
    )
    result = run(db_url, {"source": "csv", "path": str(path)})
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert not checks["raw_bars_quarantine_ratio"].passed
    assert checks["raw_bars_quarantine_ratio"].metadata["ratio"].value == 2 / 3


def test_synthetic_config_and_definitions_load(db_url):
    result = run(db_url, {"source": "synthetic", "n_symbols": 4, "n_bars": 100, "freq": "1h"})
    assert result.success
    assert result.asset_materializations_for_node("raw_bars")[0].metadata["loaded"].value == 400
    assert defs.resolve_job_def("ingest_job") is not None
    assert daily_schedule.cron_schedule == "30 22 * * 1-5"
    raw_checks = [
        k for k in defs.resolve_asset_graph().asset_check_keys if k.asset_key.path == ["raw_bars"]
    ]
    assert len(raw_checks) == 4  # the three above and raw_bars_intraday_freshness
