"""prepare: read a table, drop rows without a target, split train/val/test.

Reads: `data` (diabetes, or a CSV/Parquet path or URI).
Writes: this step's run with artifacts `splits/{train,val,test}.parquet` and `schema.json`
(target, numeric and categorical columns, row counts, data digest), one dataset input per
split, metrics `rows_*`, and the tag `tabtune.data_settings` by which other steps find it."""

from __future__ import annotations

import click

from steps.lib import names, options, tracking
from steps.lib.data.tables import clean_target, data_settings_key, frame_digest, read_table, split_frame
from steps.lib.errors import InputError
from steps.lib.orchestration import cli
from steps.lib.progress import Phase
from steps.lib.secrets import mask_url


def run(*, data: str, target: str, val_size: float, test_size: float, seed: int) -> str:
    """Split `data` and log the splits; returns this step's run ID."""
    if val_size + test_size >= 1:
        raise InputError("val_size", f"val_size + test_size must be < 1, got {val_size} + {test_size}")
    target = target or ("target" if data == names.DEFAULT_DATA else "")
    if not target:
        raise InputError("target", "required unless data=diabetes: name the column to predict")
    settings = data_settings_key(data, target, val_size, test_size, seed)
    with tracking.step_run(names.PREPARE, {names.DATA_SETTINGS_TAG: settings}) as run_id:
        with Phase(names.PREPARE, f"reading {mask_url(data)}"):
            frame = read_table(data)
        with Phase(names.PREPARE, f"hashing and splitting {len(frame):,} rows"):
            rows_read, digest = len(frame), frame_digest(frame)
            rows, dropped = clean_target(frame, target)
            splits = split_frame(rows, target, val_size=val_size, test_size=test_size, seed=seed)
        del frame, rows  # the splits are a shuffled copy: the table as read is no longer needed
        counts = {split: len(getattr(splits, split)) for split in names.SPLITS}
        schema = {
            "target": target,
            "numeric": splits.numeric,
            "categorical": splits.categorical,
            "rows": counts,
            "rows_read": rows_read,
            "rows_dropped_missing_target": dropped,
            "digest": digest,
            "source": mask_url(data),
            "seed": seed,
        }
        with Phase(names.PREPARE, "writing and logging the splits"):
            tracking.log_files(
                {f"{split}.parquet": getattr(splits, split).to_parquet for split in names.SPLITS},
                names.SPLITS_DIR,
            )
            tracking.log_json(schema, names.SCHEMA_FILE)
            tracking.log_split_inputs(splits, source=mask_url(data))
        tracking.log_results(
            metrics={
                **{f"rows_{split}": n for split, n in counts.items()},
                "rows_dropped_missing_target": dropped,
            },
            tags={names.DATA_DIGEST_TAG: schema["digest"]},
        )
        print(f"prepare: {counts} rows ({dropped} dropped for a missing target); run {run_id}")
        return run_id


OPTIONS = [
    click.Option(["--data"], default=names.DEFAULT_DATA, show_default=True,
                 help="The table: diabetes (bundled with scikit-learn), or a CSV/Parquet path or URI."),
    click.Option(["--target"], default="", help="The column to predict (required unless data=diabetes)."),
    click.Option(["--val-size"], type=options.FRACTION, default=0.2, show_default=True,
                 help="Share of the rows held out for validation (tuning and early stopping)."),
    click.Option(["--test-size"], type=options.FRACTION, default=0.2, show_default=True,
                 help="Share of the rows held out for the final test score; no choice ever sees them."),
    options.SEED,
]
command = click.Command(names.PREPARE, params=OPTIONS, callback=run)


if __name__ == "__main__":
    cli.main(command, names.PREPARE)
