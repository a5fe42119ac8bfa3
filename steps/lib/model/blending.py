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


class Bag:
    """The models of one candidate early-stopped on each fold of train+val, averaged: a final
    model that needs no refit, each of its models having stopped where its own held-out rows
    said (AutoGluon's and TabArena's way of shipping a model)."""

    def __init__(self, models):
        self.models = tuple(models)

    def predict(self, rows):
        return weighted_predictions([(model, 1.0 / len(self.models)) for model in self.models], rows)


def flattened(members):
    """(family, model, weight) members with every bag opened into its models, each weighed by its
    share: the form the served model stores and predicts with."""
    out = []
    for family, model, weight in members:
        if isinstance(model, Bag):
            out += [(family, one, weight / len(model.models)) for one in model.models]
        else:
            out.append((family, model, weight))
    return out
