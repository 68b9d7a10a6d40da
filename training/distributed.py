"""Where training runs: CPU or GPU, one process, several devices or several machines (nodes).

Lightning does the work; this module holds what QTIS decides around it: which process reports,
how a node process finds the others, and how batches reach a GPU."""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from typing import Any

import torch
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.accelerators import CUDAAccelerator

# Lightning precisions offered: full, and the two mixed ones (bf16 needs an Ampere or later GPU;
# 16-mixed scales the loss to keep small gradients)
PRECISIONS = ("32", "16-mixed", "bf16-mixed")
RENDEZVOUS = ("MASTER_ADDR", "MASTER_PORT")
LOADER_WORKERS_MAX = 4


def global_rank() -> int:
    """This process's rank under Lightning DDP (0 when not distributed): DDP re-runs the whole
    command in every process, and only rank 0 may log, register or print. Before its first
    Trainer, a node process started by hand knows only its node rank: a nonzero one stands in."""
    return int(getattr(rank_zero_only, "rank", 0)) or int(os.environ.get("NODE_RANK") or 0)


def join_nodes(
    num_nodes: int, node_rank: int, environ: MutableMapping[str, str] = os.environ
) -> None:
    """Make this process node ``node_rank`` of ``num_nodes`` for Lightning: every node runs the
    same command and meets the others at ``MASTER_ADDR:MASTER_PORT`` (node 0's address and a
    free port on it), which must be set alike on every node."""
    if num_nodes < 1:
        raise ValueError(f"--num-nodes must be at least 1, got {num_nodes}")
    if not 0 <= node_rank < num_nodes:
        raise ValueError(f"--node-rank must be in 0..{num_nodes - 1}, got {node_rank}")
    if num_nodes == 1:
        return
    missing = [name for name in RENDEZVOUS if not environ.get(name)]
    if missing:
        raise ValueError(
            f"training on {num_nodes} nodes needs {' and '.join(missing)} in the environment of "
            "every node: node 0's address and a free port on it (e.g. MASTER_ADDR=10.0.0.1 "
            "MASTER_PORT=29500)"
        )
    environ["NODE_RANK"] = str(node_rank)


def on_cuda(accelerator: str) -> bool:
    """Whether Lightning's ``accelerator`` choice lands on an NVIDIA GPU on this machine."""
    return accelerator in ("cuda", "gpu") or (accelerator == "auto" and torch.cuda.is_available())


def loader_options(trainer: Any) -> dict[str, Any]:
    """DataLoader arguments for ``trainer``'s device. On a GPU, worker processes cut the next
    windows while it computes and pinned memory speeds the copy to it; on a CPU the loading stays
    in the training process (workers would take cores from the computation), as it always was."""
    if trainer is None or not isinstance(trainer.accelerator, CUDAAccelerator):
        return {}
    cores = (os.cpu_count() or 1) // max(1, trainer.num_devices)
    workers = max(1, min(LOADER_WORKERS_MAX, cores - 1))
    return {"num_workers": workers, "pin_memory": True, "persistent_workers": True}
