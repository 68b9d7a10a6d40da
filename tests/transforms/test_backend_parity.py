"""The feature store is the same on every backend: dbt builds features and labels from the
bundled sample on the embedded PostgreSQL 18 (monthly partitions) and on PostgreSQL 15 +
TimescaleDB (a hypertable), and the tables agree bit for bit. A model trained on one server
must see the numbers it would have seen on the other."""

from __future__ import annotations

import psycopg
import pytest

from tests.support.backends import Backends
from warehouse.schema import bars_storage

TABLES = ("features.bar_features", "features.labels", "features.training_set")


def exact_rows(url: str, table: str) -> list[tuple]:
    """Every row of ``table`` in key order, each float as its exact hex form (so -0.0, NaN and
    the last bit count)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(f"select * from {table} order by symbol, ts").fetchall()
    return [tuple(v.hex() if isinstance(v, float) else v for v in row) for row in rows]


def first_difference(a: list[tuple], b: list[tuple], columns: list[str]) -> str:
    for row_a, row_b in zip(a, b, strict=True):
        for name, x, y in zip(columns, row_a, row_b, strict=True):
            if x != y:
                return f"{row_a[0]} {row_a[1]} {name}: {x} != {y}"
    return "no difference"


@pytest.mark.parametrize("table", TABLES)
def test_features_and_labels_are_bit_identical_on_both_backends(
    both_backends: Backends, bundled, table: str
):
    embedded_url, _ = both_backends.built("embedded", bundled)
    timescale_url, _ = both_backends.built("timescale", bundled)
    assert (bars_storage(embedded_url), bars_storage(timescale_url)) == (
        "partitioned",
        "timescaledb",
    )
    ours, theirs = exact_rows(embedded_url, table), exact_rows(timescale_url, table)
    with psycopg.connect(embedded_url) as conn:
        columns = [d.name for d in conn.execute(f"select * from {table} limit 0").description]
    assert len(ours) == len(theirs) > 10_000
    assert ours == theirs, first_difference(ours, theirs, columns)
