"""TimescaleDB storage of ``market.bars``: compression ratio, and a one-symbol one-year read on
compressed chunks against the same read before compression (target: no slower than 2x).

Each data set is ingested through the real path (which picks the chunk interval from the bar
frequency) into a fresh database on the server of ``QTIS_DATABASE_URL`` (PostgreSQL with
TimescaleDB: ``../shared/timescaledb``), read ``--reads`` times uncompressed, every chunk is
compressed (segment by symbol, order by time), and the same reads are repeated; the rows read
must be identical. Each read is timed two ways: the query on a connection held open (what the
storage costs; the target applies to it) and ``read_bars`` as a caller runs it (a connection
each time, which costs more than the query here). Reads are warm (five untimed reads first)
in both states. Data sets: the bundled sample (also with the 30-day chunks revision 0001 gave, for
comparison), synthetic daily bars, synthetic one-minute bars (a read of all of one symbol's).

    python -m bench.timescale [--symbols 500] [--years 5] [--minute-symbols 20] [--days 20]
                              [--reads 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import adbc_driver_postgresql.dbapi as adbc
import pandas as pd
import psycopg
import pyarrow as pa
from rich.console import Console
from rich.table import Table

from bench._results import write
from cli.render.format import size
from warehouse.db import drop_database, recreate_database
from warehouse.ingest import ingest
from warehouse.providers import BundledProvider, SyntheticMarket
from warehouse.providers.base import Source
from warehouse.reads import bars_query, read_bars
from warehouse.schema import bars_storage, migrate
from warehouse.settings import WarehouseSettings, get_settings
from warehouse.storage import storage_report

DATABASE = "bench_timescale"
WARM = 5  # untimed reads first: the session's catalog caches fill (more relations when compressed)


@dataclass(frozen=True)
class DataSet:
    name: str
    provider: Source
    symbol: str
    start: datetime
    end: datetime
    settings: WarehouseSettings


def _timed(read: Callable[[], pa.Table], reads: int) -> tuple[list[float], pa.Table]:
    for _ in range(WARM):
        table = read()
    seconds = []
    for _ in range(reads):
        started = time.perf_counter()
        read()
        seconds.append(time.perf_counter() - started)
    return seconds, table


def _reads(url: str, data: DataSet, reads: int) -> dict[str, tuple[list[float], pa.Table]]:
    """The read as a caller does it (``read_bars``: a connection each time) and the same query
    on a connection held open (what storage costs, without the connection's)."""
    window = {"symbols": [data.symbol], "start": data.start, "end": data.end}
    query = bars_query(**window).as_string(None)
    with adbc.connect(url) as conn, conn.cursor() as cur:

        def held() -> pa.Table:
            cur.execute(query)
            return cur.fetch_arrow_table()

        return {
            "read_bars": _timed(lambda: read_bars(url, **window), reads),
            "query": _timed(held, reads),
        }


def _ms(seconds: list[float]) -> dict[str, float]:
    return {
        "median": 1000 * statistics.median(seconds),
        "p90": 1000 * statistics.quantiles(seconds, n=10)[8],
    }


def measure(data: DataSet, reads: int, console: Console) -> dict:
    url = recreate_database(DATABASE, data.settings)
    migrate(url)
    with console.status(f"{data.name}: ingesting"):
        report = ingest(data.provider, url, data.settings)
    before = storage_report(url, "timescaledb")
    with console.status(f"{data.name}: reading uncompressed"):
        plain = _reads(url, data, reads)
    with console.status(f"{data.name}: compressing"), psycopg.connect(url) as conn:
        started = time.perf_counter()
        conn.execute("select compress_chunk(c) from show_chunks('market.bars') c")
        conn.commit()
        compress_s = time.perf_counter() - started
    after = storage_report(url, "timescaledb")
    with console.status(f"{data.name}: reading compressed"):
        packed = _reads(url, data, reads)
    for way in plain:
        assert packed[way][1].equals(plain[way][1]), f"{data.name}: compressed {way} differs"
    drop_database(url)
    return {
        "bars": report.loaded,
        "symbols": len(report.symbols),
        "chunk_interval_days": before.chunk_interval / timedelta(days=1),
        "chunks": before.chunks,
        "bytes_uncompressed": before.total_bytes,
        "bytes_compressed": after.total_bytes,
        "compression_ratio": after.compression_ratio,
        "compress_s": compress_s,
        "read": {"symbol": data.symbol, "start": data.start, "end": data.end},
        "read_rows": plain["query"][1].num_rows,
        **{
            f"{way}_ms": {"uncompressed": _ms(plain[way][0]), "compressed": _ms(packed[way][0])}
            for way in plain
        },
        **{
            f"{way}_slowdown": statistics.median(packed[way][0]) / statistics.median(plain[way][0])
            for way in plain
        },
    }


def _middle_year(market: SyntheticMarket) -> tuple[pd.Timestamp, pd.Timestamp]:
    """A calendar year in the middle of the synthetic bars (the first if there is one only)."""
    stamps = market.timestamps()
    year = stamps[len(stamps) // 2].year
    if pd.Timestamp(year=year, month=1, day=1, tz="UTC") < stamps[0]:
        year = stamps[0].year
    return pd.Timestamp(year=year, month=1, day=1, tz="UTC"), pd.Timestamp(
        year=year + 1, month=1, day=1, tz="UTC"
    )


def data_sets(args: argparse.Namespace, settings: WarehouseSettings) -> list[DataSet]:
    utc = "UTC"
    ibm = ("IBM", pd.Timestamp("2005-01-01", tz=utc), pd.Timestamp("2006-01-01", tz=utc))
    bundled = BundledProvider()
    daily = SyntheticMarket(n_symbols=args.symbols, n_bars=252 * args.years, freq="1D", seed=9)
    minute = SyntheticMarket(
        n_symbols=args.minute_symbols, n_bars=390 * args.days, freq="1min", seed=9
    )
    first_minute = pd.Timestamp(minute.start, tz=utc)
    monthly = settings.model_copy(update={"tsdb_chunk_days": 30.0})  # as revision 0001 made it
    return [
        DataSet("bundled", bundled, *ibm, settings),
        DataSet("bundled, 30-day chunks", bundled, *ibm, monthly),
        DataSet(
            f"synthetic daily {args.symbols} x {args.years}y",
            daily,
            daily.symbols[0],
            *_middle_year(daily),
            settings,
        ),
        DataSet(
            f"synthetic 1-minute {args.minute_symbols} x {args.days}d",
            minute,
            minute.symbols[0],
            first_minute,
            first_minute + timedelta(days=366),  # all of it: less than a year
            settings,
        ),
    ]


def render(console: Console, results: dict[str, dict]) -> None:
    table = Table(title="market.bars on TimescaleDB: compression and a one-symbol one-year read")
    columns = ("data", "bars", "chunks", "interval", "size", "compressed", "ratio", "rows read")
    columns += ("query ms", "compressed", "slowdown", "read_bars ms", "compressed", "slowdown")
    for column in columns:
        table.add_column(column, justify="left" if column == "data" else "right")
    for name, r in results.items():
        row = [name, f"{r['bars']:,}", str(r["chunks"]), f"{r['chunk_interval_days']:g} d"]
        row += [size(r["bytes_uncompressed"]), size(r["bytes_compressed"])]
        row += [f"{r['compression_ratio']:.1f}x", f"{r['read_rows']:,}"]
        for way in ("query", "read_bars"):
            ms = r[f"{way}_ms"]
            row += [f"{ms['uncompressed']['median']:.1f}", f"{ms['compressed']['median']:.1f}"]
            row.append(f"{r[f'{way}_slowdown']:.2f}x")
        table.add_row(*row)
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--minute-symbols", type=int, default=20)
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--reads", type=int, default=50)
    args = parser.parse_args()
    console = Console(width=180)
    settings = get_settings()
    if settings.uses_embedded:
        sys.exit("set QTIS_DATABASE_URL to a PostgreSQL server with TimescaleDB")
    probe = recreate_database(DATABASE, settings)
    migrate(probe)
    if bars_storage(probe) != "timescaledb":
        sys.exit("the server of QTIS_DATABASE_URL has no TimescaleDB (../shared/timescaledb)")
    started = time.perf_counter()
    results = {d.name: measure(d, args.reads, console) for d in data_sets(args, settings)}
    render(console, results)
    slowest = max(r["query_slowdown"] for r in results.values())
    figures = {
        "results": results,
        "target_read_slowdown": 2.0,
        "worst_read_slowdown": slowest,
        "target_met": slowest <= 2.0,
        "reads": args.reads,
        "total_s": time.perf_counter() - started,
    }
    write("timescale", figures, console)


if __name__ == "__main__":
    main()
