"""What a finished pipeline shows: the outcome of its steps, the markdown summary on the
pipeline run's page, and the results logged there."""

from __future__ import annotations

import io
from dataclasses import dataclass

from steps.lib import names

PROJECT_NAME = "tabtune"  # the pipeline run's name unless the user gives --run-name


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
    package_reused: bool = False  # True: this pipeline reused an earlier package step, registered nothing

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
    if outcome.package_reused:
        verb = "Reused"
        where += f" (registered by package run {outcome.step_ids.get(names.PACKAGE, '?')}: nothing registered now)"
    else:
        verb = "Registered"
        if not outcome.registered_new:
            where += " (an identical model was registered before: no new version)"
    # Read from the registry now: for a reused step, where the alias is today, whatever it did then.
    points, stays = ("points to it", "is on version") if outcome.package_reused else ("now points to it",
                                                                                       "stays on version")
    if outcome.alias_moved:
        return f"{verb} {where}; @{alias} {points}."
    if outcome.alias_version:
        return f"{verb} {where}; @{alias} {stays} {outcome.alias_version}."
    return f"{verb} {where}; no version holds @{alias}."


def record_results(pipeline_run_id: str, step_ids: dict[str, str], *, registered_model_name: str,
                   alias: str, reused: frozenset[str] = frozenset()) -> Outcome:
    """What the pipeline run shows once every step finished: the refit's test RMSE and
    leaderboard, the summary as an artifact and as the run page's description; the outcome."""
    from steps.lib import tracking

    refit_run_id = step_ids[names.REFIT]
    package_params = tracking.run_params(step_ids[names.PACKAGE])
    registered_model_name = package_params.get("registered_model") or registered_model_name
    outcome = Outcome(
        step_ids=dict(step_ids),
        test_rmse=tracking.run_metrics(refit_run_id)["test_rmse"],
        leaderboard_csv=tracking.download_dir(refit_run_id, names.LEADERBOARD_FILE).read_text(),
        registered_model_name=registered_model_name,
        registered_version=package_params.get("registered_version", "?"),
        alias=alias,
        alias_version=tracking.alias_version(registered_model_name, alias) if registered_model_name else None,
        registered_new=package_params.get("registered_new", "True") == "True",
        package_reused=names.PACKAGE in reused,
    )
    text = summary(outcome)
    tracking.log_results(metrics={"test_rmse": outcome.test_rmse}, run_id=pipeline_run_id)
    tracking.log_text(outcome.leaderboard_csv, names.LEADERBOARD_FILE, run_id=pipeline_run_id)
    tracking.log_text(text, names.SUMMARY_FILE, run_id=pipeline_run_id)
    tracking.present_run(pipeline_run_id, name=PROJECT_NAME, description=text)
    return outcome
