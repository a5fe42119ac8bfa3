"""Read a table, split it, describe its columns. Pure except the readers: `read_table` (with
`local_path`, which may download) and `read_splits`/`read_split`, which read a prepare run's splits."""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass, field
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from steps.lib.errors import InputError
from steps.lib.names import DEFAULT_DATA

MIN_TRAIN_ROWS = 5


@dataclass(frozen=True)
class Splits:
    """The three splits of one table plus what the models need to know about its columns."""

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    target: str
    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    seed: int = 0
    # Train and val stacked, when train and val are views of it (as `read_splits` makes them):
    # the refit then fits on it without a second copy of most of the table.
    stacked_train_val: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def xy(self, split: str) -> tuple[pd.DataFrame, pd.Series]:
        """Features and target of one split, features in a stable order (numeric, then
        categorical)."""
        frame = getattr(self, split)
        return _features_of(frame, self.target), frame[self.target]

    def with_train_sample(self, rows: int, seed: int) -> Splits:
        """The same splits with a seeded sample of `rows` training rows (all of them when `rows`
        is 0 or not smaller): for tuning on a large table, while refit uses everything."""
        if not rows or rows >= len(self.train):
            return self
        from dataclasses import replace

        sample = self.train.sample(n=rows, random_state=seed).reset_index(drop=True)
        return replace(self, train=sample, stacked_train_val=None)

    def cv_folds(self, folds: int) -> list[Splits]:
        """Train and val stacked, cut into `folds` seeded folds; fold i as splits whose val is the
        i-th fold and whose train is every other row (test untouched). Cross-validated tuning
        scores every candidate on each fold in turn, so no choice rests on one split's luck."""
        if folds < 2:
            raise InputError("folds", f"cross-validation needs at least 2 folds, got {folds}")
        frame = (self.stacked_train_val if self.stacked_train_val is not None
                 else pd.concat([self.train, self.val], ignore_index=True)).reset_index(drop=True)
        rows = len(frame)
        if rows < folds * MIN_TRAIN_ROWS:
            raise InputError("folds", f"{rows} train+val rows are too few for {folds} folds")
        numbers = self.fold_numbers(folds, rows)
        parts = [np.flatnonzero(numbers == i) for i in range(folds)]
        from dataclasses import replace

        return [replace(self, train=frame.iloc[np.sort(np.concatenate(parts[:i] + parts[i + 1:]))],
                        val=frame.iloc[np.sort(part)], stacked_train_val=None)
                for i, part in enumerate(parts)]

    def reshuffled(self, number: int) -> Splits:
        """Train and val stacked and cut again, seeded by the data's seed and `number` (a trial
        number), into train and val of their own sizes (test untouched): a holdout trial scored on
        a split of its own, so no configuration wins by fitting one val split's luck (Nagler et
        al., NeurIPS 2024, "Reshuffling resampling splits can improve generalization of
        hyperparameter optimization")."""
        from dataclasses import replace

        frame = (self.stacked_train_val if self.stacked_train_val is not None
                 else pd.concat([self.train, self.val], ignore_index=True)).reset_index(drop=True)
        order = np.random.default_rng([self.seed, number]).permutation(len(frame))
        held_out = len(self.val)
        return replace(self, train=frame.iloc[order[held_out:]].reset_index(drop=True),
                       val=frame.iloc[order[:held_out]].reset_index(drop=True), stacked_train_val=None)

    def fold_numbers(self, folds: int, rows: int | None = None) -> np.ndarray:
        """Which of `folds` seeded folds each train+val row falls in (the folds `cv_folds`
        cuts): what scoring out-of-fold predictions fold by fold needs, as tuning scored them.
        `rows`: how many rows tuning cut into folds, when that was not this train+val (tuning on
        a `with_train_sample` of the table numbers its rows and folds its own way)."""
        if rows is None:
            rows = len(self.train) + len(self.val)
        numbers = np.empty(rows, dtype=int)
        for number, part in enumerate(np.array_split(np.random.default_rng(self.seed).permutation(rows), folds)):
            numbers[part] = number
        return numbers

    def train_val(self) -> tuple[pd.DataFrame, pd.Series]:
        """Train and val stacked: the data the final model is refit on."""
        frame = self.stacked_train_val
        if frame is None:
            frame = pd.concat([self.train, self.val], ignore_index=True)
        return _features_of(frame, self.target), frame[self.target]


def _features_of(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    """Every column but the target, without copying the data (copy-on-write): the splits hold
    the features in their stable order followed by the target."""
    return frame.drop(columns=target)


def read_table(data: str) -> pd.DataFrame:
    """Load the user's table: the bundled diabetes set, or a CSV/Parquet path or URI."""
    if data == DEFAULT_DATA:
        from sklearn.datasets import load_diabetes

        return load_diabetes(as_frame=True).frame
    path = local_path(data)
    suffix = os.path.splitext(path)[1].lower()
    try:
        if suffix in (".parquet", ".pq"):
            return _read_parquet(path)
        if suffix in (".csv", ".txt", ".gz"):
            return pd.read_csv(path)
    except Exception as error:  # any reader failure is the user's file
        raise InputError("data", f"cannot read {data!r} as a table: {error}") from error
    raise InputError("data", f"{data!r} is neither 'diabetes' nor a .csv or .parquet file")


def _read_parquet(path: str) -> pd.DataFrame:
    """A Parquet table with its text columns as categories (one small code per cell, as
    `conform` keeps them anyway), converted column by column so Arrow's copy and pandas' copy
    of the table never both exist whole: about the table's size once, not twice or more."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    text = [field.name for field in pq.read_schema(path)
            if pa.types.is_string(field.type) or pa.types.is_large_string(field.type)]
    return _to_pandas_releasing(pq.read_table(path, read_dictionary=text))


def _to_pandas_releasing(table) -> pd.DataFrame:
    """An Arrow table as a pandas frame, Arrow's buffers released column by column as pandas
    takes them and handed back to the system: the data is held about once, not twice."""
    import pyarrow as pa

    frame = table.to_pandas(self_destruct=True, split_blocks=True)
    del table
    pa.default_memory_pool().release_unused()
    return frame


def local_path(data: str) -> str:
    """A local path for `data`, downloading it first when it is a URI (runs:/, s3://, …)."""
    scheme = urlparse(data).scheme
    if scheme in ("", "file") or len(scheme) == 1:  # a bare path, file://, or a Windows drive
        path = urlparse(data).path if scheme == "file" else data
        if not os.path.isfile(path):
            raise InputError("data", f"no such file: {data!r}")
        return path
    from steps.lib import tracking  # imported here: MLflow is heavy, and most reads never need it

    try:
        return tracking.download_uri(data)
    except Exception as error:
        raise InputError("data", f"cannot download {data!r}: {error}") from error


def clean_target(frame: pd.DataFrame, target: str) -> tuple[pd.DataFrame, int]:
    """Rows with a known numeric target, and how many rows had none (they cannot be scored)."""
    if frame.empty or len(frame.columns) == 0:
        raise InputError("data", "the table is empty")
    if target not in frame.columns:
        raise InputError("target", f"no column {target!r}; columns are {list(frame.columns)}")
    if not pd.api.types.is_numeric_dtype(frame[target]) or pd.api.types.is_bool_dtype(frame[target]):
        raise InputError("target", f"column {target!r} must be numeric, found {frame[target].dtype}")
    if len(frame.columns) < 2:
        raise InputError("data", "the table has no feature columns besides the target")
    known = frame[target].notna() & np.isfinite(frame[target].astype("float64"))
    if known.all():
        return frame, 0  # nothing to drop: no copy of a table that may be gigabytes
    return frame.loc[known].reset_index(drop=True), int((~known).sum())


def split_sizes(n_rows: int, val_size: float, test_size: float) -> tuple[int, int, int]:
    """Row counts (train, val, test); refuses sizes that leave a split too small to use."""
    n_test = round(n_rows * test_size)
    n_val = round(n_rows * val_size)
    n_train = n_rows - n_val - n_test
    if n_test < 1 or n_val < 1 or n_train < MIN_TRAIN_ROWS:
        raise InputError(
            "data",
            f"{n_rows} rows with a target are too few for val_size={val_size}, "
            f"test_size={test_size}: need at least 1 val, 1 test and {MIN_TRAIN_ROWS} train rows",
        )
    return n_train, n_val, n_test


def split_frame(
    frame: pd.DataFrame, target: str, *, val_size: float, test_size: float, seed: int
) -> Splits:
    """Shuffle once with `seed` and cut train/val/test, so a rerun gives the same rows. The
    table is conformed first and then shuffled in one copy: the only copy of it this makes."""
    n_train, n_val, _ = split_sizes(len(frame), val_size, test_size)
    order = np.random.default_rng(seed).permutation(len(frame))
    numeric, categorical = describe_columns(frame, target)
    conformed = conform(frame, numeric, categorical)
    conformed[target] = frame[target]
    shuffled = conformed.take(order).reset_index(drop=True)
    del conformed
    return Splits(
        train=shuffled.iloc[:n_train].reset_index(drop=True),
        val=shuffled.iloc[n_train : n_train + n_val].reset_index(drop=True),
        test=shuffled.iloc[n_train + n_val :].reset_index(drop=True),
        target=target,
        numeric=numeric,
        categorical=categorical,
        seed=seed,
    )


def describe_columns(frame: pd.DataFrame, target: str) -> tuple[list[str], list[str]]:
    """Feature columns split into numeric and categorical (everything that is not a number)."""
    features = [c for c in frame.columns if c != target]
    numeric = [
        c
        for c in features
        if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
    ]
    return numeric, [c for c in features if c not in numeric]


MISSING_CATEGORY = "__missing__"


def conform(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    """The feature columns as every model sees them, in training and in serving alike (one code
    path, so no skew): numeric columns as float64 with NaN for missing values, categorical ones
    as pandas categories with string levels and an explicit missing level (CatBoost refuses NaN
    categories), in a fixed order. Categories, not Python strings: one small code per cell
    instead of one object, which is what lets a table of millions of rows fit in memory; every
    family sees the same values either way. A numeric column holding text raises a ValueError
    naming the column."""
    columns = {}
    for column in numeric:
        try:
            columns[column] = frame[column].astype("float64")
        except (TypeError, ValueError) as error:
            raise ValueError(f"column {column!r} must be numeric: {error}") from None
    for column in categorical:
        columns[column] = pd.Series(_string_categories(frame[column]), index=frame.index, name=column)
    return pd.DataFrame(columns, index=frame.index, copy=False)  # the columns are new or unchanged


def _string_categories(values: pd.Series) -> pd.Categorical:
    """`values` as a Categorical whose levels are strings (values that print alike, such as 1
    and "1", become one level) and whose missing values are the level MISSING_CATEGORY. The
    levels are in one canonical order whether the values came as categories (in a file's
    order of appearance) or as plain values, so the same data always gets the same codes."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        categorical = values.array
        with contextlib.suppress(TypeError):  # levels in the order pd.Categorical gives plain values
            categorical = categorical.reorder_categories(categorical.categories.sort_values())
    else:
        categorical = pd.Categorical(values)
    labels = pd.Index(categorical.categories.astype(str), dtype=object)
    levels = labels.unique()
    codes = np.asarray(categorical.codes)
    if (codes < 0).any() and MISSING_CATEGORY not in levels:
        levels = levels.append(pd.Index([MISSING_CATEGORY], dtype=object))
    if len(labels):
        lookup = levels.get_indexer(labels)
        new_codes = lookup[np.where(codes >= 0, codes, 0)]
    else:
        new_codes = np.zeros(len(codes), dtype=np.int64)
    if (codes < 0).any():
        new_codes = np.where(codes >= 0, new_codes, levels.get_loc(MISSING_CATEGORY))
    return pd.Categorical.from_codes(new_codes, categories=levels)


def unconform(features: pd.DataFrame, categorical: list[str]) -> pd.DataFrame:
    """Conformed rows as a caller would send them: categories as plain strings and missing
    ones as None again (for the model's input example)."""
    rows = features.copy()
    for column in categorical:
        values = rows[column].astype(object)
        rows[column] = values.where(values != MISSING_CATEGORY, None)
    return rows


def frame_digest(frame: pd.DataFrame) -> str:
    """A content hash of the table, so a run records exactly which data it saw."""
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()  # categories hash as their values
    header = ",".join(f"{c}:{_value_dtype(frame[c])}" for c in frame.columns).encode()
    return hashlib.sha256(header + hashed.tobytes()).hexdigest()[:16]


def _value_dtype(column: pd.Series):
    """The type of a column's values, whether or not they are stored as categories: the same
    text column read as strings or as categories is the same data."""
    return column.cat.categories.dtype if isinstance(column.dtype, pd.CategoricalDtype) else column.dtype


def data_settings_key(data: str, target: str, val_size: float, test_size: float, seed: int) -> str:
    """A canonical spelling of the prepare settings, to find an earlier run made with them."""
    return f"data={data}|target={target}|val_size={val_size:g}|test_size={test_size:g}|seed={seed}"


def read_splits(splits_dir, schema: dict) -> Splits:
    """The splits a prepare run logged, typed as its schema says. Train and val are read as one
    frame and handed out as two views of it (`stacked_train_val`)."""
    from pathlib import Path

    train_val = read_split([Path(splits_dir) / f"{split}.parquet" for split in ("train", "val")], schema)
    n_train = schema["rows"]["train"]
    return Splits(train=train_val.iloc[:n_train], val=train_val.iloc[n_train:].reset_index(drop=True),
                  test=read_split([Path(splits_dir) / "test.parquet"], schema), target=schema["target"],
                  numeric=schema["numeric"], categorical=schema["categorical"], seed=schema["seed"],
                  stacked_train_val=train_val)


def read_split(paths, schema: dict) -> pd.DataFrame:
    """Logged splits (one or more Parquet files, stacked in order) as one frame: features in the
    schema's order, then the target. Arrow's buffers are released column by column as pandas
    takes them, so reading costs about the data once rather than twice; splits written before
    categories were used are converted."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = [*schema["numeric"], *schema["categorical"], schema["target"]]
    tables = [pq.read_table(path, columns=columns) for path in paths]
    table = pa.concat_tables(tables, promote_options="permissive")  # no copy: the chunks are kept
    del tables
    return _with_categories(_to_pandas_releasing(table), schema["categorical"])


def _with_categories(frame: pd.DataFrame, categorical: list[str]) -> pd.DataFrame:
    """`frame` with every categorical column as string categories (a no-op when they are)."""
    for column in categorical:
        if not isinstance(frame[column].dtype, pd.CategoricalDtype):
            frame[column] = _string_categories(frame[column])
    return frame
