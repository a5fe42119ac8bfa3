"""tune_catboost: CatBoost tuned by Optuna TPE at a fixed tree count, one child run per trial.

Reads: the prepare run `data_run_id` (or the latest one with default settings); optionally an
Optuna study in `storage` shared with other workers.
Writes: one child run per trial under the study's tuning run (every CatBoost parameter
including fixed ones; metrics val_rmse/val_mae/val_r2, fit_s, trial_number; tags
tabtune.trial_state = complete | failed | pruned, tabtune.worker = host:pid). On the tuning run:
metric best_val_rmse, tags best_trial and best_<param>, `best.json` (what refit reads),
`trials.csv`, Optuna's plots. A worker joining a study created by another is nested under that
study's tuning run and tagged tabtune.step=tune_catboost.worker."""

from __future__ import annotations

import os
import time

import click

from steps.lib import cli, lineage, names, studies, study_runs, tracking
from steps.lib.families import get_family
from steps.lib.secrets import mask_url
from steps.lib.tuning import FAILED, optimize


def run(*, data_run_id: str, trials: int, iterations: int, seed: int, timeout_s: float, storage: str = "",
        study_name: str = "", n_jobs: int = 1, pruner: str = "none", parent_run_id: str = "",
        thread_count: int = 0) -> str:
    """Run (or join) the study, logging each trial as it ends; returns this step's run ID."""
    stale: set[int] = set()  # trials the database heartbeat found abandoned by another worker
    optuna_storage = studies.open_storage(storage, on_stale_trial=lambda study, trial: stale.add(trial.number))
    shared = optuna_storage is not None
    # Never oversubscribe: the cores are shared among the trials running at once.
    family = get_family("catboost", thread_count=thread_count or max(1, (os.cpu_count() or 1) // n_jobs))
    tags = {names.FAMILY_TAG: family.name, "tabtune.study_storage": mask_url(storage) or "memory"}
    with tracking.step_run(names.TUNE_CATBOOST, tags) as run_id:
        if parent_run_id:
            tracking.resolve_run(parent_run_id, "parent_run_id", (names.TUNE_CATBOOST,), allow_running=True)
        data_run_id = lineage.data_run(data_run_id)
        splits = lineage.load_splits(data_run_id)
        name = study_name or f"tabtune-catboost-{data_run_id}-it{iterations}"
        pruner_obj = studies.make_pruner(pruner, iterations)
        study, created = studies.create_or_load(name, optuna_storage, studies.make_sampler(seed, parallel=False),
                                                pruner_obj)
        if shared or n_jobs > 1:
            sampler_seed = studies.worker_seed(study, seed, studies.Worker.this()) if shared else seed
            study.sampler = studies.make_sampler(sampler_seed, parallel=True)
        tuning_run_id = study_runs.attach(study, created, run_id, parent_run_id, shared)
        has_parent = "mlflow.parentRunId" in tracking.run_tags(run_id)
        if tuning_run_id != run_id:
            study_runs.mark_worker(run_id, tuning_run_id, has_parent)
        tracking.set_tags({names.DATA_RUN_TAG: data_run_id, "tabtune.study_name": name})
        writer = tracking.BackgroundChildRunWriter(tuning_run_id)
        if shared:
            study_runs.reap(study, writer.writer, stale)
        children, done, started = {}, [], time.perf_counter()
        worker = str(studies.Worker.this())

        def on_start(number: int) -> None:
            children[number] = writer.start(f"trial-{number:03d}", {
                names.TRIAL_NUMBER_TAG: str(number), "tabtune.worker": worker}, int(time.time() * 1000))

        def on_trial(result) -> None:
            done.append(result)
            if result.number not in children:
                writer.flush()  # its start was never queued: raises the writer's error
            writer.finish(
                children.pop(result.number),
                params={**result.params, "family": family.name, "seed": seed},
                metrics={**result.metrics, "fit_s": result.fit_s, "trial_number": result.number},
                tags={names.TRIAL_STATE_TAG: result.state,
                      **({names.ERROR_TAG: result.error[:5000]} if result.error else {})},
                failed=result.state == FAILED,
                finished_ms=int(result.finished.timestamp() * 1000) if result.finished else None,
            )
            print(f"tune_catboost: trial #{result.number} ({len(done)}/{trials}) {result.state}"
                  f" val_rmse={result.value:.4f} fit={result.fit_s:.2f}s"
                  f" elapsed={time.perf_counter() - started:.0f}s", flush=True)

        try:
            optimize(family, splits, study=study, trials=trials, iterations=iterations, seed=seed,
                     timeout_s=timeout_s, n_jobs=n_jobs, prune=pruner != "none", shared=shared,
                     on_start=on_start, on_trial=on_trial)
        finally:
            writer.close()  # every finished trial's child run is written before anything else
        if shared:
            study_runs.reap(study, writer.writer, stale)
        if not shared or study_runs.is_idle(study):
            best = study_runs.summarize(study, family.fixed_params(iterations=iterations), tuning_run_id)
            print(f"tune_catboost: best trial #{best['trial']} val_rmse={best['val_rmse']:.4f};"
                  f" tuning run {tuning_run_id}")
        else:
            print(f"tune_catboost: other workers still run trials of {name!r}; the last one writes the summary")
        return run_id


@click.command()
@click.option("--data-run-id", default="")
@click.option("--trials", type=click.IntRange(min=1), default=50, show_default=True,
              help="Total trials of the study, across all workers.")
@click.option("--iterations", type=click.IntRange(min=1), default=500, show_default=True)
@click.option("--seed", type=cli.SEED, default=42, show_default=True)
@click.option("--timeout-s", type=click.FloatRange(min=0), default=0, show_default=True,
              help="Stop starting new trials after this many seconds (0 = no limit).")
@click.option("--storage", default="", help="Optuna storage URL ('' = in memory), journal:PATH or env:VAR.")
@click.option("--study-name", default="", help="Default: derived from the data run and iterations.")
@click.option("--n-jobs", type=click.IntRange(min=1, max=64), default=1, show_default=True)
@click.option("--pruner", type=click.Choice(studies.PRUNERS), default="none", show_default=True)
@click.option("--parent-run-id", default="", help="Attach this worker's trials to this tuning run.")
@click.option("--thread-count", type=click.IntRange(min=0, max=256), default=0, show_default=True,
              help="CatBoost threads per trial (0 = cores / n_jobs).")
def command(**options) -> None:
    run(**options)


if __name__ == "__main__":
    cli.main(command, names.TUNE_CATBOOST)
