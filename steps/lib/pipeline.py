"""The pipeline as data, spelled once: which steps run, which entry point each uses, which
pipeline settings and which upstream run IDs each consumes. `main` (through `mlflow.run`) and
the Databricks job are both built from it, so the two cannot wire the steps differently."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from steps.lib import names

DEFAULT_FAMILIES = ("lasso", "catboost")  # the tutorial's two families
# Families tuned over a fixed grid by their own entry point; every other family goes through
# the generic Optuna `tune` entry point.
GRID_TUNED = {"lasso": (names.TUNE_LASSO, ("alphas", "seed"))}
OPTUNA_SETTINGS = ("trials", "iterations", "seed", "storage", "study_name", "n_jobs", "pruner")


@dataclass(frozen=True)
class Step:
    """One step of the pipeline: its name (run name, tabtune.step tag, job task key), the
    MLproject entry point it runs, the pipeline settings it takes as parameters, the parameters
    that take upstream steps' run IDs (comma-joined), and parameters the pipeline fixes."""

    name: str
    entry_point: str
    settings: tuple[str, ...] = ()
    upstream: dict[str, tuple[str, ...]] = field(default_factory=dict)
    fixed: dict[str, str] = field(default_factory=dict)

    @property
    def depends_on(self) -> tuple[str, ...]:
        """The steps whose run IDs this one needs, in order, once each."""
        return tuple(dict.fromkeys(step for steps in self.upstream.values() for step in steps))

    def parameters(self, settings: dict[str, object], run_ids: dict[str, str]) -> dict[str, str]:
        """This step's entry-point parameters, from the pipeline's settings and the run IDs (or
        references to them, for a job) of the steps it depends on."""
        return {
            **{name: str(settings[name]) for name in self.settings},
            **self.fixed,
            **{param: ",".join(run_ids[step] for step in steps) for param, steps in self.upstream.items()},
        }


def tuning_step(family: str) -> Step:
    """How `family` is tuned inside the pipeline."""
    if family in GRID_TUNED:
        entry_point, settings = GRID_TUNED[family]
        return Step(names.tune_step(family), entry_point, settings, {"data_run_id": (names.PREPARE,)})
    return Step(names.tune_step(family), names.TUNE, OPTUNA_SETTINGS, {"data_run_id": (names.PREPARE,)},
                {"family": family})


def steps(families: tuple[str, ...] = DEFAULT_FAMILIES) -> list[Step]:
    """Every step in the order they run: prepare, one tuning step per family, refit, package."""
    tuning = [tuning_step(family) for family in families]
    return [
        Step(names.PREPARE, names.PREPARE, ("data", "target", "seed")),
        *tuning,
        Step(names.REFIT, names.REFIT, ("max_iterations", "early_stopping_rounds"),
             {"data_run_id": (names.PREPARE,), "tune_run_ids": tuple(step.name for step in tuning)}),
        Step(names.PACKAGE, names.PACKAGE, ("registered_model_name", "alias", "min_improvement", "promote"),
             {"model_run_id": (names.REFIT,)}),
    ]


def settings_used(families: tuple[str, ...] = DEFAULT_FAMILIES) -> tuple[str, ...]:
    """Every pipeline setting some step takes, in first-use order."""
    return tuple(dict.fromkeys(name for step in steps(families) for name in step.settings))


def summary(step_ids: dict[str, str], leaderboard_csv: str, metrics: dict[str, float]) -> str:
    """The pipeline run's markdown summary: step runs, final test RMSE, the leaderboard."""
    import pandas as pd

    board = pd.read_csv(io.StringIO(leaderboard_csv)).drop(columns=["final_params"], errors="ignore")
    lines = ["# tabtune pipeline", "", "| step | run ID |", "| --- | --- |"]
    lines += [f"| {step} | `{run_id}` |" for step, run_id in step_ids.items()]
    lines += ["", f"Final model test RMSE: **{metrics['test_rmse']:.4f}**", "", "## Leaderboard", ""]
    lines += ["| " + " | ".join(board.columns) + " |", "|" + " --- |" * len(board.columns)]
    lines += ["| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row) + " |"
              for row in board.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def record_results(pipeline_run_id: str, step_ids: dict[str, str]) -> dict[str, float]:
    """What the pipeline run shows once every step finished: the refit's test RMSE, its
    leaderboard and the summary; returns the refit's metrics."""
    from steps.lib import tracking

    refit_run_id = step_ids[names.REFIT]
    refit_metrics = tracking.run_metrics(refit_run_id)
    leaderboard = tracking.download_dir(refit_run_id, names.LEADERBOARD_FILE).read_text()
    tracking.log_results(metrics={"test_rmse": refit_metrics["test_rmse"]}, run_id=pipeline_run_id)
    tracking.log_text(leaderboard, names.LEADERBOARD_FILE, run_id=pipeline_run_id)
    tracking.log_text(summary(step_ids, leaderboard, refit_metrics), names.SUMMARY_FILE, run_id=pipeline_run_id)
    return refit_metrics


def parse_families(text: str) -> tuple[str, ...]:
    """Family names from a comma list ("lasso,catboost"): known, at least one, no duplicates."""
    from steps.lib.errors import InputError
    from steps.lib.families import family_names

    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    known = family_names()
    if not chosen:
        raise InputError("families", f"expected a comma list of model families from {', '.join(known)}")
    for family in chosen:
        if family not in known:
            raise InputError("families", f"unknown model family {family!r}; known: {', '.join(known)}")
    if len(set(chosen)) != len(chosen):
        raise InputError("families", f"duplicate families in {text!r}")
    return chosen
