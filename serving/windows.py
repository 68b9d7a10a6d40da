"""Feature windows read from the warehouse for requests that name symbols instead of sending
windows: the last ``bars`` rows of ``features.bar_features`` up to an as-of time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
from psycopg import sql

from warehouse.db import connect


class WindowSource:
    def __init__(self, url: str, features: Sequence[str]) -> None:
        self.url, self.features = url, tuple(features)
        self._known: set[str] = set()

    def _columns(self) -> sql.Composable:
        return sql.SQL(", ").join(
            sql.SQL("{}::float8").format(sql.Identifier(c)) for c in self.features
        )

    def _recent(
        self, bars: int, symbols: Sequence[str] | None = None, as_of: datetime | None = None
    ) -> list[tuple]:
        """(symbol, ts, *features) of each symbol's last ``bars`` rows, by symbol and time: of
        ``symbols`` through ``as_of`` (default: the latest) when given, else of every symbol."""
        where, params = sql.SQL(""), ()
        if symbols is not None:
            where = sql.SQL(" where symbol = any(%s) and ts <= %s")
            params = (list(set(symbols)), as_of or datetime.max.replace(tzinfo=UTC))
        query = sql.SQL(
            "select symbol, ts, {cols} from (select symbol, ts, {cols}, row_number() over"
            " (partition by symbol order by ts desc) as back from features.bar_features{where})"
            " recent where back <= %s order by symbol, ts"
        ).format(cols=self._columns(), where=where)
        with connect(self.url) as conn:
            return conn.execute(query, (*params, bars)).fetchall()

    def known(self, refresh: bool = False) -> set[str]:
        if refresh or not self._known:
            with connect(self.url) as conn:
                rows = conn.execute("select distinct symbol from features.bar_features").fetchall()
            self._known = {r[0] for r in rows}
        return self._known

    def latest(
        self, symbols: Sequence[str], as_of: datetime | None, bars: int
    ) -> tuple[np.ndarray, list[datetime]]:
        """(len(symbols), bars, features) windows ending at each symbol's last bar <= as_of, and
        those bars' times. LookupError(message, field) names what is wrong."""
        unknown = sorted(set(symbols) - self.known())
        if unknown and (unknown := sorted(set(symbols) - self.known(refresh=True))):
            raise LookupError(f"unknown symbol(s): {', '.join(unknown)}", "symbols")
        if as_of is not None and as_of.tzinfo is None:
            as_of = as_of.replace(tzinfo=UTC)
        rows = self._recent(bars, symbols, as_of)
        by_symbol: dict[str, list] = {}
        for row in rows:
            by_symbol.setdefault(row[0], []).append(row)
        windows, ends = [], []
        for symbol in symbols:
            found = by_symbol.get(symbol, [])
            if len(found) < bars:
                when = f"up to {as_of:%Y-%m-%d %H:%M}" if as_of else "in the warehouse"
                raise LookupError(
                    f"{symbol} has {len(found)} bars {when}; the model needs {bars}", "as_of"
                )
            values = np.array([r[2:] for r in found], dtype=np.float64)
            undefined = [self.features[j] for j in np.flatnonzero(~np.isfinite(values).all(0))]
            if undefined:
                raise LookupError(
                    f"{symbol}: features {', '.join(undefined)} are undefined in the window "
                    f"ending {found[-1][1]:%Y-%m-%d}: pick a later as_of",
                    "as_of",
                )
            windows.append(values.astype(np.float32))
            ends.append(found[-1][1])
        return np.stack(windows), ends

    def sample(self, bars: int, n: int, seed: int = 7) -> np.ndarray:
        """``n`` complete windows from recent history: the reference expected gradients
        integrate from when a network's forecast is explained."""
        rows = self._recent(bars + 4 * n)
        symbols = np.array([r[0] for r in rows])
        values = np.array([r[2:] for r in rows], dtype=np.float64)
        windows = [
            window
            for i in range(bars - 1, len(values))
            if symbols[i - bars + 1] == symbols[i]
            and np.isfinite(window := values[i - bars + 1 : i + 1]).all()
        ]
        if not windows:
            raise LookupError(f"no complete {bars}-bar window in features.bar_features")
        picked = np.random.default_rng(seed).choice(len(windows), min(n, len(windows)), False)
        return np.stack([windows[i] for i in sorted(picked)]).astype(np.float32)
