"""The recent close-to-close returns of every symbol, kept by the engine bar by bar: what the
portfolio optimizers and the VaR/ES limits estimate risk from, without a database round trip."""

from __future__ import annotations

import numpy as np


class ReturnWindow:
    """A ring buffer of the last ``length`` bars' simple returns (NaN where a symbol had no bar,
    or no previous close)."""

    def __init__(self, n_symbols: int, length: int) -> None:
        if length < 2:
            raise ValueError(f"a return window needs at least 2 bars, got {length}")
        self.length = length
        self._data = np.full((length, n_symbols), np.nan)
        self._last = np.full(n_symbols, np.nan)
        self._next = 0
        self.count = 0  # returns recorded so far (at most ``length`` are kept)

    def update(self, close: np.ndarray) -> None:
        """Record one bar's closes (NaN: no bar; the symbol's last close carries over)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            returns = close / self._last - 1.0
        self._data[self._next] = returns
        self._next = (self._next + 1) % self.length
        self.count += 1
        self._last = np.where(np.isnan(close), self._last, close)

    def matrix(self, last: int | None = None) -> np.ndarray:
        """The last ``last`` (default: all kept) returns, oldest first, shape (bars, symbols)."""
        kept = min(self.count, self.length)
        k = kept if last is None else min(last, kept)
        rows = (self._next - k + np.arange(k)) % self.length
        return self._data[rows]
