"""Whether `main` may reuse an earlier run of a step instead of running it again: only a
FINISHED run whose cache key (steps/lib/orchestration/step_cache.py) is this step's key now, and, for a tuning
step on a shared study, only once no worker is still filling the study, and for `package`, only
while the version it registered is still in the registry in use. When in doubt (a key that
cannot be computed, a study or a registry that cannot be read), the step runs."""

from __future__ import annotations

from steps.lib import names, tracking
from steps.lib.data.tables import local_path
from steps.lib.orchestration import pipeline, step_cache


def cache_key(step: pipeline.Step, parameters: dict[str, str]) -> str | None:
    """The step's key for these parameters; None when it cannot be computed (the step then runs
    and reports whatever is wrong itself)."""
    try:
        interpreted = step_cache.interpreted_parameters(step.entry_point, parameters)
        data = ""
        if "data" in interpreted:
            # Keyed by content, not by where it is: the same bytes under another path are the same data.
            source = interpreted.pop("data")
            data = source if source == names.DEFAULT_DATA else step_cache.file_digest(local_path(source))
        return step_cache.step_key(step=step.name, entry_point=step.entry_point, parameters=interpreted,
                                   code=step_cache.step_code_digest(step.entry_point), data=data,
                                   dependencies=step_cache.dependencies_digest())
    except Exception:  # noqa: BLE001 - never wrong: no key, no reuse
        return None


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
