"""Run the pipeline's steps as soon as the steps they depend on have finished, several at once.

Why: tune_lasso and tune_catboost both need only prepare's run, and side by side each fills
the time the other leaves a core idle (imports, data loading, single-threaded fits; BENCHMARKS.md,
the tuning steps side by side). Each step that has to run is started by MLflow's synchronous
`mlflow.run` on its own thread, and this thread keeps what `mlflow.run` does for a single step:
it is the one that waits, that receives SIGINT/SIGTERM, and that stops the steps.

The rules:
- A step starts only once every step it depends on has finished (or was reused).
- Two steps that each fill every core (`fills_cores`: an Optuna-tuned family, refit) never run
  side by side: both would start a thread per core, and OpenMP's busy-waiting threads (CatBoost,
  HistGradientBoosting) then make each fit up to 2.8 x slower, so together they end no sooner than one
  after the other (19 % later on one table, within the noise on two others: BENCHMARKS.md, the
  tuning steps side by side), and each trial's time depends on what runs beside it. A light step
  (prepare, the LASSO grid) still runs beside one.
- When a step fails, or this process is interrupted, no further step starts and the running ones
  get SIGTERM (they end their runs KILLED, tagged with the signal); once they are gone the first
  failure (or the interrupt) is raised, so the pipeline run names the step that failed, not one
  stopped because of it.
- Stopping is bounded: what has not ended `grace_s` after its SIGTERM is SIGKILLed (a fit
  notices a signal only when it returns), and the threads are daemons, so a thread stuck in a
  tracking call cannot hold the exit.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from steps.lib.interrupts import children, kill_descendants

POLL_S = 0.2  # how often the waiting thread looks up from waiting (stopping sweeps, signals)


class Dependent(Protocol):
    name: str

    @property
    def depends_on(self) -> tuple[str, ...]: ...

    @property
    def fills_cores(self) -> bool: ...


StepT = TypeVar("StepT", bound=Dependent)


@dataclass(frozen=True)
class Started:
    """A step that has to run: `work` runs on its own thread and returns the step's run ID."""

    work: Callable[[], str]


def run_steps(steps: list[StepT], start: Callable[[StepT, dict[str, str]], str | Started],
              finish: Callable[[StepT, str], None], *, at_once: int, grace_s: float) -> dict[str, str]:
    """Run `steps` (in dependency order, as listed) with at most `at_once` running together,
    and at most one of them a step that fills every core.

    `start(step, run_ids)` is called on this thread once every step `step` depends on is in
    `run_ids`; it returns either a run ID (nothing to run: the step was reused) or `Started`.
    `finish(step, run_id)` is called on this thread when a step has its run ID. Returns every
    step's run ID by name. On an error or an interrupt, the running steps are stopped first
    (`stop`), then it is raised."""
    names = [step.name for step in steps]
    for step in steps:
        unknown = [name for name in step.depends_on if name not in names[:names.index(step.name)]]
        if unknown:
            raise ValueError(f"step {step.name} depends on {unknown}, which are not listed before it")
    run_ids: dict[str, str] = {}
    waiting = list(steps)
    running: dict[str, threading.Thread] = {}
    results: queue.Queue[tuple[str, str | None, BaseException | None]] = queue.Queue()
    by_name = {step.name: step for step in steps}
    try:
        while waiting or running:
            cores_taken = any(by_name[name].fills_cores for name in running)
            ready = next((s for s in waiting if all(d in run_ids for d in s.depends_on)
                          and not (s.fills_cores and cores_taken)), None)
            if ready is not None and len(running) < at_once:
                waiting.remove(ready)
                outcome = start(ready, run_ids)
                if isinstance(outcome, Started):
                    running[ready.name] = _thread(ready.name, outcome.work, results)
                else:
                    run_ids[ready.name] = outcome
                    finish(ready, outcome)
                continue  # look for the next step that can start
            try:
                name, run_id, error = results.get(timeout=POLL_S)
            except queue.Empty:
                continue
            running.pop(name).join()
            if error is not None:
                raise error
            run_ids[name] = run_id
            finish(by_name[name], run_id)
        return run_ids
    except BaseException:
        stop(running, grace_s=grace_s)
        raise


def stop(running: dict[str, threading.Thread], *, grace_s: float) -> None:
    """SIGTERM every process this one started and wait for the threads that wait for them;
    SIGKILL what is still there after `grace_s` (a fit notices a signal only when it returns).

    Sweeping until the threads are done catches a step whose thread was just starting its
    process. Gives up waiting `grace_s` after the SIGKILL: a thread stuck in a tracking call
    is a daemon and cannot hold the exit."""
    signalled: set[int] = set()
    started = time.monotonic()
    killed = False
    while any(thread.is_alive() for thread in running.values()):
        waited = time.monotonic() - started
        if waited > 2 * grace_s:
            return
        if waited > grace_s and not killed:
            kill_descendants()
            killed = True
        for pid in children():  # the step processes `mlflow.run` started
            if pid not in signalled:
                signalled.add(pid)
                try:
                    os.kill(pid, signal.SIGTERM)
                except (ProcessLookupError, PermissionError):
                    pass
        time.sleep(POLL_S)


def _thread(name: str, work: Callable[[], str], results: queue.Queue) -> threading.Thread:
    def body() -> None:
        try:
            results.put((name, work(), None))
        except BaseException as error:  # noqa: BLE001 - handed to the waiting thread, raised there
            results.put((name, None, error))

    thread = threading.Thread(target=body, name=f"step-{name}", daemon=True)
    thread.start()
    return thread
