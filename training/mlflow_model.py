"""The MLflow pyfunc face of a registered QTIS model, logged as code (MLflow's models-from-code:
``training.tracking.log_model`` passes this file's path), so that nothing is pickled: it reads
the portable files (:mod:`training.portable`) of the ``qtis`` artifact. MLflow runs this file
when it loads the model (``mlflow.pyfunc.load_model``); QTIS itself reads the files directly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import numpy as np

from training.portable import read


class QtisModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context: Any) -> None:
        self.impl = read(Path(context.artifacts["qtis"]))

    # an ndarray hint: MLflow then skips its type-hint validation (the signature is given
    # explicitly) instead of warning on every log_model
    def predict(self, context: Any, model_input: np.ndarray, params: dict | None = None):
        return self.impl.predict(model_input)


mlflow.models.set_model(QtisModel())
