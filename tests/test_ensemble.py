"""Ensemble selection on out-of-fold predictions (steps/lib/search/ensemble.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from steps.lib.search.ensemble import select


def test_two_candidates_with_opposite_errors_blend_half_and_half():
    rng = np.random.default_rng(0)
    target = rng.normal(size=400)
    noise = rng.normal(size=400)
    predictions = pd.DataFrame({"high": target + 1 + 0.1 * noise, "low": target - 1 + 0.1 * noise,
                                "bad": target + rng.normal(scale=3, size=400)})
    blend = select(target, predictions, rounds=20)
    assert blend.weights == pytest.approx({"high": 0.5, "low": 0.5})
    assert blend.beats_best_single and blend.rmse < 0.2 < blend.best_single_rmse


def test_a_candidate_that_no_blend_improves_stands_alone():
    rng = np.random.default_rng(1)
    target = rng.normal(size=300)
    predictions = pd.DataFrame({"exact": target, "noisy": target + rng.normal(size=300)})
    blend = select(target, predictions)
    assert blend.weights == {"exact": 1.0} and blend.best_single == "exact"
    assert blend.rmse == pytest.approx(0.0, abs=1e-12) and blend.best_single_rmse == 0.0
    assert not blend.beats_best_single


def test_the_blend_is_never_worse_than_the_best_single_candidate():
    rng = np.random.default_rng(2)
    target = rng.normal(size=200)
    predictions = pd.DataFrame({f"c{i}": target + rng.normal(scale=0.5 + i, size=200) for i in range(6)})
    blend = select(target, predictions, rounds=30)
    assert blend.rmse <= blend.best_single_rmse
    assert sum(blend.weights.values()) == pytest.approx(1.0)


def test_with_folds_every_rmse_is_the_mean_of_the_folds_rmses():
    """Cross-validated tuning ranks trials by the mean of the folds' RMSEs; the blend and the best
    single candidate are scored the same way, not by one RMSE over all rows (never smaller)."""
    rng = np.random.default_rng(3)
    target = rng.normal(size=300)
    folds = np.repeat([0, 1, 2], 100)
    # errors far larger on one fold than on the others: the two scores differ
    scale = np.where(folds == 0, 2.0, 0.2)
    predictions = pd.DataFrame({f"c{i}": target + rng.normal(size=300) * scale * (1 + i / 4) for i in range(4)})
    blend = select(target, predictions, rounds=10, folds=folds)

    def fold_mean(predicted):
        return np.mean([np.sqrt(np.mean((predicted[folds == f] - target[folds == f]) ** 2)) for f in range(3)])

    blended = sum(weight * predictions[column].to_numpy() for column, weight in blend.weights.items())
    assert blend.rmse == pytest.approx(fold_mean(blended))
    assert blend.best_single_rmse == pytest.approx(min(fold_mean(predictions[c].to_numpy()) for c in predictions))
    pooled = np.sqrt(np.mean((blended - target) ** 2))
    assert blend.rmse < pooled - 0.05

