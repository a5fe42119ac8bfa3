"""The model registry beyond registering one version: find a version by fingerprint, read who
holds an alias, register a version with a description (removed again if what follows fails),
tag versions, move an alias, and attach metrics to a logged model."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import mlflow
from mlflow.entities import Metric
from mlflow.exceptions import MlflowException

from steps.lib.tracking.runs import _client


def check_model_name(name: str) -> None:
    """A registered model name the registry in use will take: Unity Catalog wants
    catalog.schema.name, and finding out in `package` would cost the whole tuning budget."""
    from steps.lib.errors import InputError

    if not name.strip():
        raise InputError("registered_model_name", "must not be empty")
    if mlflow.get_registry_uri().startswith("databricks-uc") and (
            len(parts := name.split(".")) != 3 or not all(part.strip() for part in parts)):
        raise InputError("registered_model_name", f"{name!r} is not a Unity Catalog name: use catalog.schema.name "
                                                  "(the registry in use is Unity Catalog)")


def model_id_of(model_uri: str) -> str:
    """The logged model's ID in an MLflow 3 model URI `models:/m-…`."""
    model_id = model_uri.removeprefix("models:/")
    if model_id == model_uri or not model_id.startswith("m-") or "/" in model_id:
        raise ValueError(f"{model_uri!r} is not a logged model's URI (models:/m-…)")
    return model_id


def link_model_metrics(model_uri: str, metrics: dict[str, float]) -> None:
    """Log `metrics` on the run that logged the model *and* on the logged model itself, in one
    call (a metric with a model ID lands on both), so the Models view shows them."""
    model_id = model_id_of(model_uri)
    run_id = _client().get_logged_model(model_id).source_run_id
    now = int(time.time() * 1000)
    _client().log_batch(
        run_id, metrics=[Metric(key, float(value), now, 0, model_id=model_id, run_id=run_id)
                         for key, value in metrics.items()])


def logged_model_metrics(model_uri: str) -> dict[str, float]:
    """The metrics attached to a logged model (latest value per key)."""
    return {metric.key: metric.value for metric in _client().get_logged_model(model_id_of(model_uri)).metrics or []}


def alias_version(name: str, alias: str) -> str | None:
    """The version number holding `alias` of registered model `name`; None if the model or the
    alias does not exist yet."""
    try:
        model = _client().get_registered_model(name)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    version = (model.aliases or {}).get(alias)
    return None if version is None else str(version)


def version_uri(name: str, version: str) -> str:
    return f"models:/{name}/{version}"


def find_version(name: str, tags: dict[str, str]):
    """The oldest version of registered model `name` carrying all `tags`, or None.

    The registry filters by tag where it can; Unity Catalog takes a single `name = …` condition
    only, so there every version of `name` is read and the tags are compared here."""
    client = _client()
    by_name = f"name = '{_quote(name)}'"
    clauses = [by_name, *(f"tags.`{key}` = '{_quote(value)}'" for key, value in tags.items())]
    try:
        versions = list(client.search_model_versions(" and ".join(clauses)))
    except MlflowException:
        versions, token = [], None
        while True:
            page = client.search_model_versions(by_name, page_token=token)
            versions += [v for v in page if all(v.tags.get(k) == value for k, value in tags.items())]
            token = page.token
            if not token:
                break
    return min(versions, key=lambda v: int(v.version)) if versions else None


def _quote(value: str) -> str:
    return value.replace("'", "\\'")


@contextlib.contextmanager
def new_version(model_uri: str, name: str, tags: dict[str, str], description: str) -> Iterator:
    """Register `model_uri` as a new version of `name` with tags and description, yielding the
    version; if registering or anything inside the block fails, the version is deleted again,
    so nothing is left half-registered."""
    client = _client()
    version = mlflow.register_model(model_uri, name, tags=tags)
    try:
        client.update_model_version(name, version.version, description=description)
        yield version
    except BaseException:
        with contextlib.suppress(Exception):
            client.delete_model_version(name, version.version)
        raise


def tag_version(name: str, version: str, tags: dict[str, str], *, replacing: tuple[str, ...] = ()) -> None:
    """Set `tags` on a version, and delete those of the keys `replacing` that `tags` does not set
    (so a verdict's tags never mix with an earlier verdict's)."""
    client = _client()
    stale = set(replacing) & set(client.get_model_version(name, version).tags) - set(tags)
    for key in sorted(stale):
        client.delete_model_version_tag(name, version, key)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def version_tags(name: str, version: str) -> dict[str, str]:
    return dict(_client().get_model_version(name, version).tags)


def set_alias(name: str, alias: str, version: str) -> None:
    _client().set_registered_model_alias(name, alias, version)



LOCK_SUFFIX = "_tabtune_gate_lock"
TAKEOVER_SUFFIX = "_takeover"
OWNER_TAG = "tabtune.lock_owner"
LOCK_WAIT_S = 300  # how long a package step waits for another one's gate
LOCK_STALE_S = 600  # a lock older than this was left by a step that died: it is broken
STALE_CHECK_S = 10  # how often a waiter measures the lock's age (two registry calls each time)


@contextlib.contextmanager
def gate_lock(name: str) -> Iterator[None]:
    """Mutual exclusion between package steps gating (and registering to) registered model `name`,
    on any machine that shares the registry: the registry has no compare-and-set on aliases, but
    creating a registered model is atomic (a name exists once), so the lock is a registered model
    `<name>_tabtune_gate_lock` that exists while one step looks for an identical version,
    registers, compares and moves the alias. It carries its holder's token, so a holder deletes
    only its own lock. Others wait (LOCK_WAIT_S, then fail). A lock older than LOCK_STALE_S, by
    the registry's clock, was left by a step that died: it is taken over by one waiter only — the
    one whose create of a takeover marker named after that lock succeeds."""
    import uuid

    client = _client()
    lock = f"{name}{LOCK_SUFFIX}"
    token = uuid.uuid4().hex
    deadline = time.monotonic() + LOCK_WAIT_S
    next_stale_check = 0.0
    while True:
        if _create(client, lock, token, f"held by a tabtune package step gating {name!r}; delete it if no "
                                        "package step is running"):
            break
        if time.monotonic() >= next_stale_check:
            next_stale_check = time.monotonic() + STALE_CHECK_S
            _take_over_if_stale(client, lock)
        if time.monotonic() > deadline:
            raise TimeoutError(f"another package step has held the gate of {name!r} for over {LOCK_WAIT_S} s "
                               f"(registered model {lock!r}; delete it if no package step is running)")
        time.sleep(0.5)
    try:
        yield
        if _owner(client, lock) != token:
            print(f"warning: the gate lock of {name!r} was taken over while this step held it (for over "
                  f"{LOCK_STALE_S} s): another package step may have gated at the same time; check the alias")
    finally:
        with contextlib.suppress(MlflowException):
            if _owner(client, lock) == token:
                client.delete_registered_model(lock)


def _create(client, name: str, token: str, description: str) -> bool:
    """Create registered model `name` carrying `token`; False if it exists already, or existed
    a moment ago: a server that finds the name taken and then, as its holder deletes it, cannot
    read it back answers RESOURCE_DOES_NOT_EXIST (seen with four package steps at once)."""
    try:
        client.create_registered_model(name, tags={OWNER_TAG: token}, description=description)
        return True
    except MlflowException as error:
        if error.error_code not in ("RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST"):
            raise
        return False


def _owner(client, lock: str) -> str | None:
    try:
        return (client.get_registered_model(lock).tags or {}).get(OWNER_TAG)
    except MlflowException:
        return None


def _server_now_ms(client, lock: str) -> int:
    """The registry's clock now: the creation time it stamps on a probe it is asked to create.
    Ages are measured on that clock only, never against this machine's."""
    import uuid

    probe = f"{lock}_clock_{uuid.uuid4().hex[:12]}"
    created = client.create_registered_model(probe).creation_timestamp
    with contextlib.suppress(MlflowException):
        client.delete_registered_model(probe)
    return int(created)


def _take_over_if_stale(client, lock: str) -> None:
    """Break `lock` if, by the registry's clock, it is older than LOCK_STALE_S: only the waiter
    that creates the takeover marker for this very lock (named by its creation time) deletes it,
    so two waiters never both break it and then delete each other's new lock."""
    with contextlib.suppress(MlflowException):
        held_since = int(client.get_registered_model(lock).creation_timestamp or 0)
        if _server_now_ms(client, lock) - held_since <= LOCK_STALE_S * 1000:
            return
        marker = f"{lock}{TAKEOVER_SUFFIX}_{held_since}"
        if not _create(client, marker, "takeover", "a tabtune package step is breaking a stale gate lock"):
            return  # another waiter breaks it
        try:
            if int(client.get_registered_model(lock).creation_timestamp or 0) == held_since:
                client.delete_registered_model(lock)  # its holder died; whoever creates it next wins
        finally:
            client.delete_registered_model(marker)
