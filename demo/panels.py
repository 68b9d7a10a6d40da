"""The demo's close-only step: a wide price panel (a few of skfolio's S&P 500 names, adjusted
closes only) ingested beside one OHLCV symbol of the bundled sample, and which features are
null for the panel's symbols.

It runs in a scratch database of its own (``qtis_demo_panels``, dropped and made again), so the
demo's universe, models and trading are untouched; the features come from the online engine,
the twin of the dbt models (tests/transforms/test_online.py proves they agree column by column),
so the step takes seconds rather than a feature build.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

from transforms.online import OnlineFeatureEngine
from transforms.spec import INPUT_COLUMNS
from warehouse.db import recreate_database
from warehouse.ingest import ingest
from warehouse.providers import BundledProvider, FileProvider
from warehouse.quality import missing_inputs
from warehouse.reads import read_bars
from warehouse.schema import migrate
from warehouse.settings import WarehouseSettings

DATABASE = "qtis_demo_panels"
PANEL = ("JPM", "KO", "XOM")  # skfolio's S&P 500 set; none of them in the bundled sample
OHLCV = "IBM"
SPAN = ("2010-01-01", "2013-03-01")  # inside the bundled sample's history
SHOWN = ("rsi_14", "hv_20", "atr_14", "obv", "stoch_k_14")


def write_panel(
    folder: Path, span: tuple[str, str] = SPAN, symbols: tuple[str, ...] | None = PANEL
) -> Path:
    """skfolio's S&P 500 adjusted closes over ``span`` (all 20 symbols when ``symbols`` is None)
    as a wide CSV: a ``Date`` column and one column of closes per symbol."""
    from skfolio.datasets import load_sp500_dataset  # deferred: only the panel steps read it

    prices = load_sp500_dataset().loc[span[0] : span[1]]
    prices = prices if symbols is None else prices[list(symbols)]
    path = folder / "sp500_panel.csv"
    prices.to_csv(path, index_label="Date")
    return path


def show_panels(console: Console, settings: WarehouseSettings) -> None:
    """Ingest the panel and the OHLCV symbol into the scratch database; print, per symbol,
    the inputs it lacks, how many features its last bar has, and a few of them."""
    try:
        url = recreate_database(DATABASE, settings)
    except psycopg.Error as exc:  # e.g. no CREATEDB right on a managed server
        console.print(f"[yellow]price panels skipped[/]: no scratch database {DATABASE} ({exc})")
        return
    migrate(url)
    with tempfile.TemporaryDirectory() as folder:
        panel = ingest(FileProvider(write_panel(Path(folder)), "csv"), url, settings)
    ingest(BundledProvider(), url, settings, symbols=[OHLCV])
    engine = OnlineFeatureEngine.from_warehouse(url, warm_up=False)
    features = engine.replay(read_bars(url, engine.symbols).to_pandas())
    last = features.groupby("symbol").tail(1).set_index("symbol")[engine.columns]
    gaps = {g.symbol: g for g in missing_inputs(url)}
    letter = {column: key for key, column in INPUT_COLUMNS.items()}
    table = Table("symbol", "source", "lacks", "features defined", *SHOWN,
                  title="close-only panel beside OHLCV (last bar)")  # fmt: skip
    for symbol, row in last.iterrows():
        gap = gaps.get(str(symbol))
        table.add_row(
            str(symbol),
            "wide CSV (close)" if gap else "bundled OHLCV",
            ", ".join(letter[c] for c in gap.lacks_all) if gap else "-",
            f"{int(row.notna().sum())} of {len(row)}",
            *(f"{row[c]:.4g}" for c in SHOWN),
        )
    console.print(table)
    null = engine.spec.columns_needing("hlv")
    console.print(
        f"[bold]Price panels[/]: {panel.loaded:,} closes of {', '.join(PANEL)} from a wide CSV "
        f"({panel.quarantined} quarantined) in database {DATABASE}; the {len(null)} features "
        f"that read high, low or volume are null for them ({', '.join(null)}), the others as "
        "for OHLCV symbols (garch_vol needs `qtis features build`). See `qtis features list`."
    )
