"""A fitted model as files that load without pickle: the networks as ONNX (what serving runs)
plus their weights as a plain ``.npz`` (what explaining and online updates need), tree models in
their library's own format (XGBoost UBJSON, LightGBM text), the ensemble as a JSON manifest over
its members' directories. Every directory has a ``manifest.json`` saying what it holds; reading
builds the same bundle classes training fits, from installed code only, so a registered
version's files are data, never code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.errors import QtisError
from training.models.routed import RoutedBundle
from training.models.sequence import SequenceBundle
from training.models.tabular import TREE_MODELS, TreeModel
from training.windows import FeatureScaler

FORMAT = "qtis-portable/1"
MANIFEST = "manifest.json"


class NotPortable(QtisError, ValueError):
    """A directory without a portable model: written before QTIS stopped pickling models."""


@dataclass(frozen=True)
class Portable:
    """What a registered version serves: the fitted bundle, whether it takes windows or the
    last bar's features, and the feature columns in the order it reads them."""

    bundle: Any  # SequenceBundle, a TreeModel or EnsembleBundle
    input_kind: str  # "windows" | "features"
    features: tuple[str, ...]
    window: int = 1  # bars per window it reads (1: the last bar's features)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """(n, window, features) windows or (n, features) rows -> (n, horizons)."""
        x = np.asarray(x, dtype=np.float32)
        if self.input_kind == "windows":
            return self.bundle.predict_windows(x)
        return self.bundle.predict_features(x)


def write(model: Portable, directory: Path) -> None:
    """``model`` as files under ``directory`` (created)."""
    directory.mkdir(parents=True)
    body = _write_bundle(model.bundle, directory)
    manifest = {"format": FORMAT, "input_kind": model.input_kind, "window": model.window,
                "features": list(model.features), **body}  # fmt: skip
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1))


def read(directory: Path) -> Portable:
    """The model :func:`write` wrote to ``directory``."""
    manifest = _manifest(directory)
    bundle = _read_bundle(manifest, directory)
    features = tuple(manifest["features"])
    return Portable(bundle, manifest["input_kind"], features, int(manifest["window"]))


def _manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    if not path.is_file():
        raise NotPortable(
            f"no {MANIFEST} in the model's artifacts: it was registered before QTIS stored models"
            " without pickle, and pickled models are not loaded; retrain it (`qtis train`) and"
            " promote the new version"
        )
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise NotPortable(f"unknown model format {manifest.get('format')!r}, expected {FORMAT}")
    return manifest


def _write_bundle(bundle: Any, directory: Path) -> dict[str, Any]:
    """Write ``bundle``'s files; returns its manifest entries (without the common header)."""
    # deferred: training.ensemble imports training.tracking, which imports this module
    from training.ensemble import EnsembleBundle

    if isinstance(bundle, TreeModel):
        return {"kind": bundle.family, "params": bundle.params(), **bundle.save(directory)}
    if isinstance(bundle, SequenceBundle):
        state = {k: v.detach().cpu().numpy() for k, v in bundle.state.items()}
        np.savez(directory / "weights.npz", **state)
        if bundle.onnx is not None:
            (directory / "network.onnx").write_bytes(bundle.onnx)
        return {
            "kind": "sequence", "network": bundle.kind, "n_features": bundle.n_features,
            "n_outputs": bundle.n_outputs, "window": bundle.window, "config": bundle.config,
            "scaler": {"clip": bundle.scaler.clip, "mean": bundle.scaler.mean_.tolist(),
                       "scale": bundle.scaler.scale_.tolist()},
            "target_scale": np.asarray(bundle.target_scale).tolist(),
            "weights": "weights.npz",
            "onnx": "network.onnx" if bundle.onnx is not None else None,
        }  # fmt: skip
    if isinstance(bundle, RoutedBundle):
        return _write_routed(bundle, directory)
    if isinstance(bundle, EnsembleBundle):
        members = {}
        for family, member in bundle.members.items():
            where = directory / "members" / family
            where.mkdir(parents=True)
            (where / MANIFEST).write_text(json.dumps(_write_bundle(member, where), indent=1))
            members[family] = f"members/{family}"
        stack = bundle.stack
        return {
            "kind": "ensemble", "members": members, "versions": bundle.versions,
            "regime_index": bundle.regime_index,
            "stack": {"members": list(stack.members), "horizons": list(stack.horizons),
                      "regime_feature": stack.regime_feature,
                      "min_regime_rows": stack.min_regime_rows, "threshold": stack.threshold_,
                      "weights": stack.weights_.tolist(),
                      "intercepts": stack.intercepts_.tolist()},
        }  # fmt: skip
    raise TypeError(
        f"{type(bundle).__name__} has no portable format: a registered model is a "
        "SequenceBundle, a RoutedBundle, a TreeModel or an EnsembleBundle"
    )


def _read_bundle(manifest: dict[str, Any], directory: Path) -> Any:
    # deferred: training.ensemble imports training.tracking, which imports this module
    from training.ensemble import EnsembleBundle, StackedEnsemble

    kind = manifest.get("kind")
    if kind in TREE_MODELS:
        return TREE_MODELS[kind].load(manifest, directory)
    if kind == "sequence":
        return _read_sequence(manifest, directory)
    if kind == "routed":
        return _read_routed(manifest, directory)
    if kind == "ensemble":
        members = {
            family: _read_bundle(json.loads((directory / sub / MANIFEST).read_text()),
                                 directory / sub)
            for family, sub in manifest["members"].items()
        }  # fmt: skip
        s = manifest["stack"]
        stack = StackedEnsemble(
            tuple(s["members"]), tuple(s["horizons"]), s["regime_feature"], s["min_regime_rows"]
        )
        stack.threshold_ = float(s["threshold"])
        stack.weights_, stack.intercepts_ = np.array(s["weights"]), np.array(s["intercepts"])
        return EnsembleBundle(members, stack, int(manifest["regime_index"]), manifest["versions"])
    raise NotPortable(f"unknown model kind {kind!r} in {directory / MANIFEST}")


def _write_routed(bundle: RoutedBundle, directory: Path) -> dict[str, Any]:
    """The pre-trained network under ``pretrained/``, each copy under ``copies/<n>/`` (group
    names are symbols or sector names, not folder names)."""
    parts = {"pretrained": bundle.pretrained} | {
        f"copies/{i}": copy for i, copy in enumerate(bundle.copies.values())
    }
    for sub, part in parts.items():
        (directory / sub).mkdir(parents=True)
        (directory / sub / MANIFEST).write_text(json.dumps(_write_bundle(part, directory / sub)))
    return {
        "kind": "routed", "grouping": bundle.grouping, "pretrained": "pretrained",
        "copies": {group: f"copies/{i}" for i, group in enumerate(bundle.copies)},
        "routes": bundle.routes,
    }  # fmt: skip


def _read_routed(manifest: dict[str, Any], directory: Path) -> RoutedBundle:
    def part(sub: str) -> SequenceBundle:
        return _read_sequence(json.loads((directory / sub / MANIFEST).read_text()), directory / sub)

    copies = {group: part(sub) for group, sub in manifest["copies"].items()}
    return RoutedBundle(
        part(manifest["pretrained"]), copies, manifest["routes"], manifest["grouping"]
    )


def _read_sequence(manifest: dict[str, Any], directory: Path) -> SequenceBundle:
    with np.load(directory / manifest["weights"], allow_pickle=False) as weights:
        state = {k: torch.from_numpy(weights[k].copy()) for k in weights.files}
    scaler = FeatureScaler(manifest["scaler"]["clip"])
    scaler.mean_ = np.array(manifest["scaler"]["mean"], dtype=np.float32)
    scaler.scale_ = np.array(manifest["scaler"]["scale"], dtype=np.float32)
    onnx = manifest.get("onnx")
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in manifest["config"].items()}
    return SequenceBundle(
        kind=manifest["network"],
        n_features=int(manifest["n_features"]),
        n_outputs=int(manifest["n_outputs"]),
        window=int(manifest["window"]),
        config=config,
        state=state,
        scaler=scaler,
        target_scale=np.array(manifest["target_scale"], dtype=np.float32),
        onnx=(directory / onnx).read_bytes() if onnx else None,
    )
