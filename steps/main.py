"""main: the whole pipeline as one run, with every step run nested under it.

Reads: the data settings, the families to tune and the budgets below.
Writes: the pipeline run, with child runs prepare → one tuning run per family → refit →
package (each started by `mlflow.run` and handed the run IDs it needs, as
steps/lib/pipeline.py wires them); tags `tabtune.run_id.<step>`, metric test_rmse, and
`pipeline_summary.md` + `leaderboard.csv`. If a step fails, no later step runs and this run
ends FAILED naming the step and its run."""

from __future__ import annotations

import click

from steps.lib import cli, gate, names, pipeline, studies, tracking
from steps.lib.errors import InputError
from steps.lib.grid import parse_alphas

ENV_MANAGERS = ("local", "virtualenv", "uv", "conda")


def run(*, data: str, target: str, families: str = ",".join(pipeline.DEFAULT_FAMILIES), trials: int,
        alphas: str, iterations: int, seed: int, env_manager: str, storage: str = "", study_name: str = "",
        n_jobs: int = 1, pruner: str = "none", registered_model_name: str = "tabtune-regressor",
        alias: str = "champion", max_iterations: int = 5000, early_stopping_rounds: int = 100,
        min_improvement: float = 0.0, promote: str = "gate") -> str:
    """Run every step in order; returns the pipeline's run ID."""
    settings = dict(data=data, target=target, trials=trials, alphas=alphas, iterations=iterations, seed=seed,
                    storage=storage, study_name=study_name, n_jobs=n_jobs, pruner=pruner,
                    registered_model_name=registered_model_name, alias=alias, max_iterations=max_iterations,
                    early_stopping_rounds=early_stopping_rounds, min_improvement=min_improvement,
                    promote=promote)
    steps = pipeline.steps(pipeline.parse_families(families))
    check(steps, settings)  # fail here, before any step runs
    with tracking.step_run(names.MAIN) as pipeline_run_id:
        run_ids: dict[str, str] = {}
        for step in steps:
            run_ids[step.name] = tracking.run_step(step.name, step.parameters(settings, run_ids),
                                                   env_manager=env_manager, entry_point=step.entry_point)
            tracking.set_tags({names.STEP_RUN_TAG_PREFIX + step.name: run_ids[step.name]})
        metrics = pipeline.record_results(pipeline_run_id, run_ids)
        print(f"main: test_rmse={metrics['test_rmse']:.4f}; pipeline run {pipeline_run_id}")
        return pipeline_run_id


def check(steps: list[pipeline.Step], settings: dict) -> None:
    """Settings that would only fail a later step, checked before the first one starts."""
    parse_alphas(settings["alphas"])
    gate.check_settings(settings["min_improvement"], settings["promote"])
    optuna_steps = [step for step in steps if "study_name" in step.settings]
    if settings["study_name"] and len(optuna_steps) > 1:
        raise InputError("study_name", f"one study name for {len(optuna_steps)} tuned families "
                                       f"({', '.join(s.fixed['family'] for s in optuna_steps)}): leave it empty")


@click.command()
@click.option("--data", default=names.DEFAULT_DATA, show_default=True)
@click.option("--target", default="")
@click.option("--families", default=",".join(pipeline.DEFAULT_FAMILIES), show_default=True,
              help="Model families to tune, comma-separated.")
@click.option("--trials", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--alphas", default="1,0.3,0.1,0.03,0.01,0.003,0.001", show_default=True)
@click.option("--iterations", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--seed", type=cli.SEED, default=42, show_default=True)
@click.option("--env-manager", type=click.Choice(ENV_MANAGERS), default="local", show_default=True)
@click.option("--storage", default="", help="Optuna storage for the tuning steps ('' = in memory; env:VAR).")
@click.option("--study-name", default="")
@click.option("--n-jobs", type=click.IntRange(min=1, max=64), default=1, show_default=True)
@click.option("--pruner", type=click.Choice(studies.PRUNERS), default="none", show_default=True)
@click.option("--registered-model-name", default="tabtune-regressor", show_default=True)
@click.option("--alias", default="champion", show_default=True)
@click.option("--max-iterations", type=click.IntRange(min=1), default=5000, show_default=True)
@click.option("--early-stopping-rounds", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--min-improvement", type=click.FloatRange(min=0.0, max=1.0, max_open=True), default=0.0,
              show_default=True, help="Forwarded to package: the champion gate's relative margin.")
@click.option("--promote", type=click.Choice(gate.PROMOTE_MODES), default="gate", show_default=True,
              help="Forwarded to package: gate, force or never.")
def command(**options) -> None:
    run(**options)


if __name__ == "__main__":
    cli.main(command, names.MAIN)
