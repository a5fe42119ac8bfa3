"""main: the whole pipeline as one run, with every step run nested under it.

Reads: the families to tune and every step's own settings (the data settings, the budgets, …:
`pipeline.all_setting_options`), each passed on to the steps that take it.
Writes: the pipeline run, with child runs prepare → one tuning run per family → refit →
package (each started by `mlflow.run` and handed the run IDs it needs, as
steps/lib/orchestration/pipeline.py wires them; a step starts once the steps it needs have
finished, so the tuning steps, which need only prepare's run, run side by side, up to
`parallel_steps` at once but never two that each keep every core busy:
steps/lib/orchestration/scheduler.py; with reuse=auto, a step whose earlier FINISHED run has
the same cache key is not run again: a stand-in child run tagged tabtune.reused_from points to
it); tags `tabtune.run_id.<step>` (the runs that did the work), metric test_rmse, and
`pipeline_summary.md` + `leaderboard.csv`. If a step fails, no later step runs, the steps
running beside it are stopped (their runs end KILLED) and this run ends FAILED naming the step
and its run."""

from __future__ import annotations

import contextlib
import time

import click

from steps.lib import interrupts, names, options, tracking
from steps.lib.errors import InputError
from steps.lib.model import gate
from steps.lib.orchestration import cli, outcome, pipeline, scheduler
from steps.lib.orchestration import reuse as reuse_module
from steps.lib.search.grid import parse_alphas

ENV_MANAGERS = ("local", "virtualenv", "uv", "conda")
STOP_GRACE_S = 10.0  # how long an interrupted step may take to end its runs before it is SIGKILLed


def run(*, families: str = ",".join(pipeline.DEFAULT_FAMILIES), env_manager: str = "local", reuse: str = "auto",
        parallel_steps: int = 2, **settings) -> str:
    """Run every step once its inputs exist (or reuse its earlier run), up to `parallel_steps`
    at once; returns the pipeline's run ID. `settings` are the steps' own parameters
    (`pipeline.all_setting_options`), each passed to every step that takes it."""
    settings = {option.name: option.default for option in pipeline.all_setting_options()} | settings
    # Each table its own registered model unless named: a champion never judges another table.
    settings["registered_model_name"] = (settings["registered_model_name"]
                                         or names.default_model_name(settings["data"]))
    steps = pipeline.steps(pipeline.parse_families(families))
    check(steps, settings)  # fail here, before any step runs
    with tracking.step_run(names.MAIN) as pipeline_run_id, stopping_steps(pipeline_run_id):
        tracking.name_run(pipeline_run_id, outcome.PROJECT_NAME)

        reused: set[str] = set()

        def start(step: pipeline.Step, run_ids: dict[str, str]) -> str | scheduler.Started:
            parameters = step.parameters(settings, run_ids)
            key = reuse_module.cache_key(step, parameters)
            earlier = reuse_module.reusable_run(step, key, parameters) if reuse == "auto" else None
            if earlier:
                reused.add(step.name)
                tracking.record_reused_step(step.name, earlier, pipeline_run_id)
                print(f"main: {step.name}: reused {earlier}", flush=True)
                return earlier  # later steps read the run that did the work
            return scheduler.Started(lambda: run_step(step, parameters, key, env_manager, pipeline_run_id))

        def finish(step: pipeline.Step, run_id: str) -> None:
            tracking.set_tags({names.STEP_RUN_TAG_PREFIX + step.name: run_id})
            if step.name == names.PREPARE:  # the runs list's Dataset column then shows the table
                tracking.copy_dataset_inputs(run_id, pipeline_run_id)

        run_ids = scheduler.run_steps(steps, start, finish, at_once=parallel_steps, grace_s=STOP_GRACE_S)
        results = outcome.record_results(pipeline_run_id, run_ids,
                                         registered_model_name=settings["registered_model_name"],
                                         alias=settings["alias"], reused=frozenset(reused))
        print(closing_lines(results, pipeline_run_id, *tracking.store_location(),
                            page=tracking.run_page(pipeline_run_id)), flush=True)
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
    STOP_GRACE_S (a fit that does not check for signals). Whatever they left RUNNING is then ended
    KILLED here. On a signal, a hook does the same STOP_GRACE_S after it, in case the wait itself
    hangs (a tracking call to a server that does not answer), so stopping is bounded."""

    def stop() -> None:
        name = interrupts.signal_name(KeyboardInterrupt())
        since_ms = interrupts.received_at_ms()
        tracking.end_interrupted_steps(pipeline_run_id, name, since_ms)  # the step runs, before MLflow says FAILED
        interrupts.kill_descendants()
        time.sleep(0.5)  # their trial runs count as orphaned once the processes are gone
        tracking.end_interrupted_steps(pipeline_run_id, name, since_ms)

    interrupts.after_interrupt(STOP_GRACE_S, stop)
    try:
        yield
    except KeyboardInterrupt as interrupt:
        tracking.end_interrupted_steps(pipeline_run_id, interrupts.signal_name(interrupt), interrupts.received_at_ms())
        raise
    except tracking.StepFailed:
        tracking.end_interrupted_steps(pipeline_run_id, "SIGTERM")  # the steps stopped because one failed
        raise


def closing_lines(results: outcome.Outcome, pipeline_run_id: str, store: str, ui_command: str | None,
                  page: str | None = None) -> str:
    """Where the results went and how to look at them (the pipeline run's page, opened in the
    UI's Model training mode): what a person reads last."""
    if ui_command:
        look = f"look at it: {ui_command}  (then open {page or 'http://127.0.0.1:5000'})"
    else:
        look = f"open {page or store}"
    # The alias only when it is on this run's model: else the alias would serve another model.
    model_uri = (f"models:/{results.registered_model_name}@{results.alias}" if results.alias_moved
                 else f"models:/{results.registered_model_name}/{results.registered_version}")
    return "\n".join([
        f"main: test_rmse={results.test_rmse:.4f}; pipeline run {pipeline_run_id}",
        f"main: {outcome.registry_line(results).replace('`', '')}",
        f"main: results are in {store}; {look}",
        f"main: load the model: mlflow.pyfunc.load_model('{model_uri}')",
    ])


def check(steps: list[pipeline.Step], settings: dict) -> None:
    """Settings that would only fail a later step, checked before the first one starts."""
    parse_alphas(settings["alphas"])
    pipeline.parse_untuned_families(settings["untuned_families"])
    tracking.check_model_name(settings["registered_model_name"])
    gate.check_settings(settings["min_improvement"], settings["promote"])
    optuna_steps = [step for step in steps if "study_name" in step.settings]
    if settings["study_name"] and len(optuna_steps) > 1:
        raise InputError("study_name", f"one study name for {len(optuna_steps)} tuned families "
                                       f"({', '.join(s.fixed['family'] for s in optuna_steps)}): leave it empty")


OPTIONS = [
    *pipeline.all_setting_options(),  # every step's own settings, passed on to the steps that take them
    click.Option(["--families"], default=",".join(pipeline.DEFAULT_FAMILIES), show_default=True,
                 help="Model families to tune, comma-separated."),
    click.Option(["--env-manager"], type=click.Choice(ENV_MANAGERS), default="local", show_default=True,
                 help="How `mlflow run` builds each step's environment."),
    click.Option(["--reuse"], type=click.Choice(("auto", "none")), default="auto", show_default=True,
                 help="auto: reuse a step's earlier run when everything that determines it is the same."),
    click.Option(["--parallel-steps"], type=options.Whole(min=1, max=16), default=2, show_default=True,
                 help="How many steps may run at once (a step still waits for the runs it reads, so only the "
                      "tuning steps overlap, and never two Optuna-tuned families: each keeps every core busy); "
                      "1 = one step at a time."),
]
command = click.Command(names.MAIN, params=OPTIONS, callback=run)


if __name__ == "__main__":
    cli.main(command, names.MAIN)
