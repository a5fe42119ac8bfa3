"""How much memory one CatBoost fit takes on top of the data, by tree count and setting: what
limits refit's peak on big tables.

    python bench/catboost_memory.py [--rows 1000000] [--trees 20,200] [--ram-limits 256mb]

Each fit runs in its own fork (steps/lib/isolation.py), so its peak is its own. The table is
bench/memory.py's synthetic one, split as prepare splits it; the parameters are the tuned ones
of the 10M memory run (depth 5, rate 0.25, l2 12, bagging temperature 0.6, random strength
0.0042). Prints JSON: per fit the parent's RSS, the child's peak, the peak over the parent per
training row, fit seconds, and the largest prediction difference from the plain fit with the
same tree count (a setting that changes the model shows up there)."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from memory import synthetic

from _common import PROJECT_DIR, emit

sys.path.insert(0, str(PROJECT_DIR))

PARAMS = {"learning_rate": 0.25, "depth": 5, "l2_leaf_reg": 12.0, "bagging_temperature": 0.6,
          "random_strength": 0.0042}


def _rss_mb() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096 // 2**20


def _fit(splits, trees: int, extra: dict) -> tuple[float, np.ndarray, int]:
    """Fit seconds, test predictions and this (forked) process's peak RSS in MB."""
    import resource

    from catboost import CatBoostRegressor

    x_train, y_train = splits.xy("train")
    model = CatBoostRegressor(iterations=trees, thread_count=2, random_seed=0, verbose=False,
                              allow_writing_files=False, cat_features=list(splits.categorical), **PARAMS, **extra)
    started = time.perf_counter()
    model.fit(x_train, y_train)
    seconds = time.perf_counter() - started
    return seconds, model.predict(splits.xy("test")[0]), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--trees", default="20,200")
    parser.add_argument("--ram-limits", default="256mb", help="used_ram_limit values to try at the largest tree count")
    args = parser.parse_args()
    from steps.lib import isolation
    from steps.lib.data.tables import split_frame

    splits = split_frame(synthetic(args.rows), "y", val_size=0.2, test_size=0.2, seed=0)
    trees = [int(t) for t in args.trees.split(",")]
    settings = [(t, {}) for t in trees] + [(max(trees), {"used_ram_limit": limit})
                                           for limit in args.ram_limits.split(",") if limit]
    fits, plain = [], {}
    for count, extra in settings:
        parent = _rss_mb()
        seconds, predictions, peak = isolation.run_forked(_fit, splits, count, extra)
        plain.setdefault(count, predictions)
        fits.append({"trees": count, **extra, "parent_rss_mb": parent, "child_peak_mb": peak,
                     "over_parent_kb_per_training_row": round((peak - parent) * 1024 / len(splits.train), 2),
                     "fit_s": round(seconds, 1),
                     "max_prediction_difference": float(np.max(np.abs(predictions - plain[count])))})
    emit("catboost_memory", {"rows": args.rows, "training_rows": len(splits.train), "params": PARAMS, "fits": fits})


if __name__ == "__main__":
    main()
