"""The pipeline as data, spelled once: which steps run, which entry point each uses, which
pipeline settings and which upstream run IDs each consumes. `main` (through `mlflow.run`) and
the Databricks job are both built from it, so the two cannot wire the steps differently."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from steps.lib import names

PROJECT_NAME = "tabtune"  # the pipeline run's name unless the user gives --run-name
DEFAULT_FAMILIES = ("lasso", "catboost")  # the tutorial's two families
# Families tuned over a fixed grid by their own entry point; every other family goes through
# the generic Optuna `tune` entry point.
GRID_TUNED = {"lasso": (names.TUNE_LASSO, ("alphas", "seed", "tune_rows"))}
OPTUNA_SETTINGS = ("trials", "iterations", "seed", "storage", "study_name", "n_jobs", "pruner", "tune_rows")


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
        Step(names.REFIT, names.REFIT, ("max_iterations", "early_stopping_rounds", "try_defaults"),
             {"data_run_id": (names.PREPARE,), "tune_run_ids": tuple(step.name for step in tuning)}),
        Step(names.PACKAGE, names.PACKAGE, ("registered_model_name", "alias", "min_improvement", "promote"),
             {"model_run_id": (names.REFIT,)}),
    ]


def settings_used(families: tuple[str, ...] = DEFAULT_FAMILIES) -> tuple[str, ...]:
    """Every pipeline setting some step takes, in first-use order."""
    return tuple(dict.fromkeys(name for step in steps(families) for name in step.settings))


@dataclass(frozen=True)
class Outcome:
    """What a finished pipeline produced: its step runs, the final model's test RMSE, the
    leaderboard, and where the model went in the registry."""

    step_ids: dict[str, str]
    test_rmse: float
    leaderboard_csv: str
    registered_model_name: str
    registered_version: str
    alias: str
    alias_version: str | None
    registered_new: bool = True  # False: an identical version existed, nothing was registered

    @property
    def alias_moved(self) -> bool:
        return self.alias_version == self.registered_version


def summary(outcome: Outcome) -> str:
    """The pipeline's markdown summary (its run page's description and pipeline_summary.md):
    step runs, final test RMSE, registered version and alias, the leaderboard."""
    import pandas as pd

    board = pd.read_csv(io.StringIO(outcome.leaderboard_csv)).drop(columns=["final_params"], errors="ignore")
    lines = ["# tabtune pipeline", "", f"Final model test RMSE: **{outcome.test_rmse:.4f}**", "",
             registry_line(outcome), "", "| step | run ID |", "| --- | --- |"]
    lines += [f"| {step} | `{run_id}` |" for step, run_id in outcome.step_ids.items()]
    lines += ["", "## Leaderboard", ""]
    lines += ["| " + " | ".join(board.columns) + " |", "|" + " --- |" * len(board.columns)]
    lines += ["| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row) + " |"
              for row in board.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def registry_line(outcome: Outcome) -> str:
    """One sentence on the registry: which version this run made and where the alias is."""
    name, alias = outcome.registered_model_name, outcome.alias
    where = f"`{name}` version {outcome.registered_version}"
    if not outcome.registered_new:
        where += " (an identical model was registered before: no new version)"
    if outcome.alias_moved:
        return f"Registered {where}; @{alias} now points to it."
    if outcome.alias_version:
        return f"Registered {where}; @{alias} stays on version {outcome.alias_version}."
    return f"Registered {where}; no version holds @{alias}."


def record_results(pipeline_run_id: str, step_ids: dict[str, str], *, registered_model_name: str,
                   alias: str) -> Outcome:
    """What the pipeline run shows once every step finished: the refit's test RMSE and
    leaderboard, the summary as an artifact and as the run page's description; the outcome."""
    from steps.lib import tracking

    refit_run_id = step_ids[names.REFIT]
    package_params = tracking.run_params(step_ids[names.PACKAGE])
    outcome = Outcome(
        step_ids=dict(step_ids),
        test_rmse=tracking.run_metrics(refit_run_id)["test_rmse"],
        leaderboard_csv=tracking.download_dir(refit_run_id, names.LEADERBOARD_FILE).read_text(),
        registered_model_name=registered_model_name,
        registered_version=package_params.get("registered_version", "?"),
        alias=alias,
        alias_version=tracking.alias_version(registered_model_name, alias),
        registered_new=package_params.get("registered_new", "True") == "True",
    )
    text = summary(outcome)
    tracking.log_results(metrics={"test_rmse": outcome.test_rmse}, run_id=pipeline_run_id)
    tracking.log_text(outcome.leaderboard_csv, names.LEADERBOARD_FILE, run_id=pipeline_run_id)
    tracking.log_text(text, names.SUMMARY_FILE, run_id=pipeline_run_id)
    tracking.present_run(pipeline_run_id, name=PROJECT_NAME, description=text)
    return outcome


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
