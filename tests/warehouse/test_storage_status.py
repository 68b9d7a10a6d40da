"""`qtis db status` says how market.bars is stored: chunks, compression ratio and rollup
freshness on TimescaleDB; partitions on the fallback."""

from __future__ import annotations

import re

from tests.support.cli import qtis
from tests.support.timescale import compress_old_chunks
from warehouse.ingest import ingest
from warehouse.providers.base import FrameProvider
from warehouse.settings import WarehouseSettings


def test_status_on_timescaledb(tsdb_url, bundled, tmp_path):
    ingest(FrameProvider(bundled), tsdb_url, WarehouseSettings())
    compressed = compress_old_chunks(tsdb_url)
    env = {"QTIS_DATABASE_URL": tsdb_url, "QTIS_HOME": str(tmp_path / ".qtis")}
    assert qtis("db", "up", env=env).returncode == 0  # applies the policies of the settings
    out = qtis("db", "status", env=env)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "market.bars storage: timescaledb" in text
    assert re.search(rf"chunks: \d+ \({compressed} compressed\), interval 365 days", text), text
    ratio = re.search(r"compression: [\d.]+ [kMG]?B -> [\d.]+ [kMG]?B \((\d+\.\d)x\)", text)
    assert ratio and float(ratio[1]) > 1.5, text
    assert "policy: compress chunks older than 30 days" in text
    for rollup in ("bars_daily", "bars_weekly"):
        line = re.search(rf"{rollup} \(America/New_York\): materialized up to (\S+)", text)
        assert line, text


def test_status_on_the_fallback_lists_partitions(db_url, bundled, tmp_path):
    ingest(FrameProvider(bundled), db_url, WarehouseSettings())
    env = {"QTIS_DATABASE_URL": db_url, "QTIS_HOME": str(tmp_path / ".qtis")}
    out = qtis("db", "status", env=env)
    assert out.returncode == 0, out.stderr
    assert "market.bars storage: partitioned" in out.stdout
    # 2000-03 .. 2013-03: one partition for each month with bars
    assert re.search(r"partitions: 157 monthly, 2000-03 \.\. 2013-03", out.stdout), out.stdout
