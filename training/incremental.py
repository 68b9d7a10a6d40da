"""How a network learns from new rows without a full retrain (``training.online`` picks the
rows and registers the result; a tree model boosts more rounds itself, ``TreeModel.boosted``):
it is fine-tuned from its weights on inputs scaled with the scaler and target scale it was
trained with (never refitted), and recompiled to ONNX."""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from training.data import TrainingData
from training.models.cross_asset import (
    CrossSectionDataset,
    CrossSectionModule,
    by_time,
    pad_cross_sections,
)
from training.models.sequence import SequenceModel, SequenceModule
from training.windows import WindowDataset


def update_network(
    base: Any,
    data: TrainingData,
    rows: np.ndarray,
    *,
    steps: int,
    lr: float,
    weight_decay: float,
    batch_size: int,
    seed: int,
    compiled: bool = True,
):
    """At most ``steps`` AdamW steps from the base weights on windows ending at ``rows``, inputs
    and targets scaled as at training (the bundle's scaler and target scale, kept fixed);
    ``compiled``: exported to ONNX for serving (seconds per call; an evaluation's copies that
    are never registered predict with torch instead)."""
    if len(rows) < 2:  # batch norm needs more than one window per batch
        raise ValueError(f"{len(rows)} new labelled bar: too few to fine-tune a network on")
    L.seed_everything(seed, workers=True, verbose=False)
    cross = base.cross_sectional  # learns from whole cross-sections (the new rows of each bar)
    module = (CrossSectionModule if cross else SequenceModule)(
        base.kind, base.n_features, base.n_outputs, base.window, base.config, lr, weight_decay
    )
    module.net.load_state_dict(base.state)
    features = base.scaler.transform(data.features)
    targets = (data.returns / base.target_scale).astype(np.float32)
    if cross:
        groups = by_time(data.ts, rows)
        dataset = CrossSectionDataset(features, targets, groups, base.window)
        size = max(1, batch_size // max(len(g) for g in groups))  # batch_size counts windows
    else:
        dataset, size = WindowDataset(features, targets, rows, base.window), batch_size
    loader = DataLoader(
        dataset,
        batch_size=min(size, len(dataset)),
        shuffle=True,
        generator=torch.Generator().manual_seed(seed),
        drop_last=len(dataset) > size,  # no odd short batch (batch norm needs 2 windows)
        collate_fn=pad_cross_sections if cross else None,
    )
    trainer = SequenceModel(kind=base.kind, window=base.window)._trainer(
        max_steps=steps, limit_val_batches=0
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*no `val_dataloader`.*")  # none wanted
        trainer.fit(module, train_dataloaders=loader)
    state = {k: v.detach().cpu().clone() for k, v in module.net.state_dict().items()}
    updated = dataclasses.replace(base, state=state, onnx=None)
    if compiled:
        updated.compile()
    return updated, {"steps": int(trainer.global_step), "batch_size": loader.batch_size}
