"""The preprocessor for linear models: fit on train only, so val and test stay unseen."""

from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


def build_preprocessor(numeric: list[str], categorical: list[str]) -> ColumnTransformer:
    """Impute + scale numeric columns, one-hot categorical ones (unknown levels ignored)."""
    transformers = []
    if numeric:
        numeric_steps = [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
        transformers.append(("numeric", Pipeline(numeric_steps), numeric))
    if categorical:
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        transformers.append(("categorical", encoder, categorical))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)


def scaler_statistics(preprocessor: ColumnTransformer) -> dict:
    """The fitted scaler's per-column mean and scale as plain numbers (readable without code)."""
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
