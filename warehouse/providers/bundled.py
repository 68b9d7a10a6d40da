"""The bundled sample: daily bars of a few US large caps from ``bokeh-sampledata``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from bokeh_sampledata.stocks import data

from warehouse.providers.base import Instrument, RawBars, select_symbols

DEFAULT_SYMBOLS = ("AAPL", "IBM", "MSFT", "GOOG")

INSTRUMENTS = {
    "AAPL": Instrument(
        "AAPL",
        "Apple Inc.",
        "Information Technology",
        exchange_tz="America/New_York",
        listed_from=date(1980, 12, 12),
    ),
    "IBM": Instrument(
        "IBM",
        "International Business Machines",
        "Information Technology",
        exchange_tz="America/New_York",
        listed_from=date(1962, 1, 2),
    ),
    "MSFT": Instrument(
        "MSFT",
        "Microsoft Corp.",
        "Information Technology",
        exchange_tz="America/New_York",
        listed_from=date(1986, 3, 13),
    ),
    "GOOG": Instrument(
        "GOOG",
        "Alphabet Inc. (Google)",
        "Communication Services",
        exchange_tz="America/New_York",
        listed_from=date(2004, 8, 19),
    ),
    "FB": Instrument(
        "FB",
        "Meta Platforms (Facebook)",
        "Communication Services",
        exchange_tz="America/New_York",
        listed_from=date(2012, 5, 18),
    ),
}


class BundledProvider:
    """Sample daily bars; OHLC are back-adjusted later from ``adj_close``."""

    name = "bundled"

    def load(self, symbols: Sequence[str] | None = None) -> RawBars:
        frame = data.rename(columns={"ticker": "symbol", "date": "ts"})
        frame = select_symbols(frame, symbols or DEFAULT_SYMBOLS, "bundled sample")
        present = frame["symbol"].unique()
        return RawBars(
            frame=frame,
            source=self.name,
            origin="bokeh-sampledata stocks",
            instruments=[INSTRUMENTS[s] for s in present if s in INSTRUMENTS],
        )
