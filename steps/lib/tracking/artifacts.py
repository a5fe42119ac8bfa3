"""Artifacts: JSON, text, tables, figures and files logged on a run, and downloaded again by the
steps that build on it."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import mlflow

from steps.lib import names
from steps.lib.tracking.runs import _client


def _active_or(run_id: str | None) -> str:
    return run_id or mlflow.active_run().info.run_id


def log_json(obj: Any, artifact_file: str, run_id: str | None = None) -> None:
    _client().log_dict(_active_or(run_id), obj, artifact_file)


def log_text(text: str, artifact_file: str, run_id: str | None = None) -> None:
    _client().log_text(_active_or(run_id), text, artifact_file)


def log_table(frame, artifact_file: str, run_id: str | None = None) -> None:
    """A DataFrame as a CSV artifact (readable anywhere, diffable)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / Path(artifact_file).name
        frame.to_csv(path, index=False)
        parent = str(Path(artifact_file).parent)
        _client().log_artifact(_active_or(run_id), str(path), None if parent == "." else parent)


def log_figure(figure, artifact_file: str, run_id: str | None = None) -> None:
    import matplotlib.pyplot as plt

    _client().log_figure(_active_or(run_id), figure, artifact_file)
    plt.close(figure)


def log_files(files: dict[str, Any], artifact_dir: str) -> None:
    """Write several files with their writers in a temp dir and log them in one upload."""
    with tempfile.TemporaryDirectory() as tmp:
        for file_name, writer in files.items():
            writer(Path(tmp) / file_name)
        mlflow.log_artifacts(tmp, artifact_dir)


def download_json(run_id: str, artifact_file: str) -> Any:
    path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_file)
    return json.loads(Path(path).read_text())


def download_dir(run_id: str, artifact_dir: str) -> Path:
    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact_dir))


def download_uri(uri: str) -> str:
    """A local path for an artifact URI (runs:/…, s3://…, …), downloaded first."""
    return mlflow.artifacts.download_artifacts(artifact_uri=uri)


def log_split_inputs(splits, source: str) -> None:
    """Each split as an MLflow dataset input (train/val/test context), so lineage shows the data."""
    import warnings

    from mlflow.data.pandas_dataset import from_pandas

    for split in names.SPLITS:
        frame = getattr(splits, split)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "source can be interpreted in multiple ways"
            dataset = from_pandas(frame, source=source, targets=splits.target, name=split)
        mlflow.log_input(dataset, context=split)

