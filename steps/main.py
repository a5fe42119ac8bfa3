"""main: the whole pipeline as one run, with every step run nested under it.

Reads: the data settings, the families to tune and the budgets below.
Writes: the pipeline run, with child runs prepare → one tuning run per family → refit →
package (each started by `mlflow.run` and handed the run IDs it needs, as
steps/lib/pipeline.py wires them; a step starts once the steps it needs have finished, so the
tuning steps, which need only prepare's run, run side by side, up to `parallel_steps` at once:
steps/lib/scheduler.py; with reuse=auto, a step whose earlier FINISHED run has the same cache
key is not run again: a stand-in child run tagged tabtune.reused_from points to
it); tags `tabtune.run_id.<step>` (the runs that did the work), metric test_rmse, and
`pipeline_summary.md` + `leaderboard.csv`. If a step fails, no later step runs, the steps
running beside it are stopped (their runs end KILLED) and this run ends FAILED naming the step
and its run."""

from __future__ import annotations

import contextlib
import time

import click

from steps.lib import cli, gate, interrupts, names, pipeline, scheduler, studies, tracking
from steps.lib import reuse as reuse_module
from steps.lib.errors import InputError
from steps.lib.grid import parse_alphas

ENV_MANAGERS = ("local", "virtualenv", "uv", "conda")
GRACE_S = 10.0  # how long an interrupted step may take to end its runs before it is SIGKILLed


def run(*, data: str, target: str, families: str = ",".join(pipeline.DEFAULT_FAMILIES), trials: int,
        alphas: str, iterations: int, seed: int, env_manager: str, storage: str = "", study_name: str = "",
        n_jobs: int = 1, pruner: str = "none", registered_model_name: str = "tabtune-regressor",
        alias: str = "champion", max_iterations: int = 5000, early_stopping_rounds: int = 100,
        try_defaults: str = "true", min_improvement: float = 0.0, promote: str = "gate", reuse: str = "auto",
        tune_rows: int = 0, parallel_steps: int = 2) -> str:
    """Run every step once its inputs exist (or reuse its earlier run), up to `parallel_steps`
    at once; returns the pipeline's run ID."""
    settings = dict(data=data, target=target, trials=trials, alphas=alphas, iterations=iterations, seed=seed,
                    storage=storage, study_name=study_name, n_jobs=n_jobs, pruner=pruner,
                    registered_model_name=registered_model_name, alias=alias, max_iterations=max_iterations,
                    early_stopping_rounds=early_stopping_rounds, try_defaults=try_defaults,
                    min_improvement=min_improvement,
                    promote=promote, tune_rows=tune_rows)
    steps = pipeline.steps(pipeline.parse_families(families))
    check(steps, settings)  # fail here, before any step runs
    with tracking.step_run(names.MAIN) as pipeline_run_id, stopping_steps(pipeline_run_id):

        def start(step: pipeline.Step, run_ids: dict[str, str]) -> str | scheduler.Started:
            parameters = step.parameters(settings, run_ids)
            key = reuse_module.cache_key(step, parameters)
            earlier = reuse_module.reusable_run(step, key, parameters) if reuse == "auto" else None
            if earlier:
                tracking.record_reused_step(step.name, earlier, pipeline_run_id)
                print(f"main: {step.name}: reused {earlier}", flush=True)
                return earlier  # later steps read the run that did the work
            return scheduler.Started(lambda: run_step(step, parameters, key, env_manager, pipeline_run_id))

        def finish(step: pipeline.Step, run_id: str) -> None:
            tracking.set_tags({names.STEP_RUN_TAG_PREFIX + step.name: run_id})

        run_ids = scheduler.run_steps(steps, start, finish, at_once=parallel_steps, grace_s=GRACE_S)
        outcome = pipeline.record_results(pipeline_run_id, run_ids, registered_model_name=registered_model_name,
                                          alias=alias)
        print(closing_lines(outcome, pipeline_run_id, *tracking.store_location()), flush=True)
        return pipeline_run_id


def run_step(step: pipeline.Step, parameters: dict[str, str], key: str | None, env_manager: str,
             pipeline_run_id: str) -> str:
    """Run one step through `mlflow.run` under the pipeline run (on the scheduler's thread for
    it); tag it with its cache key once it finished, so a later pipeline can reuse it."""
    run_id = tracking.run_step(step.name, parameters, env_manager=env_manager, entry_point=step.entry_point,
                               parent_run_id=pipeline_run_id)
    if key:
        tracking.log_results(tags={names.CACHE_KEY_TAG: key}, run_id=run_id)
    print(f"main: {step.name}: ran {run_id}", flush=True)
    return run_id


@contextlib.contextmanager
def stopping_steps(pipeline_run_id: str):
    """On SIGINT/SIGTERM, or when a step fails: the scheduler sends SIGTERM to the steps still
    running and waits for them (they end their runs KILLED), SIGKILLing one not gone within
    GRACE_S (a fit that does not check for signals). Whatever they left RUNNING is then ended
    KILLED here. On a signal, a hook does the same GRACE_S after it, in case the wait itself
    hangs (a tracking call to a server that does not answer), so stopping is bounded."""

    def stop() -> None:
        name = interrupts.signal_name(KeyboardInterrupt())
        tracking.end_interrupted_steps(pipeline_run_id, name)  # the step runs, before MLflow says FAILED
        interrupts.kill_descendants()
        time.sleep(0.5)  # their trial runs count as orphaned once the processes are gone
        tracking.end_interrupted_steps(pipeline_run_id, name)

    interrupts.after_interrupt(GRACE_S, stop)
    try:
        yield
    except KeyboardInterrupt as interrupt:
        tracking.end_interrupted_steps(pipeline_run_id, interrupts.signal_name(interrupt))
        raise
    except tracking.StepFailed:
        tracking.end_interrupted_steps(pipeline_run_id, "SIGTERM")  # the steps stopped because one failed
        raise


def closing_lines(outcome: pipeline.Outcome, pipeline_run_id: str, store: str, ui_command: str | None) -> str:
    """Where the results went and how to look at them: what a person reads last."""
    look = f"look at it: {ui_command}  (then open http://127.0.0.1:5000)" if ui_command else f"open {store}"
    return "\n".join([
        f"main: test_rmse={outcome.test_rmse:.4f}; pipeline run {pipeline_run_id}",
        f"main: {pipeline.registry_line(outcome).replace('`', '')}",
        f"main: results are in {store}; {look}",
        f"main: load the model: mlflow.pyfunc.load_model('models:/{outcome.registered_model_name}@{outcome.alias}')",
    ])


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
@click.option("--trials", type=cli.Whole(min=1), default=50, show_default=True)
@click.option("--alphas", default="1,0.3,0.1,0.03,0.01,0.003,0.001", show_default=True)
@click.option("--iterations", type=cli.Whole(min=1), default=500, show_default=True)
@click.option("--seed", type=cli.SEED, default=42, show_default=True)
@click.option("--env-manager", type=click.Choice(ENV_MANAGERS), default="local", show_default=True)
@click.option("--storage", default="", help="Optuna storage for the tuning steps ('' = in memory; env:VAR).")
@click.option("--study-name", default="")
@click.option("--n-jobs", type=cli.Whole(min=1, max=64), default=1, show_default=True)
@click.option("--pruner", type=click.Choice(studies.PRUNERS), default="none", show_default=True)
@click.option("--registered-model-name", default="tabtune-regressor", show_default=True)
@click.option("--alias", default="champion", show_default=True)
@click.option("--max-iterations", type=cli.Whole(min=1), default=5000, show_default=True)
@click.option("--early-stopping-rounds", type=cli.Whole(min=1), default=100, show_default=True)
@click.option("--try-defaults", type=click.Choice(cli.YES_NO), default="true", show_default=True,
              help="Forwarded to refit: also early-stop CatBoost's own defaults, keep them if lower on val.")
@click.option("--min-improvement", type=click.FloatRange(min=0.0, max=1.0, max_open=True), default=0.0,
              show_default=True, help="Forwarded to package: the champion gate's relative margin.")
@click.option("--promote", type=click.Choice(gate.PROMOTE_MODES), default="gate", show_default=True,
              help="Forwarded to package: gate, force or never.")
@click.option("--tune-rows", type=cli.Whole(min=0), default=0, show_default=True,
              help="Tune on a seeded sample of this many training rows (0 = all); refit uses all.")
@click.option("--reuse", type=click.Choice(("auto", "none")), default="auto", show_default=True,
              help="auto: reuse a step's earlier run when everything that determines it is the same.")
@click.option("--parallel-steps", type=cli.Whole(min=1, max=16), default=2, show_default=True,
              help="How many steps may run at once (a step still waits for the runs it reads, so "
                   "only the tuning steps overlap); 1 = one step at a time.")
def command(**options) -> None:
    run(**options)


if __name__ == "__main__":
    cli.main(command, names.MAIN)
