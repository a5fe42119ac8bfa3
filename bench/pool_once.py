"""Per-trial CatBoost fit time with the Pools built once per step (what tuning does now)
against a fit on DataFrames every trial (what it did before).

    python bench/pool_once.py [--rows 50000 1000000] [--trials 5] [--iterations 100]

Prints JSON per table size: mean seconds of a trial's fit both ways, and that the predictions
are identical. The table is synthetic: 8 numeric columns and 3 categorical ones (10, 100 and
1,000 levels), like a diamonds-sized table at 50k rows."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from _common import emit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from steps.lib.data.tables import split_frame
from steps.lib.families import get_family


def table(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, 8)), columns=[f"x{i}" for i in range(8)])
    for name, levels in (("cut", 10), ("colour", 100), ("shop", 1000)):
        frame[name] = rng.integers(0, levels, rows).astype(str)
    frame["y"] = frame["x0"] * 3 + frame["cut"].astype(int) + rng.normal(size=rows)
    return frame


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, nargs="+", default=[50_000, 1_000_000])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=100)
    args = parser.parse_args()
    figures = {}
    for rows in args.rows:
        splits = split_frame(table(rows), "y", val_size=0.2, test_size=0.2, seed=1)
        family = get_family("catboost")
        params = {"depth": 6, "learning_rate": 0.1, "iterations": args.iterations}
        x_train, y_train = splits.xy("train")
        started = time.perf_counter()
        data = family.fit_data(splits)
        prepare_s = time.perf_counter() - started
        per_trial = {"frames": [], "pool_once": []}
        same = True
        for trial in range(args.trials):
            model = family.build(params, splits, seed=trial)
            started = time.perf_counter()
            model.fit(x_train, y_train)
            per_trial["frames"].append(time.perf_counter() - started)
            shared = family.build(params, splits, seed=trial)
            started = time.perf_counter()
            shared.fit(data.train_x)
            per_trial["pool_once"].append(time.perf_counter() - started)
            same &= bool(np.array_equal(model.predict(data.val_x), shared.predict(data.val_x)))
        figures[f"{rows}_rows"] = {
            "fit_s_per_trial_frames": round(float(np.mean(per_trial["frames"])), 3),
            "fit_s_per_trial_pool_once": round(float(np.mean(per_trial["pool_once"])), 3),
            "pool_build_once_s": round(prepare_s, 3),
            "identical_predictions": same,
        }
    emit("pool_once", {"trials": args.trials, "iterations": args.iterations, **figures})


if __name__ == "__main__":
    main()
