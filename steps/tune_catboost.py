"""tune_catboost: CatBoost tuned by Optuna TPE at a fixed tree count, one child run per trial.

Reads: the prepare run `data_run_id` (or the latest one with default settings).
Writes: this step's run, with one child run per trial (every CatBoost parameter including the
fixed ones; metrics val_rmse/val_mae/val_r2, fit_s, trial_number; tag tabtune.trial_state =
complete | failed | pruned); on the step run: params best_trial and best_<param>, metric
best_val_rmse, `best.json` (what refit reads), `trials.csv`, and Optuna's plots."""

from __future__ import annotations

import time

import click

from steps.lib import cli, lineage, names, tracking
from steps.lib.errors import InputError
from steps.lib.families import get_family
from steps.lib.tuning import COMPLETE, FAILED, best_result, optimize


def run(*, data_run_id: str, trials: int, iterations: int, seed: int, timeout_s: float) -> str:
    """Run the study, logging each trial as it ends; returns this step's run ID."""
    family = get_family("catboost")
    with tracking.step_run(names.TUNE_CATBOOST, {names.FAMILY_TAG: family.name}) as run_id:
        data_run_id = lineage.data_run(data_run_id)
        tracking.set_tags({names.DATA_RUN_TAG: data_run_id})
        splits = lineage.load_splits(data_run_id)
        writer = tracking.ChildRunWriter(run_id, names.TUNE_CATBOOST)
        results = []
        started = time.perf_counter()

        def log_trial(result) -> None:
            results.append(result)
            writer.write(
                name=f"trial-{result.number:03d}",
                params={**result.params, "family": family.name, "seed": seed},
                metrics={**result.metrics, "fit_s": result.fit_s, "trial_number": result.number},
                tags={names.TRIAL_STATE_TAG: result.state, names.TRIAL_NUMBER_TAG: str(result.number),
                      **({names.ERROR_TAG: result.error[:5000]} if result.error else {})},
                failed=result.state == FAILED,
                started_ms=_ms(result.started),
                finished_ms=_ms(result.finished),
            )
            best = min((r.value for r in results), default=float("inf"))
            print(
                f"tune_catboost: trial #{result.number} ({len(results)}/{trials}) {result.state}"
                f" val_rmse={result.value:.4f} best={best:.4f} fit={result.fit_s:.2f}s"
                f" elapsed={time.perf_counter() - started:.0f}s",
                flush=True,
            )

        study = optimize(
            family, splits, trials=trials, iterations=iterations, seed=seed, timeout_s=timeout_s,
            on_trial=log_trial,
        )
        if not any(r.state == COMPLETE for r in results):
            first_error = next((r.error for r in results if r.error), "no trial ran")
            raise InputError("trials", f"no trial completed; first error: {first_error}")
        best = best_result(results)
        tunable = {k: v for k, v in best.params.items() if k in study.best_trial.params}
        tracking.log_results(
            params={"best_trial": best.number, **{f"best_{k}": v for k, v in tunable.items()}},
            metrics={"best_val_rmse": best.value, "best_val_mae": best.metrics["val_mae"],
                     "best_val_r2": best.metrics["val_r2"], "trials_complete":
                     sum(r.state == COMPLETE for r in results), "trials_total": len(results)},
        )
        tracking.log_json(
            {"family": family.name, "params": best.params, "val_rmse": best.value, "trial": best.number},
            names.BEST_FILE,
        )
        tracking.log_table(study.trials_dataframe(), names.TRIALS_FILE)
        from steps.lib import plots

        for file_name, figure in plots.optuna_figures(study).items():
            tracking.log_figure(figure, f"{names.PLOTS_DIR}/{file_name}")
        print(f"tune_catboost: best trial #{best.number} val_rmse={best.value:.4f}; run {run_id}")
        return run_id


def _ms(moment) -> int | None:
    return int(moment.timestamp() * 1000) if moment else None


@click.command()
@click.option("--data-run-id", default="")
@click.option("--trials", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--iterations", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--seed", type=cli.SEED, default=42, show_default=True)
@click.option("--timeout-s", type=click.FloatRange(min=0), default=0, show_default=True,
              help="Stop starting new trials after this many seconds (0 = no limit).")
def command(**options) -> None:
    run(**options)


if __name__ == "__main__":
    cli.main(command, names.TUNE_CATBOOST)
