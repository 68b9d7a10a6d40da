"""Transfer learning: a network pre-trained on the whole universe, then fine-tuned once per group
(a symbol, or a sector of ``market.instruments``) on that group's training rows only.

The fine-tune step is the online update's (``training.incremental.update_network``): a fixed
number of AdamW steps from the pre-trained weights, inputs and targets scaled as at pre-training,
no validation rows (early stopping saw them in pre-training; the fine-tune sees no label beyond
the group's training rows). Evaluated beside the plain family (``with_fine_tuning``), both score
the same test rows and start from the same pre-trained weights, so that the difference is the
fine-tune alone (``training.transfer_report`` compares them)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from training.data import TrainingData
from training.families import GROUPINGS, fine_tuned_name
from training.incremental import update_network
from training.models.routed import RoutedBundle
from training.models.sequence import SequenceBundle, SequenceModel
from warehouse.db import connect

NO_SECTOR = ""  # the group of a symbol without a sector: never fine-tuned


def read_sectors(url: str, symbols: Sequence[str]) -> dict[str, str]:
    """Symbol -> sector from ``market.instruments`` (symbols without one are left out)."""
    with connect(url) as conn:
        rows = conn.execute(
            "select symbol, sector from market.instruments"
            " where symbol = any(%s) and sector is not null",
            (list(symbols),),
        ).fetchall()
    return dict(rows)


class SharedFit:
    """One pre-training per fold, shared by the family's entry and its fine-tuned entry of an
    evaluation: both then start from the very same weights (and the network trains once)."""

    def __init__(self, make: Callable[[], SequenceModel]) -> None:
        self.make = make
        # the last fold's fit only: (data, train rows, validation rows, fitted network)
        self._fitted: tuple[TrainingData, np.ndarray, np.ndarray, SequenceModel] | None = None

    def fit(self, data: TrainingData, train: np.ndarray, validation: np.ndarray) -> SequenceModel:
        last = self._fitted
        if not (
            last
            and last[0] is data
            and np.array_equal(last[1], train)
            and np.array_equal(last[2], validation)
        ):
            model = self.make().fit(data, train, validation)
            last = self._fitted = (data, train.copy(), validation.copy(), model)
        return last[3]

    def estimator(self) -> _Pretrained:
        return _Pretrained(self)


@dataclass
class _Pretrained:
    """The plain family's entry in an evaluation with fine-tuning: its shared pre-training."""

    shared: SharedFit

    def fit(self, data: TrainingData, train: np.ndarray, validation: np.ndarray) -> SequenceModel:
        return self.shared.fit(data, train, validation)


@dataclass
class FineTunedModel:
    """fit/predict estimator: pre-train ``base`` on all training rows (validation rows for early
    stopping), then fine-tune one copy per group on the group's training rows; predict routes
    each row to its group's weights, or the pre-trained ones for a group that was not fine-tuned
    (never seen, too few rows, no sector). ``groups``: symbol -> group (None: by symbol)."""

    base: Callable[[], SequenceModel] | SharedFit | None  # None: fine_tune given weights only
    group: str = "symbol"
    groups: Mapping[str, str] | None = None
    steps: int = 50
    lr: float = 1e-4
    weight_decay: float = SequenceModel.weight_decay
    batch_size: int = 256
    min_rows: int = 128  # a group with fewer training rows keeps the pre-trained weights
    seed: int = 7
    record: list[dict[str, Any]] | None = None  # each fit's details are appended here
    details_: dict[str, dict[str, Any]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        if self.group not in GROUPINGS:
            raise ValueError(f"unknown grouping {self.group!r}; choose from {GROUPINGS}")
        if self.steps < 1:
            raise ValueError("fine-tuning needs at least 1 step")

    def group_of(self, symbols: np.ndarray) -> np.ndarray:
        """Each row's group key."""
        if self.groups is None:
            return np.asarray(symbols, dtype=str)
        return np.array([self.groups.get(s, NO_SECTOR) for s in symbols], dtype=str)

    def fit(self, data: TrainingData, train: np.ndarray, validation: np.ndarray) -> FineTunedModel:
        if self.base is None:
            raise ValueError("FineTunedModel.fit needs a base network to pre-train")
        shared = self.base if isinstance(self.base, SharedFit) else SharedFit(self.base)
        model = shared.fit(data, train, validation)
        self.processes_ = getattr(model, "processes_", 1)
        self.pretrained_ = model.bundle()
        self.fine_tune(self.pretrained_, data, train)
        return self

    def fine_tune(self, pretrained: SequenceBundle, data: TrainingData, train: np.ndarray) -> None:
        """One copy of ``pretrained`` per group, fine-tuned on that group's ``train`` rows."""
        self.pretrained_ = pretrained
        self.bundles_: dict[str, SequenceBundle] = {}
        self.details_ = {}
        keys = self.group_of(data.symbols[train])
        for group in sorted(map(str, set(keys))):
            rows = train[keys == group]
            detail: dict[str, Any] = {"train_rows": len(rows), "fine_tuned": False}
            if group == NO_SECTOR:
                detail["reason"] = "no sector in market.instruments: pre-trained weights"
            elif len(rows) < self.min_rows:
                detail["reason"] = f"fewer than {self.min_rows} training rows: pre-trained weights"
            else:
                self.bundles_[group], info = update_network(
                    pretrained, data, rows, steps=self.steps, lr=self.lr,
                    weight_decay=self.weight_decay, batch_size=self.batch_size, seed=self.seed,
                    compiled=False,
                )  # fmt: skip
                detail |= {"fine_tuned": True} | info
            self.details_[group or "(no sector)"] = detail
        if self.record is not None:
            self.record.append(self.details_)

    def bundle(self) -> RoutedBundle:
        """The pre-trained network and its copies, routed by symbol: what is registered."""
        if self.groups is None:
            routes = {group: group for group in self.bundles_}
        else:
            routes = {s: g for s, g in self.groups.items() if g in self.bundles_}
        return RoutedBundle(self.pretrained_, dict(self.bundles_), routes, self.group)

    def predict(self, data: TrainingData, rows: np.ndarray) -> np.ndarray:
        unseen = {"train_rows": 0, "fine_tuned": False, "reason": "no training rows"}
        for group in map(str, set(self.group_of(data.symbols[rows]))):
            self.details_.setdefault(group or "(no sector)", unseen)  # in the fold's record too
        return self.bundle().predict_rows(data.features, rows, data.symbols)


@dataclass
class FineTuning:
    """What ``with_fine_tuning`` set up: the grouping, each family's fine-tune settings (steps,
    lr, min_rows, batch_size) and per-fold fit details."""

    group: str
    groups: Mapping[str, str] | None = None  # symbol -> sector (None: by symbol)
    seed: int = 7
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)  # family -> settings
    details: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # family -> folds

    def fine_tuned(
        self, family: str, pretrained: SequenceBundle, data: TrainingData, train: np.ndarray
    ) -> RoutedBundle:
        """``pretrained`` and its copies fine-tuned on ``train`` as the evaluation did: the model
        that is registered beside the pre-trained one."""
        model = FineTunedModel(
            None, self.group, self.groups, seed=self.seed, **self.settings[family]
        )
        model.fine_tune(pretrained, data, train)
        return model.bundle()


def with_fine_tuning(
    factories: Mapping[str, Callable[[], Any]],
    networks: Sequence[str],
    group: str,
    groups: Mapping[str, str] | None = None,
    *,
    steps: int = 50,
    lr: float = 1e-4,
    min_rows: int = 128,
    batch_size: int = 256,
    seed: int = 7,
    tuned: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[dict[str, Callable[[], Any]], FineTuning]:
    """``factories`` with each network family in ``networks`` followed by its fine-tuned
    variant (``fine_tuned_name``); the two share each fold's pre-training. ``tuned``: a
    variant's settings from its study (steps, lr, min_rows), over the ones given here."""
    tuning = FineTuning(group, groups, seed)
    given = {"steps": steps, "lr": lr, "min_rows": min_rows, "batch_size": batch_size}
    out: dict[str, Callable[[], Any]] = {}
    for name, make in factories.items():
        if name not in networks:
            out[name] = make
            continue
        variant = fine_tuned_name(name, group)
        settings = tuning.settings[name] = given | dict((tuned or {}).get(variant, {}))
        shared = SharedFit(make)
        record = tuning.details[name] = []
        out[name] = shared.estimator
        out[variant] = functools.partial(
            FineTunedModel, shared, group, groups, seed=seed, record=record, **settings
        )
    return out, tuning
