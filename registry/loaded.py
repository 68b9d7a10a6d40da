"""A registered version loaded for serving: the fitted model, what a request must look like for
it (window, features, horizons), its lineage, and its SHAP explanation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np


class NotExplainable(ValueError):
    """The model has no SHAP explainer of its own (an ensemble: explain its members)."""


@dataclass
class LoadedModel:
    role: str
    name: str
    version: str
    run_id: str
    impl: Any  # training.portable.Portable: the bundle and its input kind
    window: int
    features: tuple[str, ...]
    horizons: tuple[int, ...]
    trained_through: datetime | None = None
    label_end: datetime | None = None
    artifact_sha256: str | None = None  # of the files it was loaded from (checked)
    loaded_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    artifact_sha256: str | None = None  # what its version's tag says (None: not recorded)

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"

    @property
    def cross_sectional(self) -> bool:
        """It attends across a request's windows (one cross-section): requests are not merged."""
        return bool(getattr(self.impl.bundle, "cross_sectional", False))

    @property
    def routes_by(self) -> str | None:
        """A fine-tuned model's grouping ("symbol", "sector"): it scores each window with its
        symbol's copy, so it needs the windows' symbols (without one: the pre-trained network)."""
        bundle = self.impl.bundle
        return bundle.grouping if getattr(bundle, "routes_by_symbol", False) else None

    def predict(
        self, windows: np.ndarray, symbols: Sequence[str | None] | None = None
    ) -> np.ndarray:
        """(n, bars >= window, features) -> (n, horizons); ``symbols``: each window's symbol,
        read by a model that routes by symbol (``routes_by``) and ignored by the others."""
        if self.impl.input_kind == "features":
            return self.impl.bundle.predict_features(windows[:, -1, :])
        if self.routes_by is not None:
            return self.impl.bundle.predict_windows(windows[:, -self.window :, :], symbols)
        return self.impl.bundle.predict_windows(windows[:, -self.window :, :])

    def explain(
        self,
        window: np.ndarray,
        background: Callable[[], np.ndarray],
        symbol: str | None = None,
    ) -> Any:
        """SHAP attributions (``training.explain.Attributions``) of the forecast for ``window``
        (1, bars, features); ``background`` gives the reference windows a network needs;
        ``symbol``: the window's, which picks a fine-tuned model's copy."""
        # deferred: the explainers and bundles pull torch+lightning (~6 s measured) and shap
        # (~3 s), which serving needs only now
        from training.explain import explain_network, explain_tree
        from training.models.sequence import SequenceBundle  # deferred: as above
        from training.models.tabular import TreeModel  # deferred: as above

        bundle = self.impl.bundle
        if self.routes_by is not None:
            bundle = bundle.bundle_for(symbol)
        if isinstance(bundle, TreeModel):
            return explain_tree(bundle, window[:, -1, :], self.features, self.horizons)
        if isinstance(bundle, SequenceBundle):
            return explain_network(
                bundle, window[:, -self.window :], background(), self.features, self.horizons
            )
        raise NotExplainable(f"{self.name} has no SHAP explainer (explain its members instead)")


def check_promoted(model: LoadedModel, promotion: dict | None) -> None:
    """Refuse (``training.artifacts.ArtifactMismatch``, and an alert) a model whose files are
    not the ones its promotion decision (``mlops.promotions``) was taken on; a decision recorded
    before decisions carried a digest checks nothing more than the registration digest."""
    if promotion is None or promotion.get("artifact_sha256") is None:
        return
    # deferred: mlflow (~1 s), which the light serving interface does not import
    from training.artifacts import verify

    verify(model.label, model.artifact_sha256, promotion["artifact_sha256"],
           f"its promotion decision {promotion['id']}")  # fmt: skip


def limit_threads(bundle: Any, threads: int) -> None:
    """Run XGBoost (here or in an ensemble) on ``threads`` threads: idle OpenMP workers spin, and
    on a small machine they starve the threads that parse the next requests. (The service sizes
    the networks' ONNX Runtime sessions the same way, through torch's thread count.)"""
    parts = [bundle, *getattr(bundle, "members", {}).values()]
    for part in parts:
        booster = getattr(part, "model", None)
        if booster is not None and hasattr(booster, "set_params"):
            booster.set_params(n_jobs=threads)
