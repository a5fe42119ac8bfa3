"""Does a second layer over out-of-fold predictions, or more model kinds, buy what AutoGluon's
two-layer stack buys?

    cd bench && ../.venv/bin/python stacking.py --tables diamonds --seeds 1,2,3 [--out stacking.json]
        [--forests random_forest,extra_trees,extra_trees_light] [--layers 1]

An experiment, not a pipeline figure: tabtune's blend is one layer (Caruana's greedy selection over
the out-of-fold predictions of its candidates); AutoGluon's `best_quality`, lower than tabtune on
diamonds, txhousing and ames, ends in a `WeightedEnsemble_L3` over models trained on the table's
features *plus* the first layer's out-of-fold predictions, over several model kinds. This
measures the second layer and the extra kinds apart, on one library of first-layer models, on
the splits of quality.py (`splits_per_seed`), over tabtune's own folds of train+val
(`Splits.cv_folds`, 5):

  layer 1   each model fitted once per fold, early-stopped on its held-out fold where it can
            stop early; out-of-fold predictions of train+val, test predicted by the mean of the
            fold models (a bag, no refit), as `final=bag` serves:
              catboost_defaults  CatBoost's own defaults (auto learning rate for 5,000 trees,
                                 stopped after 100 rounds without gain): (a') of automl.py, on
                                 tabtune's folds instead of KFold's
              hgb_defaults       tabtune's HistGradientBoosting family, scikit-learn's defaults
              lasso              tabtune's LASSO family, the alpha of 1 / 0.1 / 0.01 / 0.001 with
                                 the lowest out-of-fold RMSE
              random_forest,     scikit-learn, 300 trees, categories ordinal-encoded: two of the
              extra_trees        kinds AutoGluon stacks that tabtune does not have (--forests;
                                 extra_trees_light: 100 trees, min_samples_leaf=5)
  layer 2   catboost_defaults and hgb_defaults again (unless --layers 1), on the features plus
            the layer-1 out-of-fold columns (test: the features plus the layer-1 bags' test predictions),
            over the same folds, as AutoGluon stacks.
  blends    Caruana's selection (`steps.lib.search.ensemble.select`, 25 rounds, fold-mean RMSE)
            over layer 1 (tabtune's one layer), over tabtune's families alone and with each
            other kind, over layer 2, and over both.

Every figure is a test RMSE on the untouched test rows (out-of-fold RMSEs beside them). The
layer-2 out-of-fold scores are optimistic (the same folds at both layers: a layer-1 model that
predicted fold i's rows saw the rows layer 2's fold-i model trains on), as in AutoGluon; the test
rows tell the truth. Rows: table, seed, then per candidate `<name>_test_rmse`, `<name>_oof_rmse`,
`<name>_s`; `blend_*_test_rmse`, `blend_*_weights`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from _common import PROJECT_DIR

sys.path.insert(0, str(PROJECT_DIR))

FOLDS = 5
MAX_TREES = 5000
ROUNDS = 100
ALPHAS = (1.0, 0.1, 0.01, 0.001)


def bagged(fit_predict, splits, extra_train=None, extra_test=None):
    """Out-of-fold predictions of train+val and the fold models' mean test prediction, for one
    model kind: `fit_predict(fold_splits, test_frame)` fits on the fold's train (stopped on its
    val where it can) and returns (val predictions, test predictions). `extra_*`: layer-1
    columns added to the features (train+val rows, test rows)."""
    import numpy as np
    import pandas as pd

    if extra_train is not None:
        splits = _with_columns(splits, extra_train, extra_test)
    out_of_fold = np.full(len(splits.train) + len(splits.val), np.nan)
    tests = []
    for fold in splits.cv_folds(FOLDS):
        held, test = fit_predict(fold, splits.xy("test")[0])
        out_of_fold[fold.val.index.to_numpy()] = held
        tests.append(np.asarray(test, dtype=float))
    assert not np.isnan(out_of_fold).any()
    return pd.Series(out_of_fold), np.mean(tests, axis=0)


def _with_columns(splits, extra_train, extra_test):
    """The splits with layer-1 predictions as extra numeric features (train+val rows in the order
    cross-validation numbers them, test rows), kept before the target as the splits keep columns."""
    import pandas as pd

    both = pd.concat([splits.train, splits.val], ignore_index=True)
    names = list(extra_train.columns)

    def joined(frame, extra):
        features = frame.drop(columns=splits.target).reset_index(drop=True)
        target = frame[[splits.target]].reset_index(drop=True)
        return pd.concat([features, extra.reset_index(drop=True), target], axis=1)

    both = joined(both, extra_train)
    train, val = both.iloc[:len(splits.train)], both.iloc[len(splits.train):].reset_index(drop=True)
    return replace(splits, train=train, val=val, test=joined(splits.test, pd.DataFrame(extra_test, columns=names)),
                   numeric=[*splits.numeric, *names], stacked_train_val=None)


def catboost_defaults(seed: int, threads: int):
    def fit_predict(fold, x_test):
        from catboost import CatBoostRegressor

        x, y = fold.xy("train")
        xv, yv = fold.xy("val")
        model = CatBoostRegressor(loss_function="RMSE", iterations=MAX_TREES, random_seed=seed, thread_count=threads,
                                  cat_features=list(fold.categorical) or None, allow_writing_files=False, verbose=False)
        model.fit(x, y, eval_set=(xv, yv), early_stopping_rounds=ROUNDS, use_best_model=True)
        return model.predict(xv), model.predict(x_test)
    return fit_predict


def hgb_defaults(seed: int, threads: int):
    from steps.lib.families.base import FitData
    from steps.lib.families.hist_gradient_boosting import HistGradientBoostingFamily

    family = HistGradientBoostingFamily(thread_count=threads)

    def fit_predict(fold, x_test):
        model = family.build({**family.untuned_params, "max_iter": MAX_TREES}, fold, seed)
        with family.threads():
            held, _ = family.fit_early_stopped(model, FitData(*fold.xy("train"), *fold.xy("val")), ROUNDS)
            return held, model.predict(x_test)
    return fit_predict


def lasso(alpha: float, seed: int):
    from steps.lib.families.lasso import LassoFamily

    family = LassoFamily()

    def fit_predict(fold, x_test):
        model = family.build({"alpha": alpha}, fold, seed).fit(*fold.xy("train"))
        return model.predict(fold.xy("val")[0]), model.predict(x_test)
    return fit_predict


def forest(kind: str, seed: int, threads: int, **params):
    """Random forest or extra trees, 300 trees unless `params` say otherwise, categories
    ordinal-encoded. `keep=True` returns the fitted model instead of predictions."""
    def fit_predict(fold, x_test, keep=False):
        import numpy as np
        from sklearn.compose import ColumnTransformer
        from sklearn.ensemble import ExtraTreesRegressor, RandomForestRegressor
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import OrdinalEncoder

        encoder = ColumnTransformer(
            [("categorical", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
              list(fold.categorical))], remainder="passthrough")
        regressor = (RandomForestRegressor if kind == "random_forest" else ExtraTreesRegressor)(
            **{"n_estimators": 300, "n_jobs": threads, "random_state": seed, **params})
        model = Pipeline([("encode", encoder), ("regressor", regressor)]).fit(*fold.xy("train"))
        if keep:
            return model
        return model.predict(fold.xy("val")[0]), np.asarray(model.predict(x_test))
    return fit_predict


FORESTS = {"random_forest": ("random_forest", {}), "extra_trees": ("extra_trees", {}),
           # a form that would serve in tens of megabytes a fold model (extra_trees_size.py)
           "extra_trees_light": ("extra_trees", {"n_estimators": 100, "min_samples_leaf": 5})}
TABTUNE_FAMILIES = ("catboost_defaults", "hgb_defaults", "lasso")


def one(name: str, order: list[str], seed: int, splits, threads: int, forests=("random_forest", "extra_trees"),
        layers_wanted: int = 2) -> dict:
    """One table x seed: every candidate's and blend's out-of-fold and test RMSE (a row)."""
    import pandas as pd
    from quality import _rmse

    from steps.lib.search.ensemble import _rmse_by_column, select

    numbers = splits.fold_numbers(FOLDS)
    y = splits.train_val()[1].reset_index(drop=True)
    fold_rmse = _rmse_by_column(y.to_numpy(dtype="float64"), numbers)  # scored as tabtune scores out of fold
    y_test = splits.test[splits.target]
    row = {"table": name, "seed": seed, "folds": FOLDS, "rows": len(splits.train) + len(splits.val)}
    layers = {1: ({}, {}), 2: ({}, {})}

    def record(layer, candidate, fit_predict, **extra):
        started = time.perf_counter()
        oof, test = bagged(fit_predict, splits, **extra)
        row[f"{candidate}_s"] = round(time.perf_counter() - started, 1)
        row[f"{candidate}_oof_rmse"] = float(fold_rmse(oof.to_numpy()[:, None])[0])
        row[f"{candidate}_test_rmse"] = _rmse(y_test, test)
        layers[layer][0][candidate], layers[layer][1][candidate] = oof.to_numpy(), test
        print(f"stacking: {name} seed {seed} {candidate}: oof {row[f'{candidate}_oof_rmse']:.5g} "
              f"test {row[f'{candidate}_test_rmse']:.5g} ({row[f'{candidate}_s']} s)", file=sys.stderr, flush=True)

    record(1, "catboost_defaults", catboost_defaults(seed, threads))
    record(1, "hgb_defaults", hgb_defaults(seed, threads))
    best_alpha = None
    for alpha in ALPHAS:
        record(1, f"lasso_{alpha:g}", lasso(alpha, seed))
        if best_alpha is None or row[f"lasso_{alpha:g}_oof_rmse"] < row[f"lasso_{best_alpha:g}_oof_rmse"]:
            best_alpha = alpha
    for alpha in ALPHAS:  # one LASSO in the library, as tune_lasso's best grid point
        if alpha != best_alpha:
            del layers[1][0][f"lasso_{alpha:g}"], layers[1][1][f"lasso_{alpha:g}"]
    row["lasso_alpha"] = best_alpha
    for candidate in forests:
        kind, params = FORESTS[candidate]
        record(1, candidate, forest(kind, seed, threads, **params))

    def blend(label, oof: dict, test: dict):
        chosen = select(y, pd.DataFrame(oof), rounds=25, folds=numbers)
        predicted = sum(weight * test[column] for column, weight in chosen.weights.items())
        row[f"blend_{label}_oof_rmse"] = chosen.rmse
        row[f"blend_{label}_test_rmse"] = _rmse(y_test, predicted)
        row[f"blend_{label}_weights"] = chosen.weights
        print(f"stacking: {name} seed {seed} blend {label}: oof {chosen.rmse:.5g} "
              f"test {row[f'blend_{label}_test_rmse']:.5g} {chosen.weights}", file=sys.stderr, flush=True)

    def tabtune_families(layer, extra=()):
        return {k: v for k, v in layer.items() if k.startswith(TABTUNE_FAMILIES) or k in extra}

    def blends_of_layer_1():
        blend("l1", layers[1][0], layers[1][1])
        blend("l1_tabtune_families", tabtune_families(layers[1][0]), tabtune_families(layers[1][1]))
        for candidate in forests:  # what each other kind adds on its own
            blend(f"l1_tabtune_families_{candidate}", tabtune_families(layers[1][0], (candidate,)),
                  tabtune_families(layers[1][1], (candidate,)))

    if layers_wanted == 1:
        blends_of_layer_1()
        return row
    first_oof = pd.DataFrame({f"l1_{k}": v for k, v in layers[1][0].items()})
    first_test = pd.DataFrame({f"l1_{k}": v for k, v in layers[1][1].items()})
    for candidate, make in (("catboost_defaults_l2", catboost_defaults), ("hgb_defaults_l2", hgb_defaults)):
        record(2, candidate, make(seed, threads), extra_train=first_oof, extra_test=first_test.to_numpy())

    blends_of_layer_1()
    blend("l2", layers[2][0], layers[2][1])
    blend("l1_l2", {**layers[1][0], **layers[2][0]}, {**layers[1][1], **layers[2][1]})
    return row


def main() -> None:
    import os

    from quality import splits_per_seed

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", default="diamonds")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--forests", default="random_forest,extra_trees",
                        help=f"layer-1 kinds beside tabtune's families, comma list of {', '.join(FORESTS)}")
    parser.add_argument("--layers", type=int, choices=(1, 2), default=2, help="1: no second layer")
    parser.add_argument("--out", default="")
    args = parser.parse_args()
    rows = []
    for name, order, seed, splits in splits_per_seed(args.tables.split(","), [int(s) for s in args.seeds.split(",")]):
        rows.append(one(name, order, seed, splits, args.threads, args.forests.split(","), args.layers))
        if args.out:
            Path(args.out).write_text(json.dumps(rows, indent=1, default=float))
    print(json.dumps(rows, indent=1, default=float))


if __name__ == "__main__":
    main()
