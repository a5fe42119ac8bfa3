"""Out-of-fold predictions of cross-validated candidates: kept by each tuning step on its run,
read by refit to blend candidates across trials and families without fitting them again."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from steps.lib import names, tracking
from steps.lib.data.tables import Splits


def out_of_fold_table(splits: Splits, predictions: dict[str, Any]):
    """The out-of-fold predictions of several candidates beside the target, one row per row of
    train+val (in the order cross-validation numbers them): what comparing or blending the
    candidates needs, without fitting any of them again."""
    _, target = splits.train_val()
    return pd.DataFrame({"target": target.to_numpy(), **predictions})


def log_out_of_fold(splits, family: str, candidates: dict[str, tuple[dict, object]]) -> None:
    """Each candidate's out-of-fold predictions beside the target, and its family and parameters:
    what refit needs to blend candidates without tuning them again."""
    log_candidates(splits, {column: (family, params, predictions)
                            for column, (params, predictions) in candidates.items()})


def log_candidates(splits, candidates: dict[str, tuple[str, dict, object]]) -> None:
    """Candidates of any families, (family, parameters, out-of-fold predictions) by column, logged
    as `log_out_of_fold` logs one family's: refit logs those it weighed itself this way, so every
    candidate a blend was chosen from can be read back."""
    table = out_of_fold_table(splits, {column: predictions for column, (_, _, predictions) in candidates.items()})
    params = {column: {"family": family, "params": params} for column, (family, params, _) in candidates.items()}
    tracking.log_files({names.OUT_OF_FOLD_FILE: table.to_parquet,
                        names.CANDIDATES_FILE: lambda path: path.write_text(json.dumps(params, default=float))},
                       names.OUT_OF_FOLD_DIR)


def load_out_of_fold(tune_run_ids: list[str]) -> tuple[pd.Series, pd.DataFrame, dict[str, dict]] | None:
    """The target, every candidate's out-of-fold predictions (columns `<run>:<candidate>`) and
    each candidate's family and parameters, over the tuning runs given; None unless every run
    kept them for the very same rows (same folds of the same train+val)."""
    target, columns, candidates = None, {}, {}
    for run_id in tune_run_ids:
        try:
            directory = tracking.download_dir(run_id, names.OUT_OF_FOLD_DIR)
        except Exception:  # noqa: BLE001 - not cross-validated: nothing to blend
            return None
        table = pd.read_parquet(directory / names.OUT_OF_FOLD_FILE)
        if target is None:
            target = table["target"]
        elif not target.equals(table["target"]):
            return None
        params = json.loads((directory / names.CANDIDATES_FILE).read_text())
        for column in table.columns.drop("target"):
            columns[f"{run_id}:{column}"] = table[column]
            candidates[f"{run_id}:{column}"] = params[column]
    return (target, pd.DataFrame(columns), candidates) if target is not None else None
