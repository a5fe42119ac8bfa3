"""The preprocessor for linear models: fitted with the model on its training rows only (train while
tuning, train+val for the final model), so the rows it is scored on stay unseen."""

from __future__ import annotations

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

# From this many feature cells (rows times columns) on, the encoded matrix is float32: half the
# memory on tables of millions of rows, where a linear model cannot tell the difference. Smaller
# tables keep float64, so their results stay as they were to the last digit.
COMPACT_FROM_CELLS = 10_000_000


def build_preprocessor(numeric: list[str], categorical: list[str], *, rows: int = 0) -> ColumnTransformer:
    """Impute + scale numeric columns, one-hot categorical ones (unknown levels ignored). `rows`:
    how many rows it will be fitted on; a large table is encoded as float32 (COMPACT_FROM_CELLS)."""
    compact = rows * (len(numeric) + len(categorical)) >= COMPACT_FROM_CELLS
    transformers = []
    if numeric:
        numeric_steps = [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
        if compact:  # the imputer and scaler keep float32 once it arrives as float32
            cast = FunctionTransformer(np.asarray, kw_args={"dtype": "float32"}, feature_names_out="one-to-one")
            numeric_steps.insert(0, ("cast", cast))
        transformers.append(("numeric", Pipeline(numeric_steps), numeric))
    if categorical:
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False,
                                dtype=np.float32 if compact else np.float64)
        transformers.append(("categorical", encoder, categorical))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)


def scaler_statistics(preprocessor: ColumnTransformer) -> dict:
    """The fitted imputer's and scaler's per-column median fill, mean and scale as plain numbers
    (readable without code)."""
    if "numeric" not in preprocessor.named_transformers_:
        return {}
    numeric_pipeline = preprocessor.named_transformers_["numeric"]
    columns = list(preprocessor.transformers_[0][2])
    scaler = numeric_pipeline.named_steps["scale"]
    imputer = numeric_pipeline.named_steps["impute"]
    return {
        column: {"median_fill": float(fill), "mean": float(mean), "scale": float(scale)}
        for column, fill, mean, scale in zip(
            columns, imputer.statistics_, scaler.mean_, scaler.scale_, strict=True
        )
    }
