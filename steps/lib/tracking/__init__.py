"""Every MLflow call tabtune makes lives in this package: step runs, child runs, artifacts, models,
the registry.

Steps hand each other run IDs; everything a step reads comes from the artifacts of the run it
was given, so a step works on any machine that shares the tracking server. Callers use the
names re-exported here: `from steps.lib import tracking; tracking.step_run(...)`."""

# The submodule `child_runs` and the function `runs.child_runs` share a name: importing the
# submodule binds the name on this package, so the function must be imported after it.
from steps.lib.tracking.artifacts import (
    download_dir,
    download_json,
    download_uri,
    log_figure,
    log_files,
    log_json,
    log_split_inputs,
    log_table,
    log_text,
)
from steps.lib.tracking.child_runs import BackgroundChildRunWriter, ChildRunWriter
from steps.lib.tracking.models import load_pyfunc, log_model, register_model
from steps.lib.tracking.registry import (
    alias_version,
    find_version,
    link_model_metrics,
    logged_model_metrics,
    new_version,
    set_alias,
    tag_version,
    version_tags,
    version_uri,
)
from steps.lib.tracking.runs import (
    PROJECT_DIR,
    StepFailed,
    UploadFailed,
    _mask_source_tags,
    child_runs,
    create_run,
    end_failed,
    end_finished,
    find_keyed_run,
    find_latest_run,
    log_results,
    record_reused_step,
    resolve_run,
    run_metrics,
    run_params,
    run_step,
    run_tags,
    set_tags,
    step_run,
    tag_failed_run,
)
from steps.lib.tracking.ui import present_run, store_location

__all__ = [
    "PROJECT_DIR",
    "BackgroundChildRunWriter",
    "ChildRunWriter",
    "StepFailed",
    "UploadFailed",
    "_mask_source_tags",
    "alias_version",
    "child_runs",
    "create_run",
    "download_dir",
    "download_json",
    "download_uri",
    "end_failed",
    "end_finished",
    "find_keyed_run",
    "find_latest_run",
    "find_version",
    "link_model_metrics",
    "load_pyfunc",
    "log_figure",
    "log_files",
    "log_json",
    "log_model",
    "log_results",
    "log_split_inputs",
    "log_table",
    "log_text",
    "logged_model_metrics",
    "new_version",
    "present_run",
    "record_reused_step",
    "register_model",
    "resolve_run",
    "run_metrics",
    "run_params",
    "run_step",
    "run_tags",
    "set_alias",
    "set_tags",
    "step_run",
    "store_location",
    "tag_failed_run",
    "tag_version",
    "version_tags",
    "version_uri",
]
