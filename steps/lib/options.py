"""The options steps declare, and how their values read: whole numbers written as floats, yes/no
switches, and the options several steps share. A step's click options are the one declaration of
its parameters (steps/lib/orchestration/project_file.py writes MLproject from them)."""

from __future__ import annotations

import click


class Whole(click.IntRange):
    """A whole number in a range; "50.0" counts as 50, since MLproject declares counts as floats
    and MLflow passes what the user typed (so trials=50 and trials=50.0 are the same run)."""

    name = "whole number"

    def convert(self, value, param, ctx):
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
            else:
                if number.is_integer():
                    value = int(number)
        return super().convert(value, param, ctx)


class Switch(click.Choice):
    """A yes/no setting as MLproject passes it, the text "true" or "false" (any case), read as a
    bool; `as_text` writes it back the same way when main forwards it."""

    name = "switch"

    def __init__(self):
        super().__init__(("true", "false"), case_sensitive=False)

    def convert(self, value, param, ctx):
        if isinstance(value, bool):
            return value
        return super().convert(value, param, ctx) == "true"


class StepOnly(click.Option):
    """An option `main` neither offers nor forwards: a run ID it wires from the upstream step, the
    family a generic step is run for, or a knob of one tuning worker. Every other option of a step
    is a pipeline setting, offered by `main` under the same name with the same default."""


def as_text(value) -> str:
    """A setting's value as a step's command line takes it (what `mlflow run -P` passes on)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


SEED_NUMBER = Whole(min=0, max=2**31 - 1)
FRACTION = click.FloatRange(min=0.0, max=1.0, min_open=True, max_open=True)

# Options several steps take, declared here once so the steps cannot disagree on them.
SEED = click.Option(["--seed"], type=SEED_NUMBER, default=42, show_default=True,
                    help="Seeds the split, the samplers and every fit: a rerun gives the same numbers.")
TUNE_ROWS = click.Option(["--tune-rows"], type=Whole(min=0), default=0, show_default=True,
                         help="Tune on a seeded sample of this many training rows (0 = all); refit uses all.")
HOLDOUT, CV, AUTO = "holdout", "cv", "auto"
# validation=auto cross-validates a table of at most this many train+val rows and cells (rows x
# features): measured to pay up to cps1988's 22,524 x 6 (135k cells); ames (2,344 x 79, 185k
# cells) stays out, where k fits per candidate cost the most (BENCHMARKS.md).
AUTO_CV_MAX_ROWS = 25_000
AUTO_CV_MAX_CELLS = 150_000
# On a table longer than AUTO_CV_MAX_ROWS and within these, auto tunes on the holdout but still
# cross-validates the final model: the tuned parameters and CatBoost's defaults each early-stopped
# on every fold, kept as bags and blended out of fold, 2k fits where cross-validated tuning costs
# k per trial. Measured to pay on diamonds (43,152 x 9); not on ames (2,344 x 79, out of tuning's
# cv by its width), which stays on the holdout (BENCHMARKS.md).
AUTO_CV_FINAL_MAX_ROWS = 50_000
AUTO_CV_FINAL_MAX_CELLS = 400_000
VALIDATION = click.Option(["--validation"], type=click.Choice((HOLDOUT, CV, AUTO)), default=AUTO,
                          show_default=True,
                          help="How tuning and refit score a candidate: fit on train, scored on val (holdout), or on "
                               "each of `folds` folds of train+val, early-stopped on the rows it left out (cv); auto: "
                               f"cv up to {AUTO_CV_MAX_ROWS:,} train+val rows and {AUTO_CV_MAX_CELLS:,} cells "
                               f"(rows x features); above {AUTO_CV_MAX_ROWS:,} rows and up to "
                               f"{AUTO_CV_FINAL_MAX_ROWS:,} rows and {AUTO_CV_FINAL_MAX_CELLS:,} cells, tuning on the "
                               "holdout and the final model over folds; holdout otherwise, and on a table held out for "
                               f"its width (at most {AUTO_CV_FINAL_MAX_ROWS:,} rows) each trial scored on its own "
                               "reshuffle of train+val and the final model the average of the chosen family's "
                               "candidates.")
FOLDS = click.Option(["--folds"], type=Whole(min=2, max=20), default=5, show_default=True,
                     help="Folds of train+val when validation=cv.")
DATA_RUN_ID = StepOnly(["--data-run-id"], default="",
                       help="The prepare run to read ('' = the latest FINISHED one with default settings).")
