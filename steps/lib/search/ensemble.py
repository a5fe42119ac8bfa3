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
    of the best single candidate."""

    weights: dict[str, float]
    rmse: float
    best_single: str
    best_single_rmse: float

    @property
    def beats_best_single(self) -> bool:
        return len(self.weights) > 1 and self.rmse < self.best_single_rmse


def select(target: pd.Series | np.ndarray, predictions: pd.DataFrame, rounds: int = 25) -> Blend:
    """Greedy forward selection with replacement: each round adds the candidate (again, if it
    is best) whose addition gives the lowest RMSE of the running average; weights are how often
    each was added. Starting from the best single candidate, it never ends worse than it."""
    y = np.asarray(target, dtype="float64")
    columns = list(predictions.columns)
    matrix = predictions.to_numpy(dtype="float64")
    single = np.sqrt(np.mean((matrix - y[:, None]) ** 2, axis=0))
    best = int(np.argmin(single))
    counts = np.zeros(len(columns), dtype=int)
    counts[best] = 1
    total = matrix[:, best].copy()
    for chosen in range(2, rounds + 1):
        candidates = (total[:, None] + matrix) / chosen
        errors = np.sqrt(np.mean((candidates - y[:, None]) ** 2, axis=0))
        pick = int(np.argmin(errors))
        counts[pick] += 1
        total += matrix[:, pick]
    blended = total / counts.sum()
    return Blend(weights={columns[i]: counts[i] / counts.sum() for i in np.flatnonzero(counts)},
                 rmse=float(np.sqrt(np.mean((blended - y) ** 2))), best_single=columns[best],
                 best_single_rmse=float(single[best]))
