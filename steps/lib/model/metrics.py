"""Regression scores, keyed `<split>_<metric>` so every run logs the same names."""

from __future__ import annotations

import numpy as np


def score(y_true, y_pred, split: str) -> dict[str, float]:
    """RMSE, MAE and R² of predictions on one split."""
    y_true = np.asarray(y_true, dtype="float64")
    y_pred = np.asarray(y_pred, dtype="float64")
    error = y_pred - y_true
    total = float(np.sum((y_true - y_true.mean()) ** 2))
    r2 = 1.0 - float(np.sum(error**2)) / total if total > 0 else 0.0
    return {
        f"{split}_rmse": float(np.sqrt(np.mean(error**2))),
        f"{split}_mae": float(np.mean(np.abs(error))),
        f"{split}_r2": r2,
    }
