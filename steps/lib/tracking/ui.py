"""What a person sees of a pipeline: the run's name and description in MLflow's UI, the kind of
experiment the UI opens it as, and where the results went."""

from __future__ import annotations

import os
import re

import mlflow

from steps.lib.secrets import mask_url
from steps.lib.tracking.runs import _client

NOTE_TAG = "mlflow.note.content"  # the run page's description, rendered as markdown
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"  # otherwise MLflow 3's UI may open it in GenAI mode


def _is_generated_name(name: str) -> bool:
    """Whether MLflow made this run name up (`predicate-noun-123`), i.e. the user gave none."""
    from mlflow.utils import name_utils

    match = re.fullmatch(r"([a-z]+)-([a-z]+)-\d+", name or "")
    return bool(match) and match[1] in name_utils._GENERATOR_PREDICATES and match[2] in name_utils._GENERATOR_NOUNS


def name_run(run_id: str, name: str, run=None) -> None:
    """Name the run `name` unless the user named it (`--run-name`): from its first moment, so a
    pipeline that fails or is interrupted is as easy to find as a finished one."""
    run = run or _client().get_run(run_id)
    if _is_generated_name(run.info.run_name):
        _client().update_run(run_id, name=name)


def present_run(run_id: str, *, name: str, description: str) -> None:
    """Name the run `name` unless the user named it (`--run-name`), put `description` on its
    page, and mark its experiment as model development if it has no kind yet."""
    client = _client()
    run = client.get_run(run_id)
    name_run(run_id, name, run)
    client.set_tag(run_id, NOTE_TAG, description)
    experiment = client.get_experiment(run.info.experiment_id)
    if EXPERIMENT_KIND_TAG not in experiment.tags:
        client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)


LOCAL_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default


def run_page(run_id: str) -> str | None:
    """The UI page of a run, opened in MLflow 3's "Model training" mode: the UI keeps a global
    GenAI / Model training switch in the browser (GenAI by default, whatever the experiment's
    tags say) and honours the `workflowType` query parameter. For a local store, the page
    `mlflow ui` serves; for a server, its own URL (password masked); None elsewhere (Databricks)."""
    uri = mlflow.get_tracking_uri()
    if uri.startswith(("http://", "https://")):
        base = mask_url(uri).rstrip("/")
    elif uri.startswith("databricks"):
        return None
    else:
        base = LOCAL_UI
    experiment_id = _client().get_run(run_id).info.experiment_id
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"


def store_location() -> tuple[str, str | None]:
    """The tracking store (password masked) and, for a local store, a ready-to-paste command
    that opens MLflow's UI on it (None for a server: open its URL)."""
    uri = mlflow.get_tracking_uri()
    if uri.startswith("sqlite:///"):
        path = uri.removeprefix("sqlite:///")
        uri = f"sqlite:///{path if path.startswith('/') else os.path.abspath(path)}"
    elif "://" not in uri or uri.startswith("file://"):
        uri = os.path.abspath(uri.removeprefix("file://"))
    else:
        return mask_url(uri), None
    return uri, f"mlflow ui --backend-store-uri {uri}"
