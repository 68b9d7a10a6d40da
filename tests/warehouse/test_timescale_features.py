"""A feature build that reads compressed chunks gives the features of the partitioned fallback."""

from __future__ import annotations

import pytest

from tests.support.db import table_rows
from tests.support.timescale import compress_old_chunks
from transforms.dbt_runner import build
from transforms.garch import update_garch
from warehouse.ingest import ingest
from warehouse.providers.base import FrameProvider
from warehouse.settings import WarehouseSettings


@pytest.mark.slow
def test_feature_build_on_compressed_chunks(tsdb_url, bundled, built_template):
    ingest(FrameProvider(bundled), tsdb_url, WarehouseSettings())
    assert compress_old_chunks(tsdb_url) >= 13
    update_garch(tsdb_url)
    report = build(tsdb_url, full_refresh=True)
    assert report.success, [(n.name, n.message) for n in report.failures()]
    fallback, _ = built_template
    for table in ("features.bar_features", "features.labels", "features.bars_weekly"):
        assert table_rows(tsdb_url, table) == table_rows(fallback, table), table
