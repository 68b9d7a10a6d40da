"""The training set of two bundled symbols, shared by the model tests' modules."""

from __future__ import annotations

import pytest

from training.data import TrainingData, load_training_data


@pytest.fixture(scope="module")
def data(built) -> TrainingData:
    return load_training_data(built[0], symbols=["IBM", "MSFT"])
