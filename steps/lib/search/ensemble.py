"""Ensemble selection (Caruana et al., ICML 2004): a weighted blend of candidates chosen greedily
on their out-of-fold predictions, so blending costs no fit and no row the blend is judged on
was seen by the model that predicted it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Blend:
    """Candidates and their weights (summing to 1), with the out-of-fold RMSE of the blend and
    of the best single candidate (the mean of the folds' RMSEs when `select` was given folds)."""

    weights: dict[str, float]
    rmse: float
    best_single: str
    best_single_rmse: float

    @property
    def beats_best_single(self) -> bool:
        return len(self.weights) > 1 and self.rmse < self.best_single_rmse


def select(target: pd.Series | np.ndarray, predictions: pd.DataFrame, rounds: int = 25,
           folds: np.ndarray | None = None) -> Blend:
    """Greedy forward selection with replacement: each round adds the candidate (again, if it
    is best) whose addition gives the lowest RMSE of the running average; weights are how often
    each was added. Starting from the best single candidate, it never ends worse than it.
    `folds` (each row's fold number): every RMSE here is then the mean of the folds' RMSEs, the
    score cross-validated tuning ranks trials by, so the blend and the families it is weighed
    against are judged the same way."""
    y = np.asarray(target, dtype="float64")
    rmse = _rmse_by_column(y, folds)
    single = rmse(predictions.to_numpy(dtype="float64"))
    columns = list(predictions.columns)
    matrix = predictions.to_numpy(dtype="float64")
    best = int(np.argmin(single))
    counts = np.zeros(len(columns), dtype=int)
    counts[best] = 1
    total = matrix[:, best].copy()
    for chosen in range(2, rounds + 1):
        pick = int(np.argmin(rmse((total[:, None] + matrix) / chosen)))
        counts[pick] += 1
        total += matrix[:, pick]
    blended = total / counts.sum()
    return Blend(weights={columns[i]: counts[i] / counts.sum() for i in np.flatnonzero(counts)},
                 rmse=float(rmse(blended[:, None])[0]), best_single=columns[best],
                 best_single_rmse=float(single[best]))


def _rmse_by_column(y: np.ndarray, folds: np.ndarray | None):
    """RMSE of each column of a prediction matrix against `y`: over all rows, or the mean over
    folds of each fold's RMSE."""
    if folds is None:
        return lambda matrix: np.sqrt(np.mean((matrix - y[:, None]) ** 2, axis=0))
    members = [np.flatnonzero(folds == number) for number in np.unique(folds)]

    def rmse(matrix: np.ndarray) -> np.ndarray:
        squared = (matrix - y[:, None]) ** 2
        return np.mean([np.sqrt(squared[rows].mean(axis=0)) for rows in members], axis=0)

    return rmse
