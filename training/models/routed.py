"""A pre-trained network with its fine-tuned copies, served as one model: each window goes to the
copy of its symbol's group (the symbol itself, or its sector), and a window without a symbol, or
of a symbol whose group was not fine-tuned, to the pre-trained network.

What transfer learning (:mod:`training.transfer`) registers. A request of raw windows carries no
symbol, so the pre-trained network answers it; a request by symbol (the service looks the windows
up) gets each symbol's copy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from training.models.sequence import SequenceBundle


@dataclass
class RoutedBundle:
    pretrained: SequenceBundle
    copies: dict[str, SequenceBundle]  # group -> its fine-tuned copy of ``pretrained``
    routes: dict[str, str]  # symbol -> group, for the symbols whose group has a copy
    grouping: str  # "symbol" or "sector"

    routes_by_symbol = True  # serving passes each window's symbol (None when it has none)
    cross_sectional = False

    def __post_init__(self) -> None:
        unknown = set(self.routes.values()) - set(self.copies)
        if unknown:
            raise ValueError(f"routes to groups without a fine-tuned copy: {sorted(unknown)}")

    @property
    def window(self) -> int:
        return self.pretrained.window

    @property
    def n_features(self) -> int:
        return self.pretrained.n_features

    @property
    def n_outputs(self) -> int:
        return self.pretrained.n_outputs

    @property
    def kind(self) -> str:
        return self.pretrained.kind

    def bundle_for(self, symbol: str | None) -> SequenceBundle:
        """The network that scores ``symbol``'s windows."""
        return self.copies.get(self.routes.get(symbol, ""), self.pretrained)

    def compile(self) -> RoutedBundle:
        """Every network exported for ONNX Runtime, as ``SequenceBundle.compile``."""
        for bundle in (self.pretrained, *self.copies.values()):
            bundle.compile()
        return self

    def predict_windows(
        self, windows: np.ndarray, symbols: Sequence[str | None] | None = None
    ) -> np.ndarray:
        """(batch, window, features) -> (batch, horizons); ``symbols``: each window's symbol
        (None, or left out: the pre-trained network)."""
        if symbols is None:
            return self.pretrained.predict_windows(windows)
        if len(symbols) != len(windows):
            raise ValueError(f"{len(symbols)} symbols for {len(windows)} windows")
        return self._routed(symbols, lambda bundle, at: bundle.predict_windows(windows[at]))

    def predict_rows(
        self, features: np.ndarray, rows: np.ndarray, symbols: Sequence[str] | np.ndarray
    ) -> np.ndarray:
        """The windows ending at ``rows`` of ``features``, each by its symbol's network."""
        return self._routed(
            np.asarray(symbols)[rows], lambda bundle, at: bundle.predict_rows(features, rows[at])
        )

    def _routed(self, symbols: Sequence[str | None], score) -> np.ndarray:
        out = np.empty((len(symbols), self.n_outputs), dtype=np.float32)
        for group, at in self.group_rows(symbols).items():
            out[at] = score(self.copies.get(group, self.pretrained), at)
        return out

    def group_rows(self, symbols: Sequence[str | None]) -> Mapping[str, np.ndarray]:
        """Positions of ``symbols`` per group ("" for the pre-trained network's)."""
        keys = np.array([self.routes.get(s, "") for s in symbols], dtype=str)
        return {str(group): np.flatnonzero(keys == group) for group in np.unique(keys)}
