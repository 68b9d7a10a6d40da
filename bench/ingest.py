"""Ingestion throughput: the QTIS loader vs ``psql \\copy`` vs ``DataFrame.to_sql(method="multi")``.

All three write the same synthetic bars into an identical, freshly migrated ``market.bars`` (same
partitions, same primary key) on the same server in the same run, so only ratios are compared.
``to_sql`` is too slow for the full set and is timed on a slice; rows/s is what is compared.

    python -m bench.ingest [--symbols 1000] [--bars 1000] [--to-sql-rows 100000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from datetime import date
from pathlib import Path

import psycopg
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from bench._results import write
from warehouse import embedded
from warehouse.db import (
    database_url,
    drop_database,
    recreate_database,
    split_password,
    sqlalchemy_url,
    with_database,
)
from warehouse.loader import ensure_partitions, load_bars, months_of
from warehouse.providers import SyntheticMarket
from warehouse.schema import migrate
from warehouse.settings import get_settings
from warehouse.validation import validate_bars

COLUMNS = ["symbol", "ts", "open", "high", "low", "close", "volume", "source"]


def fresh_database(name: str, months: list[date]) -> str:
    url = recreate_database(name, get_settings())
    migrate(url)
    with psycopg.connect(url) as conn:  # same partitions for every contender, created untimed
        ensure_partitions(conn, months)
    return url


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--bars", type=int, default=1000)
    parser.add_argument("--to-sql-rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    console = Console()

    with console.status("generating and validating synthetic bars"):
        raw = SyntheticMarket(n_symbols=args.symbols, n_bars=args.bars, seed=1).generate()
        start = time.perf_counter()
        bars = validate_bars(raw).good
        validate_s = time.perf_counter() - start
    n = len(bars)
    months = months_of(bars["ts"])
    psql = embedded.psql_path()

    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "bars.csv"
        bars.assign(source="synthetic")[COLUMNS].to_csv(csv_path, index=False, header=False)
        loader_s, reload_s, update_s, psql_s = [], [], [], []
        changed = bars.assign(volume=bars["volume"] + 1)
        for i in range(args.repeats):
            with console.status(f"[{i + 1}/{args.repeats}] qtis loader, {n:,} rows"):
                url = fresh_database("bench_loader", months)
                with psycopg.connect(url) as conn:
                    loader_s.append(timed(lambda conn=conn: load_bars(conn, bars, "synthetic")))
                    # the same rows again: every key collides, so this is the ON CONFLICT path
                    reload_s.append(timed(lambda conn=conn: load_bars(conn, bars, "synthetic")))
                    # every value changed: ON CONFLICT rewrites each row
                    update_s.append(timed(lambda conn=conn: load_bars(conn, changed, "synthetic")))
            with console.status(f"[{i + 1}/{args.repeats}] psql \\copy, {n:,} rows"):
                url = fresh_database("bench_psql", months)
                bare, password = split_password(url)  # psql gets the password by environment
                copy = f"\\copy market.bars ({', '.join(COLUMNS)}) from '{csv_path}' csv"
                psql_s.append(
                    timed(
                        lambda bare=bare, copy=copy, env=os.environ | password: subprocess.run(
                            [str(psql), bare, "-q", "-c", copy], check=True, env=env
                        )
                    )
                )
        with psycopg.connect(url) as conn:
            assert conn.execute("select count(*) from market.bars").fetchone()[0] == n

    subset = bars.iloc[: args.to_sql_rows].assign(source="synthetic")[COLUMNS]
    with console.status(f"DataFrame.to_sql(method='multi'), {len(subset):,} rows"):
        url = fresh_database("bench_tosql", months)
        engine = sa.create_engine(sqlalchemy_url(url))
        to_sql_s = timed(
            lambda: subset.to_sql(
                "bars",
                engine,
                schema="market",
                if_exists="append",
                index=False,
                method="multi",
                chunksize=1000,
            )
        )
        engine.dispose()
    for name in ("bench_loader", "bench_psql", "bench_tosql"):
        drop_database(with_database(database_url(get_settings()), name))

    loader_rate = n / min(loader_s)
    psql_rate = n / min(psql_s)
    to_sql_rate = len(subset) / to_sql_s
    rows = [
        ("qtis loader, new bars (COPY -> staging -> append)", n, min(loader_s), loader_rate),
        ("qtis loader, same rows again (upsert, unchanged)", n, min(reload_s), n / min(reload_s)),
        ("qtis loader, all rows changed (upsert, rewritten)", n, min(update_s), n / min(update_s)),
        ("psql \\copy from CSV file", n, min(psql_s), psql_rate),
        ("pandas to_sql(method='multi')", len(subset), to_sql_s, to_sql_rate),
        ("validation only (pandera + OHLC rules)", n, validate_s, n / validate_s),
    ]
    table = Table("path", "rows", "seconds (best)", "rows/s", title="Ingestion throughput")
    for name, count, seconds, rate in rows:
        table.add_row(name, f"{count:,}", f"{seconds:.2f}", f"{rate:,.0f}")
    console.print(table)
    vs_psql, vs_to_sql = loader_rate / psql_rate, loader_rate / to_sql_rate
    console.print(
        f"loader / psql \\copy = [bold]{vs_psql:.2f}x[/] (target >= 0.7x: "
        f"{'met' if vs_psql >= 0.7 else 'NOT met'})"
    )
    console.print(
        f"loader / to_sql     = [bold]{vs_to_sql:.1f}x[/] (target >= 10x: "
        f"{'met' if vs_to_sql >= 10 else 'NOT met'})"
    )

    figures = {
        "params": vars(args),
        "results": [
            {"path": name, "rows": count, "seconds": seconds, "rows_per_s": rate}
            for name, count, seconds, rate in rows
        ],
        "runs_seconds": {
            "loader": loader_s,
            "loader_reload": reload_s,
            "loader_all_changed": update_s,
            "psql_copy": psql_s,
        },
        "ratios": {"loader_vs_psql_copy": vs_psql, "loader_vs_to_sql": vs_to_sql},
        "targets": {"loader_vs_psql_copy": 0.7, "loader_vs_to_sql": 10},
    }
    write("ingest", figures, console)


if __name__ == "__main__":
    main()
