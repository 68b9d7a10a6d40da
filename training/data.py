"""The training set as arrays: features and labels per (symbol, bar), read through Arrow.

Rows are sorted by (symbol, ts), so a window of the last ``window`` bars of a symbol is a slice
``X[i - window + 1 : i + 1]`` of one array: windows are views, never copies of the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import numpy as np
import pyarrow as pa
from psycopg import sql

from transforms.spec import FeatureSpec, default_spec
from warehouse.reads import read_query, selection


@dataclass(frozen=True)
class TrainingData:
    """Aligned arrays, one row per (symbol, bar), sorted by symbol then time."""

    symbols: np.ndarray  # (n,) symbol of each row
    ts: np.ndarray  # (n,) datetime64[us] (UTC)
    features: np.ndarray  # (n, n_features) float32, NaN where a feature is undefined
    returns: np.ndarray  # (n, n_horizons) float32 forward log returns, NaN at the end
    volatility: np.ndarray  # (n, n_horizons) float32 forward realized volatility
    feature_names: tuple[str, ...]
    horizons: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.ts)

    def label_ends(self, rows: np.ndarray, horizon: int) -> np.ndarray:
        """Per row, the time of the bar its ``horizon``-bar label looks at: ``horizon`` rows on
        in the same symbol (a symbol's bars, gaps and all), or the symbol's last row."""
        last = np.r_[np.flatnonzero(self.symbols[1:] != self.symbols[:-1]), len(self) - 1]
        return self.ts[np.minimum(rows + horizon, last[np.searchsorted(last, rows)])]

    def label_end(self, rows: np.ndarray, horizon: int) -> np.datetime64:
        """The last bar any label of ``rows`` looks at: only later bars are out of sample for a
        model that was fitted, or early-stopped, on them."""
        return self.label_ends(rows, horizon).max()

    def take(self, keep: np.ndarray) -> TrainingData:
        """The rows where boolean ``keep`` is true, order kept."""
        return replace(
            self,
            symbols=self.symbols[keep],
            ts=self.ts[keep],
            features=self.features[keep],
            returns=self.returns[keep],
            volatility=self.volatility[keep],
        )

    def _symbol_runs(self) -> tuple[np.ndarray, np.ndarray]:
        """(first row, row count) of each symbol's contiguous block."""
        starts = np.r_[0, np.flatnonzero(self.symbols[1:] != self.symbols[:-1]) + 1]
        return starts, np.diff(np.r_[starts, len(self.symbols)])

    @property
    def rows_left(self) -> np.ndarray:
        """Rows after each row in its symbol's history: a label of horizon h is known only
        when h <= rows_left."""
        starts, lengths = self._symbol_runs()
        return np.repeat(starts + lengths - 1, lengths) - np.arange(len(self.symbols))

    @property
    def row_in_symbol(self) -> np.ndarray:
        """0-based position of each row within its symbol's history."""
        starts, lengths = self._symbol_runs()
        return np.arange(len(self.symbols)) - np.repeat(starts, lengths)


def load_training_data(
    url: str,
    symbols: Sequence[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    spec: FeatureSpec | None = None,
    *,
    labels_only: bool = False,
) -> TrainingData:
    """Read features.training_set (ADBC binary COPY -> Arrow -> float32). With ``end``, the
    data as it was then: bars before ``end`` and only the labels those bars already decided.
    ``labels_only``: no feature columns (what scoring stored forecasts needs), a fraction of
    the memory and of the read."""
    spec = spec or default_spec()
    features = [] if labels_only else list(spec.columns())
    returns = [f"fwd_ret_{h}" for h in spec.horizons]
    vols = [f"fwd_vol_{h}" for h in spec.horizons]
    numeric = [*features, *returns, *vols]
    query = sql.SQL(
        "select symbol, ts, {} from features.training_set where {} order by symbol, ts"
    ).format(
        sql.SQL(", ").join(sql.SQL("{}::float8").format(sql.Identifier(c)) for c in numeric),
        selection(symbols, start, end),
    )
    schema = pa.schema(
        [("symbol", pa.string()), ("ts", pa.timestamp("us", tz="UTC"))]
        + [(c, pa.float64()) for c in numeric]
    )
    table = read_query(url, query, schema)

    def block(names: list[str]) -> np.ndarray:
        # filled a column at a time: no float64 copy of the whole block beside the Arrow one
        out = np.empty((len(table), len(names)), dtype=np.float32)
        for j, name in enumerate(names):
            out[:, j] = table[name].to_numpy(zero_copy_only=False)
        return out

    data = TrainingData(
        symbols=table["symbol"].to_numpy(zero_copy_only=False).astype(str),
        ts=table["ts"].to_numpy().astype("datetime64[us]"),
        features=block(features),
        returns=block(returns),
        volatility=block(vols),
        feature_names=tuple(features),
        horizons=tuple(spec.horizons),
    )
    if end is not None:
        unknown = data.rows_left[:, None] < np.asarray(spec.horizons)[None, :]
        data.returns[unknown] = np.nan
        data.volatility[unknown] = np.nan
    return data
