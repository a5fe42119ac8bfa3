"""Models: log one through its family's flavor, load it back, register a version with an alias."""

from __future__ import annotations

import contextlib
from typing import Any

import mlflow

from steps.lib import names
from steps.lib.tracking.runs import _client


def log_model(family, model, x_example, predictions) -> str:
    """Log the model through its family's flavor with signature and input example; its URI.

    Explicit pip requirements spare MLflow the (slow) inference of them."""
    from mlflow.models import infer_signature

    options: dict[str, Any] = {}
    if family.flavor == "sklearn":
        import skops.io

        # Our own pipeline: trust exactly the types it is made of, nothing else.
        options["skops_trusted_types"] = skops.io.get_untrusted_types(data=skops.io.dumps(model))
    flavor = getattr(mlflow, family.flavor)
    info = flavor.log_model(
        model,
        name=names.MODEL_NAME,
        signature=infer_signature(x_example, predictions),
        input_example=x_example.head(5),
        pip_requirements=family.pip_requirements(),
        **options,
    )
    return info.model_uri


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
