"""Signal sources: what a strategy wants, per symbol, after each bar.

Each source sees every bar through ``observe`` (also during warm-up, so its state after a
restart is what it was before) and answers ``signals`` with a strength per symbol in [-1, 1]
(0: flat) and, for a model, the forecast behind it; ``lineage(i)`` names the model whose answer
symbol ``i``'s forecast is (None for rules). Vectorized across symbols.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from serving.predictor import Predicting
from serving.schemas import ModelCard, ModelInfo, PredictRequest, PredictResponse, Role
from trading_runtime.broker import CrossSection
from trading_runtime.events import ModelLineage


class SignalSource(Protocol):
    needs_features: bool

    def observe(self, bar: CrossSection, features: np.ndarray | None) -> None: ...

    def signals(self, bar: CrossSection) -> tuple[np.ndarray, np.ndarray | None]: ...

    def lineage(self, index: int) -> ModelLineage | None: ...


class RuleSource:
    """A source with no model behind it."""

    def lineage(self, index: int) -> None:
        return None


class BuyAndHold(RuleSource):
    """Long every symbol from its first bar on."""

    needs_features = False

    def __init__(self, n: int) -> None:
        self.n = n

    def observe(self, bar: CrossSection, features: np.ndarray | None) -> None:
        pass

    def signals(self, bar: CrossSection) -> tuple[np.ndarray, None]:
        return np.where(np.isnan(bar.close), 0.0, 1.0), None


class SmaCross(RuleSource):
    """Long while the fast simple moving average of close is above the slow one, else flat.

    Each symbol's last ``slow`` closes sit in a ring with its own cursor (a symbol without a
    bar does not move), and both means are taken over the window exactly, every bar: no running
    sums to drift, and the same numbers a batch SMA gives.
    """

    needs_features = False

    def __init__(self, n: int, fast: int, slow: int) -> None:
        if not 0 < fast < slow:
            raise ValueError(f"sma-cross needs 0 < fast < slow, got fast={fast} slow={slow}")
        self.fast, self.slow = fast, slow
        self.ring = np.full((n, slow), np.nan)
        self.cursor = np.zeros(n, dtype=np.int64)  # next slot to write, per symbol
        self.seen = np.zeros(n, dtype=np.int64)
        self.rows = np.arange(n)
        self.back = np.arange(1, slow + 1)  # 1 = newest

    def observe(self, bar: CrossSection, features: np.ndarray | None) -> None:
        mask = ~np.isnan(bar.close)
        if mask.all():
            self.ring[self.rows, self.cursor] = bar.close
            self.cursor = (self.cursor + 1) % self.slow
            self.seen += 1
            return
        rows = self.rows[mask]
        self.ring[rows, self.cursor[rows]] = bar.close[rows]
        self.cursor[rows] = (self.cursor[rows] + 1) % self.slow
        self.seen[rows] += 1

    def signals(self, bar: CrossSection) -> tuple[np.ndarray, None]:
        newest_first = (self.cursor[:, None] - self.back[None, :]) % self.slow
        window = self.ring[self.rows[:, None], newest_first]
        fast = window[:, : self.fast].sum(axis=1) / self.fast
        slow = window.sum(axis=1) / self.slow
        return np.where((self.seen >= self.slow) & (fast > slow), 1.0, 0.0), None


def lineage_of(card: ModelCard) -> ModelLineage:
    return ModelLineage(card.model, card.version, card.role, card.run_id, card.artifact_sha256)


def model_card(info: ModelInfo, role: Role) -> ModelCard:
    """The card of the model holding ``role``; a missing challenger says how to get one."""
    card = info.champion if role == "champion" else info.challenger
    if card is None:
        raise LookupError(
            "no model holds @challenger: train candidates (`qtis train`) and judge them"
            " (`qtis models promote`): the best one that does not become champion is the"
            " challenger"
        )
    return card


class ModelSignals:
    """The served model's h-bar forecast, scaled by the symbol's volatility over h bars: a
    forecast of one sigma is full conviction. Forecasts smaller than ``threshold`` (a log
    return, e.g. the round-trip cost) are no signal. ``role`` picks the champion or the
    challenger; only the in-process predictor answers as the challenger (the service answers
    with the champion and scores the challenger in shadow)."""

    needs_features = True

    def __init__(
        self,
        predictor: Predicting,
        columns: list[str],
        n: int,
        *,
        horizon: int = 1,
        threshold: float = 0.0,
        local: bool = True,
        batch: int = 256,
        role: Role = "champion",
    ) -> None:
        if role == "challenger" and not local:
            raise ValueError(
                "the challenger trades in process only: drop the model URL (the service"
                " answers with the champion and scores the challenger in shadow)"
            )
        card = model_card(predictor.info(), role)
        self.predictor, self.local, self.threshold = predictor, local, threshold
        self.ask = {"role": role} if local else {}  # in process: that model, no A/B draw
        self.batch = batch
        self.window = card.window
        if horizon not in card.horizons:
            raise ValueError(f"the model forecasts horizons {card.horizons}, not {horizon}")
        self.h, self.horizon = card.horizons.index(horizon), horizon
        missing = [f for f in card.features if f not in columns]
        if missing:
            raise ValueError(f"the online features lack {missing} that {card.model} needs")
        self.cols = np.array([columns.index(f) for f in card.features])
        self.atr = columns.index("atr_14")
        self.buf = np.full((n, self.window, len(self.cols)), np.nan, dtype=np.float32)
        self.pos = 0
        self.vol = np.full(n, np.nan)
        self.model = f"{card.model} v{card.version}"
        self.lineages = self._lineages(predictor.info())
        self.answered_by = np.full(n, None, dtype=object)  # symbol -> ModelLineage, this bar

    @staticmethod
    def _lineages(info: ModelInfo) -> dict[tuple[str, str], ModelLineage]:
        cards = [c for c in (info.champion, info.challenger) if c is not None]
        return {(c.model, c.version): lineage_of(c) for c in cards}

    def _lineage(self, response: PredictResponse) -> ModelLineage:
        """The lineage of the model that answered: the service may have reloaded another
        version since the run started (its card is fetched again, once per version)."""
        key = (response.model, response.version)
        if key not in self.lineages:
            self.lineages |= self._lineages(self.predictor.info())
        if key not in self.lineages:  # reloaded again meanwhile: what the answer says
            self.lineages[key] = ModelLineage(response.model, response.version, response.role)
        return self.lineages[key]

    def lineage(self, index: int) -> ModelLineage | None:
        return self.answered_by[index]

    def _predict(self, windows: np.ndarray) -> PredictResponse:
        if self.local:  # in process: the arrays are ours and already checked finite
            request = PredictRequest.model_construct(windows=windows, symbols=None, as_of=None)
        else:
            request = PredictRequest(windows=windows.tolist())
        return self.predictor.predict(request, **self.ask)

    def observe(self, bar: CrossSection, features: np.ndarray | None) -> None:
        self.buf[:, self.pos, :] = features[:, self.cols]
        self.pos = (self.pos + 1) % self.window
        with np.errstate(invalid="ignore", divide="ignore"):
            self.vol = features[:, self.atr] / bar.close

    def signals(self, bar: CrossSection) -> tuple[np.ndarray, np.ndarray]:
        order = (self.pos + np.arange(self.window)) % self.window
        windows = self.buf[:, order, :]
        ready = np.isfinite(windows).all(axis=(1, 2)) & ~np.isnan(bar.close)
        strength = np.zeros(len(ready))
        forecast = np.full(len(ready), np.nan)
        self.answered_by[:] = None
        if not ready.any():
            return strength, forecast
        chosen, rows = windows[ready], np.flatnonzero(ready)
        parts = []
        for i in range(0, len(chosen), self.batch):  # requests of at most
            # QTIS_SERVE_MAX_WINDOWS windows, as the service takes them
            response = self._predict(chosen[i : i + self.batch])
            parts.append(np.asarray(response.predictions))
            self.answered_by[rows[i : i + self.batch]] = self._lineage(response)
        predicted = np.concatenate(parts)[:, self.h]
        forecast[ready] = predicted
        scale = self.vol[ready] * np.sqrt(self.horizon)
        with np.errstate(invalid="ignore", divide="ignore"):
            s = np.clip(predicted / scale, -1.0, 1.0)
        s[np.abs(predicted) < self.threshold] = 0.0
        strength[ready] = np.nan_to_num(s)
        return strength, forecast
