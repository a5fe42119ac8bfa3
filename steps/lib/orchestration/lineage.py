"""Which earlier runs a step builds on: the run IDs it was given (checked to be of the right
kind), or else the latest FINISHED run of the step it needs, or else that step run first as
a child of this one. This is what lets every step also run on its own."""

from __future__ import annotations

import pandas as pd

from steps.lib import names, tracking
from steps.lib.data.tables import Splits, data_settings_key, read_split, read_splits, unconform
from steps.lib.errors import InputError
from steps.lib.families import family_names
from steps.lib.orchestration import pipeline

DEFAULT_DATA_SETTINGS = data_settings_key(names.DEFAULT_DATA, "target", 0.2, 0.2, 42)


def data_run(data_run_id: str) -> str:
    """The prepare run to read splits from."""
    if data_run_id:
        return tracking.resolve_run(data_run_id, "data_run_id", (names.PREPARE,)).info.run_id
    found = tracking.find_latest_run(names.PREPARE, {names.DATA_SETTINGS_TAG: DEFAULT_DATA_SETTINGS})
    if found:
        print(f"using the latest prepare run with the default data settings: {found}")
        return found
    print("no prepare run with the default data settings yet: running prepare first")
    return tracking.run_step(names.PREPARE, {})


def load_splits(data_run_id: str) -> Splits:
    """The train/val/test frames a prepare run logged."""
    schema = tracking.download_json(data_run_id, names.SCHEMA_FILE)
    return read_splits(tracking.download_dir(data_run_id, names.SPLITS_DIR), schema)


def load_test_rows(data_run_id: str) -> tuple[pd.DataFrame, pd.Series]:
    """The test split of a prepare run as callers send rows to the served model (strings, None
    for a missing category), and its target; without reading the other two splits."""
    schema = tracking.download_json(data_run_id, names.SCHEMA_FILE)
    frame = read_split([tracking.download_dir(data_run_id, f"{names.SPLITS_DIR}/test.parquet")], schema)
    target = frame.pop(schema["target"])
    return unconform(frame, schema["categorical"]), target


def load_training_rows(data_run_id: str) -> pd.DataFrame:
    """Train and val of a prepare run stacked, target included: every row a model refit on that
    run's splits has seen."""
    schema = tracking.download_json(data_run_id, names.SCHEMA_FILE)
    return read_split([tracking.download_dir(data_run_id, f"{names.SPLITS_DIR}/{split}.parquet")
                       for split in ("train", "val")], schema)


def tune_runs(tune_run_ids: str, data_run_id: str) -> tuple[str, list[str]]:
    """The data run and the tuning runs to choose a family from; all on the same data. Without
    run IDs: the latest FINISHED tuning run of each default family on the data run, each run
    first if there is none."""
    ids = [part.strip() for part in tune_run_ids.split(",") if part.strip()]
    if not ids:
        data_run_id = data_run(data_run_id)
        for step in map(pipeline.tuning_step, pipeline.DEFAULT_FAMILIES):
            found = tracking.find_latest_run(step.name, {names.DATA_RUN_TAG: data_run_id})
            if not found:
                print(f"no FINISHED {step.name} run on data run {data_run_id}: running {step.name} first")
                found = tracking.run_step(step.name, {"data_run_id": data_run_id, **step.fixed},
                                          entry_point=step.entry_point)
            ids.append(found)
        return data_run_id, ids
    data_runs = set()
    tuning_steps = tuple(names.tune_step(family) for family in family_names())
    worker_steps = tuple(names.worker_step(family) for family in family_names())
    for index, run_id in enumerate(ids):
        run = tracking.resolve_run(run_id, "tune_run_ids", (*tuning_steps, *worker_steps))
        ids[index] = run.info.run_id
        if names.is_worker_step(run.data.tags[names.STEP_TAG]):
            # a worker that joined a shared study: its trials (and best.json) are on the study's run
            ids[index] = run.data.tags[names.TUNING_RUN_TAG]
            run = tracking.resolve_run(ids[index], "tune_run_ids", tuning_steps)
        data_runs.add(run.data.tags.get(names.DATA_RUN_TAG))
    if data_run_id and data_runs != {data_run_id}:
        raise InputError(
            "tune_run_ids", f"these tuning runs used data runs {sorted(data_runs)}, not data_run_id {data_run_id}"
        )
    if len(data_runs) != 1:
        raise InputError("tune_run_ids", f"tuning runs on different data runs: {sorted(data_runs)}")
    data_run_id = data_runs.pop()
    tracking.resolve_run(data_run_id, "data_run_id", (names.PREPARE,))
    return data_run_id, ids


def model_run(model_run_id: str) -> str:
    """The refit run whose model is packaged."""
    if model_run_id:
        return tracking.resolve_run(model_run_id, "model_run_id", (names.REFIT,)).info.run_id
    found = tracking.find_latest_run(names.REFIT)
    if found:
        print(f"using the latest refit run: {found}")
        return found
    print("no FINISHED refit run yet: running refit first")
    return tracking.run_step(names.REFIT, {})
