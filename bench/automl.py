"""What a user would pick instead of tabtune (AutoML baselines), on tabtune's own splits.

    python3.11 -m venv /work/automl-venv                           # once: a SEPARATE venv, see
    /work/automl-venv/bin/pip install -r bench/requirements-automl.txt   # requirements-automl.txt
    cd bench && ../.venv/bin/python automl.py --seconds-from quality-runs.json [--tables ames]
              [--seeds 1,2,3] [--trials 20] [--methods bag,flaml,autogluon] [--out automl-runs.json]
    cd bench && ../.venv/bin/python automl.py --seconds 30 --tables cps1985 --seeds 1
    cd bench && ../.venv/bin/python automl.py --summarize automl-runs.json

For each table x seed, the project venv makes the splits prepare makes (quality.py's
`splits_per_seed`: the same train/val/test rows as tabtune's figures) and, for each time budget,
measures:

  (a') bag        CatBoostRegressor with CatBoost's own defaults (no learning_rate: its auto rate
                  for --max-iterations trees), 5-fold bagged: train+val stacked, cut by
                  KFold(5, shuffle=True, random_state=seed + --fold-seed, 0 by default); each
                  fold's model early-stopped on its held-out fold (--early-stopping-rounds,
                  use_best_model); the test prediction is the mean of the 5 fold models (no
                  refit). quality.py's `Plain` conventions: the table's column order,
                  cat_features, random_seed=seed, thread_count=--threads. Runs in the project
                  venv with no time budget (it does not depend on it: one fit per table x seed,
                  copied into each budget's row); bag_default_s is its wall time.
  (d) flaml       FLAML 2.7.0: AutoML().fit(train+val, task="regression", metric="rmse",
                  time_budget=<budget>, n_jobs=--threads, seed=seed, eval_method="auto", verbose=0)
                  - FLAML chooses holdout or CV itself ("auto": CV when the table is small for the
                  budget) and retrains its best configuration on all it was given (its default).
  (e) autogluon   AutoGluon 1.6.3: TabularPredictor(label=target, eval_metric=
                  "root_mean_squared_error", path=<temp dir, deleted afterwards>, verbosity=0)
                  .fit(train+val, presets="best_quality", time_limit=<budget>, num_cpus=--threads,
                  num_gpus=0). Nothing else is set: with best_quality's 8-fold bagging and
                  dynamic stacking ("DyStack": a quarter of time_limit spent on sub-fits that
                  decide whether stacking overfits, then the main fit in the rest), as AutoGluon
                  documents for `dynamic_stacking` and `ds_args`. No torch in the venv, so
                  best_quality's neural networks (NN_TORCH, FASTAI) are skipped by AutoGluon; ray
                  is absent too, so folds and DyStack sub-fits run in-process, one after another.
                  AutoGluon takes no seed: its folds are its own fixed ones for every seed.
                  Small budgets do not fail, so no option for them is set (AutoGluon's
                  documented knobs would be `ds_args={"detection_time_frac": ...}` or
                  `dynamic_stacking=False, num_stack_levels=...`, which its log suggests after
                  DyStack): on cps1985 at 30 s DyStack took 9 s (a 7 s holdout sub-fit), kept
                  one stack level, and the main fit's 21 s trained a few models (LightGBMXT, RF,
                  XT, CatBoost on L2), skipping the rest ("Time limit exceeded... Skipping"); at
                  8 s the whole fit was a random forest stacked on a random forest. It overruns
                  time_limit by 1-2 s.

(d) and (e) are given everything but test (train+val), as a user would give them; both are scored
by quality.py's `_rmse` on the same test rows as tabtune. They run in a separate venv
(--python, default /work/automl-venv/bin/python; see requirements-automl.txt for why): the
project venv writes each table x seed's splits to a temp dir (train/val/test parquet in the
table's column order, with meta.json: target, features, categorical columns and their levels)
and runs this file there with `--runner`, which imports only numpy, pandas and the AutoML
library (never `steps`) and writes its test predictions and what it found there. Categorical
columns reach both as pandas categories with the whole table's levels (as tabtune's conformed
frames have them) and missing values as NaN (tabtune's explicit "__missing__" level undone: each
tool handles missing values its own way, as on the user's own file); numeric columns as float64.

The time budget per table x seed: `--seconds-from FILE` (an earlier quality.py --out file or its
printed JSON: rows with table, seed, trials, tabtune_s) gives each (table, seed, trials) the wall
seconds tabtune's whole `mlflow run` took; `--seconds N` gives every table x seed N seconds. The
*_s figures are the wall seconds of fit + predict (AutoML libraries overrun their budget a
little: FLAML's retrain of its best configuration comes after time_budget; *_process_s adds the
runner's start-up and imports). What a budgeted method achieves depends on how loaded the machine
is while it runs (and tabtune_s on how loaded it was then): run on an otherwise idle machine.
On a 2-core machine shared with another benchmark, LightGBM with 2 threads was measured 25x
slower (300 trees on 427 rows: 2.2 s instead of 0.09 s with 1 thread), so FLAML and AutoGluon
then try far fewer models in the same budget.

Rows: table, seed, trials, budget_s, bag_default_test_rmse, bag_default_s, flaml_test_rmse,
flaml_s, flaml_best_estimator, autogluon_test_rmse, autogluon_s, autogluon_best_model (and a few
more: see `runner` and `bag_default`). `--out` writes them as they finish; at the end the JSON
(`emit`) and a markdown table of medians over seeds. Wall times are of this machine at the time
(2 cores, shared): read them as relative."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

AUTOML_PYTHON = "/work/automl-venv/bin/python"
METHODS = ("bag", "flaml", "autogluon")


# ---------------------------------------------------------------- the runner (the automl venv)

def runner(method: str, split_dir: Path, seconds: float, seed: int, threads: int, verbose: bool) -> None:
    """Fit one AutoML library on train+val of an exported split; save its test predictions to
    split_dir/pred-<method>.npy and what it found to split_dir/found-<method>.json (files, not
    stdout: the libraries log there). Imports no `steps`."""
    import numpy as np
    import pandas as pd

    meta = json.loads((split_dir / "meta.json").read_text())
    target, features = meta["target"], meta["features"]
    frames = {}
    for split in ("train", "val", "test"):
        frame = pd.read_parquet(split_dir / f"{split}.parquet")
        for column, levels in meta["levels"].items():  # one dtype, the same levels, on every split
            frame[column] = pd.Categorical(frame[column], categories=levels)
        frames[split] = frame
    train = pd.concat([frames["train"], frames["val"]], ignore_index=True)
    x_test = frames["test"][features]
    out = {"train_rows": len(train)}
    if method == "flaml":
        from flaml import AutoML

        started = time.perf_counter()  # after the import: the *_s figures are fit + predict
        automl = AutoML()
        automl.fit(X_train=train[features], y_train=train[target], task="regression", metric="rmse",
                   time_budget=seconds, n_jobs=threads, seed=seed, eval_method="auto", verbose=3 if verbose else 0)
        fit_s = time.perf_counter() - started
        predicted = automl.predict(x_test)
        out.update({"best": automl.best_estimator, "best_config": automl.best_config,
                    "eval_method": automl._state.eval_method, "configs_tried": automl.modelcount,
                    "best_val_rmse": float(automl.best_loss)})
    elif method == "autogluon":
        from autogluon.tabular import TabularPredictor

        started = time.perf_counter()
        models = tempfile.mkdtemp(prefix="tabtune-autogluon-")
        try:
            predictor = TabularPredictor(label=target, eval_metric="root_mean_squared_error",
                                         path=os.path.join(models, "predictor"), verbosity=2 if verbose else 0)
            predictor.fit(train[[*features, target]], presets="best_quality", time_limit=seconds,
                          num_cpus=threads, num_gpus=0)
            fit_s = time.perf_counter() - started
            predicted = predictor.predict(x_test)
            board = predictor.leaderboard(silent=True)
            stacked = predictor._stacked_overfitting_occurred  # None: DyStack did not run
            out.update({"best": predictor.model_best, "models": board["model"].tolist(),
                        # 1: base models only (and their weighted ensemble); 2: one stack level on them
                        "layers": int(board.loc[~board["model"].str.startswith("WeightedEnsemble"),
                                                "stack_level"].max()),
                        "stacked_overfitting": None if stacked is None else bool(stacked),
                        "best_val_rmse": -float(board.loc[board["model"] == predictor.model_best,
                                                          "score_val"].iloc[0])})
        finally:
            shutil.rmtree(models, ignore_errors=True)  # every fold of every model: can be large
    else:
        raise SystemExit(f"unknown runner method {method!r}")
    np.save(split_dir / f"pred-{method}.npy", np.asarray(predicted, dtype="float64"))
    found = {**out, "fit_s": round(fit_s, 1), "s": round(time.perf_counter() - started, 1)}
    (split_dir / f"found-{method}.json").write_text(json.dumps(found, default=str))


# ---------------------------------------------------------------- the driver (the project venv)

def bag_default(splits, order: list[str], seed: int, args) -> dict:
    """(a'): CatBoost's defaults, one model per fold of train+val, early-stopped on its held-out
    fold; test predicted by their mean."""
    import numpy as np
    from quality import Plain, _rmse
    from sklearn.model_selection import KFold

    started = time.perf_counter()
    plain = Plain(splits, order, seed, args.threads)
    x, y = plain.train_val
    predictions, trees = [], []
    for fit_rows, held_rows in KFold(args.folds, shuffle=True, random_state=seed + args.fold_seed).split(x):
        model = plain.model(iterations=args.max_iterations)
        model.fit(x.iloc[fit_rows], y.iloc[fit_rows], eval_set=(x.iloc[held_rows], y.iloc[held_rows]),
                  early_stopping_rounds=args.early_stopping_rounds, use_best_model=True)
        trees.append(int(model.get_best_iteration()) + 1)
        predictions.append(model.predict(plain.test[0]))
    return {"bag_fold_seed": args.fold_seed,
            "bag_default_test_rmse": _rmse(plain.test[1], np.mean(predictions, axis=0)),
            "bag_default_s": round(time.perf_counter() - started, 1), "bag_default_trees": trees,
            "bag_default_learning_rate": float(model.get_all_params()["learning_rate"])}


def export(splits, order: list[str], directory: Path) -> Path:
    """The splits as the runner reads them (see the module docstring)."""
    from steps.lib.data.tables import MISSING_CATEGORY

    directory.mkdir(parents=True, exist_ok=True)
    features = [c for c in order if c in splits.features]
    levels = {}
    for column in splits.categorical:
        levels[column] = [str(v) for v in splits.train[column].cat.categories if v != MISSING_CATEGORY]
    for split in ("train", "val", "test"):
        frame = getattr(splits, split)[[*features, splits.target]].copy()
        for column in splits.categorical:  # plain strings on disk, missing as None
            values = frame[column].astype("object")
            frame[column] = values.where(values != MISSING_CATEGORY, None)
        frame.to_parquet(directory / f"{split}.parquet", index=False)
    (directory / "meta.json").write_text(json.dumps({"target": splits.target, "features": features,
                                                     "categorical": list(splits.categorical), "levels": levels}))
    return directory


def external(method: str, split_dir: Path, seconds: float, seed: int, y_test, args) -> dict:
    """Run one AutoML library in the automl venv on an exported split; its row fields."""
    import numpy as np
    from quality import _rmse

    command = [args.python, str(Path(__file__).resolve()), "--runner", method, str(split_dir),
               "--seconds", str(seconds), "--seed", str(seed), "--threads", str(args.threads)]
    if args.verbose:
        command.append("--verbose")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    started = time.perf_counter()
    # cwd: the split's temp dir, so nothing a library writes to its working folder (FLAML's
    # catboost_<time>/, AutoGluon's AutogluonModels/) lands in the repository.
    result = subprocess.run(command, cwd=split_dir, env=env, text=True,  # --verbose: their logs to stderr
                            stdout=sys.stderr if args.verbose else subprocess.PIPE,
                            stderr=None if args.verbose else subprocess.PIPE)
    process_s = round(time.perf_counter() - started, 1)
    if result.returncode != 0:
        print(f"automl: {method} failed on {split_dir.name}:\n{(result.stderr or '')[-4000:]}", file=sys.stderr)
        return {f"{method}_test_rmse": None, f"{method}_s": None, f"{method}_process_s": process_s,
                f"{method}_error": (result.stderr or "").strip().splitlines()[-1:]}
    found = json.loads((split_dir / f"found-{method}.json").read_text())
    predicted = np.load(split_dir / f"pred-{method}.npy")
    best = "flaml_best_estimator" if method == "flaml" else "autogluon_best_model"
    row = {f"{method}_test_rmse": _rmse(y_test, predicted), f"{method}_s": found.pop("s"),
           f"{method}_process_s": process_s, best: found.pop("best")}
    return {**row, **{f"{method}_{k}": v for k, v in found.items() if k != "train_rows"}}


def read_rows(path: str) -> list[dict]:
    """Rows of a saved --out file (a JSON list) or of a script's printed JSON (a dict with "runs",
    perhaps followed by its markdown table)."""
    text = Path(path).read_text()
    start = min(i for i in (text.find("["), text.find("{")) if i >= 0)
    data, _ = json.JSONDecoder().raw_decode(text[start:])
    return data["runs"] if isinstance(data, dict) else data


def budgets(args) -> dict[tuple[str, int], list[dict]]:
    """(table, seed) -> [{trials, budget_s, and tabtune's test RMSE when known}] to run."""
    if args.seconds is not None:
        return {(t, s): [{"trials": None, "budget_s": args.seconds}] for t in args.tables for s in args.seeds}
    out = {}
    for r in read_rows(args.seconds_from):
        if "tabtune_s" not in r or (args.trials and r["trials"] not in args.trials):
            continue
        out.setdefault((r["table"], r["seed"]), []).append(
            {"trials": r["trials"], "budget_s": r["tabtune_s"],
             **({"tabtune_test_rmse": r["tabtune_test_rmse"]} if "tabtune_test_rmse" in r else {})})
    return {k: sorted(v, key=lambda b: b["trials"]) for k, v in out.items()}


def run(args) -> list[dict]:
    from quality import splits_per_seed

    plan = budgets(args)
    rows = []
    work = Path(tempfile.mkdtemp(prefix="tabtune-automl-"))
    try:
        for name, order, seed, splits in splits_per_seed(args.tables, args.seeds):
            if (name, seed) not in plan:
                print(f"automl: no budget for {name} seed={seed} in {args.seconds_from}: skipped", file=sys.stderr)
                continue
            bag = bag_default(splits, order, seed, args) if "bag" in args.methods else {}
            split_dir = export(splits, order, work / f"{name}-seed{seed}")
            for budget in plan[(name, seed)]:
                row = {"table": name, "seed": seed, **budget,
                       "rows": len(splits.train) + len(splits.val) + len(splits.test),
                       "features": len(splits.features), **bag}
                for method in ("flaml", "autogluon"):
                    if method in args.methods:
                        row.update(external(method, split_dir, budget["budget_s"], seed,
                                            splits.test[splits.target], args))
                rows.append(row)
                print("automl: " + " ".join(f"{k}={row[k]:.5g}" if isinstance(row[k], float) else f"{k}={row[k]}"
                                            for k in row if k in _SHOWN), file=sys.stderr, flush=True)
                if args.out:
                    Path(args.out).write_text(json.dumps(rows, indent=1, default=str))
            shutil.rmtree(split_dir, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


_SHOWN = ("table", "seed", "trials", "budget_s", "tabtune_test_rmse", "bag_default_test_rmse", "bag_default_s",
          "flaml_test_rmse", "flaml_s", "flaml_best_estimator", "autogluon_test_rmse", "autogluon_s",
          "autogluon_best_model")

_COLUMNS = {"tabtune_test_rmse": "tabtune", "bag_default_test_rmse": "(a') bag defaults",
            "flaml_test_rmse": "(d) FLAML", "autogluon_test_rmse": "(e) AutoGluon", "budget_s": "budget s",
            "bag_default_s": "(a') s", "flaml_s": "(d) s", "autogluon_s": "(e) s"}


def markdown(rows: list[dict]) -> str:
    """Medians over seeds per table and budget (trials) of every figure present; the most
    frequent best FLAML estimator and AutoGluon model."""
    from quality import TABLES

    fields = [f for f in _COLUMNS if any(r.get(f) is not None for r in rows)]
    lines = ["| table | trials | seeds | " + " | ".join(_COLUMNS[f] for f in fields)
             + " | FLAML best | AutoGluon best |",
             "| --- | ---: | ---: | " + " | ".join("---:" for _ in fields) + " | --- | --- |"]
    keys = sorted({(r["table"], r["trials"]) for r in rows},
                  key=lambda k: (list(TABLES).index(k[0]) if k[0] in TABLES else 99, k[1] or 0))
    for table, trials in keys:
        group = [r for r in rows if r["table"] == table and r["trials"] == trials]
        cells = []
        for f in fields:
            values = [r[f] for r in group if r.get(f) is not None]
            cells.append(f"{statistics.median(values):.5g}" if values else "-")

        def most(field, group=group):
            values = [r[field] for r in group if r.get(field)]
            return max(set(values), key=values.count) if values else "-"

        lines.append(f"| {table} | {trials if trials is not None else '-'} | {len(group)} | " + " | ".join(cells)
                     + f" | {most('flaml_best_estimator')} | {most('autogluon_best_model')} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runner", nargs=2, metavar=("METHOD", "SPLIT_DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)  # --runner only
    parser.add_argument("--verbose", action="store_true", help="let FLAML and AutoGluon log to stderr")
    parser.add_argument("--tables", default="", help="comma list (default: those of --seconds-from, or all)")
    parser.add_argument("--seeds", default="", help="comma list (default: those of --seconds-from, or 1,2,3)")
    parser.add_argument("--trials", default="", help="with --seconds-from: only these trial budgets (comma list)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--seconds-from", default="", metavar="FILE",
                        help="an earlier quality.py output: each (table, seed, trials) gets its tabtune_s")
    budget.add_argument("--seconds", type=float, default=None, help="every table x seed gets this many seconds")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma list of {', '.join(METHODS)}")
    parser.add_argument("--python", default=os.environ.get("TABTUNE_AUTOML_PYTHON", AUTOML_PYTHON),
                        help="the automl venv's python (env TABTUNE_AUTOML_PYTHON)")
    parser.add_argument("--threads", type=int, default=0, help="cores for every method (0 = this machine's)")
    parser.add_argument("--folds", type=int, default=5, help="(a') folds")
    parser.add_argument("--fold-seed", type=int, default=0,
                        help="(a') added to the seed that assigns the folds (0: the seed's own folds, as in the "
                             "goal table; others measure how far (a') moves with the fold assignment alone)")
    parser.add_argument("--max-iterations", type=int, default=5000, help="(a') most trees per fold model")
    parser.add_argument("--early-stopping-rounds", type=int, default=100)
    parser.add_argument("--out", default="", help="also write the rows here as they finish (JSON)")
    parser.add_argument("--summarize", default="", help="only print the medians of an earlier --out file")
    args = parser.parse_args()
    args.threads = args.threads or os.cpu_count() or 1
    if args.runner:
        method, split_dir = args.runner
        runner(method, Path(split_dir), args.seconds, args.seed, args.threads, args.verbose)
        return
    if args.summarize:
        print(markdown(read_rows(args.summarize)))
        return

    from quality import TABLES

    from _common import emit

    if args.seconds is None and not args.seconds_from:
        parser.error("give --seconds N or --seconds-from FILE")
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if set(args.methods) - set(METHODS):
        parser.error(f"unknown methods {sorted(set(args.methods) - set(METHODS))}; known: {list(METHODS)}")
    known = read_rows(args.seconds_from) if args.seconds_from else []
    args.tables = ([t.strip() for t in args.tables.split(",") if t.strip()]
                   or [t for t in TABLES if any(r["table"] == t for r in known)] or list(TABLES))
    if set(args.tables) - set(TABLES):
        parser.error(f"unknown tables {sorted(set(args.tables) - set(TABLES))}; known: {list(TABLES)}")
    args.seeds = ([int(s) for s in args.seeds.split(",") if s.strip()]
                  or sorted({r["seed"] for r in known}) or [1, 2, 3])
    args.trials = [int(t) for t in args.trials.split(",") if t.strip()]
    if any(m != "bag" for m in args.methods) and not Path(args.python).exists():
        parser.error(f"no automl venv python at {args.python}: see bench/requirements-automl.txt")
    started = time.perf_counter()
    rows = run(args)
    emit("automl", {"command": " ".join(["python", "bench/automl.py", *sys.argv[1:]]),
                    "automl_versions": _versions(args) if any(m != "bag" for m in args.methods) else {},
                    "threads": args.threads, "wall_s": round(time.perf_counter() - started), "runs": rows})
    print(markdown(rows))


def _versions(args) -> dict:
    code = ("import json; from importlib.metadata import version as v; print(json.dumps({p: v(p) for p in "
            "('flaml', 'autogluon.tabular', 'lightgbm', 'xgboost-cpu', 'catboost', 'pandas', 'numpy', "
            "'scikit-learn')}))")
    result = subprocess.run([args.python, "-c", code], capture_output=True, text=True)
    return json.loads(result.stdout) if result.returncode == 0 else {"error": result.stderr[-500:]}


if __name__ == "__main__":
    main()
