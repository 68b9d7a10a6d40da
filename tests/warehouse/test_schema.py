import psycopg
import pytest
import sqlalchemy as sa

from warehouse.db import sqlalchemy_url
from warehouse.schema import (
    bars_storage,
    current_revision,
    head_revision,
    migrate,
    timescaledb_available,
)

CATALOG = """
select table_schema, table_name, column_name, data_type, is_nullable, column_default
from information_schema.columns
where table_schema in ('market', 'features', 'mlops', 'runtime')
order by 1, 2, 3
"""
INDEXES = (
    "select schemaname, tablename, indexname, indexdef from pg_indexes "
    "where schemaname = 'market' order by 3"
)


def snapshot(url: str) -> tuple[list, list, str | None]:
    with psycopg.connect(url) as conn:
        return (
            conn.execute(CATALOG).fetchall(),
            conn.execute(INDEXES).fetchall(),
            current_revision(url),
        )


@pytest.mark.storage
def test_migrations_twice_change_nothing(empty_db_url):
    assert current_revision(empty_db_url) is None
    assert migrate(empty_db_url) == (None, head_revision())
    first = snapshot(empty_db_url)
    assert migrate(empty_db_url) == (head_revision(), head_revision())
    assert snapshot(empty_db_url) == first
    tables = {(s, t) for s, t, *_ in first[0]}
    for expected in [
        ("market", "bars"),
        ("market", "bars_quarantine"),
        ("market", "instruments"),
        ("market", "bar_flags"),
        ("market", "ingest_runs"),
    ]:
        assert expected in tables


@pytest.mark.storage
def test_quarantine_and_instrument_columns(db_url):
    with psycopg.connect(db_url) as conn:

        def cols(table: str) -> list[str]:
            query = (
                "select column_name from information_schema.columns where table_schema='market' "
                "and table_name=%s order by ordinal_position"
            )
            return [r[0] for r in conn.execute(query, (table,)).fetchall()]

        assert cols("bars_quarantine")[1:] == [
            "symbol",
            "ts",
            "raw",
            "reason",
            "source",
            "ingested_at",
        ]
        for c in [
            "symbol",
            "name",
            "sector",
            "asset_class",
            "currency",
            "tick_size",
            "lot_size",
            "multiplier",
            "listed_from",
            "delisted_at",
        ]:
            assert c in cols("instruments")


def test_native_partitioning_when_timescaledb_is_absent(db_url):
    engine = sa.create_engine(sqlalchemy_url(db_url), poolclass=sa.NullPool)
    with engine.connect() as conn:
        assert not timescaledb_available(conn)  # the embedded wheel ships no TimescaleDB
    assert bars_storage(db_url) == "partitioned"
    with psycopg.connect(db_url) as conn:
        strategy = conn.execute(
            "select partstrat from pg_partitioned_table where partrelid = 'market.bars'::regclass"
        ).fetchone()[0]
        assert strategy == "r"
        brin = conn.execute(
            "select indexdef from pg_indexes where schemaname='market' and tablename='bars' "
            "and indexdef ilike '%using brin (ts)%'"
        ).fetchall()
        assert brin
        months = "array['2020-01-31', '2020-03-01', '2020-03-02']::date[]"
        created = conn.execute(f"select market.ensure_bars_partitions({months})").fetchone()[0]
        again = conn.execute(f"select market.ensure_bars_partitions({months})").fetchone()[0]
        assert (created, again) == (2, 0)  # the months that have rows, not those in between
        parts = conn.execute(
            "select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid "
            "where i.inhparent = 'market.bars'::regclass order by 1"
        ).fetchall()
        assert [p[0] for p in parts] == ["bars_202001", "bars_202003"]


@pytest.mark.storage
def test_bars_are_a_hypertable_on_timescaledb_and_partitioned_on_the_embedded_server(
    db_url, backend
):
    expected = {"embedded": "partitioned", "timescale": "timescaledb"}[backend]
    assert bars_storage(db_url) == expected
    if backend == "timescale":
        with psycopg.connect(db_url) as conn:
            dimension = conn.execute(
                "select column_name from timescaledb_information.dimensions "
                "where hypertable_schema = 'market' and hypertable_name = 'bars'"
            ).fetchall()
            made = conn.execute(
                "select market.ensure_bars_partitions(array['2020-01-31']::date[])"
            ).fetchone()[0]
        assert (dimension, made) == ([("ts",)], 0)  # TimescaleDB makes its chunks itself


@pytest.mark.storage
def test_missing_schema_is_reported(empty_db_url):
    assert bars_storage(empty_db_url) == "missing"
