"""The cross-asset family's estimator: the network (``networks.CrossAssetAttention``) attends
across the symbols of a cross-section, so its samples are cross-sections, not windows. Training
batches stack the windows of every training row at one bar (padded to the widest, padding
masked); a prediction for (symbol, bar) is made inside the bar's full cross-section, every symbol
with a full window then, whichever rows were asked for, so it never depends on the request."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from training.data import TrainingData
from training.models.sequence import (
    SequenceBundle,
    SequenceModel,
    SequenceModule,
    masked_mse,
)
from training.windows import WindowDataModule, window_ends


def by_time(ts: np.ndarray, rows: np.ndarray) -> list[np.ndarray]:
    """``rows`` grouped by bar, earliest first; within a bar in row order (the symbols')."""
    rows = np.asarray(rows)
    ordered = rows[np.argsort(ts[rows], kind="stable")]
    times = ts[ordered]
    return np.split(ordered, np.flatnonzero(times[1:] != times[:-1]) + 1) if len(rows) else []


class CrossSectionDataset(Dataset):
    """One item per bar: the windows (symbols, window, features) of the bar's rows and their
    targets (symbols, horizons), sliced from the scaled features (no copy of the data)."""

    def __init__(
        self, features: np.ndarray, targets: np.ndarray, groups: list[np.ndarray], window: int
    ) -> None:
        self.features, self.targets, self.groups = features, targets, groups
        self.offsets = np.arange(-window + 1, 1)

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows = self.groups[k]
        x = self.features[rows[:, None] + self.offsets]
        return torch.from_numpy(x), torch.from_numpy(self.targets[rows])


def pad_cross_sections(
    items: list[tuple[torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cross-sections of different widths -> (x (batch, symbols, window, features), targets with
    NaN for the padding (``masked_mse`` skips it), padding mask (batch, symbols) True where
    absent)."""
    widest = max(len(x) for x, _ in items)
    x0, y0 = items[0]
    x = x0.new_zeros((len(items), widest, *x0.shape[1:]))
    y = y0.new_full((len(items), widest, *y0.shape[1:]), float("nan"))
    padding = torch.ones(len(items), widest, dtype=torch.bool)
    for i, (xi, yi) in enumerate(items):
        x[i, : len(xi)], y[i, : len(yi)], padding[i, : len(xi)] = xi, yi, False
    return x, y, padding


class CrossSectionDataModule(WindowDataModule):
    """A fold's cross-sections: scaling as for windows (``WindowDataModule``); a batch holds
    ``batch_size`` cross-sections."""

    collate_fn = staticmethod(pad_cross_sections)

    def dataset(self, rows: np.ndarray) -> Dataset:
        return CrossSectionDataset(
            self.features, self.targets, by_time(self.data.ts, rows), self.window
        )


class CrossSectionModule(SequenceModule):
    """Batches of padded cross-sections through ``CrossAssetAttention.cross_sections``."""

    def forward(self, x: torch.Tensor, padding: torch.Tensor | None = None) -> torch.Tensor:
        return self.net.cross_sections(x, padding)

    def training_step(self, batch: tuple[torch.Tensor, ...], _: int) -> torch.Tensor:
        x, y, padding = batch
        loss = masked_mse(self(x, padding), y)
        self.log("train_loss", loss, prog_bar=True, sync_dist=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, ...], _: int) -> None:
        x, y, padding = batch
        self.log("val_loss", masked_mse(self(x, padding), y), prog_bar=True, sync_dist=True)

    def predict_step(self, batch: tuple[torch.Tensor, ...], _: int) -> torch.Tensor:
        return self(batch[0], batch[2])


@dataclass
class CrossAssetModel(SequenceModel):
    """``SequenceModel`` on cross-sections: ``batch_size`` still counts windows (a batch holds as
    many whole cross-sections as fit in it, at least one), so a step's size stays about the
    same from ten symbols to hundreds."""

    kind: str = "cross_asset"
    module_class = CrossSectionModule

    def datamodule(
        self, data: TrainingData, train: np.ndarray, validation: np.ndarray
    ) -> WindowDataModule:
        widest = max(len(g) for g in by_time(data.ts, train))
        per_batch = max(1, self.batch_size // widest)
        return CrossSectionDataModule(data, train, validation, self.window, per_batch, self.seed)

    def predict(self, data: TrainingData, rows: np.ndarray) -> np.ndarray:
        return predict_cross_sections(self.bundle(), data, rows)


@torch.inference_mode()
def predict_cross_sections(
    bundle: SequenceBundle, data: TrainingData, rows: np.ndarray, chunk: int = 2048
) -> np.ndarray:
    """(len(rows), horizons): each row's forecast inside its bar's full cross-section (every
    symbol with a full window at that bar), cross-sections scored about ``chunk`` windows a
    call."""
    rows = np.asarray(rows)
    out = np.empty((len(rows), bundle.n_outputs), dtype=np.float32)
    if not len(rows):
        return out
    if (data.row_in_symbol[rows] < bundle.window - 1).any():
        raise ValueError(f"rows to predict must end a full {bundle.window}-bar window")
    full = window_ends(data, bundle.window)
    members = full[np.isin(data.ts[full], np.unique(data.ts[rows]))]
    groups = by_time(data.ts, members)
    order = np.concatenate(groups)
    found = np.empty((len(order), bundle.n_outputs), dtype=np.float32)
    net, offsets = bundle.net(), np.arange(-bundle.window + 1, 1)
    start = done = 0
    while start < len(groups):
        stop, size = start, 0
        while stop < len(groups) and (size == 0 or size + len(groups[stop]) <= chunk):
            size += len(groups[stop])
            stop += 1
        items = [
            (torch.from_numpy(bundle.scaler.transform(data.features[g[:, None] + offsets])),
             torch.zeros(len(g), 0))
            for g in groups[start:stop]
        ]  # fmt: skip
        x, _, padding = pad_cross_sections(items)
        pred = net.cross_sections(x, padding)[~padding].numpy()
        found[done : done + size] = pred
        start, done = stop, done + size
    position = np.argsort(order)
    out[:] = found[position[np.searchsorted(order[position], rows)]] * bundle.target_scale
    return out
