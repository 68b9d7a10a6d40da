"""TimescaleDB storage of ``market.bars``: compression ratio, and a one-symbol one-year read on
compressed chunks against the same read before compression (target: no slower than 2x).

Each data set is ingested through the real path (which picks the chunk interval from the bar
frequency) into a fresh database on the server of ``QTIS_DATABASE_URL`` (PostgreSQL with
TimescaleDB: ``../shared/timescaledb``), read ``--reads`` times uncompressed, every chunk is
compressed (segment by symbol, order by time), and the same reads are repeated; the rows read
must be identical. Reads are warm (one untimed read first) in both states. Data sets: the bundled
sample (also with the 30-day chunks revision 0001 gave, for comparison), synthetic daily bars,
synthetic one-minute bars.

    python -m bench.timescale [--symbols 500] [--years 5] [--minute-symbols 20] [--days 20]
                              [--reads 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
import psycopg
from rich.console import Console
from rich.table import Table

from bench._results import write
from cli.render.format import size
from warehouse.db import drop_database, recreate_database
from warehouse.ingest import ingest
from warehouse.providers import BundledProvider, SyntheticMarket
from warehouse.providers.base import Source
from warehouse.reads import read_bars
from warehouse.schema import bars_storage, migrate
from warehouse.settings import WarehouseSettings, get_settings
from warehouse.storage import storage_report

DATABASE = "bench_timescale"


@dataclass(frozen=True)
class DataSet:
    name: str
    provider: Source
    symbol: str
    start: datetime
    end: datetime
    settings: WarehouseSettings


def _read_times(url: str, data: DataSet, reads: int) -> tuple[list[float], object]:
    window = {"symbols": [data.symbol], "start": data.start, "end": data.end}
    table = read_bars(url, **window)  # warm
    seconds = []
    for _ in range(reads):
        started = time.perf_counter()
        read_bars(url, **window)
        seconds.append(time.perf_counter() - started)
    return seconds, table


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
        plain, plain_rows = _read_times(url, data, reads)
    with console.status(f"{data.name}: compressing"), psycopg.connect(url) as conn:
        started = time.perf_counter()
        conn.execute("select compress_chunk(c) from show_chunks('market.bars') c")
        conn.commit()
        compress_s = time.perf_counter() - started
    after = storage_report(url, "timescaledb")
    with console.status(f"{data.name}: reading compressed"):
        packed, packed_rows = _read_times(url, data, reads)
    assert packed_rows.equals(plain_rows), f"{data.name}: compressed read differs"
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
        "read_rows": plain_rows.num_rows,
        "read_uncompressed_ms": _ms(plain),
        "read_compressed_ms": _ms(packed),
        "read_slowdown": statistics.median(packed) / statistics.median(plain),
    }


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
            pd.Timestamp("2017-01-01", tz=utc),
            pd.Timestamp("2018-01-01", tz=utc),
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
    for column in ("data", "bars", "chunks", "interval", "size", "compressed", "ratio"):
        table.add_column(column, justify="left" if column == "data" else "right")
    for column in ("rows read", "read ms plain", "read ms compressed", "slowdown"):
        table.add_column(column, justify="right")
    for name, r in results.items():
        table.add_row(
            name,
            f"{r['bars']:,}",
            str(r["chunks"]),
            f"{r['chunk_interval_days']:g} d",
            size(r["bytes_uncompressed"]),
            size(r["bytes_compressed"]),
            f"{r['compression_ratio']:.1f}x",
            f"{r['read_rows']:,}",
            f"{r['read_uncompressed_ms']['median']:.1f}",
            f"{r['read_compressed_ms']['median']:.1f}",
            f"{r['read_slowdown']:.2f}x",
        )
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--minute-symbols", type=int, default=20)
    parser.add_argument("--days", type=int, default=20)
    parser.add_argument("--reads", type=int, default=30)
    args = parser.parse_args()
    console = Console()
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
    slowest = max(r["read_slowdown"] for r in results.values())
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
