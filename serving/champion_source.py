"""The ``champion`` walk-forward source: per window the champion a desk would have traded then,
of the versions that have held @champion (``mlops.promotions``), as if each went live the day its
data ended."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import numpy as np

from quant.splits import WindowDates
from registry.model_registry import ModelRegistry
from registry.promotions import champions
from registry.settings import TrackingSettings
from serving.errors import NoChampion
from serving.predictor import Predictor
from serving.settings import ServingSettings
from serving.window_model import Skip, WindowModel


def champion_label_end(
    trained_through: datetime | None,
    label_end: datetime | None,
    timeline: np.ndarray,
    horizon: int,
) -> tuple[date | None, date | None]:
    """(trained_through, label end) of a registered version, from its tags: ``label_end`` when
    tagged, else ``trained_through`` plus ``horizon`` bars of ``timeline`` (an older run tagged
    only its last training row; labels cannot look past the last bar there is)."""
    through = trained_through.date() if trained_through else None
    if label_end:
        return through, label_end.date()
    if through is None:
        return None, None
    if not len(timeline):
        return through, None
    at = int(np.searchsorted(timeline, np.datetime64(through), side="right")) - 1 + horizon
    return through, timeline[min(max(at, 0), len(timeline) - 1)].astype("datetime64[D]").item()


class ChampionSource:
    """Per window, the champion a desk would have traded then: of the versions that have held
    @champion (``mlops.promotions``), the most recently installed one whose labels end before
    the window starts - each as if it went live the day its data ended. (Promotion decisions
    carry wall-clock times, so on historical bars every decision is "later"; the data each
    version saw is what decides whether it may trade a window.) ``tracking``: the MLflow
    store the versions are loaded from."""

    def __init__(
        self,
        url: str,
        timeline: np.ndarray,
        horizon: int,
        serving: ServingSettings,
        tracking: TrackingSettings,
    ) -> None:
        self.url, self.timeline, self.horizon, self.serving = url, timeline, horizon, serving
        self.tracking = tracking
        self.history = champions(url)  # oldest first
        self._seen: dict[tuple[str, str], tuple[date | None, date | None]] = {}
        self._loaded: dict[tuple[str, str], Any] = {}
        self._registry: ModelRegistry | None = None  # opened on first use: MLflow is slow

    def _labels(self, held: tuple[str, str]) -> tuple[date | None, date | None]:
        if held not in self._seen:
            if self._registry is None:
                self._registry = ModelRegistry(self.url, self.tracking)
            meta = self._registry.meta(*held)
            self._seen[held] = champion_label_end(
                meta.trained_through, meta.label_end, self.timeline, self.horizon
            )
        return self._seen[held]

    def model(self, window: WindowDates) -> WindowModel:
        if not self.history:
            raise Skip("no model has held @champion (mlops.promotions): promote one first")
        unseen = [h for h in self.history if _before(self._labels(h)[1], window.test_start)]
        if not unseen:
            latest = self.history[-1]
            raise Skip(
                f"refused: every champion saw labels of {window.test_start} or later (the"
                f" latest, {latest[0]} v{latest[1]}, through {self._labels(latest)[1]})"
            )
        held = unseen[-1]
        if held not in self._loaded:
            try:
                self._loaded[held] = Predictor.pinned(self.url, *held, self.serving, self.tracking)
            except NoChampion as exc:
                raise Skip(str(exc)) from exc
        through, seen = self._labels(held)
        return WindowModel(self._loaded[held], f"{held[0]} v{held[1]}", through, seen)


def _before(seen: date | None, start: date) -> bool:
    return seen is not None and seen < start
