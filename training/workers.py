"""Where tuning workers come from: a fork server that imported the training stack once.

A spawned worker pays ~5-8 s of imports (torch, Lightning, Optuna, MLflow) before its first
trial; a worker forked from the server starts in milliseconds with all of it loaded, so the
import cost is paid once per process (and hidden when the server starts while the caller is
still importing). Forking the caller itself is not safe: once it has trained with several
threads, a forked child hangs in its first OpenMP parallel region. The server never trains.

Light on purpose (no torch import): the CLI starts the server before its own heavy imports.
"""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing import forkserver
from multiprocessing.context import BaseContext

PRELOAD = ["training.tuning"]


def context() -> BaseContext:
    """The fork-server context whose server preloads the tuning code."""
    found = multiprocessing.get_context("forkserver")
    found.set_forkserver_preload(PRELOAD)
    return found


def prestart() -> None:
    """Start the fork server now (idempotent): its imports then overlap the caller's work."""
    context()
    forkserver.ensure_running()


def environment() -> tuple[dict[str, str], str]:
    """What a worker must see as its caller does: the server keeps the environment and the
    directory it started with, which tests and scripts may have changed since."""
    return dict(os.environ), os.getcwd()


def adopt(env: dict[str, str], cwd: str) -> None:
    """In the worker: take the caller's environment and directory (see :func:`environment`)."""
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
