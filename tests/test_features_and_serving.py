import json

import numpy as np
import pandas as pd
import pytest
import skops.io

from steps.lib.data.features import build_preprocessor, scaler_statistics
from steps.lib.model.serving import RAW_ROWS_MODEL, check_serves, corrupt_one_column, model_card


def test_preprocessor_fits_train_only_and_ignores_unknown_levels(splits):
    x_train, _ = splits.xy("train")
    preprocessor = build_preprocessor(splits.numeric, splits.categorical).fit(x_train)
    stats = scaler_statistics(preprocessor)
    assert stats["x1"]["mean"] == pytest.approx(x_train["x1"].mean())
    unseen = x_train.head(2).assign(colour="purple")
    encoded = preprocessor.transform(unseen)
    assert encoded.shape[1] == len(preprocessor.get_feature_names_out())
    json.dumps(stats)


def test_preprocessor_round_trips_through_skops_without_pickle(tmp_path, splits):
    x_train, _ = splits.xy("train")
    preprocessor = build_preprocessor(splits.numeric, splits.categorical).fit(x_train)
    path = tmp_path / "p.skops"
    skops.io.dump(preprocessor, path)
    loaded = skops.io.load(path, trusted=skops.io.get_untrusted_types(file=path))
    np.testing.assert_allclose(loaded.transform(x_train), preprocessor.transform(x_train))


def test_corrupt_one_column_breaks_a_numeric_column():
    example = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    wrong = corrupt_one_column(example)
    assert wrong.attrs["corrupted"] == "a" and wrong["a"].tolist() == ["not a number"] * 2
    assert example["a"].tolist() == [1.0, 2.0]


class FakeModel:
    """Stands in for a pyfunc model to test the checks' own logic (the real one is tested end to end)."""

    class Meta:
        def get_input_schema(self):
            from mlflow.types import ColSpec, Schema

            return Schema([ColSpec("double", "a")])

    def __init__(self, enforce: bool):
        self.input_example = pd.DataFrame({"a": [1.0, 2.0]})
        self.metadata = self.Meta()
        self.enforce = enforce

    def predict(self, frame):
        if self.enforce and not pd.api.types.is_numeric_dtype(frame["a"]):
            raise TypeError("wrong type")
        return np.zeros(len(frame))


def test_check_serves_requires_schema_enforcement():
    check_serves(FakeModel(enforce=True))
    with pytest.raises(Exception, match="wrong type was accepted"):
        check_serves(FakeModel(enforce=False))


def test_model_card_lists_lineage_and_metrics():
    card = model_card("m", "3", "champion", "lasso", "models:/m-1", {"refit_run_id": "abc"},
                      {"test_rmse": 1.5})
    assert "# m v3 (@champion)" in card and "`abc`" in card and "| test_rmse | 1.5 |" in card


@pytest.fixture
def logged(tmp_path, monkeypatch, splits):
    """A LASSO fitted on the small frame and logged as tabtune logs every model, in a temp store."""
    import contextlib

    import mlflow

    from steps.lib import tracking
    from steps.lib.data.tables import unconform
    from steps.lib.families import get_family

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    family = get_family("lasso")
    model = family.build({"alpha": 0.01}, splits, seed=0).fit(*splits.xy("train"))
    x_test = splits.xy("test")[0]
    with contextlib.chdir(tmp_path):
        experiment = mlflow.create_experiment("serving", artifact_location=(tmp_path / "a").as_uri())
        with mlflow.start_run(experiment_id=experiment):
            uri = tracking.log_model([(family, model, 1.0)], splits.numeric, splits.categorical,
                                     unconform(x_test.head(3), splits.categorical), served_by=RAW_ROWS_MODEL)
        # Callers send plain strings (and None), not the categories training uses.
        yield mlflow.pyfunc.load_model(uri), model, unconform(x_test, splits.categorical), x_test
    mlflow.set_tracking_uri(None)


def test_a_blend_is_logged_without_mlflow_inferring_requirements_for_any_member(tmp_path, monkeypatch, splits):
    """Inference starts a subprocess that loads the model, seconds per member; a bagged blend
    holds dozens of members, so each member's requirements must be given, not inferred."""
    import contextlib

    import mlflow
    from mlflow.utils import requirements_utils

    from steps.lib import tracking
    from steps.lib.data.tables import unconform
    from steps.lib.families import get_family

    inferred = []

    def inference(model_uri, flavor, *args, **kwargs):  # MLflow falls back quietly when it fails
        inferred.append(flavor)
        raise RuntimeError("no inference here")

    monkeypatch.setattr(requirements_utils, "_capture_imported_modules", inference)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    members = []
    for name, params in (("lasso", {"alpha": 0.01}), ("hist_gradient_boosting", {"max_iter": 5, "learning_rate": 0.1})):
        family = get_family(name)
        members.append((family, family.build(params, splits, seed=0).fit(*splits.xy("train")), 0.5))
    x_test = splits.xy("test")[0]
    try:
        with contextlib.chdir(tmp_path):
            experiment = mlflow.create_experiment("blend", artifact_location=(tmp_path / "a").as_uri())
            with mlflow.start_run(experiment_id=experiment):
                model_uri = tracking.log_model(members, splits.numeric, splits.categorical,
                                               unconform(x_test.head(3), splits.categorical), served_by=RAW_ROWS_MODEL)
            predicted = mlflow.pyfunc.load_model(model_uri).predict(unconform(x_test, splits.categorical))
    finally:
        mlflow.set_tracking_uri(None)
    assert inferred == []
    expected = sum(0.5 * model.predict(x_test) for _, model, _ in members)
    np.testing.assert_allclose(predicted, expected, rtol=1e-6)


def test_logged_model_takes_raw_rows_as_users_send_them(logged):
    pyfunc, model, rows, x_test = logged
    check_serves(pyfunc)
    np.testing.assert_allclose(pyfunc.predict(rows), model.predict(x_test))
    raw = pd.DataFrame({"colour": [None, "purple", np.nan], "x2": [np.nan, 0.5, None], "size": [None, "XL", "S"],
                        "x1": [None, 1.0, 2.0]})  # nulls everywhere, unseen levels, columns in any order
    assert np.isfinite(pyfunc.predict(raw)).all()
    types = {c.name: c.type.name for c in pyfunc.metadata.get_input_schema().inputs}
    assert types == {"x1": "double", "x2": "double", "colour": "string", "size": "string"}


def test_logged_model_names_the_column_it_refuses(logged):
    from mlflow.exceptions import MlflowException

    pyfunc, _, x_test, _ = logged
    with pytest.raises(MlflowException, match="x1"):
        pyfunc.predict(x_test.assign(x1="not a number"))
    with pytest.raises(MlflowException, match=r"missing inputs \['colour'\]"):
        pyfunc.predict(x_test.drop(columns=["colour"]))


def test_large_tables_are_encoded_in_float32_with_the_same_fit(monkeypatch, splits):
    from steps.lib.data import features

    x_train, _ = splits.xy("train")
    wide = build_preprocessor(splits.numeric, splits.categorical, rows=len(x_train)).fit(x_train)
    monkeypatch.setattr(features, "COMPACT_FROM_CELLS", 1)
    compact = build_preprocessor(splits.numeric, splits.categorical, rows=len(x_train)).fit(x_train)
    assert wide.transform(x_train).dtype == np.float64 and compact.transform(x_train).dtype == np.float32
    np.testing.assert_allclose(compact.transform(x_train), wide.transform(x_train), rtol=1e-5, atol=1e-5)
    assert list(compact.get_feature_names_out()) == list(wide.get_feature_names_out())
    assert scaler_statistics(compact)["x1"]["mean"] == pytest.approx(scaler_statistics(wide)["x1"]["mean"], rel=1e-5)
