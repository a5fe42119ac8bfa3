"""What an extra-trees model would cost a team serving it: pickled size, one-row predict time
and held-out RMSE of one fold model on diamonds (fold 1 of seed 2's folds, as stacking.py fits
it), at scikit-learn's defaults and three lighter forms; one JSON line each.

    cd bench && ../.venv/bin/python extra_trees_size.py"""

from __future__ import annotations

import json
import pickle
import sys
import time

from _common import PROJECT_DIR

sys.path.insert(0, str(PROJECT_DIR))

FORMS = {"defaults": {}, "max_leaf_nodes=15000 (AutoGluon's)": {"max_leaf_nodes": 15000},
         "min_samples_leaf=5": {"min_samples_leaf": 5},
         "n_estimators=100, min_samples_leaf=5 (stacking.py's extra_trees_light)": {"n_estimators": 100,
                                                                                   "min_samples_leaf": 5}}


def main() -> None:
    import numpy as np
    from quality import splits_per_seed
    from stacking import forest

    _, _, _, splits = next(splits_per_seed(["diamonds"], [2]))
    fold = splits.cv_folds(5)[0]
    one_row = splits.xy("test")[0].iloc[:1]
    for label, params in FORMS.items():
        started = time.perf_counter()
        model = forest("extra_trees", seed=2, threads=2, **params)(fold, one_row, keep=True)
        fit_s = time.perf_counter() - started
        size = len(pickle.dumps(model))
        started = time.perf_counter()
        for _ in range(20):
            model.predict(one_row)
        latency = (time.perf_counter() - started) / 20
        held = model.predict(fold.xy("val")[0]) - fold.xy("val")[1].to_numpy()
        print(json.dumps({"form": label, "rows": len(fold.train), "fit_s": round(fit_s, 1),
                          "pickled_mb": round(size / 1e6), "one_row_ms": round(latency * 1000, 1),
                          "held_out_rmse": round(float(np.sqrt(np.mean(held ** 2))), 2)}), flush=True)


if __name__ == "__main__":
    main()
