"""The models a predictor serves: @champion, @challenger (shadow or A/B) and the decision that
installed the champion, loaded from the registry and swapped together, or one model pinned."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from registry.loaded import LoadedModel
from registry.model_registry import ModelRegistry
from registry.promotions import installed
from serving.errors import NoChampion
from serving.schemas import ModelCard

log = logging.getLogger("qtis.serving")


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
    )


def label(model: LoadedModel | None) -> str | None:
    return model.label if model else None


@dataclass(frozen=True)
class Serving:
    """One consistent set: a reader takes it whole, so it never sees the new champion next to
    the old challenger (when the challenger was promoted, the same version in both roles)."""

    champion: LoadedModel | None = None
    challenger: LoadedModel | None = None
    promotion: dict | None = None  # the mlops.promotions row that installed the champion


class ModelSet:
    """Loads what holds the aliases and swaps it in one step; a pinned set never reloads."""

    def __init__(self, url: str, registry: ModelRegistry | None, threads: int) -> None:
        self.url, self.registry, self.threads = url, registry, threads
        self.current = Serving()
        self.fixed = False  # a pinned model: reload() leaves it, whatever the aliases say
        self._lock = threading.Lock()

    def pin(self, model: LoadedModel, promotion: dict | None = None) -> None:
        self.current, self.fixed = Serving(model, None, promotion), True

    def pin_version(self, name: str, version: str) -> None:
        """``name`` ``version`` answering as the champion, whatever holds @champion now."""
        try:
            model = self.registry.load("champion", name, str(version), self.threads)
        except Exception as exc:
            raise NoChampion(f"{name} v{version} cannot be loaded: {exc}") from exc
        self.pin(model, installed(self.url, name, str(version), model.run_id))

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
            self.current = Serving(champion, challenger, promotion)  # one swap
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
            return champion, before.promotion
        try:
            champion = self.registry.load("champion", *current, self.threads)
        except Exception as exc:
            if before.champion is None:
                raise NoChampion(
                    f"the champion {current[0]} v{current[1]} cannot be loaded: {exc}"
                ) from exc
            raise
        return champion, installed(self.url, *current, champion.run_id)

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
