"""Which rows two models have seen: a row is known by a hash of its values, so the same row is
recognised in another split of the table, in the table with rows appended, or read back from a
prepare run's logged splits. The champion gate compares models only on rows neither trained on."""

from __future__ import annotations

import numpy as np
import pandas as pd

from steps.lib.data.tables import MISSING_CATEGORY


def row_hashes(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """One 64-bit hash per row over `columns`, taken in sorted order. Numbers hash as float64 (a
    column read as integers in one file and as floats in another is the same data); every other
    value as its text, with None, NaN and tabtune's missing-category level as one value."""
    canonical = {}
    for column in sorted(columns):
        values = frame[column]
        if pd.api.types.is_numeric_dtype(values.dtype) and not isinstance(values.dtype, pd.CategoricalDtype):
            canonical[column] = values.astype("float64").to_numpy()
        else:
            text = values.astype(object)
            canonical[column] = text.where(text.notna() & (text != MISSING_CATEGORY), MISSING_CATEGORY).astype(str)
    return pd.util.hash_pandas_object(pd.DataFrame(canonical, index=frame.index), index=False).to_numpy()


def unseen_by_champion(test: pd.DataFrame, champion_seen: pd.DataFrame, new_seen: pd.DataFrame) -> np.ndarray:
    """A mask over the new model's `test` rows: True where the row is not one the champion trained
    on (`champion_seen`, its train+val) — unless the new model trained on the same values too
    (`new_seen`: a table with repeated rows), where neither has the advantage. Rows are compared
    on the columns all three frames share (features and target)."""
    columns = [column for column in test.columns if column in champion_seen.columns and column in new_seen.columns]
    advantage = np.setdiff1d(row_hashes(champion_seen, columns), row_hashes(new_seen, columns))
    return ~np.isin(row_hashes(test, columns), advantage)
