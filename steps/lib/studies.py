"""Where an Optuna study lives and who works on it: storage URLs, samplers and pruners, the
worker identity recorded on each trial, and the total trial budget shared by all workers."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

from steps.lib.errors import InputError
from steps.lib.secrets import mask_url

PRUNERS = ("none", "median", "hyperband")
PARENT_RUN_ATTR = "tabtune.mlflow_run_id"
WORKER_ATTR = "tabtune.worker"
SURPLUS_ATTR = "tabtune.surplus"
SEEDS_ATTR = "tabtune.sampler_seeds"
METRICS_ATTR = "tabtune.metrics"
HEARTBEAT_S = 5
GRACE_S = 20
RECONNECT_S = 60  # how long a storage call rides out a lost database before it gives up


@dataclass(frozen=True)
class Worker:
    """This process, as recorded on each trial it runs (host and pid identify it after a crash)."""

    host: str
    pid: int

    @classmethod
    def this(cls) -> Worker:
        return cls(socket.gethostname(), os.getpid())

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}"

    @classmethod
    def parse(cls, text: str) -> Worker | None:
        host, _, pid = str(text).rpartition(":")
        return cls(host, int(pid)) if host and pid.isdigit() else None

    def is_dead_here(self) -> bool:
        """True only when the worker ran on this host and its process is gone."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


def resolve_storage_url(storage: str) -> str:
    """The storage URL to use: `env:NAME` reads it from an environment variable, so a password
    never has to pass through an MLproject parameter (MLflow logs those verbatim)."""
    if storage.startswith("env:"):
        name = storage[4:]
        if not os.environ.get(name):
            raise InputError("storage", f"environment variable {name!r} is not set")
        return os.environ[name]
    return storage


def open_storage(storage: str, on_stale_trial=None):
    """An Optuna storage for the URL: None (in memory) for "", a journal file for `journal:PATH`,
    else a database with heartbeats so a killed worker's trials are failed by the others."""
    import optuna

    url = resolve_storage_url(storage)
    if not url:
        return None
    if url.startswith("journal:"):
        path = url.removeprefix("journal:").removeprefix("//")
        if not path:
            raise InputError("storage", "journal storage needs a file path: journal:/path/to/study.log")
        from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if not scheme.startswith(("sqlite", "postgresql", "mysql")):
        raise InputError(
            "storage",
            f"{mask_url(url)!r} is not a storage URL: use '', sqlite:///file.db, journal:/path/file.log, "
            "postgresql://user@host/db or env:VARIABLE",
        )
    if scheme == "postgresql":
        url = "postgresql+psycopg" + url[len("postgresql"):]  # psycopg 3 is the driver we ship
    import warnings

    for attempt in range(5):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats
                storage_class = optuna.storages.RDBStorage if scheme.startswith("sqlite") else _reconnecting()
                return storage_class(
                    url,
                    heartbeat_interval=None if scheme.startswith("sqlite") else HEARTBEAT_S,
                    grace_period=None if scheme.startswith("sqlite") else GRACE_S,
                    heartbeat_stale_trial_callback=on_stale_trial,
                    engine_kwargs={"pool_pre_ping": True} if not scheme.startswith("sqlite") else None,
                )
        except Exception as error:  # noqa: BLE001 - drivers raise many kinds
            # Workers starting together on an empty database race to create Optuna's tables;
            # the losers see a duplicate-key error and succeed on a retry.
            racing = any(text in str(error).lower() for text in ("duplicate key", "already exists"))
            if racing and attempt < 4:
                time.sleep(0.5 * (attempt + 1))
                continue
            message = mask_url(str(error)).splitlines()[0]
            raise InputError("storage", f"cannot open {mask_url(url)}: {message}") from None


# The RDBStorage calls a worker makes; each opens its own session, so each can simply run again.
_RETRIED_CALLS = (
    "create_new_study", "set_study_user_attr", "set_study_system_attr", "get_study_id_from_name",
    "get_study_name_from_id", "get_study_directions", "get_study_user_attrs", "get_study_system_attrs",
    "get_all_studies", "create_new_trial", "set_trial_param", "get_trial_param", "set_trial_state_values",
    "set_trial_intermediate_value", "set_trial_user_attr", "set_trial_system_attr",
    "get_trial_id_from_study_id_trial_number", "get_trial", "get_all_trials", "get_best_trial",
    "get_trial_user_attrs", "get_trial_system_attrs", "record_heartbeat", "_get_stale_trial_ids",
)


def _is_lost_connection(error: BaseException) -> bool:
    """Whether `error` (or what Optuna wrapped) is the database going away, not a bad request."""
    import sqlalchemy.exc

    cause = error if isinstance(error, sqlalchemy.exc.SQLAlchemyError) else error.__cause__
    if isinstance(cause, sqlalchemy.exc.DBAPIError) and cause.connection_invalidated:
        return True
    return isinstance(cause, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError))


_RECONNECTING = None


def _reconnecting():
    """RDBStorage whose calls ride out a database restart or failover: a call that lost its
    connection runs again on a fresh one (pool_pre_ping drops the dead ones), backing off for up
    to RECONNECT_S seconds, then raises. A write whose commit reached the database just before
    the connection died could in principle apply twice; Optuna's writes are keyed by trial, so
    that is a repeated value, except `create_new_trial`, which would leave one extra trial that
    the budget does not count once it fails."""
    global _RECONNECTING
    if _RECONNECTING is not None:
        return _RECONNECTING
    import functools

    import optuna

    def retrying(call):
        @functools.wraps(call)
        def wrapper(self, *args, **kwargs):
            deadline, pause = time.monotonic() + RECONNECT_S, 0.5
            while True:
                try:
                    return call(self, *args, **kwargs)
                except Exception as error:  # only lost connections are retried
                    if not _is_lost_connection(error) or time.monotonic() + pause > deadline:
                        raise
                time.sleep(pause)
                pause = min(pause * 2, 5.0)

        return wrapper

    base = optuna.storages.RDBStorage
    _RECONNECTING = type("ReconnectingRDBStorage", (base,),
                         {name: retrying(getattr(base, name)) for name in _RETRIED_CALLS if hasattr(base, name)})
    return _RECONNECTING


def make_pruner(name: str, iterations: int):
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=max(1, iterations // 10))
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(1, iterations // 20), max_resource=iterations)
    return optuna.pruners.NopPruner()


def make_sampler(seed: int | None, *, parallel: bool):
    """Seeded TPE; with parallel or distributed workers, the constant liar keeps running trials
    from being proposed twice."""
    import optuna

    return optuna.samplers.TPESampler(seed=seed, constant_liar=parallel)


def create_or_load(name: str, storage, sampler, pruner):
    """The study and whether this call created it (exactly one worker does, even in a race)."""
    import optuna

    if storage is None:
        return optuna.create_study(study_name=name, direction="minimize", sampler=sampler, pruner=pruner), True
    try:
        study = optuna.create_study(study_name=name, storage=storage, direction="minimize", sampler=sampler,
                                    pruner=pruner)
        return study, True
    except optuna.exceptions.DuplicatedStudyError:
        return optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner), False


def worker_seed(study, seed: int, worker: Worker) -> int:
    """`seed`, unless another worker of this study already samples with it (identical seeds would
    propose identical points): then a seed derived from this worker's identity."""
    used = list(study.user_attrs.get(SEEDS_ATTR, []))
    chosen = seed
    if seed in used:
        chosen = (seed * 1_000_003 + worker.pid + sum(map(ord, worker.host))) % (2**31 - 1)
    study.set_user_attr(SEEDS_ATTR, [*used, chosen])
    return chosen


def counted_trials(study) -> list:
    """Trials that use up the budget: finished or still running, never failed or surplus."""
    from optuna.trial import TrialState

    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED,
                                                                  TrialState.RUNNING))
            if not t.user_attrs.get(SURPLUS_ATTR)]


class SharedBudget:
    """The study-wide trial budget of workers sharing one study. Optuna's `n_trials` counts per
    process; here the first `trials` counted trials by number win, so concurrent workers never
    overshoot the total, and each trial records the worker that ran it. One read of the study's
    trials per trial (in `claim`), on the hot path of every worker."""

    def __init__(self, study, trials: int, worker: Worker):
        self.study = study
        self.trials = trials
        self.worker = str(worker)
        self._counted_at_claim = 0

    def claim(self, trial) -> bool:
        """Record this worker on `trial`; False (and the trial marked surplus) when the budget
        was already used up by other workers."""
        trial.set_user_attr(WORKER_ATTR, self.worker)
        numbers = sorted(t.number for t in counted_trials(self.study))
        self._counted_at_claim = len(numbers)
        if trial.number in numbers[: self.trials]:
            return True
        trial.set_user_attr(SURPLUS_ATTR, True)
        return False

    def used_up(self) -> bool:
        """Whether every slot was taken when this worker last claimed one (no new read: if other
        workers took the last slots since, the next claim finds out and stops the loop)."""
        return self._counted_at_claim >= self.trials


def is_surplus(frozen_trial) -> bool:
    return bool(frozen_trial.user_attrs.get(SURPLUS_ATTR))


def is_idle(study) -> bool:
    """No trial of the study is running: whoever sees this last may write the summary."""
    from optuna.trial import TrialState

    return not study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))


@dataclass(frozen=True)
class StudySummary:
    """What a finished study says: its best complete trial, the counts per state, the trials."""

    best: dict  # best.json: family, params (tuned + fixed), val_rmse, trial, study_name
    metrics: dict[str, float]
    tags: dict[str, str]
    trials: object  # the study's trials as a DataFrame


def summarize(study, family: str, fixed: dict) -> StudySummary:
    """The study's summary, computed from the storage alone, so whichever worker finishes last
    computes the same one."""
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        raise InputError("trials", f"no trial of study {study.study_name!r} completed")
    best = study.best_trial  # COMPLETE trials only: a pruned trial is never best
    metrics = best.user_attrs.get(METRICS_ATTR, {})
    counts = {state.name.lower(): len(study.get_trials(deepcopy=False, states=(state,)))
              for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
    return StudySummary(
        best={"family": family, "params": {**best.params, **fixed}, "val_rmse": best.value,
              "trial": best.number, "study_name": study.study_name},
        metrics={"best_val_rmse": best.value, "best_val_mae": metrics.get("val_mae", float("nan")),
                 "best_val_r2": metrics.get("val_r2", float("nan")),
                 **{f"trials_{state}": n for state, n in counts.items()}},
        tags={"best_trial": str(best.number), **{f"best_{k}": str(v) for k, v in best.params.items()}},
        trials=study.trials_dataframe(),
    )


def fail_dead_workers_trials(study) -> list[int]:
    """Mark FAILED the RUNNING trials of workers that died on this host; their trial numbers.
    (Other hosts' dead workers are failed by the database heartbeat.)"""
    from optuna.trial import TrialState

    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = Worker.parse(trial.user_attrs.get(WORKER_ATTR, ""))
        if worker and worker.is_dead_here():
            try:
                study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
                failed.append(trial.number)
            except Exception:  # noqa: BLE001 - another worker failed it first
                pass
    return failed
