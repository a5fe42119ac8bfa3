"""Checks that a logged model serves as a user will call it, and the model card text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

# The registered model's code (MLflow "models from code"): raw rows in, predictions out.
RAW_ROWS_MODEL = Path(__file__).with_name("raw_rows_model.py")


class ServingCheckFailed(Exception):
    """The model does not load, predict, or enforce its signature as promised."""


def check_serves(pyfunc_model) -> None:
    """The model serves what users send: it predicts its input example, a row with a null in
    every column and unseen categorical levels (finite values), and it rejects a frame with a
    wrongly typed column."""
    example = pyfunc_model.input_example
    schema = pyfunc_model.metadata.get_input_schema()
    if example is None or schema is None:
        raise ServingCheckFailed("the model has no input example or no signature")
    predictions = _as_series(pyfunc_model.predict(example))
    if len(predictions) != len(example) or predictions.isna().any():
        raise ServingCheckFailed(f"predicting the input example gave {list(predictions)}")
    awkward = awkward_rows(example, [c.name for c in schema.inputs if c.type.name == "string"])
    predictions = _as_series(pyfunc_model.predict(awkward))
    if len(predictions) != len(awkward) or not np.isfinite(predictions.to_numpy(dtype="float64")).all():
        raise ServingCheckFailed(f"rows with nulls and unseen levels gave {list(predictions)}")
    wrong = corrupt_one_column(example)
    try:
        pyfunc_model.predict(wrong)
    except Exception:  # noqa: BLE001 - MLflow's schema enforcement raises MlflowException
        return
    raise ServingCheckFailed(f"a frame with column {wrong.attrs['corrupted']!r} of the wrong type was accepted")


def awkward_rows(example: pd.DataFrame, categorical: list[str]) -> pd.DataFrame:
    """Two rows a real caller sends: one null in every column, one with categorical levels
    never seen in training (numbers from the example)."""
    nulls = pd.DataFrame({c: pd.Series([None], dtype="float64" if c not in categorical else "object")
                          for c in example.columns})
    unseen = example.head(1).reset_index(drop=True).copy()
    for column in categorical:
        unseen[column] = f"never seen in {column}"
    return pd.concat([nulls, unseen], ignore_index=True)


def _as_series(predictions) -> pd.Series:
    return pd.Series(pd.DataFrame(predictions).iloc[:, 0])


def corrupt_one_column(example: pd.DataFrame) -> pd.DataFrame:
    """The example with its first numeric column replaced by text (or a categorical one by
    nested lists), which a signature must refuse."""
    wrong = example.copy()
    numeric = [c for c in wrong.columns if pd.api.types.is_numeric_dtype(wrong[c])]
    column = numeric[0] if numeric else wrong.columns[0]
    wrong[column] = ["not a number"] * len(wrong) if numeric else [[1, 2]] * len(wrong)
    wrong.attrs["corrupted"] = column
    return wrong


def model_card(name: str, version: str, alias: str, family: str, model_uri: str,
               lineage: dict[str, str], metrics: dict[str, float], *, holds_alias: bool = True,
               gate: str = "") -> str:
    """A short markdown card: what the model is, where it came from, how good it is, whether
    it holds the alias and why (`gate`, the champion gate's verdict)."""
    lines = [
        f"# {name} v{version}" + (f" (@{alias})" if holds_alias else ""),
        "",
        f"- family: **{family}**",
        f"- model URI: `{model_uri}`",
        f"- load: `mlflow.pyfunc.load_model('models:/{name}" + (f"@{alias}" if holds_alias else f"/{version}")
        + "')`",
        *([f"- gate: {gate}"] if gate else []),
        "",
        "## Lineage",
        *(f"- {key}: `{value}`" for key, value in lineage.items()),
        "",
        "## Metrics",
        "| metric | value |",
        "| --- | --- |",
        *(f"| {key} | {value:.6g} |" for key, value in sorted(metrics.items())),
        "",
    ]
    return "\n".join(lines)
