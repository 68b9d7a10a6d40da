"""Online learning: fold the bars whose labels became known since a registered model was trained
into that model, without a full retrain, and register the result as a new version of the same
qtis-* model, marked ``promotion=pending`` (it serves nothing until promotion passes it).

Which bars: rows after the base version's ``trained_through`` tag whose every horizon label is
finite *and* that have at least ``max(horizons)`` later bars of their symbol in the data (a label
looking h bars ahead is only known h bars later; the second test guards against a label table that
runs ahead of the bars). Those rows are split in time: ``max(horizons)`` bars are purged out, the
last ``holdout`` share of the rest is kept out to compare the base and the updated model out of
sample, and the earlier part is what the model learns from.

How (``training.incremental``): XGBoost keeps boosting from the trees the base model predicts
with (``rounds`` more rounds); a network is fine-tuned for at most ``steps`` optimizer steps from
its weights, on inputs scaled with the scaler and target scale it was trained with (never
refitted), and recompiled to ONNX.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from core.errors import InputError
from quant.intervals import information_coefficients
from training import explain
from training.data import TrainingData, load_training_data
from training.families import FAMILIES, is_tree
from training.incremental import update_network
from training.lineage import (
    FAMILY,
    LABEL_END,
    TRAINED_THROUGH,
    UPDATE_OF,
    VersionMeta,
    moment,
    stamp,
)
from training.metrics import mse
from training.models.cross_asset import predict_cross_sections
from training.models.sequence import SequenceModel
from training.settings import TrackingSettings
from training.tracking import (
    CHAMPION,
    REGISTERED_NAMES,
    configure,
    holder,
    load_bundle,
    log_update,
    spec_hash,
)
from training.windows import window_ends

UPDATABLE = FAMILIES


class NothingToUpdate(ValueError, InputError):
    """The model has already seen every bar whose labels are known."""


@dataclass
class UpdateResult:
    family: str
    registered: str  # qtis-<family>
    base_version: str
    new_version: str
    run_id: str
    model_uri: str
    rows_used: int  # (symbol, bar) rows the model learnt from
    holdout_rows: int  # rows after the purge that compare base and updated out of sample
    trained_through_before: str
    trained_through_after: str
    # {"base": {...}, "updated": {...}}: holdout mse/ic per horizon (mse_h1, ic_h1, ...) and
    # their means over horizons (mse_mean, ic_mean); None where undefined
    metrics: dict[str, dict[str, float | None]]
    details: dict[str, Any]  # xgboost: rounds before/after; networks: optimizer steps run
    bundle: Any = field(repr=False)  # the updated model (what the new version holds)
    example: np.ndarray = field(repr=False)  # the input example it was registered with
    update_keys: tuple[np.ndarray, np.ndarray] = field(repr=False)  # (symbols, ts) learnt from
    holdout_keys: tuple[np.ndarray, np.ndarray] = field(repr=False)  # (symbols, ts) held out

    def to_dict(self) -> dict[str, Any]:
        skip = {"bundle", "example", "update_keys", "holdout_keys"}
        return {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skip
        }


def new_labelled_rows(
    data: TrainingData, trained_through: np.datetime64, window: int = 1, min_history: int = 0
) -> np.ndarray:
    """Rows after ``trained_through`` whose labels are all known: every horizon finite and at
    least ``max(horizons)`` later bars of the same symbol in ``data``; each also ends a full
    input window after ``min_history`` bars of warm-up (as in training)."""
    n = len(data)
    if not n:
        return np.empty(0, dtype=np.int64)
    starts = np.r_[0, np.flatnonzero(data.symbols[1:] != data.symbols[:-1]) + 1]
    lengths = np.diff(np.r_[starts, n])
    last = np.repeat(np.r_[starts[1:], n] - 1, lengths)  # last row of each row's symbol
    later = last - np.arange(n)
    ok = (
        (data.ts > trained_through)
        & np.isfinite(data.returns).all(axis=1)
        & (later >= max(data.horizons))
        & (data.row_in_symbol >= window - 1 + min_history)
    )
    return np.flatnonzero(ok)


def split_in_time(
    ts: np.ndarray, rows: np.ndarray, holdout: float, purge: int
) -> tuple[np.ndarray, np.ndarray]:
    """(update rows, holdout rows): the bars of ``rows`` in time order, ``purge`` bars dropped
    between the two so no update label overlaps a holdout bar; the holdout is the last
    ``holdout`` share of the bars left after the purge (none when too few bars remain)."""
    if not 0 <= holdout < 1:
        raise ValueError(f"holdout must be in [0, 1), got {holdout}")
    times = np.unique(ts[rows])
    left = len(times) - purge
    n_hold = min(math.ceil(left * holdout), left - 1) if holdout and left >= 2 else 0
    if not n_hold:
        return rows, np.empty(0, dtype=np.int64)
    n_update = left - n_hold
    update = rows[ts[rows] <= times[n_update - 1]]
    held = rows[ts[rows] >= times[len(times) - n_hold]]
    return update, held


def holdout_metrics(
    pred: np.ndarray, true: np.ndarray, ts: np.ndarray, horizons: Sequence[int]
) -> dict[str, float | None]:
    """MSE and IC per horizon on the holdout rows, and their means over horizons."""
    if not len(true):
        keys = [f"{m}_h{h}" for h in horizons for m in ("mse", "ic")]
        return dict.fromkeys([*keys, "mse_mean", "ic_mean"])
    out: dict[str, float | None] = {}
    mses, ics = [], []
    for k, h in enumerate(horizons):
        m = mse(pred[:, k], true[:, k])
        ic = information_coefficients(pred[:, k], true[:, k], ts, overlap=h)["ic"].value
        mses.append(m)
        ics.append(ic)
        out[f"mse_h{h}"], out[f"ic_h{h}"] = m, ic
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all NaN: the mean is undefined too
        out["mse_mean"] = float(np.nanmean(mses))
        out["ic_mean"] = float(np.nanmean(ics))
    return {k: (float(v) if v is not None and np.isfinite(v) else None) for k, v in out.items()}


def _latest(client, name: str):
    versions = client.search_model_versions(f"name='{name}'")
    return max(versions, key=lambda v: int(v.version)) if versions else None


def resolve_base(
    client,
    family: str | None = None,
    version: str | int | None = None,
    action: str = "update",
    families: Sequence[str] = UPDATABLE,
):
    """(family, model version) to ``action`` (update, explain), among ``families``: the named
    version; else the family's @champion; else its latest version. With no family: the family
    whose model holds @champion, else the family registered most recently."""
    names = {f: REGISTERED_NAMES[f] for f in families}
    if family is None:
        try:
            champion = holder(client, CHAMPION)
        except ValueError as exc:  # several hold it
            message = f"{exc}, or name the family to {action} ({', '.join(families)})"
            raise ValueError(message) from exc
        champions = [champion[0]] if champion else []
        if champions:
            by_name = {v: k for k, v in names.items()}
            if champions[0] not in by_name:
                raise ValueError(
                    f"the champion is {champions[0]}, which {action} does not cover: "
                    f"name one family to {action} ({', '.join(families)})"
                )
            family = by_name[champions[0]]
        else:
            latest = {f: v for f in families if (v := _latest(client, names[f])) is not None}
            if not latest:
                raise ValueError(
                    f"no model is registered yet ({', '.join(names.values())}): "
                    "train one first (qtis train)"
                )
            family = max(latest, key=lambda f: int(latest[f].creation_timestamp))
    if family not in names:
        raise ValueError(f"cannot {action} {family!r}: choose from {', '.join(families)}")
    name = names[family]
    if version is not None:
        try:
            return family, client.get_model_version(name, str(version))
        except MlflowException as exc:
            raise ValueError(f"{name} has no version {version}") from exc
    registered = client.search_registered_models(f"name = '{name}'")
    aliases = (registered[0].aliases or {}) if registered else {}
    if CHAMPION in aliases:
        return family, client.get_model_version(name, str(aliases[CHAMPION]))
    found = _latest(client, name)
    if found is None:
        raise ValueError(
            f"{name} is not registered yet: train it first (qtis train --model {family})"
        )
    return family, found


def _predict(bundle: Any, data: TrainingData, rows: np.ndarray) -> np.ndarray:
    if not len(rows):
        return np.empty((0, len(data.horizons)), dtype=np.float32)
    if getattr(bundle, "cross_sectional", False):  # each row inside its bar's cross-section
        return predict_cross_sections(bundle, data, rows)
    if hasattr(bundle, "predict_windows"):
        return bundle.predict_rows(data.features, rows)
    return bundle.predict_features(data.features[rows])


@dataclass(frozen=True)
class _Base:
    """The registered version an update starts from, with the params and tags of its run."""

    family: str
    name: str  # qtis-<family>
    version: str
    params: Mapping[str, str]
    tags: Mapping[str, str]  # its run's, raw: an update inherits them
    meta: VersionMeta  # the same, typed

    @property
    def window(self) -> int:
        return int(self.params.get("window", 1))

    @property
    def min_history(self) -> int:
        return int(self.params.get("min_history", 0))

    @property
    def trained_through(self) -> str:
        """The last training row, as tagged (an update refuses a base without one)."""
        return stamp(self.meta.trained_through)

    @property
    def seed(self) -> int:
        return int(self.params.get("seed", 7))


def _load_base(client, family: str | None, version: str | int | None) -> _Base:
    """The version to update; refuses one whose seen bars or input columns are unknown."""
    family, found = resolve_base(client, family, version)
    name = REGISTERED_NAMES[family]
    run = client.get_run(found.run_id)
    params, tags = run.data.params, run.data.tags
    meta = VersionMeta.from_tags(tags)
    if meta.trained_through is None:
        raise ValueError(
            f"{name} version {found.version} has no trained_through tag, so the bars it "
            "has seen are unknown: retrain it (qtis train)"
        )
    if meta.spec_hash not in (None, spec_hash()):
        raise ValueError(
            f"the feature spec changed since {name} version {found.version} was trained: "
            "its inputs no longer match, retrain it (qtis train)"
        )
    return _Base(family, name, str(found.version), params, tags, meta)


def _rows_to_learn(data: TrainingData, base: _Base) -> np.ndarray:
    """The newly labelled rows; NothingToUpdate when the base has seen them all."""
    before = base.trained_through
    trained_through = np.datetime64(before, "us")
    rows = new_labelled_rows(data, trained_through, base.window, base.min_history)
    if not len(rows):
        raise NothingToUpdate(
            f"nothing to update: {base.name} version {base.version} has seen every "
            f"labelled bar up to {before} (a bar's label is known {max(data.horizons)} bars later)"
        )
    return rows


def _fit_update(
    base: _Base,
    bundle: Any,
    data: TrainingData,
    rows: np.ndarray,
    rounds: int,
    steps: int,
    lr: float,
) -> tuple[Any, dict[str, Any]]:
    """(updated bundle, details): more trees for a tree model, a fine-tune for a network."""
    if is_tree(base.family):
        return bundle.boosted(data, rows, rounds)
    params = base.params
    return update_network(
        bundle, data, rows, steps=steps, lr=lr,
        weight_decay=float(params.get("model_weight_decay", SequenceModel.weight_decay)),
        batch_size=int(params.get("model_batch_size", params.get("batch_size", 256))),
        seed=base.seed,
    )  # fmt: skip


def _example(data: TrainingData, base: _Base) -> np.ndarray:
    """The input example the new version is registered with (the last two inputs)."""
    window = base.window
    ends = window_ends(data, window, base.min_history)[-2:]
    if is_tree(base.family):
        return data.features[ends]
    return data.features[ends[:, None] + np.arange(-window + 1, 1)]


def _run_tags(
    base: _Base, data: TrainingData, update_rows: np.ndarray, held: np.ndarray, after: str
) -> dict[str, str]:
    """The base run's tags (less MLflow's and the commit) with what this update changed."""
    horizon = max(data.horizons)
    inherited = {
        k: v for k, v in base.tags.items() if not k.startswith("mlflow.") and k != "git_commit"
    }
    through = moment(np.datetime64(after))
    # the base's early stopping may have looked further than the update's labels
    labels = max(moment(data.label_end(update_rows, horizon)), base.meta.label_end or through)
    lineage = dataclasses.replace(
        base.meta, family=base.family, update_of=base.version, trained_through=through,
        label_end=labels,
    ).to_tags()  # fmt: skip
    changed = (FAMILY, UPDATE_OF, TRAINED_THROUGH, LABEL_END)
    return (
        inherited
        | {k: lineage[k] for k in changed}
        | {
            "update_rows": str(len(update_rows)),
            "holdout_rows": str(len(held)),
            "promotion": "pending",
            "data_end": str(data.ts.max()),
            "evaluation": (
                f"online update of version {base.version}: holdout after a purge of "
                f"{horizon} bars, out of sample for both"
            ),
        }
    )


def _report(
    base: _Base,
    data: TrainingData,
    update_rows: np.ndarray,
    held: np.ndarray,
    after: str,
    details: dict[str, Any],
    metrics: dict[str, dict[str, float | None]],
) -> dict[str, Any]:
    """The update report logged with the new version."""
    return {
        "base_version": base.version,
        "trained_through_before": base.trained_through,
        "trained_through_after": after,
        "update_rows": len(update_rows),
        "holdout_rows": len(held),
        "holdout_start": str(data.ts[held].min()) if len(held) else None,
        "holdout_end": str(data.ts[held].max()) if len(held) else None,
        "details": details,
        "metrics": metrics,
    }


def _attributions(
    updated: Any, data: TrainingData, base: _Base, update_rows: np.ndarray, samples: int
) -> Any:
    """The new version's attribution ranking, on bars it learnt from, against bars it had seen
    (None when ``samples`` is 0 or no bar was seen)."""
    seed = base.seed
    seen = window_ends(data, base.window, base.min_history)
    seen = seen[data.ts[seen] <= np.datetime64(base.trained_through, "us")]
    return explain.explain(
        updated, data, explain.sample_rows(update_rows, samples, seed),
        explain.sample_rows(seen, 100, seed + 1), seed=seed,
    ) if samples > 0 and len(seen) else None  # fmt: skip


def update_model(
    url: str,
    family: str | None = None,
    *,
    tracking: TrackingSettings,
    rounds: int = 50,
    steps: int = 50,
    lr: float = 1e-4,
    holdout: float = 0.2,
    version: str | int | None = None,
    end: datetime | None = None,
    explain_samples: int = 200,
) -> UpdateResult:
    """Fold the newly labelled bars into a registered model (``family`` None: the champion's
    family, else the most recently registered one; ``version`` None: its @champion, else its
    latest version) and register the result as the next version, ``promotion=pending``.
    ``end`` reads bars up to that time only (replays); ``tracking``: the MLflow store. Raises
    ValueError when there is nothing new to learn from (NothingToUpdate when every labelled bar
    is already in the model)."""
    if rounds < 1 or steps < 1:
        raise ValueError("rounds and steps must be at least 1")
    if not 0 <= holdout < 1:
        raise ValueError(f"holdout must be in [0, 1), got {holdout}")
    configure(url, tracking)
    base = _load_base(MlflowClient(), family, version)
    symbols = list(base.meta.symbols) or None
    data = load_training_data(url, symbols, end=end)
    rows = _rows_to_learn(data, base)
    update_rows, held = split_in_time(data.ts, rows, holdout, purge=max(data.horizons))
    bundle = load_bundle(base.name, base.version)
    updated, details = _fit_update(base, bundle, data, update_rows, rounds, steps, lr)
    truth, when = data.returns[held], data.ts[held]
    metrics = {
        which: holdout_metrics(_predict(model, data, held), truth, when, data.horizons)
        for which, model in (("base", bundle), ("updated", updated))
    }
    after = str(data.ts[update_rows].max())
    example = _example(data, base)
    update_params = {"update_rounds": rounds, "update_steps": steps, "update_lr": lr}
    update_params |= {"update_holdout": holdout, **{f"update_{k}": v for k, v in details.items()}}
    flat = {
        f"holdout_{which}_{key}": value
        for which, values in metrics.items()
        for key, value in values.items()
        if value is not None
    }
    attributions = _attributions(updated, data, base, update_rows, explain_samples)
    logged = log_update(
        base.family, updated, example, params=dict(base.params) | update_params,
        tags=_run_tags(base, data, update_rows, held, after), metrics=flat,
        report=_report(base, data, update_rows, held, after, details, metrics),
        feature_names=data.feature_names, attributions=attributions,
    )  # fmt: skip
    if attributions is not None:
        explain.save_ranking(url, base.name, str(logged["version"]), logged["run_id"], attributions)
    return UpdateResult(
        family=base.family,
        registered=base.name,
        base_version=base.version,
        new_version=str(logged["version"]),
        run_id=logged["run_id"],
        model_uri=logged["model_uri"],
        rows_used=len(update_rows),
        holdout_rows=len(held),
        trained_through_before=base.trained_through,
        trained_through_after=after,
        metrics=metrics,
        details=details,
        bundle=updated,
        example=example,
        update_keys=(data.symbols[update_rows], data.ts[update_rows]),
        holdout_keys=(data.symbols[held], data.ts[held]),
    )
