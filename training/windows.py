"""Model inputs: a train-fold scaler, windows of the last ``window`` bars as views, and the
Lightning DataModule that serves one fold's windows."""

from __future__ import annotations

import warnings

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from training.data import TrainingData
from training.distributed import loader_options


class FeatureScaler:
    """Per-feature standardization fitted on training rows only; undefined values become 0
    (the training mean) and extremes are clipped, so one bad bar cannot dominate a batch."""

    def __init__(self, clip: float = 10.0) -> None:
        self.clip = clip
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None

    def fit(self, features: np.ndarray) -> FeatureScaler:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (long warm-ups)
            mean = np.nanmean(features, axis=0, dtype=np.float64)
            std = np.nanstd(features, axis=0, dtype=np.float64)
        self.mean_ = np.nan_to_num(mean).astype(np.float32)
        self.scale_ = np.where(np.isfinite(std) & (std > 0), std, 1.0).astype(np.float32)
        return self

    def transform(self, features: np.ndarray) -> np.ndarray:
        if self.mean_ is None:
            raise RuntimeError("FeatureScaler.transform before fit")
        out = (features - self.mean_) / self.scale_
        np.nan_to_num(out, copy=False, nan=0.0, posinf=self.clip, neginf=-self.clip)
        return np.clip(out, -self.clip, self.clip, out=out)


def window_ends(data: TrainingData, window: int, min_history: int = 0) -> np.ndarray:
    """Rows that end a full window of one symbol, after ``min_history`` bars of warm-up."""
    return np.flatnonzero(data.row_in_symbol >= window - 1 + min_history)


class WindowDataset(Dataset):
    """(window x features, targets) for the given window-end rows; each item slices the scaled
    feature matrix, so memory is one copy of the data whatever the window length."""

    def __init__(
        self, features: np.ndarray, targets: np.ndarray, ends: np.ndarray, window: int
    ) -> None:
        self.features, self.targets = features, targets
        self.ends, self.window = ends, window

    def __len__(self) -> int:
        return len(self.ends)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        i = int(self.ends[k])
        x = self.features[i - self.window + 1 : i + 1]
        return torch.from_numpy(x), torch.from_numpy(self.targets[i])


class WindowDataModule(L.LightningDataModule):
    """One fold's windows: features scaled with statistics of the fold's training rows only,
    targets divided by their training-fold std (so every horizon weighs alike in the loss)."""

    def __init__(
        self,
        data: TrainingData,
        train: np.ndarray,
        validation: np.ndarray,
        window: int = 60,
        batch_size: int = 256,
        seed: int = 7,
    ) -> None:
        super().__init__()
        if not len(train):
            raise ValueError("WindowDataModule needs training rows")
        self.data, self.train_rows, self.validation_rows = data, train, validation
        self.window, self.batch_size, self.seed = window, batch_size, seed
        self.scaler = FeatureScaler().fit(data.features[train])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN long horizons at the end
            scale = np.nanstd(data.returns[train], axis=0)
        self.target_scale = np.where(scale > 0, scale, 1.0).astype(np.float32)

    def setup(self, stage: str) -> None:
        if not hasattr(self, "features"):
            self.features = self.scaler.transform(self.data.features)
            self.targets = (self.data.returns / self.target_scale).astype(np.float32)

    collate_fn = None  # how items become a batch (None: torch's default stacking)

    def dataset(self, rows: np.ndarray) -> Dataset:
        """The training items of ``rows``: one window each."""
        return WindowDataset(self.features, self.targets, rows, self.window)

    def train_dataloader(self) -> DataLoader:
        """One seeded permutation per epoch, dealt out across processes: under DDP with N
        processes, rank r takes every N-th window of it in batches of batch_size / N, so the
        union of a step's batches is the single-process batch and the averaged gradient is the
        same (up to float rounding, batch-norm statistics and dropout draws)."""
        trainer = self.trainer
        world, rank = (trainer.world_size, trainer.global_rank) if trainer else (1, 0)
        if self.batch_size % world:
            raise ValueError(f"batch_size {self.batch_size} is not divisible by {world} devices")
        dataset = self.dataset(self.train_rows)
        sampler = DistributedSampler(dataset, world, rank, shuffle=True, seed=self.seed)
        return DataLoader(
            dataset,
            batch_size=self.batch_size // world,
            sampler=sampler,
            collate_fn=self.collate_fn,
            **loader_options(trainer),
        )

    def val_dataloader(self) -> DataLoader:
        """Every process validates on all windows, so early stopping sees one number."""
        return DataLoader(
            self.dataset(self.validation_rows),
            batch_size=self.batch_size,
            shuffle=False,
            collate_fn=self.collate_fn,
            **loader_options(self.trainer),
        )
