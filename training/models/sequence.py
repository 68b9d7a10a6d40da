"""The sequence families' estimators on windows (networks in ``training.models.networks``),
trained with Lightning (devices, precision and nodes pass through; CPU by default where no GPU
is found)."""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import lightning as L
import numpy as np
import torch

from training.data import TrainingData
from training.distributed import on_cuda
from training.models import onnx_export
from training.models.networks import NETWORKS, build_network, network_config
from training.windows import FeatureScaler, WindowDataModule


def masked_mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE over the labels that exist (the last bars of a symbol lack the longer horizons)."""
    ok = ~torch.isnan(target)
    return ((pred - torch.nan_to_num(target)) ** 2 * ok).sum() / ok.sum().clamp(min=1)


class SequenceModule(L.LightningModule):
    def __init__(
        self,
        kind: str,
        n_features: int,
        n_outputs: int,
        window: int,
        config: dict[str, Any],
        lr: float,
        weight_decay: float,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = build_network(kind, n_features, n_outputs, window, config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        loss = masked_mse(self(batch[0]), batch[1])
        self.log("train_loss", loss, prog_bar=True, sync_dist=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        self.log("val_loss", masked_mse(self(batch[0]), batch[1]), prog_bar=True, sync_dist=True)

    def predict_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        return self(batch[0])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        hp = self.hparams
        return torch.optim.AdamW(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)


@dataclass
class SequenceModel:
    """fit/predict estimator: ``kind`` names a network of ``training.models.networks.NETWORKS``;
    sizes default to the seed's."""

    kind: str = "lstm"
    window: int = 60
    config: dict[str, Any] = field(default_factory=dict)
    max_epochs: int = 20
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 3
    seed: int = 7
    accelerator: str = "auto"  # a GPU when there is one, else the CPU
    devices: int | str = 1
    strategy: str = "auto"
    precision: str = "32"  # or "bf16-mixed" / "16-mixed" (training.distributed.PRECISIONS)
    num_nodes: int = 1
    max_steps: int = -1  # optimizer steps to stop after (-1: epochs and early stopping decide)
    progress: bool = False
    callbacks: list[Any] = field(default_factory=list)  # extra Lightning callbacks (pruning)

    module_class: ClassVar[type[SequenceModule]] = SequenceModule

    def __post_init__(self) -> None:
        self.config = asdict(network_config(self.kind, {})) | dict(self.config)
        self.module: SequenceModule | None = None  # with scaler and target_scale, set by fit

    def _trainer(self, **kwargs: Any) -> L.Trainer:
        if not self.progress:  # device banners and tips once per fold drown the report
            logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
            os.environ.setdefault("LITLOGGER_DISABLE_TIP", "1")
        warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=r".*LeafSpec.*is deprecated.*")
        gpu = on_cuda(self.accelerator)
        options = {
            "accelerator": self.accelerator,
            "devices": self.devices,
            "strategy": self.strategy,
            "precision": self.precision,
            "num_nodes": self.num_nodes,
            "max_steps": self.max_steps,
            "logger": False,
            "enable_checkpointing": False,
            "enable_progress_bar": self.progress,
            "enable_model_summary": False,
            # on a GPU an op without a deterministic kernel warns instead of stopping training
            "deterministic": "warn" if gpu else True,
            "use_distributed_sampler": False,  # WindowDataModule deals out its own permutation
            "sync_batchnorm": gpu,  # SyncBatchNorm needs GPUs
        }
        return L.Trainer(**(options | kwargs))

    def fit(self, data: TrainingData, train: np.ndarray, validation: np.ndarray) -> SequenceModel:
        L.seed_everything(self.seed, workers=True, verbose=False)
        datamodule = self.datamodule(data, train, validation)
        self.scaler, self.target_scale = datamodule.scaler, datamodule.target_scale
        self.module = self.module_class(
            self.kind, data.features.shape[1], data.returns.shape[1], self.window, self.config,
            self.lr, self.weight_decay,
        )  # fmt: skip
        callbacks = list(self.callbacks)
        if len(validation):
            callbacks.append(L.pytorch.callbacks.EarlyStopping("val_loss", patience=self.patience))
        trainer = self._trainer(
            max_epochs=self.max_epochs,
            callbacks=callbacks,
            limit_val_batches=1.0 if len(validation) else 0,
        )
        trainer.fit(self.module, datamodule=datamodule)
        self.epochs_, self.processes_ = trainer.current_epoch, trainer.world_size
        return self

    def datamodule(
        self, data: TrainingData, train: np.ndarray, validation: np.ndarray
    ) -> WindowDataModule:
        """The fold's batches: windows, each an independent sample."""
        return WindowDataModule(data, train, validation, self.window, self.batch_size, self.seed)

    def bundle(self) -> SequenceBundle:
        """Everything prediction needs, without Lightning or the training data (for MLflow)."""
        if self.module is None:
            raise RuntimeError("SequenceModel.bundle before fit")
        hp = self.module.hparams
        return SequenceBundle(
            kind=self.kind,
            n_features=hp.n_features,
            n_outputs=hp.n_outputs,
            window=self.window,
            config=dict(self.config),
            state={k: v.detach().cpu().clone() for k, v in self.module.net.state_dict().items()},
            scaler=self.scaler,
            target_scale=self.target_scale,
        )

    def predict(self, data: TrainingData, rows: np.ndarray) -> np.ndarray:
        return self.bundle().predict_rows(data.features, rows)


@dataclass
class SequenceBundle:
    """A fitted network as plain state: raw feature windows in, returns per horizon out."""

    kind: str
    n_features: int
    n_outputs: int
    window: int
    config: dict[str, Any]
    state: dict[str, torch.Tensor]
    scaler: FeatureScaler
    target_scale: np.ndarray
    onnx: bytes | None = None  # set by compile(): predictions then run on ONNX Runtime

    def net(self) -> torch.nn.Module:
        if getattr(self, "_net", None) is None:
            # first built inside predict_windows' inference mode, its weights would be inference
            # tensors, which SHAP's expected gradients (autograd) cannot use later
            with torch.inference_mode(False):
                net = build_network(
                    self.kind, self.n_features, self.n_outputs, self.window, self.config
                )
                net.load_state_dict(self.state)
            self._net = net.eval()
        return self._net

    def compile(self) -> SequenceBundle:
        """Export the network for ONNX Runtime (checked against torch on a probe batch): the
        registered models serve single windows 2-3x faster this way."""
        probe = np.random.default_rng(0).normal(size=(3, self.window, self.n_features))
        self.onnx = onnx_export.export(self.net(), probe.astype(np.float32))
        self._session = None
        return self

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("_net", "_session")}

    @torch.inference_mode()
    def predict_windows(self, windows: np.ndarray) -> np.ndarray:
        """(batch, window, features) of raw feature values -> (batch, horizons)."""
        x = np.ascontiguousarray(self.scaler.transform(np.asarray(windows, dtype=np.float32)))
        if self.onnx is None:
            out = self.net()(torch.from_numpy(x)).numpy()
        else:
            if getattr(self, "_session", None) is None:
                self._session = onnx_export.session(self.onnx, threads=torch.get_num_threads())
            out = self._session.run(None, {"x": x})[0]
        return out * self.target_scale

    @torch.inference_mode()
    def attention(self, windows: np.ndarray) -> np.ndarray:
        """(batch, window, features) of raw feature values -> (batch, window) attention weights
        over the bars (each row sums to 1), for a network that pools by attention."""
        net = self.net()
        if not hasattr(net, "attention"):
            raise ValueError(f"a {self.kind} network has no attention weights over time")
        x = np.ascontiguousarray(self.scaler.transform(np.asarray(windows, dtype=np.float32)))
        return net.attention(torch.from_numpy(x))[1].numpy()

    @property
    def cross_sectional(self) -> bool:
        """Its network reads a batch as one cross-section: a batch of unrelated windows (other
        bars, other requests) must not be scored together."""
        return NETWORKS[self.kind].cross_sectional

    def predict_rows(self, features: np.ndarray, rows: np.ndarray, chunk: int = 2048) -> np.ndarray:
        if self.cross_sectional:
            raise ValueError(
                f"a {self.kind} network scores cross-sections, not loose rows: use "
                "training.models.cross_asset.predict_cross_sections(bundle, data, rows)"
            )
        parts = [np.empty((0, self.n_outputs), dtype=np.float32)]
        offsets = np.arange(-self.window + 1, 1)
        for start in range(0, len(rows), chunk):
            idx = rows[start : start + chunk, None] + offsets
            parts.append(self.predict_windows(features[idx]))
        return np.concatenate(parts)
