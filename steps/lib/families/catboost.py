"""CatBoost: gradient-boosted trees with native categorical handling, tuned by Optuna at a fixed
tree count, refit with the tree count chosen by early stopping on val (or, if they do better
there, with CatBoost's own defaults)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import click
import pandas as pd

from steps.lib import options, progress
from steps.lib.data.tables import Splits
from steps.lib.families import register
from steps.lib.families.base import Family, FitData, RefitPlan


@register
class CatBoostFamily(Family):
    name = "catboost"
    flavor = "catboost"
    requirements = ("catboost", "pandas", "numpy")
    refit_options = (
        click.Option(["--try-defaults"], type=options.Switch(), default=True, show_default="true",
                     help="Also early-stop CatBoost's own defaults beside the tuned parameters; keep them if "
                          "lower on val, or on a table held out for its width average both (costs one more "
                          "early-stopped fit; tuned on a sample (tune_rows), both are judged on that sample)."),
    )

    def __init__(self, *, thread_count: int | None = None, try_defaults: bool = True):
        super().__init__(thread_count=thread_count)
        self.try_defaults = try_defaults  # whether refit also weighs CatBoost's own defaults

    def space(self, trial) -> dict[str, Any]:
        return {
            "depth": trial.suggest_int("depth", 3, 8),
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "l2_leaf_reg": trial.suggest_float("l2_leaf_reg", 1.0, 30.0, log=True),
            "bagging_temperature": trial.suggest_float("bagging_temperature", 0.0, 1.0),
            "random_strength": trial.suggest_float("random_strength", 1e-3, 10.0, log=True),
        }

    def fixed_params(self, *, iterations: int) -> dict[str, Any]:
        # No eval_set while tuning: it turns on use_best_model, which silently shrinks the trees.
        return {"iterations": iterations, "loss_function": "RMSE", "thread_count": self.thread_count}

    def build(self, params: dict[str, Any], splits: Splits, seed: int):
        from catboost import CatBoostRegressor

        if "learning_rate" not in params:
            # CatBoost's default learning rate depends on the tree count; never rely on it.
            raise ValueError("learning_rate must be explicit")
        return CatBoostRegressor(
            **{"loss_function": "RMSE", "thread_count": self.thread_count, **params},
            cat_features=list(splits.categorical) or None,
            random_seed=seed,
            allow_writing_files=False,
            verbose=False,
        )

    def fit_data(self, splits: Splits) -> FitData:
        """Pools built once per step instead of once per trial: the same models, fitted faster.
        Not quantized ahead: on large tables `Pool.quantize()` picks other borders than a fit
        does (measured at 1M rows: predictions differ by up to 0.59), so tuning would see other
        features than the refit does."""
        from catboost import Pool

        x_train, y_train = splits.xy("train")
        x_val, y_val = splits.xy("val")
        categorical = list(splits.categorical) or None
        train = Pool(x_train, y_train, cat_features=categorical)
        return FitData(train, None, Pool(x_val, y_val, cat_features=categorical), y_val)

    def fit_options(self, data: FitData, on_iteration) -> dict[str, Any]:
        """Val RMSE per iteration for the pruner; use_best_model=False keeps the tree count fixed."""
        return {
            "eval_set": data.val_x,
            "use_best_model": False,
            "callbacks": [_IterationHook(on_iteration)],
        }

    def fit_early_stopped(self, model, data: FitData, rounds: int) -> tuple[Any, int]:
        """Early-stopped on the held-out fold and scored as the fit ends, `rounds` trees past its
        best: the best tree count, chosen on the very rows it would be scored on, makes every
        trial's out-of-fold predictions look better than they are (BENCHMARKS.md)."""
        model.fit(data.train_x, data.train_y, eval_set=data.val_x, early_stopping_rounds=rounds, use_best_model=False)
        return model.predict(data.val_x), int(model.tree_count_)

    def refit_plan(self, params, splits, seed, *, max_iterations, early_stopping_rounds, folds=0,
                   alternatives=True, val_predictions=False, judge_rows=0):
        """The tuned parameters with their tree count chosen by early stopping on val, unless
        CatBoost's own defaults, early-stopped the same way, reach a lower val RMSE: then those
        (its automatic learning rate for `max_iterations` trees, pinned, and nothing else set).
        Tuning runs at a fixed tree count, so no trial can be a low rate with thousands of
        trees, which on some tables beats every tuned point (BENCHMARKS.md); with this
        the model is never worse on val than CatBoost untuned. `try_defaults=False` skips that
        second early-stopped fit (it added 73 % to refit on 1M rows). With `folds`, both
        candidates are early-stopped on each fold of train+val instead and judged by the mean
        RMSE of the fold models as they stopped, the models the bag keeps and whose out-of-fold
        predictions the blend weighs (the refit on all rows grows the folds' mean best tree count).
        `alternatives=False` skips the defaults (a blend member stays what it was chosen as).
        `val_predictions` (one holdout split): each candidate's predictions of val as it stopped,
        for a blend on val (refit's plain average of the two). `judge_rows` (one holdout split,
        tuned on a sample of that many training rows): both candidates are early-stopped on that
        sample and the kept one alone on every row: on 10M rows a second full-size fit put the
        pipeline past its 45 minutes (BENCHMARKS.md)."""
        makers = {"tuned": lambda rows: self.build({**params, "iterations": max_iterations}, rows, seed),
                  "defaults": lambda rows: self.untuned(max_iterations, rows, seed)}
        if self.try_defaults and alternatives and not folds and not val_predictions:
            sample = splits.with_train_sample(judge_rows, splits.seed)
            if sample is not splits:
                return _plan_judged_on_sample(params, makers, splits, sample, early_stopping_rounds)
        tuned = stopped(makers["tuned"], splits, early_stopping_rounds, folds, label="tuned",
                        val_predictions=val_predictions)
        stops = {"tuned": tuned}
        val_rmse = {"tuned": tuned.val_rmse}
        out_of_fold = {"tuned": ({k: v for k, v in params.items() if k != "iterations"}, tuned.out_of_fold)}
        candidates = {"tuned": ({**params, "iterations": tuned.trees}, tuned.models)}
        if self.try_defaults and alternatives:
            untuned = stopped(makers["defaults"], splits, early_stopping_rounds, folds, label="defaults",
                              val_predictions=val_predictions)
            stops["defaults"] = untuned
            val_rmse["defaults"] = untuned.val_rmse
            defaults = _pinned_defaults(untuned)
            out_of_fold["defaults"] = (defaults, untuned.out_of_fold)
            candidates["defaults"] = ({**defaults, "iterations": untuned.trees}, untuned.models)
        kept = "defaults" if val_rmse.get("defaults", float("inf")) < tuned.val_rmse else "tuned"
        return RefitPlan(dict(candidates[kept][0]), kept=kept, val_rmse=val_rmse,
                         out_of_fold=_kept_folds(out_of_fold),
                         bags={name: bag for name, bag in candidates.items() if bag[1]},  # none on one holdout split
                         held_out={name: (candidates[name][0], stop.val_predictions) for name, stop in stops.items()
                                   if stop.val_predictions is not None})

    def untuned(self, iterations: int, splits: Splits, seed: int):
        """An unfitted CatBoost as a user gets it with no parameters but the tree count (and the
        pipeline's seed), on this table's categorical columns."""
        from catboost import CatBoostRegressor

        return CatBoostRegressor(iterations=iterations, loss_function="RMSE", thread_count=self.thread_count,
                                 cat_features=list(splits.categorical) or None, random_seed=seed,
                                 allow_writing_files=False, verbose=False)

    def explain(self, fitted, splits: Splits) -> pd.Series:
        return pd.Series(
            fitted.get_feature_importance(), index=fitted.feature_names_, name="importance"
        )


@dataclass(frozen=True)
class Stopped:
    """Where early stopping on val left one fit."""

    val_rmse: float
    trees: int
    learning_rate: float
    models: tuple = ()  # over folds: each fold's early-stopped model
    out_of_fold: Any = None  # over folds: each train+val row predicted by the fold model that left it out
    val_predictions: Any = None  # on one holdout split, when asked for: its predictions of val


def stopped(make_model, splits: Splits, rounds: int, folds: int = 0, label: str = "",
            val_predictions: bool = False) -> Stopped:
    """A model from `make_model(splits)` early-stopped on val (with `val_predictions`, and its
    predictions of val at its best tree count), or, with `folds`, on each fold of train+val: the
    mean RMSE, tree count and learning rate over the folds, and the fold models. A long fit says
    where it is at a steady rhythm, as `label` (and its fold)."""
    if not folds:
        model = make_model(splits)
        found = early_stopped(model, splits, rounds, label)
        return replace(found, val_predictions=model.predict(splits.xy("val")[0])) if val_predictions else found
    import numpy as np

    models, per_fold = [], []
    out_of_fold = np.full(len(splits.train) + len(splits.val), np.nan)
    for number, fold in enumerate(splits.cv_folds(folds), start=1):
        models.append(make_model(fold))
        per_fold.append(early_stopped(models[-1], fold, rounds, f"{label} fold {number}/{folds}".strip(),
                                      scored_where_stopped=True))
        out_of_fold[fold.val.index.to_numpy()] = models[-1].predict(fold.xy("val")[0])
    return Stopped(val_rmse=sum(s.val_rmse for s in per_fold) / folds,
                   trees=max(1, round(sum(s.trees for s in per_fold) / folds)),
                   learning_rate=sum(s.learning_rate for s in per_fold) / folds, models=tuple(models),
                   out_of_fold=out_of_fold)


def _pinned_defaults(found: Stopped) -> dict:
    """CatBoost's defaults as a candidate: the automatic rate they ran at, pinned, so refitting
    them is a fit like any other (the automatic rate depends on the rows and the tree count)."""
    return {"loss_function": "RMSE", "learning_rate": found.learning_rate}


def _plan_judged_on_sample(params, makers: dict, splits: Splits, sample: Splits, rounds: int) -> RefitPlan:
    """The tuned parameters or CatBoost's defaults (`makers`: each candidate's unfitted model
    for given splits), whichever reaches the lower val RMSE early-stopped on the tuning's sample
    of train (the size their tuning scores are from), then that one early-stopped on all of
    train for its tree count (and, the defaults, their automatic learning rate at that size)."""
    judged = {name: stopped(make, sample, rounds, label=f"{name} on the tuning sample")
              for name, make in makers.items()}
    kept = "defaults" if judged["defaults"].val_rmse < judged["tuned"].val_rmse else "tuned"
    found = stopped(makers[kept], splits, rounds, label=kept)
    chosen = params if kept == "tuned" else _pinned_defaults(found)
    return RefitPlan({**chosen, "iterations": found.trees}, kept=kept,
                     val_rmse={name: judged[name].val_rmse for name in judged})


def _kept_folds(out_of_fold: dict) -> dict:
    """The candidates that were weighed over folds (on one holdout split there are none)."""
    return {name: found for name, found in out_of_fold.items() if found[1] is not None}


def early_stopped(model, splits: Splits, rounds: int, label: str = "", scored_where_stopped: bool = False) -> Stopped:
    """Fit on train with early stopping on val, up to the model's own tree count: its best tree
    count on val, and its val RMSE there, or, `scored_where_stopped`, the model and val RMSE as
    the fit ends (a fold model whose held-out predictions are weighed against other candidates':
    scored at its best, chosen on those very rows, it looks better than it is)."""
    progress = _Progress(label, int(model.get_params().get("iterations") or 1000))
    model.fit(*splits.xy("train"), eval_set=splits.xy("val"), early_stopping_rounds=rounds,
              use_best_model=not scored_where_stopped, callbacks=[progress])
    progress.close()
    val_rmse = float(model.get_evals_result()["validation"]["RMSE"][-1] if scored_where_stopped
                     else model.get_best_score()["validation"]["RMSE"])
    # get_best_iteration() is 0-based: the best model has one more tree than its index.
    return Stopped(val_rmse=val_rmse, trees=int(model.get_best_iteration()) + 1,
                   learning_rate=float(model.get_all_params()["learning_rate"]))


class _Progress:
    """CatBoost callback: where one early-stopped refit fit is (refit's fits run minutes on big
    tables): the candidate and fold, the trees so far and the best val RMSE so far, as a bar on a
    terminal or a line every progress.EVERY_S (steps.lib.progress)."""

    def __init__(self, label: str, most_trees: int):
        self.counted = progress.Counted(f"refit: catboost {label or 'fit'}", most_trees, "trees",
                                        "best val RMSE {:.4f}")
        self.trees, self.best = 0, float("inf")

    def after_iteration(self, info) -> bool:
        self.best = min(self.best, info.metrics["validation"]["RMSE"][-1])
        self.trees = info.iteration  # counts from 1
        self.counted.update(self.trees, self.best)
        return True

    def close(self) -> None:
        self.counted.close(self.trees, self.best)


class _IterationHook:
    """CatBoost's callback protocol around a plain `on_iteration(iteration, val_rmse)` function."""

    def __init__(self, on_iteration):
        self.on_iteration = on_iteration

    def after_iteration(self, info) -> bool:
        return bool(self.on_iteration(info.iteration, info.metrics["validation"]["RMSE"][-1]))
