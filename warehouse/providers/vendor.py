"""Optional online vendor adapter (Yahoo Finance via ``yfinance``; ``pip install qtis[vendor]``).

Not used by the demo or tests: this machine has no route to the vendor. It returns the same raw
frame as every other provider, so validation and loading are shared.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from warehouse.providers.base import DataSourceError, Instrument, RawBars


class YahooProvider:
    name = "yfinance"

    def __init__(
        self,
        start: str = "2010-01-01",
        end: str | None = None,
        interval: str = "1d",
        period: str | None = None,
    ):
        """``period`` (yfinance's: 1d, 5d, 1mo ...) asks for the recent window instead of
        ``start``/``end``: what a poll wants."""
        self.start, self.end, self.interval, self.period = start, end, interval, period

    def load(self, symbols: Sequence[str] | None = None) -> RawBars:
        if not symbols:
            raise DataSourceError("yfinance: pass --symbols; a vendor has no default universe")
        try:
            import yfinance  # deferred: an optional extra (qtis[vendor]), often not installed
        except ImportError as exc:
            raise DataSourceError("yfinance is not installed: pip install 'qtis[vendor]'") from exc
        frames = []
        for symbol in symbols:
            when = (
                {"period": self.period} if self.period else {"start": self.start, "end": self.end}
            )
            hist = yfinance.Ticker(symbol).history(
                **when, interval=self.interval, auto_adjust=False
            )
            if hist.empty:
                raise DataSourceError(f"yfinance: no data returned for {symbol}")
            hist = hist.reset_index().rename(columns=str.lower)
            frames.append(
                pd.DataFrame(
                    {
                        "symbol": symbol,
                        "ts": hist.iloc[:, 0],
                        "open": hist["open"],
                        "high": hist["high"],
                        "low": hist["low"],
                        "close": hist["close"],
                        "volume": hist["volume"],
                        # intraday answers may come without it: unadjusted as they are
                        "adj_close": hist.get("adj close", hist["close"]),
                    }
                )
            )
        return RawBars(
            frame=pd.concat(frames, ignore_index=True),
            source=self.name,
            origin="yfinance",
            instruments=[Instrument(s) for s in symbols],
        )
