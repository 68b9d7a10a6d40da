"""The models a predictor serves: @champion, @challenger (shadow or A/B), the window source of
each (its own feature columns) and the decision that installed the champion, loaded from the
registry and swapped together as one immutable :class:`Serving`, or one model pinned."""

from __future__ import annotations

import gc
import logging
import threading
from dataclasses import dataclass

from registry.loaded import LoadedModel, check_promoted
from registry.model_registry import ModelRegistry
from registry.promotions import installed
from serving.errors import NoChampion
from serving.schemas import ModelCard
from serving.windows import WindowSource

log = logging.getLogger("qtis.serving")


def settle(loaded: dict, before: dict | None) -> dict:
    """When the models served changed: collect the garbage once, then freeze what is left
    (the models, the libraries) out of the collector's full passes. A full pass over the ~450k
    objects of a worker's libraries took 0.22 s with the GIL held, stalling every request in
    flight: measured (bench/serving.py, 32 concurrent requests) the p99 fell from 0.43-0.52 s
    to 0.06-0.11 s with the freeze. Requests' own objects are still collected as before."""
    if loaded != before:
        gc.unfreeze()  # a replaced model's cycles are freed now, not kept for ever
        gc.collect()
        gc.freeze()
    return loaded


def card(model: LoadedModel) -> ModelCard:
    """What ``GET /model`` shows of one loaded model."""
    return ModelCard(
        role=model.role,
        model=model.name,
        version=model.version,
        window=model.window,
        input_kind=model.impl.input_kind,
        features=list(model.features),
        horizons=list(model.horizons),
        run_id=model.run_id,
        loaded_at=model.loaded_at,
        trained_through=model.trained_through,
        label_end=model.label_end,
        artifact_sha256=model.artifact_sha256,
        routes_by=model.routes_by,
    )


def label(model: LoadedModel | None) -> str | None:
    return model.label if model else None


@dataclass(frozen=True)
class Serving:
    """One consistent set: a reader takes it whole, so it never sees the new champion next to
    the old challenger (when the challenger was promoted, the same version in both roles), nor
    a model next to another model's feature columns."""

    champion: LoadedModel | None = None
    challenger: LoadedModel | None = None
    promotion: dict | None = None  # the mlops.promotions row that installed the champion
    champion_windows: WindowSource | None = None  # windows in the champion's columns
    challenger_windows: WindowSource | None = None

    def windows(self, model: LoadedModel) -> WindowSource:
        """The window source of ``model`` (the champion or the challenger of this set)."""
        return self.challenger_windows if model is self.challenger else self.champion_windows


class ModelSet:
    """Loads what holds the aliases and swaps it in one step; a pinned set never reloads."""

    def __init__(self, url: str, registry: ModelRegistry | None, threads: int) -> None:
        self.url, self.registry, self.threads = url, registry, threads
        self.current = Serving()
        self.fixed = False  # a pinned model: reload() leaves it, whatever the aliases say
        self._lock = threading.Lock()

    def _source(self, model: LoadedModel | None, before: Serving) -> WindowSource | None:
        """A window source in ``model``'s columns: the one it had when they have not changed."""
        if model is None:
            return None
        for old in (before.champion_windows, before.challenger_windows):
            if old is not None and old.features == model.features:
                return old
        return WindowSource(self.url, model.features)

    def pin(self, model: LoadedModel, promotion: dict | None = None) -> None:
        windows = WindowSource(self.url, model.features)
        self.current, self.fixed = Serving(model, None, promotion, windows), True

    def pin_version(self, name: str, version: str) -> None:
        """``name`` ``version`` answering as the champion, whatever holds @champion now."""
        try:
            model = self.registry.load("champion", name, str(version), self.threads)
            promotion = installed(self.url, name, str(version), model.run_id)
            check_promoted(model, promotion)
        except Exception as exc:
            raise NoChampion(f"{name} v{version} cannot be loaded: {exc}") from exc
        self.pin(model, promotion)

    def loaded(self) -> dict[str, str | None]:
        """The versions being served, by role."""
        now = self.current
        return {"champion": label(now.champion), "challenger": label(now.challenger)}

    def reload(self) -> dict[str, str | None]:
        """Load whatever now holds @champion / @challenger, then swap: requests in flight finish
        on the models they started with. Returns the (new) versions. A pinned set keeps its
        model."""
        if self.fixed:
            return self.loaded()
        with self._lock:
            before = self.current
            champion, promotion = self._champion(before)
            challenger = self._challenger(before.challenger)
            windows = self._source(champion, before), self._source(challenger, before)
            self.current = Serving(champion, challenger, promotion, *windows)  # one swap
            return self.loaded()

    def _champion(self, before: Serving) -> tuple[LoadedModel, dict | None]:
        champion, current = before.champion, self.registry.champion()
        if current is None:
            if champion is None:
                raise NoChampion(
                    "no model holds @champion: promote one first (`qtis models promote`, "
                    "or the `promotion` asset after training)"
                )
            log.warning("@champion was removed; still serving %s", champion.label)
            return champion, before.promotion
        if champion is not None and (champion.name, champion.version) == current:
            # re-read: a move in progress when it was last read has been settled since
            return champion, installed(self.url, *current, champion.run_id)
        try:
            champion = self.registry.load("champion", *current, self.threads)
            promotion = installed(self.url, *current, champion.run_id)
            check_promoted(champion, promotion)
        except Exception as exc:
            if before.champion is None:
                raise NoChampion(
                    f"the champion {current[0]} v{current[1]} cannot be loaded: {exc}"
                ) from exc
            raise
        return champion, promotion

    def _challenger(self, challenger: LoadedModel | None) -> LoadedModel | None:
        wanted = self.registry.challenger()
        if wanted is None:
            return None
        if challenger is not None and (challenger.name, challenger.version) == wanted:
            return challenger
        try:
            return self.registry.load("challenger", *wanted, self.threads)
        except Exception as exc:  # a broken challenger must not stop the champion
            log.error("challenger %s v%s not loaded: %s", *wanted, exc)
            return None
