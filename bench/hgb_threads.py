"""Threads of the third family (HistGradientBoosting): does holding its OpenMP fits to the
family's `thread_count` pay, and what does a step beside it cost?

    pip install -r bench/requirements.txt        # the tables come from bench/quality.py
    python bench/hgb_threads.py [--tables wage2,cps1988,diamonds] [--trials 20] [--iterations 500]

scikit-learn's HistGradientBoostingRegressor runs on OpenMP, which takes no thread count per
estimator: unless limited, every fit starts one thread per core. For each table (the splits
prepare makes for seed 1) this times the tuning loop `steps.lib.search.tuning.optimize` (what the
`tune` step runs, minus tracking) of one study of --trials trials, in these situations:

  alone, n_jobs=1        thread_count = cores (what `tune` gives one worker), and = 1
  alone, n_jobs=2        thread_count = 1 each (cores / n_jobs, what `tune -P n_jobs=2` gives)
  beside CatBoost        n_jobs=1, while another process fits CatBoost on every core (what
                         `main` does with families=lasso,catboost,hist_gradient_boosting: the
                         tuning steps run side by side); thread_count = cores and = 1

each with the family's limit (`HistGradientBoostingFamily.threads`) and without it (OpenMP's
own default: every core), and checks the limit changes no figure (same best val RMSE).
Prints JSON (`emit`); wall seconds are of this machine at the time."""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import sys
import time

from _common import PROJECT_DIR, emit

sys.path.insert(0, str(PROJECT_DIR))


def _busy_catboost(stop) -> None:
    """Fit CatBoost on every core until told to stop: the tuning step beside this one."""
    import numpy as np
    from catboost import CatBoostRegressor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(20000, 20))
    y = x[:, 0] + rng.normal(size=20000)
    while not stop.is_set():
        CatBoostRegressor(iterations=200, learning_rate=0.1, thread_count=os.cpu_count(), verbose=False,
                          allow_writing_files=False).fit(x, y)


def tune_seconds(splits, *, limited: bool, thread_count: int, n_jobs: int, trials: int, iterations: int):
    """Wall seconds and best val RMSE of one seeded study of the third family."""
    import optuna

    from steps.lib.families import get_family
    from steps.lib.search.tuning import optimize

    family = get_family("hist_gradient_boosting", thread_count=thread_count)
    if not limited:
        family.threads = contextlib.nullcontext  # OpenMP's default: every core, in every fit
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=1))
    started = time.perf_counter()
    optimize(family, splits, study=study, trials=trials, iterations=iterations, seed=1, n_jobs=n_jobs)
    return round(time.perf_counter() - started, 1), study.best_value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", default="wage2,cps1988,diamonds")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--iterations", type=int, default=500)
    args = parser.parse_args()
    sys.path.insert(0, str(PROJECT_DIR / "bench"))
    from quality import splits_per_seed

    cores = os.cpu_count() or 1
    situations = [("alone, n_jobs=1", cores, 1, False), ("alone, n_jobs=1, thread_count=1", 1, 1, False),
                  ("alone, n_jobs=2", max(1, cores // 2), 2, False),
                  ("beside CatBoost, thread_count=cores", cores, 1, True),
                  ("beside CatBoost, thread_count=1", 1, 1, True)]
    rows = []
    for name, _, _, splits in splits_per_seed(args.tables.split(","), [1]):
        # Untimed: the first fits of a process pay for imports and OpenMP's start.
        tune_seconds(splits, limited=True, thread_count=cores, n_jobs=1, trials=2, iterations=args.iterations)
        for situation, thread_count, n_jobs, beside in situations:
            stop = multiprocessing.Event()
            neighbour = multiprocessing.Process(target=_busy_catboost, args=(stop,)) if beside else None
            if neighbour:
                neighbour.start()
                time.sleep(3)  # let it import and start fitting
            try:
                figures = {}
                for limited in (True, False):
                    if situation.endswith("thread_count=1") and not limited:
                        continue  # unlimited is the thread_count=cores row of the same situation
                    seconds, best = tune_seconds(splits, limited=limited, thread_count=thread_count,
                                                 n_jobs=n_jobs, trials=args.trials, iterations=args.iterations)
                    figures["limited" if limited else "unlimited"] = {"seconds": seconds, "best_val_rmse": best}
            finally:
                if neighbour:
                    stop.set()
                    neighbour.join()
            row = {"table": name, "train_rows": len(splits.train), "situation": situation,
                   "thread_count": thread_count, "n_jobs": n_jobs, **figures}
            rows.append(row)
            print(f"hgb_threads: {row}", file=sys.stderr, flush=True)
    emit("hgb_threads", {"command": " ".join(["python", "bench/hgb_threads.py", *sys.argv[1:]]),
                         "trials": args.trials, "iterations": args.iterations, "runs": rows})


if __name__ == "__main__":
    main()
