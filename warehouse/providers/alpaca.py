"""Alpaca market data (alpaca-py): historical bars over REST, in the raw shape every provider
hands to validation, so that Alpaca's bars are judged, quarantined and loaded like any other.

The client asks for raw data (no pydantic models): a bar the vendor got wrong reaches
validation as sent and is quarantined with its reason, instead of failing in a model. The
streamed bars (:mod:`warehouse.live.alpaca`) use the same mapping. Prices are asked for with
``adjustment=all`` (split and dividend adjusted, as ``market.bars`` holds them)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from alpaca.common.exceptions import APIError
from alpaca.data.enums import Adjustment, DataFeed
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame
from requests import RequestException

from core.errors import ConfigError
from warehouse.providers.base import DataSourceError, RawBars
from warehouse.settings import AlpacaSettings

NAME = "alpaca"
TIMEFRAMES = {"1min": TimeFrame.Minute, "1d": TimeFrame.Day}
# Alpaca's one-letter bar fields -> the canonical raw columns
FIELDS = {
    "S": "symbol",
    "t": "ts",
    "o": "open",
    "h": "high",
    "l": "low",
    "c": "close",
    "v": "volume",
}


class VendorUnavailable(DataSourceError):
    """The vendor could not be reached or answered with a server error: worth retrying."""


def _when(value: Any) -> Any:
    """A streamed bar's time arrives as a msgpack Timestamp; REST sends RFC 3339 text."""
    return value.to_datetime() if hasattr(value, "to_datetime") else value


def alpaca_bars(messages: Iterable[Mapping[str, Any]], origin: str) -> RawBars:
    """Alpaca bar messages (``S``, ``t``, ``o`` ... as REST rows with ``S`` added, or as
    streamed) as raw bars; the messages themselves are what quarantine keeps."""
    original = pd.DataFrame([{**m, "t": _when(m.get("t"))} for m in messages])
    frame = pd.DataFrame(
        {
            column: original[key] if key in original.columns else pd.Series(None, dtype=object)
            for key, column in FIELDS.items()
        },
        index=original.index,
    )
    return RawBars(frame=frame, source=NAME, origin=origin, original=original)


def rest_client(settings: AlpacaSettings) -> StockHistoricalDataClient:
    """alpaca-py's data client on ``settings.data_url`` with the keys (held by the client in
    its request headers only)."""
    key, secret = settings.credentials()
    return StockHistoricalDataClient(key, secret, raw_data=True, url_override=settings.data_url)


class AlpacaProvider:
    """Historical bars of the given symbols from ``start`` (default: ``backfill_days`` ago) to
    ``end`` (default: now)."""

    name = NAME

    def __init__(
        self,
        settings: AlpacaSettings,
        frequency: str = "1d",
        start: datetime | None = None,
        end: datetime | None = None,
        backfill_days: float = 5.0,
    ) -> None:
        if frequency not in TIMEFRAMES:
            raise DataSourceError(f"alpaca: frequency must be one of {sorted(TIMEFRAMES)}")
        self.settings, self.frequency = settings, frequency
        self.start, self.end, self.backfill_days = start, end, backfill_days
        self._client: StockHistoricalDataClient | None = None

    def load(self, symbols: Sequence[str] | None = None) -> RawBars:
        if not symbols:
            raise DataSourceError("alpaca: pass --symbols; a vendor has no default universe")
        start = self.start or datetime.now(UTC) - timedelta(days=self.backfill_days)
        return self.since({s.upper(): start for s in symbols}, self.end, inclusive=True)

    def since(
        self,
        starts: Mapping[str, datetime],
        end: datetime | None = None,
        inclusive: bool = False,
    ) -> RawBars:
        """The bars of each symbol after its own start (at or after: ``inclusive``). Symbols
        whose starts fall on the same day share a request from the earliest of them (pages
        followed by alpaca-py): one far behind does not drag the others back with it."""
        groups: dict[object, list[str]] = {}
        for symbol, start in starts.items():
            groups.setdefault(pd.Timestamp(start).floor("D"), []).append(symbol)
        rows = []
        for symbols in groups.values():
            request = StockBarsRequest(
                symbol_or_symbols=sorted(symbols),
                timeframe=TIMEFRAMES[self.frequency],
                start=min(starts[s] for s in symbols),
                end=end,
                adjustment=Adjustment.ALL,
                feed=DataFeed(self.settings.data_feed),
            )
            rows += [
                {"S": symbol, **bar}
                for symbol, bars in self._get(request).items()
                if symbol in symbols
                for bar in bars
            ]
        raw = alpaca_bars(rows, f"alpaca {self.settings.data_url}")
        if raw.frame.empty:
            return raw
        ts = pd.to_datetime(raw.frame["ts"], utc=True, errors="coerce", format="ISO8601")
        first = pd.to_datetime(raw.frame["symbol"].map(starts), utc=True)
        keep = (ts >= first if inclusive else ts > first) | ts.isna()  # an unreadable time: judged
        return RawBars(
            raw.frame[keep].reset_index(drop=True),
            raw.source,
            raw.origin,
            original=raw.original[keep].reset_index(drop=True),
        )

    def _get(self, request: StockBarsRequest) -> dict[str, list[dict[str, Any]]]:
        if self._client is None:
            self._client = rest_client(self.settings)
        try:
            return self._client.get_stock_bars(request)
        except APIError as exc:
            if exc.status_code in (401, 403):
                raise ConfigError(
                    f"Alpaca refused the keys ({exc.status_code}) at {self.settings.data_url}: "
                    "check QTIS_ALPACA_KEY_ID / QTIS_ALPACA_SECRET_KEY"
                ) from None
            raise VendorUnavailable(f"alpaca: {exc.status_code}: {exc}") from exc
        except RequestException as exc:
            raise VendorUnavailable(f"alpaca: {self.settings.data_url}: {exc}") from exc
