"""The demo's point-in-time series part: statsmodels' US macro sample into market.series (before
the feature build, which then computes features.series_features), and a few series features of
one symbol at the bars where a release first became visible."""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.table import Table

from transforms.spec import default_spec
from warehouse.db import connect
from warehouse.providers.series_files import macro_sample
from warehouse.series import SeriesReport, load_series

SHOWN_CHANGES = 6


def ingest_sample(url: str) -> SeriesReport:
    return load_series(url, macro_sample())


def visible_changes(url: str, symbol: str) -> pd.DataFrame:
    """``symbol``'s bars at which some series feature changed: a release became known."""
    columns = default_spec().series.columns()
    with connect(url) as conn:
        cur = conn.execute(
            "select b.ts, b.close, f.* from market.bars b join features.series_features f"
            " using (ts) where b.symbol = %s order by b.ts",
            (symbol,),
        )
        frame = pd.DataFrame(cur.fetchall(), columns=[d.name for d in cur.description])
    frame = frame.loc[:, ~frame.columns.duplicated()]
    values = frame[columns].astype(float)
    changed = values.ne(values.shift()) & ~(values.isna() & values.shift().isna())
    frame["changed"] = changed.apply(lambda r: ", ".join(c for c in columns if r[c]), axis=1)
    return frame[changed.any(axis=1)].iloc[1:]  # the first row differs from nothing


def show_series(console: Console, url: str, report: SeriesReport, symbol: str) -> None:
    spec = default_spec()
    console.print(
        f"[bold]Series[/]: {len(report.series)} US macro series from {report.origin} "
        f"({report.rows:,} values; {report.inserted:,} new), released "
        f"{report.first_release:%Y-%m-%d} .. {report.last_release:%Y-%m-%d} at approximate "
        "release lags (docs/series.md); as of release time in features.series_features"
        + ("" if spec.series.train else " (not in the model inputs: series.train is false)")
    )
    changes = visible_changes(url, symbol).tail(SHOWN_CHANGES)
    if changes.empty:
        console.print(f"  no release falls within {symbol}'s bars")
        return
    table = Table("bar", "close", *spec.series.columns(), "newly visible",
                  title=f"{symbol}: bars where a release first became visible")  # fmt: skip
    for row in changes.itertuples(index=False):
        cells = [f"{getattr(row, c):.3f}" for c in spec.series.columns()]
        table.add_row(f"{row.ts:%Y-%m-%d}", f"{row.close:.2f}", *cells, row.changed)
    console.print(table)
