"""One purged walk-forward fold of window end rows, for the model tests on the bundled sample."""

from __future__ import annotations

import numpy as np

from quant.splits import PurgedWalkForward
from training.data import TrainingData
from training.windows import window_ends


def window_fold(data: TrainingData, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train, validation and test rows of one fold (the last 20% tested, a 20-bar embargo),
    each kept to the rows where a ``window``-bar window ends after 200 bars of history."""
    ends = set(window_ends(data, window, 200))
    fold = next(iter(PurgedWalkForward(n_splits=1, horizon=20, first_test=0.8).split(data.ts)))
    pick = lambda rows: np.array([r for r in rows if r in ends])  # noqa: E731
    return pick(fold.train), pick(fold.validation), pick(fold.test)
