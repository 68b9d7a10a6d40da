"""Price panels: a wide table (a date column, one column of closes per symbol) as long bars.

Research data usually comes this way (skfolio's S&P 500 set, a Bloomberg or FRED export): one
price per symbol and day, the symbols as headers. Each non-empty cell becomes one bar with only a
close; an empty cell is a day the symbol has no price (before its listing, a holiday of its
market) and is no bar at all. A cell that is not a positive number is a bad row like any other:
validation quarantines it, and the quarantine keeps the date, the header and the cell.
"""

from __future__ import annotations

from typing import Literal

import pandas as pd

from warehouse.providers.base import DataSourceError

Layout = Literal["auto", "long", "wide"]
LAYOUTS: tuple[Layout, ...] = ("auto", "long", "wide")


def wide_to_long(
    frame: pd.DataFrame, ts_header: str, origin: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(canonical rows ``symbol, ts, close``, the cells as the file wrote them) of a wide
    ``frame`` whose ``ts_header`` column holds the dates and every other column one symbol."""
    symbols = [c for c in frame.columns if c != ts_header]
    if not symbols:
        raise DataSourceError(
            f"{origin}: a wide file needs one column per symbol beside {ts_header!r}; found none"
        )
    blank = [c for c in symbols if not str(c).strip() or str(c).startswith("Unnamed:")]
    if blank:
        raise DataSourceError(
            f"{origin}: wide layout: column(s) without a symbol name in the header "
            f"({', '.join(map(repr, blank))}); name them or drop them"
        )
    cells = frame.melt(id_vars=[ts_header], value_vars=symbols, var_name="symbol",
                       value_name="close")  # fmt: skip
    cells = cells[cells["close"].notna()].reset_index(drop=True)
    cells["symbol"] = cells["symbol"].astype(str)
    canonical = pd.DataFrame(
        {"symbol": cells["symbol"], "ts": cells[ts_header], "close": cells["close"]}
    )
    return canonical, cells
