import json

import numpy as np
import pandas as pd
import pytest
import skops.io

from steps.lib.features import build_preprocessor, scaler_statistics
from steps.lib.serving import check_serves, corrupt_one_column, model_card


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
            return "schema"

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
