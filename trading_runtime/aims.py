"""What a strategy wants after one bar: the engine's sizing output, and the decision each order
journals from it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trading_runtime import events as ev
from trading_runtime.strategies import Slot


@dataclass(frozen=True)
class Aims:
    """What a strategy wants after one bar, per symbol: its signal's strength, the model's
    forecast (None: a rule), the target quantity and what it holds with its working orders.
    Each order journals its symbol's entries as its decision."""

    strength: np.ndarray
    forecast: np.ndarray | None
    target: np.ndarray
    current: np.ndarray

    def decision(self, slot: Slot, i: int) -> ev.Decision:
        forecast = None if self.forecast is None else float(self.forecast[i])
        lineage = slot.source.lineage(i)
        model = slot.config.signal == "model"
        return ev.Decision(
            slot.config.signal,
            float(self.strength[i]),
            float(self.target[i]),
            float(self.current[i]),
            None if forecast is None or np.isnan(forecast) else forecast,
            slot.config.horizon if model else None,
            lineage,
        )
