"""Where an Optuna study lives: `''` (in memory), a journal file, or a database given as a URL
or through an environment variable; server databases (PostgreSQL, MySQL) send heartbeats, so the
others fail a dead worker's trials, and ride out a lost connection (SQLite does neither)."""

from __future__ import annotations

import functools
import os
import time

from steps.lib.errors import InputError
from steps.lib.secrets import mask_url

HEARTBEAT_S = 5  # how often a worker's running trials say they are alive
HEARTBEAT_GRACE_S = 20  # a running trial silent this long belongs to a dead worker and is failed
RECONNECT_S = 60  # how long a storage call rides out a lost database before it gives up


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
    else a database: a server database with heartbeats so a killed worker's trials are failed by
    the others, and reconnecting calls; SQLite as plain RDBStorage, without either."""
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
                storage_class = optuna.storages.RDBStorage if scheme.startswith("sqlite") else _reconnecting_storage()
                return storage_class(
                    url,
                    heartbeat_interval=None if scheme.startswith("sqlite") else HEARTBEAT_S,
                    grace_period=None if scheme.startswith("sqlite") else HEARTBEAT_GRACE_S,
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


@functools.cache
def _reconnecting_storage():
    """RDBStorage whose calls ride out a database restart or failover: a call that lost its
    connection runs again on a fresh one (pool_pre_ping drops the dead ones), backing off for up
    to RECONNECT_S seconds, then raises. A write whose commit reached the database just before
    the connection died could in principle apply twice; Optuna's writes are keyed by trial, so
    that is a repeated value, except `create_new_trial`, which would leave one extra trial that
    the budget does not count once it fails. Built on first use: optuna loads only then."""
    import optuna

    class ReconnectingRDBStorage(optuna.storages.RDBStorage):
        pass

    for name in _RETRIED_CALLS:
        if hasattr(optuna.storages.RDBStorage, name):
            setattr(ReconnectingRDBStorage, name, _retrying(getattr(optuna.storages.RDBStorage, name)))
    return ReconnectingRDBStorage


def _retrying(call):
    """`call`, run again on a lost connection until RECONNECT_S have passed."""

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
