"""GPU-ready defaults: accelerator and devices 'auto', a precision option, loader workers and
pinned memory on a GPU; on a machine without one, training is exactly what it was on the CPU."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.accelerators import CPUAccelerator, CUDAAccelerator

from cli.pipeline import train
from tests.support.cli import qtis
from training.data import TrainingData
from training.distributed import PRECISIONS, loader_options
from training.models.sequence import SequenceModel
from training.runner import SIZES, TrainConfig

TINY = {"hidden": (8, 4), "dense": 4}


def _data(n_times: int = 300, symbols: int = 2, seed: int = 0) -> TrainingData:
    rng = np.random.default_rng(seed)
    n = n_times * symbols
    features = rng.normal(size=(n, 4)).astype(np.float32)
    returns = (0.01 * features[:, :2] + rng.normal(0, 1e-3, (n, 2))).astype(np.float32)
    return TrainingData(
        symbols=np.repeat([f"S{i}" for i in range(symbols)], n_times),
        ts=np.tile(np.arange(n_times).astype("datetime64[D]").astype("datetime64[us]"), symbols),
        features=features, returns=returns, volatility=np.abs(returns),
        feature_names=("a", "b", "c", "d"), horizons=(1, 5),
    )  # fmt: skip


class Seen(L.Callback):
    """What the Trainer ran with: its precision and the training DataLoader's options."""

    def on_train_start(self, trainer: L.Trainer, _: L.LightningModule) -> None:
        loader = trainer.train_dataloader
        self.precision = trainer.precision
        self.loader = (loader.num_workers, loader.pin_memory)
        self.accelerator = type(trainer.accelerator).__name__


def _fit(kind: str = "lstm", **kwargs) -> tuple[SequenceModel, Seen]:
    seen = Seen()
    rows = np.arange(20, 600)
    train = rows[(rows % 300 >= 20) & (rows % 300 < 240)]
    val = rows[rows % 300 >= 260]
    config = TINY if kind == "lstm" else SIZES["tiny"][kind]
    model = SequenceModel(
        kind, window=10, config=config, max_epochs=2, batch_size=32, callbacks=[seen], **kwargs
    )
    return model.fit(_data(), train, val), seen


def test_defaults_find_a_gpu_and_offer_precisions():
    assert SequenceModel().accelerator == "auto" and TrainConfig().accelerator == "auto"
    assert SequenceModel().precision == TrainConfig().precision == "32"
    options = inspect.signature(train).parameters
    assert options["accelerator"].default == "auto" and options["devices"].default == "auto"
    assert options["precision"].default == "32" and options["num_nodes"].default == 1
    assert {"32", "bf16-mixed", "16-mixed"} <= set(PRECISIONS)
    with pytest.raises(ValueError, match=r"precision '8'.*bf16-mixed"):
        TrainConfig(precision="8").factories()


@pytest.mark.slow  # two fits
@pytest.mark.skipif(torch.cuda.is_available(), reason="compares the CPU path")
def test_auto_without_a_gpu_trains_exactly_as_the_cpu_did():
    cpu, seen_cpu = _fit(accelerator="cpu", devices=1)
    auto, seen_auto = _fit()  # the defaults
    assert seen_auto.accelerator == seen_cpu.accelerator == "CPUAccelerator"
    assert seen_auto.loader == seen_cpu.loader == (0, False)  # no workers, no pinning on CPU
    for name, tensor in cpu.bundle().state.items():
        assert torch.equal(tensor, auto.bundle().state[name]), name


def test_loader_workers_and_pinned_memory_only_on_a_gpu():
    """The choice itself (the fit above shows the CPU side in a real Trainer)."""
    gpu = loader_options(SimpleNamespace(accelerator=CUDAAccelerator(), num_devices=1))
    assert gpu["pin_memory"] and gpu["num_workers"] >= 1 and gpu["persistent_workers"]
    assert loader_options(SimpleNamespace(accelerator=CPUAccelerator(), num_devices=1)) == {}
    assert loader_options(None) == {}


@pytest.mark.slow  # two fits
def test_precision_reaches_the_trainer():
    # the CNN: oneDNN has no bf16 LSTM kernel on a CPU without AVX-512 (an AMD EPYC here)
    full, seen_full = _fit("cnn")
    mixed, seen_mixed = _fit("cnn", precision="bf16-mixed")  # CPU autocast, tensor cores on GPU
    assert (seen_full.precision, seen_mixed.precision) == ("32-true", "bf16-mixed")
    rows = np.arange(560, 580)
    a, b = full.predict(_data(), rows), mixed.predict(_data(), rows)
    assert np.isfinite(b).all() and not np.array_equal(a, b)


@pytest.mark.slow  # the CLI loads torch and lightning
def test_cli_refuses_an_unknown_precision_in_one_line():
    done = qtis("train", "--precision", "8", "--no-track", env={})
    assert done.returncode == 2 and "bf16-mixed" in done.stderr
    assert "Traceback" not in done.stderr
