"""Ingest memory: peak RSS of an ingest of a large gzip CSV, which must not grow with the file.

Writes a gzip CSV of N rows (default 5,000,000: 500 symbols x 10,000 daily bars, with planted bad
rows: text in a price, a date in 2204, and duplicates of early rows at the end of the file, in
other chunks), then ingests it in a child process into a scratch database and reads the child's
peak RSS: ``VmHWM`` of ``/proc/self/status``, the high-water mark of the child's own memory.
(``getrusage``'s ``ru_maxrss``, of the child or of ``RUSAGE_CHILDREN``, would not do: Linux
carries the RSS of the image before ``exec`` into it, i.e. this parent's, which holds pandas and
the file generator.) Also measured in the same run: a child that only imports and connects (the
baseline), the first fifth of the file with the same chunk size (the peak must not grow with
the file), and that fifth read whole (chunk larger than the file: what reading whole costs).

The bound: peak RSS <= baseline + ``BOUND_FACTOR`` x ``QTIS_INGEST_CHUNK_BYTES``.

    python -m bench.ingest_memory [--rows 5000000] [--symbols 500] [--chunk-bytes 8388608]
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from bench._results import write
from warehouse.db import connect, database_url, drop_database, recreate_database, with_database
from warehouse.ingest import ingest
from warehouse.providers import FileProvider
from warehouse.schema import migrate
from warehouse.settings import WarehouseSettings, get_settings

MIB = 2**20
# A chunk of text becomes Python strings (each ~50 bytes of overhead), parsed numbers, masks, the
# COPY payload and the quarantine's records: measured 22x (16 MiB chunks) to 28x (4 MiB) the
# chunk's size above the baseline, with one chunk alive at a time. 32x leaves a margin.
BOUND_FACTOR = 32
BAD_EVERY, FAR_EVERY, DUPLICATES = 997, 4999, 500
HEADER = "symbol,date,open,high,low,close,volume\n"
SCRATCH = "bench_ingest_memory"


def write_file(path: Path, n_symbols: int, n_bars: int, seed: int = 1, block: int = 500) -> int:
    """A gzip CSV of n_symbols x n_bars daily bars, date by date; returns how many bad rows."""
    rng = np.random.default_rng(seed)
    symbols = np.array([f"S{i:04d}" for i in range(n_symbols)], dtype=object)
    days = pd.bdate_range("1985-01-02", periods=n_bars).strftime("%Y-%m-%d").to_numpy(object)
    price, planted, first = rng.uniform(10, 500, n_symbols), 0, None
    with gzip.open(path, "wt", compresslevel=1, newline="") as out:
        out.write(HEADER)
        for start in range(0, n_bars, block):
            d = days[start : start + block]
            close = price * np.exp(np.cumsum(rng.normal(0, 0.01, (len(d), n_symbols)), axis=0))
            open_ = np.vstack([price, close[:-1]])
            price = close[-1]
            frame = pd.DataFrame(
                {
                    "symbol": np.tile(symbols, len(d)),
                    "date": np.repeat(d, n_symbols),
                    "open": open_.ravel().round(4).astype(str),
                    "high": (np.maximum(open_, close) * 1.004).ravel().round(4).astype(str),
                    "low": (np.minimum(open_, close) * 0.996).ravel().round(4).astype(str),
                    "close": close.ravel().round(4).astype(str),
                    "volume": rng.integers(1_000, 1_000_000, close.size).astype(str),
                }
            )
            row = np.arange(start * n_symbols, start * n_symbols + len(frame))
            bad, far = row % BAD_EVERY == 0, (row % FAR_EVERY == 1) & (row % BAD_EVERY != 0)
            frame.loc[bad, "open"] = "n/a"
            frame.loc[far, "date"] = "2204-01-02"
            planted += int(bad.sum() + far.sum())
            first = frame.iloc[1 : 1 + DUPLICATES] if first is None else first
            frame.to_csv(out, header=False, index=False)
        clean = first[(first["open"] != "n/a") & (first["date"] != "2204-01-02")]
        clean.to_csv(out, header=False, index=False)  # duplicates, chunks away from the first
    return planted + len(clean)


def child(url: str, path: str | None, chunk_bytes: int) -> None:
    """Run in the measured process: ingest ``path`` (or, without one, only connect) and print
    the outcome and this process's peak RSS as one JSON line."""
    started = time.perf_counter()
    outcome: dict[str, object] = {}
    if path is None:
        with connect(url) as conn:
            conn.execute("select 1")
    else:
        settings = WarehouseSettings(ingest_chunk_bytes=chunk_bytes)
        report = ingest(FileProvider(path, "csv"), url, settings)
        outcome = {"rows_in": report.rows_in, "loaded": report.loaded}
        outcome |= {"quarantined": report.quarantined, "reasons": report.quarantine_reasons}
    outcome["seconds"] = time.perf_counter() - started
    outcome["peak_rss_mib"] = peak_rss_kib() / 1024
    print(json.dumps(outcome))


def peak_rss_kib() -> int:
    """This process's peak resident set since it started (Linux: ``VmHWM``)."""
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")))


def measure(url: str, path: Path | None, chunk_bytes: int) -> dict:
    """Run :func:`child` in a fresh interpreter on a fresh database; its outcome and peak RSS."""
    command = [sys.executable, "-m", "bench.ingest_memory", "--child", url, str(chunk_bytes)]
    done = subprocess.run(
        [*command, *([str(path)] if path else [])], capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise RuntimeError(f"the measured ingest failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def text_size(path: Path) -> int:
    """The decompressed size of a gzip file under 4 GiB (its trailer's ISIZE field)."""
    with path.open("rb") as f:
        f.seek(-4, 2)
        return int.from_bytes(f.read(4), "little")


def scratch() -> str:
    url = recreate_database(SCRATCH, get_settings())
    migrate(url)
    return url


def run(console: Console, args: argparse.Namespace, tmp: Path) -> dict:
    n_bars = args.rows // args.symbols
    full, fifth = tmp / "bars.csv.gz", tmp / "fifth.csv.gz"
    with console.status(f"writing {n_bars * args.symbols:,} rows (gzip)"):
        planted = write_file(full, args.symbols, n_bars)
        planted_fifth = write_file(fifth, args.symbols, n_bars // 5)
    runs: dict[str, dict] = {}
    plan = [
        ("baseline", None, args.chunk_bytes),
        ("fifth, chunked", fifth, args.chunk_bytes),
        ("fifth, whole", fifth, text_size(fifth) + 1),
        ("full, chunked", full, args.chunk_bytes),
    ]
    for name, path, chunk in plan:
        with console.status(f"{name}: ingesting in a child process"):
            runs[name] = measure(scratch(), path, chunk) | {"chunk_bytes": chunk}
            if path is not None:
                runs[name] |= {"file_mib": path.stat().st_size / MIB}
    runs["fifth, chunked"]["planted_bad"] = planted_fifth
    runs["fifth, whole"]["planted_bad"] = planted_fifth
    runs["full, chunked"]["planted_bad"] = planted
    return runs


def render(console: Console, runs: dict[str, dict], chunk_bytes: int) -> dict:
    base = runs["baseline"]["peak_rss_mib"]
    bound = base + BOUND_FACTOR * chunk_bytes / MIB
    table = Table(
        "run", "rows", "gzip MiB", "quarantined (planted)", "s", "peak RSS MiB",
        "MiB per M rows", "above base", title="Ingest memory (peak RSS of the child process)",
    )  # fmt: skip
    for name, r in runs.items():
        rows = r.get("rows_in", 0)
        per_million = f"{r['peak_rss_mib'] / (rows / 1e6):,.0f}" if rows else ""
        table.add_row(
            name,
            f"{rows:,}" if rows else "",
            f"{r['file_mib']:,.1f}" if "file_mib" in r else "",
            f"{r['quarantined']:,} ({r['planted_bad']:,})" if rows else "",
            f"{r['seconds']:.1f}",
            f"{r['peak_rss_mib']:,.0f}",
            per_million,
            f"{r['peak_rss_mib'] - base:,.0f}",
        )
    console.print(table)
    full = runs["full, chunked"]
    met = full["peak_rss_mib"] <= bound and full["quarantined"] == full["planted_bad"]
    console.print(
        f"bound: baseline {base:,.0f} MiB + {BOUND_FACTOR} x QTIS_INGEST_CHUNK_BYTES "
        f"({chunk_bytes / MIB:g} MiB) = [bold]{bound:,.0f} MiB[/]; full file: "
        f"{full['peak_rss_mib']:,.0f} MiB, {full['quarantined']:,} of {full['planted_bad']:,} "
        f"planted bad rows quarantined: {'met' if met else 'NOT met'}"
    )
    return {"bound_mib": bound, "bound_factor": BOUND_FACTOR, "met": met}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument(
        "--chunk-bytes",
        type=int,
        default=WarehouseSettings.model_fields["ingest_chunk_bytes"].default,
    )
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        url, chunk, *path = args.child
        child(url, path[0] if path else None, int(chunk))
        return
    console = Console()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        runs = run(console, args, Path(tmp))
    drop_database(with_database(database_url(get_settings()), SCRATCH))
    verdict = render(console, runs, args.chunk_bytes)
    figures = {"params": vars(args) | {"child": None}, "runs": runs, **verdict}
    write("ingest_memory", figures | {"total_s": time.perf_counter() - started}, console)


if __name__ == "__main__":
    main()
