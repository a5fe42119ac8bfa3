"""Whether `main` may reuse an earlier run of a step instead of running it again: only a
FINISHED run whose cache key (steps/lib/orchestration/step_cache.py) is this step's key now, and, for a tuning
step on a shared study, only once no worker is still filling the study, and for `package`, only
while the version it registered is still in the registry in use. When in doubt (a key that
cannot be computed, a study or a registry that cannot be read), the step runs."""

from __future__ import annotations

import hashlib

from steps.lib import names, tracking
from steps.lib.data.tables import local_path
from steps.lib.orchestration import pipeline, step_cache


def cache_key(step: pipeline.Step, parameters: dict[str, str]) -> str | None:
    """The step's key for these parameters; None when it cannot be computed (the step then runs
    and reports whatever is wrong itself)."""
    try:
        interpreted = step_cache.interpreted_parameters(step.entry_point, parameters)
        if str(interpreted.get("storage", "")).startswith("env:"):
            # Two databases behind one variable name are two studies: key on the URL it holds, as a
            # digest (the URL may carry a password, and the key is a tag anyone can read).
            from steps.lib.search.storage import resolve_storage_url

            interpreted["storage"] = "url-sha256:" + hashlib.sha256(
                resolve_storage_url(interpreted["storage"]).encode()).hexdigest()
        data = ""
        if "data" in interpreted:
            # Keyed by content, not by where it is: the same bytes under another path are the same data.
            source = interpreted.pop("data")
            data = source if source == names.DEFAULT_DATA else step_cache.file_digest(local_path(source))
        if step.name == names.REFIT:
            data = _tuning_state(str(interpreted.get("tune_run_ids", "")))
        return step_cache.step_key(step=step.name, entry_point=step.entry_point, parameters=interpreted,
                                   code=step_cache.step_code_digest(step.entry_point), data=data,
                                   dependencies=step_cache.dependencies_digest())
    except Exception:  # noqa: BLE001 - never wrong: no key, no reuse
        return None


def _tuning_state(tune_run_ids: str) -> str:
    """What refit reads from its tuning runs beyond their IDs: a shared study's tuning run can
    gain trials (and a new best.json) after a refit read it, and that refit must not stand for
    one that would read the new best."""
    state = []
    for run_id in filter(None, (part.strip() for part in tune_run_ids.split(","))):
        metrics, tags = tracking.run_metrics(run_id), tracking.run_tags(run_id)
        state.append(f"{run_id}:{tags.get('best_trial')}:{metrics.get('best_val_rmse')}:"
                     f"{metrics.get('trials_complete')}:{metrics.get('trials_pruned')}")
    return ",".join(state)


def reusable_run(step: pipeline.Step, key: str | None, parameters: dict[str, str]) -> str | None:
    """An earlier FINISHED run of `step` with this key that can stand for running it now."""
    if key is None:
        return None
    found = tracking.find_keyed_run(step.name, key)
    if found and parameters.get("storage") and not _study_settled(found, int(float(parameters["trials"])),
                                                                  parameters["storage"]):
        return None
    if found and step.name == names.PACKAGE and not _version_still_registered(found,
                                                                             parameters["registered_model_name"]):
        print(f"main: package: the version run {found} registered is not in the registry now "
              f"({parameters['registered_model_name']!r}): packaging again", flush=True)
        return None
    return found


def _version_still_registered(package_run_id: str, registered_model_name: str) -> bool:
    """Whether the version a package run registered (or named as identical) is still in the
    registry in use, holding the same model: it may have been deleted since, with its registered
    model, or the registry may be another one (MLFLOW_REGISTRY_URI) with its own version N."""
    try:
        version = tracking.run_params(package_run_id)["registered_version"]
        refit_run_id = tracking.run_tags(package_run_id)[names.REFIT_RUN_TAG]
        fingerprint = tracking.run_tags(refit_run_id).get(names.MODEL_FINGERPRINT_TAG)
        tags = tracking.version_tags(registered_model_name, version)
    except Exception:  # noqa: BLE001 - no such version (or model), or unreadable: package again
        return False
    return bool(fingerprint) and tags.get(names.MODEL_FINGERPRINT_TAG) == fingerprint


def _study_settled(tuning_run_id: str, trials: int, storage: str) -> bool:
    """Whether the shared study of a tuning run holds its whole budget with no trial running."""
    try:
        import optuna

        from steps.lib.search.budget import counted_trials, is_idle
        from steps.lib.search.storage import open_storage

        name = tracking.run_tags(tuning_run_id)[names.STUDY_NAME_TAG]
        study = optuna.load_study(study_name=name, storage=open_storage(storage))
        return is_idle(study) and len(counted_trials(study)) >= trials
    except Exception:  # noqa: BLE001 - unreadable: run the step
        return False
