"""Whether `main` may reuse an earlier run of a step instead of running it again: only a
FINISHED run whose cache key (steps/lib/orchestration/step_cache.py) is this step's key now, and, for a tuning
step on a shared study, only once no worker is still filling the study. When in doubt (a key
that cannot be computed, a study that cannot be read), the step runs."""

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
    return found


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
