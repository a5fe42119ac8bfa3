"""main: the whole pipeline as one run, with every step run nested under it.

Reads: the data settings and budgets below.
Writes: the pipeline run, with child runs prepare → tune_lasso → tune_catboost → refit →
package (each started by `mlflow.run` and handed the run IDs it needs); tags
`tabtune.run_id.<step>`, metric test_rmse, and `pipeline_summary.md` + `leaderboard.csv`.
If a step fails, no later step runs and this run ends FAILED naming the step and its run."""

from __future__ import annotations

import click

from steps.lib import cli, names, tracking
from steps.lib.grid import parse_alphas

ENV_MANAGERS = ("local", "virtualenv", "uv", "conda")


def run(*, data: str, target: str, trials: int, alphas: str, iterations: int, seed: int,
        env_manager: str, storage: str = "", study_name: str = "", n_jobs: int = 1, pruner: str = "none",
        registered_model_name: str = "tabtune-regressor", alias: str = "champion",
        max_iterations: int = 5000, early_stopping_rounds: int = 100) -> str:
    """Run every step in order; returns the pipeline's run ID."""
    parse_alphas(alphas)  # fail here, before any step runs, on an unparsable grid
    with tracking.step_run(names.MAIN) as run_id:
        def step(name: str, **parameters) -> str:
            step_run_id = tracking.run_step(name, parameters, env_manager=env_manager)
            tracking.set_tags({names.STEP_RUN_TAG_PREFIX + name: step_run_id})
            return step_run_id

        data_run_id = step(names.PREPARE, data=data, target=target, seed=seed)
        lasso_run_id = step(names.TUNE_LASSO, data_run_id=data_run_id, alphas=alphas, seed=seed)
        catboost_run_id = step(names.TUNE_CATBOOST, data_run_id=data_run_id, trials=trials,
                               iterations=iterations, seed=seed, storage=storage, study_name=study_name,
                               n_jobs=n_jobs, pruner=pruner)
        refit_run_id = step(names.REFIT, data_run_id=data_run_id,
                            tune_run_ids=f"{lasso_run_id},{catboost_run_id}", max_iterations=max_iterations,
                            early_stopping_rounds=early_stopping_rounds)
        package_run_id = step(names.PACKAGE, model_run_id=refit_run_id,
                              registered_model_name=registered_model_name, alias=alias)

        refit_metrics = tracking.run_metrics(refit_run_id)
        tracking.log_results(metrics={"test_rmse": refit_metrics["test_rmse"]})
        leaderboard = tracking.download_dir(refit_run_id, names.LEADERBOARD_FILE)
        tracking.log_text(leaderboard.read_text(), names.LEADERBOARD_FILE)
        step_ids = {names.PREPARE: data_run_id, names.TUNE_LASSO: lasso_run_id,
                    names.TUNE_CATBOOST: catboost_run_id, names.REFIT: refit_run_id,
                    names.PACKAGE: package_run_id}
        tracking.log_text(summary(step_ids, leaderboard.read_text(), refit_metrics), names.SUMMARY_FILE)
        print(f"main: test_rmse={refit_metrics['test_rmse']:.4f}; pipeline run {run_id}")
        return run_id


def summary(step_ids: dict[str, str], leaderboard_csv: str, metrics: dict[str, float]) -> str:
    import io

    import pandas as pd

    board = pd.read_csv(io.StringIO(leaderboard_csv)).drop(columns=["final_params"], errors="ignore")
    lines = ["# tabtune pipeline", "", "| step | run ID |", "| --- | --- |"]
    lines += [f"| {step} | `{run_id}` |" for step, run_id in step_ids.items()]
    lines += ["", f"Final model test RMSE: **{metrics['test_rmse']:.4f}**", "", "## Leaderboard", ""]
    lines += ["| " + " | ".join(board.columns) + " |", "|" + " --- |" * len(board.columns)]
    lines += ["| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row) + " |"
              for row in board.itertuples(index=False)]
    return "\n".join(lines) + "\n"


@click.command()
@click.option("--data", default=names.DEFAULT_DATA, show_default=True)
@click.option("--target", default="")
@click.option("--trials", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--alphas", default="1,0.3,0.1,0.03,0.01,0.003,0.001", show_default=True)
@click.option("--iterations", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--seed", type=cli.SEED, default=42, show_default=True)
@click.option("--env-manager", type=click.Choice(ENV_MANAGERS), default="local", show_default=True)
@click.option("--storage", default="", help="Optuna storage for tune_catboost ('' = in memory; env:VAR).")
@click.option("--study-name", default="")
@click.option("--n-jobs", type=click.IntRange(min=1, max=64), default=1, show_default=True)
@click.option("--pruner", type=click.Choice(("none", "median", "hyperband")), default="none", show_default=True)
@click.option("--registered-model-name", default="tabtune-regressor", show_default=True)
@click.option("--alias", default="champion", show_default=True)
@click.option("--max-iterations", type=click.IntRange(min=1), default=5000, show_default=True)
@click.option("--early-stopping-rounds", type=click.IntRange(min=1), default=100, show_default=True)
def command(**options) -> None:
    run(**options)


if __name__ == "__main__":
    cli.main(command, names.MAIN)
