"""Child runs of a parent run (one per trial), written through explicit run IDs, optionally from
a background thread so that a trial never waits for the tracking server."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from steps.lib import names
from steps.lib.tracking.runs import _client


class ChildRunWriter:
    """One child run per trial under a parent run, through explicit run IDs (no fluent run
    stack, so any thread may write), three calls a trial: create at the start (so a crash
    leaves a RUNNING run to mark FAILED), then one batch and the final status at the end."""

    def __init__(self, parent_run_id: str):
        self.client = _client()
        self.parent_run_id = parent_run_id
        self.experiment_id = self.client.get_run(parent_run_id).info.experiment_id

    def start(self, name: str, tags: dict[str, str], started_ms: int | None = None) -> str:
        """Create the child run, exactly once even if MLflow's HTTP client retried the request
        (a server that went away mid-request may have created the run and lost the answer): each
        creation carries a fresh ATTEMPT_TAG, and after a retried request the runs with that tag
        are looked up and all but the one returned are deleted."""
        attempt = uuid.uuid4().hex
        with _retries_seen() as retries:
            run = self.client.create_run(
                self.experiment_id,
                start_time=started_ms,
                tags={MLFLOW_PARENT_RUN_ID: self.parent_run_id, MLFLOW_RUN_NAME: name, names.ATTEMPT_TAG: attempt,
                      **tags},
                run_name=name,
            )
        if retries():
            for twin in self.client.search_runs(
                    [self.experiment_id], f"tags.`{names.ATTEMPT_TAG}` = '{attempt}'", max_results=100):
                if twin.info.run_id != run.info.run_id:
                    self.client.delete_run(twin.info.run_id)
        return run.info.run_id

    def finish(self, run_id: str, *, params: dict, metrics: dict, tags: dict, failed: bool,
               finished_ms: int | None = None) -> None:
        timestamp = finished_ms or int(time.time() * 1000)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), timestamp, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)[:names.MAX_PARAM_LENGTH]) for k, v in params.items()],
            tags=[RunTag(k, str(v)) for k, v in tags.items()],
        )
        status = RunStatus.to_string(RunStatus.FAILED if failed else RunStatus.FINISHED)
        self.client.set_terminated(run_id, status, end_time=finished_ms)

    def write(self, *, name: str, params: dict, metrics: dict, tags: dict, failed: bool) -> str:
        """A finished child run in one go (for evaluations that cannot crash half-way)."""
        run_id = self.start(name, tags)
        self.finish(run_id, params=params, metrics=metrics, tags={}, failed=failed)
        return run_id

    def has_child(self, tag: str, value: str) -> bool:
        """Whether a child run with this tag value exists (used after crashes, never per trial)."""
        return bool(self.client.search_runs(
            [self.experiment_id],
            f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{self.parent_run_id}' and tags.`{tag}` = '{value}'",
            max_results=1,
        ))

    def running_children(self) -> list:
        """Children still RUNNING: after a crash, the trials that never finished."""
        return self.client.search_runs(
            [self.experiment_id],
            f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{self.parent_run_id}' and attributes.status = 'RUNNING'",
            max_results=50000,
        )


class _RetryCounter(logging.Filter):
    """Counts, per thread, the retries urllib3 makes (it logs each at DEBUG on this logger), and
    drops those DEBUG records so nothing shows that was not shown before."""

    def __init__(self):
        super().__init__()
        self.counts: dict[int, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("Incremented Retry"):
            self.counts[record.thread] = self.counts.get(record.thread, 0) + 1
        return record.levelno >= logging.WARNING


_RETRY_LOGGER = logging.getLogger("urllib3.util.retry")
_RETRY_COUNTER = _RetryCounter()
_RETRY_LOCK = threading.Lock()


@contextlib.contextmanager
def _retries_seen() -> Iterator:
    """Yields a function giving how many HTTP retries this thread made inside the block."""
    with _RETRY_LOCK:
        if _RETRY_COUNTER not in _RETRY_LOGGER.filters:
            _RETRY_LOGGER.addFilter(_RETRY_COUNTER)
            _RETRY_LOGGER.setLevel(logging.DEBUG)
    thread = threading.get_ident()
    before = _RETRY_COUNTER.counts.get(thread, 0)
    yield lambda: _RETRY_COUNTER.counts.get(thread, 0) - before


class BackgroundChildRunWriter:
    """A ChildRunWriter whose calls run on one background thread, in submission order, so a
    trial never waits for the tracking server. `flush()` waits for every queued call and raises
    if any failed; after a failure nothing more is sent and every later call raises at once,
    so a study never goes on with child runs silently missing."""

    def __init__(self, parent_run_id: str, writer: ChildRunWriter | None = None):
        import queue
        import threading

        self.writer = writer or ChildRunWriter(parent_run_id)
        self.parent_run_id = parent_run_id
        self._queue: queue.Queue = queue.Queue()
        self._run_ids: dict[int, str] = {}
        self._next_token = 0
        self._lock = threading.Lock()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="tabtune-child-runs", daemon=True)
        self._thread.start()

    def start(self, name: str, tags: dict[str, str], started_ms: int | None = None) -> int:
        """Queue the creation of a RUNNING child run; returns a token for `finish`."""
        with self._lock:
            token = self._next_token
            self._next_token += 1
        self._put(lambda: self._run_ids.__setitem__(
            token, self.writer.start(name, tags, started_ms or int(time.time() * 1000))))
        return token

    def finish(self, token: int, **result) -> None:
        result.setdefault("finished_ms", int(time.time() * 1000))
        self._put(lambda: self.writer.finish(self._run_ids.pop(token), **result))

    def running_children(self) -> list:
        self.flush()
        return self.writer.running_children()

    def unfinished(self) -> list[str]:
        """IDs of the child runs created and not finished yet (after `close()`: the trials that
        were running when the study was interrupted)."""
        return list(self._run_ids.values())

    def flush(self) -> None:
        self._queue.join()
        self._raise_if_failed()

    def close(self) -> None:
        """Flush, then stop the thread (a second call does nothing)."""
        if not self._thread.is_alive():
            return
        try:
            self.flush()
        finally:
            self._queue.put(None)
            self._thread.join(timeout=60)

    def _put(self, call) -> None:
        self._raise_if_failed()
        self._queue.put(call)

    def _raise_if_failed(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"logging a child run failed, so the study stops: {self.error}") from self.error

    def _drain(self) -> None:
        while (call := self._queue.get()) is not None:
            try:
                if self.error is None:
                    call()
            except BaseException as error:  # noqa: BLE001 - reported by flush()/the next call
                self.error = error
            finally:
                self._queue.task_done()
        self._queue.task_done()



class TrialRuns:
    """The child runs of the trials one worker runs under a tuning run: one per trial, created
    when Optuna starts it and finished with its result, written in the background. Every child
    run carries `tags` and `params` besides the trial's own."""

    def __init__(self, writer: BackgroundChildRunWriter, *, tags: dict[str, str], params: dict):
        self.writer, self.tags, self.params = writer, tags, params
        self._tokens: dict[int, int] = {}

    def started(self, number: int) -> None:
        self._tokens[number] = self.writer.start(
            names.trial_run_name(number), {names.TRIAL_NUMBER_TAG: str(number), **self.tags}, int(time.time() * 1000))

    def finished(self, number: int, *, params: dict, metrics: dict, state: str, failed: bool, error: str = "",
                 finished_at=None) -> None:
        """The trial's parameters, metrics and state (tabtune.trial_state), FAILED if `failed`."""
        if number not in self._tokens:
            self.writer.flush()  # raises the writer's error, if that is why its start was never queued
            # It failed before it was announced (e.g. the study's storage refused a call during a
            # database restart): its child run is made now, so no finished trial goes unlogged.
            self.started(number)
        self.writer.finish(
            self._tokens.pop(number),
            params={**params, **self.params},
            metrics={**metrics, "trial_number": number},
            tags={names.TRIAL_STATE_TAG: state, **({names.ERROR_TAG: error[:names.MAX_ERROR_LENGTH]} if error else {})},
            failed=failed,
            finished_ms=int(finished_at.timestamp() * 1000) if finished_at else None,
        )


@contextlib.contextmanager
def trial_runs(tuning_run_id: str, *, tags: dict[str, str], params: dict) -> Iterator[TrialRuns]:
    """Child runs for the trials run inside the block. When the block ends, every finished
    trial's child run has been written; on SIGINT/SIGTERM the trials still running end KILLED,
    like the step's own run."""
    from steps.lib.interrupts import signal_name
    from steps.lib.tracking.runs import end_killed

    writer = BackgroundChildRunWriter(tuning_run_id)
    try:
        yield TrialRuns(writer, tags=tags, params=params)
    except KeyboardInterrupt as interrupt:
        with contextlib.suppress(Exception):
            writer.close()
        end_killed(writer.unfinished(), signal_name(interrupt))
        raise
    finally:
        writer.close()


@dataclass(frozen=True)
class TrialRecord:
    """What the study knows of one trial: enough to write its child run without its worker."""

    number: int
    params: dict
    worker: str  # host:pid of the worker that ran it
    metrics: dict
    state: str  # Optuna's state, lower case: complete, pruned, fail, running


def end_orphaned_trial_runs(tuning_run_id: str, trials: dict[int, TrialRecord], *, died: set[int],
                            earlier_runs: tuple[str, ...] = ()) -> list[int]:
    """Child runs that dead workers left wrong, made right from the study; the numbers of the
    trials whose child runs it wrote (failed ones first).

    A trial in `died` gets a FAILED child run with its parameters: the RUNNING one its worker
    created, or a new one if it died before creating it (its writer is dead, so this is never a
    duplicate). A child run left RUNNING although its trial finished (its worker died between
    the trial's end and writing it) is written FINISHED from the study, but only when that worker
    is dead on this host: a live worker may still be about to write it. `earlier_runs`: tuning
    runs the study had before this one took it over; a trial's child run there is ended where it
    is, and never made again under this one."""
    from steps.lib.process_identity import Worker

    writer = ChildRunWriter(tuning_run_id)
    writers = [writer, *map(ChildRunWriter, earlier_runs)]
    running = {run.data.tags.get(names.TRIAL_NUMBER_TAG, ""): (run, each) for each in reversed(writers)
               for run in each.running_children()}
    written = []
    for number in sorted(died & set(trials)):
        trial, (run, owner) = trials[number], running.pop(str(number), (None, writer))
        if run is None and any(each.has_child(names.TRIAL_NUMBER_TAG, str(number)) for each in writers):
            continue  # already ended
        run_id = run.info.run_id if run else writer.start(
            names.trial_run_name(number), {names.TRIAL_NUMBER_TAG: str(number), names.WORKER_TAG: trial.worker})
        owner.finish(run_id, params=trial.params, metrics={"trial_number": number},
                      tags={names.TRIAL_STATE_TAG: "failed", names.ERROR_TAG: "the worker running this trial died"},
                      failed=True)
        written.append(number)
    for number, (run, owner) in running.items():
        trial = trials.get(int(number)) if number.isdigit() else None
        worker = Worker.parse(run.data.tags.get(names.WORKER_TAG, ""))
        if trial is None or trial.state not in ("complete", "pruned") or worker is None or not worker.is_dead_here():
            continue
        owner.finish(run.info.run_id, params=trial.params, metrics={**trial.metrics, "trial_number": trial.number},
                      tags={names.TRIAL_STATE_TAG: trial.state}, failed=False)
        written.append(trial.number)
    return written
