"""Any provider as a live source, by asking it again and again: every ``every`` seconds the
provider's recent window is read and the rows that are new, or differ from what the last poll
saw, are loaded through :class:`~warehouse.live.store.BarStore`. A failed poll (the vendor
unreachable, a bad answer) is retried with backoff; a failure to load is not the vendor's and
ends the run.

Yahoo (``yfinance``) is polled this way: it has no stream. The first poll and the first after a
failure load the whole window (the loader leaves unchanged rows alone), which also fills the
gap of the outage."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import pandas as pd

from warehouse.ingest import pieces
from warehouse.live.backoff import Backoff
from warehouse.live.store import BarStore, SourceStats
from warehouse.providers.base import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, RawBars, Source

log = logging.getLogger(__name__)


def _read(provider: Source, symbols: Sequence[str] | None, chunk_bytes: int) -> RawBars:
    """Every piece the provider hands over, as one batch."""
    parts = list(pieces(provider, symbols, chunk_bytes))
    originals = [p.frame if p.original is None else p.original for p in parts]
    return RawBars(
        frame=pd.concat([p.frame for p in parts], ignore_index=True),
        source=parts[0].source,
        origin=parts[0].origin,
        instruments=[i for p in parts for i in p.instruments],
        original=pd.concat(originals, ignore_index=True),
    )


def _fingerprints(frame: pd.DataFrame) -> pd.Series:
    """Each row's key (symbol, time as given) -> its values as given, as text."""
    columns = [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in frame.columns]
    text = frame[columns].astype(str)
    key = text["symbol"].str.upper() + "\x1f" + text["ts"]
    return pd.Series(text.agg("\x1f".join, axis=1).to_numpy(), index=key.to_numpy())


class PollingSource:
    """``provider`` polled every ``every`` seconds for ``symbols``."""

    def __init__(
        self,
        provider: Source,
        symbols: Sequence[str] | None,
        every: float,
        backoff: Backoff,
        chunk_bytes: int = 8 * 2**20,
    ) -> None:
        self.provider, self.symbols, self.every = provider, symbols, every
        self.backoff, self.chunk_bytes = backoff, chunk_bytes
        self.name = f"poll {provider.name}"
        self.stats = SourceStats()
        self._seen = pd.Series(dtype=str)
        self._registered = False

    def run(self, store: BarStore, stop: threading.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                raw = _read(self.provider, self.symbols, self.chunk_bytes)
            except Exception as exc:  # a vendor fails in its own ways; the next poll may work
                failures += 1
                self.stats.errors += 1
                self.stats.connected = False
                self._seen = pd.Series(dtype=str)  # after an outage, load the whole window
                delay = self.backoff.delay(failures)
                self.stats.retry_delays.append(delay)
                log.warning("%s: poll failed (%s: %s); retry in %.2f s", self.name,
                            type(exc).__name__, exc, delay)  # fmt: skip
                stop.wait(delay)
                continue
            failures = 0
            self.stats.connected = True
            self.poll_once(raw, store)
            stop.wait(self.every)

    def poll_once(self, raw: RawBars, store: BarStore) -> int:
        """Load the rows of ``raw`` that are new or changed since the last poll; their count."""
        prints = _fingerprints(raw.frame)
        fresh = ~prints.index.isin(self._seen.index) | (
            prints.to_numpy() != self._seen.reindex(prints.index).to_numpy()
        )
        keep = pd.Series(fresh, index=raw.frame.index)
        original = raw.frame if raw.original is None else raw.original
        changed = RawBars(
            raw.frame[keep].reset_index(drop=True),
            raw.source,
            raw.origin,
            # what the provider knows of the instruments is registered once, not every poll
            raw.instruments if not self._registered else [],
            original[keep].reset_index(drop=True),
        )
        store.append(changed)
        self._registered = True
        self.stats.polled += int(keep.sum())
        self._seen = prints[~prints.index.duplicated(keep="last")]
        return int(keep.sum())
