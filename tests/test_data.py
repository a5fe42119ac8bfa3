import re

import numpy as np
import pandas as pd
import pytest

from steps.lib.data.tables import (
    MISSING_CATEGORY,
    clean_target,
    data_settings_key,
    describe_columns,
    frame_digest,
    read_table,
    split_frame,
    split_sizes,
)
from steps.lib.errors import InputError
from tests.conftest import in_process_store


def test_split_is_disjoint_complete_and_seeded(frame):
    splits = split_frame(frame, "y", val_size=0.2, test_size=0.25, seed=3)
    sizes = [len(splits.train), len(splits.val), len(splits.test)]
    assert sum(sizes) == len(frame)
    assert sizes[1:] == [24, 30]
    again = split_frame(frame, "y", val_size=0.2, test_size=0.25, seed=3)
    pd.testing.assert_frame_equal(splits.test, again.test)
    other = split_frame(frame, "y", val_size=0.2, test_size=0.25, seed=4)
    assert not splits.test["x1"].equals(other.test["x1"])
    seen = pd.concat([splits.train, splits.val, splits.test])["x1"]
    assert sorted(seen) == sorted(frame["x1"])


def test_columns_are_described_and_categoricals_normalized(frame):
    splits = split_frame(frame, "y", val_size=0.2, test_size=0.2, seed=0)
    assert splits.numeric == ["x1", "x2"]
    assert splits.categorical == ["colour", "size"]
    assert splits.features == ["x1", "x2", "colour", "size"]
    all_sizes = pd.concat([splits.train, splits.val, splits.test])["size"]
    assert MISSING_CATEGORY in set(all_sizes) and all_sizes.notna().all()


def test_clean_target_drops_missing_and_counts_them(frame):
    frame.loc[[0, 5, 9], "y"] = np.nan
    rows, dropped = clean_target(frame, "y")
    assert dropped == 3 and len(rows) == len(frame) - 3 and rows["y"].notna().all()


@pytest.mark.parametrize(
    "change, target, param, text",
    [
        (lambda f: f, "nope", "target", "no column 'nope'"),
        (lambda f: f.assign(y=["a"] * len(f)), "y", "target", "must be numeric"),
        (lambda f: f.iloc[0:0], "y", "data", "empty"),
        (lambda f: f[["y"]], "y", "data", "no feature columns"),
    ],
)
def test_bad_targets_name_the_parameter(frame, change, target, param, text):
    with pytest.raises(InputError) as error:
        clean_target(change(frame), target)
    assert error.value.param == param and text in str(error.value)


def test_too_few_rows_for_the_splits():
    assert split_sizes(100, 0.2, 0.2) == (60, 20, 20)
    with pytest.raises(InputError, match=r"data: 6 rows .* too few"):
        split_sizes(6, 0.2, 0.2)


def test_read_table_formats_and_errors(tmp_path, frame):
    frame.to_csv(tmp_path / "t.csv", index=False)
    frame.to_parquet(tmp_path / "t.parquet")
    assert read_table(str(tmp_path / "t.csv")).shape == frame.shape
    assert read_table(f"file://{tmp_path / 't.parquet'}").shape == frame.shape
    assert read_table("diabetes").columns[-1] == "target"
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(InputError, match=r"^data: cannot read"):
        read_table(str(tmp_path / "bad.parquet"))
    with pytest.raises(InputError, match=r"^data: no such file"):
        read_table(str(tmp_path / "missing.csv"))
    with pytest.raises(InputError, match="neither 'diabetes' nor"):
        (tmp_path / "t.xlsx").write_text("x")
        read_table(str(tmp_path / "t.xlsx"))


def test_a_uri_that_cannot_be_downloaded_is_the_users_input_error(tmp_path):
    """A runs:/ URI of a run the (real, empty) tracking store does not have: MLflow's download
    fails, and the step says so as bad `data`, with MLflow's reason."""
    missing_run = "0" * 32
    uri = f"runs:/{missing_run}/t.csv"
    with in_process_store(tmp_path), pytest.raises(
            InputError, match=rf"^data: cannot download '{re.escape(uri)}': .*{missing_run}.* not found"):
        read_table(uri)


def test_parquet_text_columns_are_read_as_categories_with_the_same_values_and_digest(tmp_path, frame):
    frame.loc[[1, 4], "colour"] = None
    frame.to_parquet(tmp_path / "t.parquet")
    read = read_table(str(tmp_path / "t.parquet"))
    assert isinstance(read["colour"].dtype, pd.CategoricalDtype)
    as_strings = pd.read_parquet(tmp_path / "t.parquet")  # what a plain pandas read gives
    assert read["colour"].astype(object).where(read["colour"].notna(), None).tolist() == \
        as_strings["colour"].astype(object).where(as_strings["colour"].notna(), None).tolist()
    pd.testing.assert_frame_equal(read[["x1", "x2", "y"]], as_strings[["x1", "x2", "y"]])
    assert frame_digest(read) == frame_digest(as_strings)  # the same data, however it is stored
    splits = split_frame(read, "y", val_size=0.2, test_size=0.2, seed=0)
    plain = split_frame(as_strings, "y", val_size=0.2, test_size=0.2, seed=0)
    pd.testing.assert_frame_equal(splits.train, plain.train)


def test_digest_and_settings_key_are_stable(frame):
    assert frame_digest(frame) == frame_digest(frame.copy())
    assert frame_digest(frame) != frame_digest(frame.assign(x1=frame["x1"] + 1))
    assert data_settings_key("diabetes", "target", 0.2, 0.20, 42) == data_settings_key(
        "diabetes", "target", 0.2, 0.2, 42
    )


def test_describe_columns_treats_bool_as_categorical():
    numeric, categorical = describe_columns(pd.DataFrame({"a": [1.0], "b": [True], "t": [1]}), "t")
    assert numeric == ["a"] and categorical == ["b"]


def test_a_train_sample_is_seeded_and_leaves_val_and_test_alone(splits):
    sample = splits.with_train_sample(10, seed=1)
    assert len(sample.train) == 10 and sample.val is splits.val and sample.test is splits.test
    assert sample.train.equals(splits.with_train_sample(10, seed=1).train)
    assert not sample.train.equals(splits.with_train_sample(10, seed=2).train)
    assert splits.with_train_sample(0, seed=1) is splits and splits.with_train_sample(10_000, seed=1) is splits


def test_categories_merge_alike_values_and_name_missing_ones():
    from steps.lib.data.tables import conform, unconform

    raw = pd.DataFrame({"n": [1, 2, 3, 4], "c": [1, "1", None, "b"], "gone": [None, np.nan, None, None]})
    conformed = conform(raw, ["n"], ["c", "gone"])
    assert isinstance(conformed["c"].dtype, pd.CategoricalDtype)
    assert conformed["c"].astype(str).tolist() == ["1", "1", MISSING_CATEGORY, "b"]
    assert conformed["gone"].astype(str).tolist() == [MISSING_CATEGORY] * 4
    assert unconform(conformed, ["c", "gone"])["c"].tolist() == ["1", "1", None, "b"]


def test_logged_splits_read_back_equal_with_train_and_val_as_views_of_one_frame(frame, tmp_path):
    from steps.lib.data.tables import read_splits

    splits = split_frame(frame, "y", val_size=0.2, test_size=0.2, seed=2)
    for split in ("train", "val", "test"):
        getattr(splits, split).to_parquet(tmp_path / f"{split}.parquet")
    schema = {"target": "y", "numeric": splits.numeric, "categorical": splits.categorical, "seed": 2,
              "rows": {split: len(getattr(splits, split)) for split in ("train", "val", "test")}}
    read = read_splits(tmp_path, schema)
    for split in ("train", "val", "test"):
        pd.testing.assert_frame_equal(getattr(read, split), getattr(splits, split), check_categorical=False)
    x, _ = read.train_val()
    assert len(x) == len(splits.train) + len(splits.val) and "y" not in x.columns
    # the refit's data is the frame train and val were cut from, not a further copy of it
    assert np.shares_memory(x["x1"].to_numpy(), read.train["x1"].to_numpy())
    assert read.with_train_sample(5, seed=1).stacked_train_val is None


def test_a_row_is_known_by_its_values_whatever_the_file_made_of_their_types():
    """The same rows read as ints or floats, as strings with None or as tabtune's categories with
    the missing level, in any column order, hash alike; another value does not."""
    from steps.lib.data.row_identity import row_hashes
    from steps.lib.data.tables import MISSING_CATEGORY

    as_read = pd.DataFrame({"n": [1, 2, 3], "c": ["a", None, "b"], "y": [0.5, 1.5, 2.5]})
    as_logged = pd.DataFrame({"y": [0.5, 1.5, 2.5], "n": [1.0, 2.0, 3.0],
                              "c": pd.Categorical(["a", MISSING_CATEGORY, "b"])})
    columns = ["n", "c", "y"]
    assert (row_hashes(as_read, columns) == row_hashes(as_logged, columns)).all()
    changed = as_logged.assign(n=[1.0, 2.0, 3.5])
    assert (row_hashes(as_read, columns) == row_hashes(changed, columns)).tolist() == [True, True, False]


def test_rows_the_champion_trained_on_are_dropped_unless_the_new_model_trained_on_them_too():
    from steps.lib.data.row_identity import unseen_by_champion

    rows = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [10.0, 20.0, 30.0, 40.0]})
    test = rows.assign(extra="only in the new table")  # columns the champion's table lacks are not compared
    champion_seen = rows.iloc[[0, 1, 3]]
    new_seen = rows.iloc[[3]]  # a repeated row: both models trained on (4, 40)
    assert unseen_by_champion(test, champion_seen, new_seen).tolist() == [False, False, True, True]
