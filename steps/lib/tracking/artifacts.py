"""Artifacts: JSON, text, tables, figures and files logged on a run, and downloaded again by the
steps that build on it."""

from __future__ import annotations

import contextlib
import json
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow

from steps.lib import names
from steps.lib.tracking.runs import UploadFailed, _client


@contextlib.contextmanager
def uploading(what: str) -> Iterator[None]:
    """Turn MLflow's failure to write an artifact (after its HTTP retries: a server answering
    500, an unreachable store, a local store that refuses the write) into UploadFailed, which
    the step reports in one line instead of a traceback."""
    from mlflow.exceptions import MlflowException
    from requests import RequestException

    try:
        yield
    except (MlflowException, RequestException, OSError) as error:
        raise UploadFailed(what, _reason(error)) from error


def _reason(error: BaseException) -> str:
    """The useful part of MLflow's message: the failing URL (or path) and urllib3's cause."""
    message = str(error)
    url = re.search(r"API request to (\S+) failed", message)
    cause = re.search(r"Caused by \w+\((.*)\)\)?$", message)
    if url and cause:
        return f"{url.group(1)}: {cause.group(1).strip(chr(39) + chr(34))}"
    return message[-500:]


def _active_or(run_id: str | None) -> str:
    return run_id or mlflow.active_run().info.run_id


def log_json(obj: Any, artifact_file: str, run_id: str | None = None) -> None:
    with uploading(artifact_file):
        _client().log_dict(_active_or(run_id), obj, artifact_file)


def log_text(text: str, artifact_file: str, run_id: str | None = None) -> None:
    with uploading(artifact_file):
        _client().log_text(_active_or(run_id), text, artifact_file)


def log_table(frame, artifact_file: str, run_id: str | None = None) -> None:
    """A DataFrame as a CSV artifact (readable anywhere, diffable)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(artifact_file).name
        frame.to_csv(path, index=False)
        parent = str(Path(artifact_file).parent)
        with uploading(artifact_file):
            _client().log_artifact(_active_or(run_id), str(path), None if parent == "." else parent)


def log_figure(figure, artifact_file: str, run_id: str | None = None) -> None:
    import matplotlib.pyplot as plt

    try:
        with uploading(artifact_file):
            _client().log_figure(_active_or(run_id), figure, artifact_file)
    finally:
        plt.close(figure)


def log_files(files: dict[str, Any], artifact_dir: str) -> None:
    """Write several files with their writers in a temp dir and log them in one upload."""
    with tempfile.TemporaryDirectory() as tmp:
        for file_name, writer in files.items():
            writer(Path(tmp) / file_name)
        with uploading(f"{artifact_dir}/"):
            mlflow.log_artifacts(tmp, artifact_dir)


def download_json(run_id: str, artifact_file: str) -> Any:
    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_file)
    return json.loads(Path(path).read_text())


def download_dir(run_id: str, artifact_dir: str) -> Path:
    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_dir))


def download_uri(uri: str) -> str:
    """A local path for an artifact URI (runs:/…, s3://…, …), downloaded first."""
    return mlflow.artifacts.download_artifacts(artifact_uri=uri)


SCHEMA_SAMPLE_ROWS = 10_000  # as many rows as MLflow's own dataset digest reads


def copy_dataset_inputs(from_run_id: str, to_run_id: str) -> None:
    """The datasets `from_run_id` logged as inputs, logged on `to_run_id` too: the pipeline run
    then shows in the runs list's Dataset column which table it used."""
    from steps.lib.tracking.runs import _client

    client = _client()
    inputs = client.get_run(from_run_id).inputs
    if inputs and inputs.dataset_inputs:
        client.log_inputs(to_run_id, datasets=list(inputs.dataset_inputs))


def log_split_inputs(splits, source: str) -> None:
    """Each split as an MLflow dataset input (train/val/test context), so lineage shows the data."""
    import warnings

    from mlflow.data.pandas_dataset import from_pandas
    from mlflow.models import infer_signature

    for split in names.SPLITS:
        frame = getattr(splits, split)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "source can be interpreted in multiple ways"
            dataset = from_pandas(frame, source=source, targets=splits.target, name=split)
            # MLflow would infer the schema by visiting every value of the string columns in Python
            # (~20 s per million rows); the columns' types are fixed by `conform`, so the first rows
            # give the same schema. (The digest and row counts still cover the whole split.)
            dataset.__dict__["schema"] = infer_signature(frame.head(SCHEMA_SAMPLE_ROWS)).inputs
        mlflow.log_input(dataset, context=split)

