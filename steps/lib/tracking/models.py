"""Models: log one through its family's flavor, load it back, register a version with an alias."""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path
from typing import Any

import mlflow

from steps.lib import names
from steps.lib.tracking.artifacts import uploading
from steps.lib.tracking.runs import _client


def log_model(members: list[tuple[Any, Any, float]], numeric: list[str], categorical: list[str], input_example, *,
              served_by: Path) -> str:
    """Log the fitted model as one self-contained MLflow model that takes raw rows; its URI.

    `members` are (family, fitted estimator, weight): one with weight 1, or the members of a
    blend. Each estimator is saved by its family's flavor (sklearn ones with skops, never pickle)
    and all are wrapped by the models-from-code file `served_by`, which conforms every request
    the way training data was conformed and weighs the members' predictions; the `steps` package
    ships inside the model for it. The signature says double (nullable) for numeric columns and
    string for categorical ones, so MLflow refuses a missing column or text in a numeric one,
    naming it. Explicit pip requirements, for the whole and for every member saved inside it,
    spare MLflow its inference of them: a subprocess that loads the model, 3-9 s per member, and
    a bagged blend holds dozens of members."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    signature = ModelSignature(
        inputs=Schema([ColSpec("double", c) for c in numeric] + [ColSpec("string", c) for c in categorical]),
        outputs=Schema([ColSpec("double")]),
    )
    with tempfile.TemporaryDirectory() as tmp:
        artifacts, weights = {}, {}
        for index, (family, model, weight) in enumerate(members):
            name = "estimator" if len(members) == 1 else f"estimator_{index}"
            artifacts[name] = str(Path(tmp) / name)
            save = getattr(mlflow, family.flavor).save_model
            save(model, artifacts[name], pip_requirements=family.pip_requirements(), **_save_options(family, model))
            weights[name] = weight
        for name, content in (("columns", {"numeric": list(numeric), "categorical": list(categorical)}),
                              ("weights", weights)):
            artifacts[name] = str(Path(tmp) / f"{name}.json")
            Path(artifacts[name]).write_text(json.dumps(content))
        requirements = sorted({pin for family, _, _ in members for pin in family.pip_requirements()})
        with uploading("the model"):
            info = mlflow.pyfunc.log_model(
                name=names.MODEL_NAME,
                python_model=str(served_by),
                artifacts=artifacts,
                code_paths=[str(names.PROJECT_DIR / "steps")],  # what `served_by` imports
                signature=signature,
                input_example=input_example,
                pip_requirements=requirements,
            )
    return info.model_uri


def _save_options(family, model) -> dict[str, Any]:
    """How the family's flavor saves `model`: sklearn ones with skops, trusting exactly the types
    our own pipeline is made of, nothing else."""
    if family.flavor != "sklearn":
        return {}
    import skops.io

    return {"serialization_format": "skops",
            "skops_trusted_types": skops.io.get_untrusted_types(data=skops.io.dumps(model))}


def load_pyfunc(model_uri: str):
    return mlflow.pyfunc.load_model(model_uri)


def register_model(model_uri: str, name: str, alias: str, tags: dict[str, str]):
    """A new registered version of `model_uri` with tags and alias; removed again if either fails,
    so nothing is left half-registered."""
    client = _client()
    version = mlflow.register_model(model_uri, name, tags=tags)
    try:
        client.set_registered_model_alias(name, alias, version.version)
    except BaseException:
        with contextlib.suppress(Exception):
            client.delete_model_version(name, version.version)
        raise
    return version
