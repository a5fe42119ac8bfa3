"""The registered model: raw rows in, predictions out.

MLflow loads this file as the model's code ("models from code": nothing of ours is pickled).
The model is its fitted estimators, each saved by its family's own MLflow flavor (one, or the
members of a blend, whose predictions it weighs), the members' weights and the feature
columns; every request's rows go through `steps.lib.data.tables.conform`, the very function
that shaped the training data, before the estimators see them. The `steps` package
ships inside the model (code_paths), so it loads wherever the pinned requirements are
installed."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel


class RawRowsModel(PythonModel):
    def load_context(self, context) -> None:
        self.columns = json.loads(Path(context.artifacts["columns"]).read_text())
        weights = json.loads(Path(context.artifacts["weights"]).read_text())
        self.members = [(mlflow.pyfunc.load_model(context.artifacts[name]), weight) for name, weight in weights.items()]

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:
        from steps.lib.data.tables import conform
        from steps.lib.model.blending import weighted_predictions

        rows = conform(model_input, self.columns["numeric"], self.columns["categorical"])
        return weighted_predictions(self.members, rows)


mlflow.models.set_model(RawRowsModel())
