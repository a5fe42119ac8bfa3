"""Predictions of a weighted blend of fitted models: the one rule refit scores a blend by and the
served model predicts with, so the two cannot differ."""

from __future__ import annotations

import numpy as np


def weighted_predictions(members, rows):
    """The members' predictions on `rows`, weighed; (model, weight) pairs. One member's
    predictions are returned as the model gives them (its weight is 1)."""
    if len(members) == 1:
        return members[0][0].predict(rows)
    return sum(weight * np.asarray(model.predict(rows), dtype="float64") for model, weight in members)
