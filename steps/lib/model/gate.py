"""The champion gate: whether a registered version takes the alias from the version holding it.

Both models are scored on the same rows — the new model's test split, less the rows the champion
trained on (`steps/lib/data/row_identity.py`) — and the alias moves only if the new test RMSE
beats the champion's by the relative margin `min_improvement`. Pure: the step loads the models,
finds the rows and reads the alias; this module only decides and explains."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from steps.lib import names
from steps.lib.errors import InputError

PROMOTE_MODES = ("gate", "force", "never")
MAX_ATTEMPTS = 3  # how often the comparison is redone when the alias moves under it
# Fewest rows the two models are compared on once rows the champion trained on were dropped.
# With n rows, an RMSE's relative standard error is about 1/sqrt(2n) for normal errors: 13 % at
# 30 rows, 22 % at 10, so below 30 the verdict would be a coin toss between models that differ
# by the few percent the gate judges. A whole test split is used whatever its size (as refit's
# own test score is).
MIN_UNSEEN_ROWS = 30

# States, the value of the version tag tabtune.gate
PROMOTED = "promoted"
REJECTED = "rejected"
FORCED = "forced"
NOT_PROMOTED = "not_promoted"
UNCHANGED = "unchanged"  # the version already holds the alias: nothing decided, nothing tagged


@dataclass(frozen=True)
class Decision:
    """What to do with the alias, why (one line for the user), and the version tags recording it."""

    promote: bool
    state: str
    message: str
    tags: dict[str, str] = field(default_factory=dict)


class GateRaced(Exception):
    """The alias kept moving while this step compared against it."""


def check_settings(min_improvement: float, promote: str) -> None:
    """Gate settings a user can get wrong, refused with the parameter named."""
    if promote not in PROMOTE_MODES:
        raise InputError("promote", f"expected one of {', '.join(PROMOTE_MODES)}, got {promote!r}")
    if not (0.0 <= min_improvement < 1.0):
        raise InputError("min_improvement", f"expected a fraction in [0, 1), got {min_improvement!r}")


def predictions_of(model, x: pd.DataFrame) -> np.ndarray:
    """`model.predict(x)` as one float per row; raises ValueError if the model does not give one
    finite prediction per row (and whatever `predict` raises)."""
    predictions = np.asarray(pd.DataFrame(model.predict(x)).iloc[:, 0], dtype="float64")
    if len(predictions) != len(x) or not np.isfinite(predictions).all():
        raise ValueError(f"gave {len(predictions)} predictions for {len(x)} rows, not all finite")
    return predictions


def rmse(predictions: np.ndarray, y: pd.Series) -> float:
    return float(np.sqrt(np.mean((predictions - np.asarray(y, dtype="float64")) ** 2)))


def rmse_of(model, x: pd.DataFrame, y: pd.Series) -> float:
    """RMSE of `model.predict(x)` against `y` (see predictions_of)."""
    return rmse(predictions_of(model, x), y)


def champion_predictions(model, x: pd.DataFrame) -> tuple[np.ndarray | None, str | None]:
    """The champion's predictions of the new model's test rows, or why it could not make them
    (MLflow's schema enforcement raises when columns or types differ)."""
    try:
        return predictions_of(model, x), None
    except Exception as error:  # noqa: BLE001 - any failure to score means: not comparable
        return None, short_reason(error)


def short_reason(error: Exception) -> str:
    """One line saying why: MLflow's schema errors quote the whole frame before the point
    ("… Error: Model is missing inputs ['colour']."), so keep the part after the last 'Error: '."""
    text = str(error).strip()
    text = text.rsplit("Error: ", 1)[-1] if "Error: " in text else (text.splitlines() or [""])[0]
    return f"{type(error).__name__}: {' '.join(text.split())[:300].rstrip('.')}"


def decide(*, version: str, alias: str, new_rmse: float, champion_version: str | None,
           champion_rmse: float | None, champion_error: str | None, min_improvement: float,
           promote: str, rows: int | None = None, test_rows: int | None = None,
           rows_unknown: str | None = None) -> Decision:
    """The gate's decision for `version` (new test RMSE `new_rmse`) against the version holding
    `alias` (None: no champion yet), which scored `champion_rmse` on the same rows or could not
    score them (`champion_error`). `rows` of the `test_rows` test rows are ones the champion never
    trained on (when counted); `rows_unknown` says why the rows it trained on could not be known."""
    check_settings(min_improvement, promote)
    figures = {names.GATE_NEW_RMSE_TAG: repr(float(new_rmse)),
               names.GATE_MIN_IMPROVEMENT_TAG: repr(float(min_improvement))}
    if champion_version is not None:
        figures[names.GATE_CHAMPION_VERSION_TAG] = str(champion_version)
    if champion_rmse is not None:
        figures[names.GATE_CHAMPION_RMSE_TAG] = repr(float(champion_rmse))
    if rows is not None:
        figures[names.GATE_ROWS_TAG] = str(rows)
    kept = f"version {version} kept, @{alias} stays on version {champion_version}"
    on_rows = "" if rows is None else (f"; all {rows} test rows" if rows == test_rows else
                                       f"; on the {rows} of {test_rows} test rows version {champion_version} "
                                       "never trained on")

    if champion_version is not None and str(champion_version) == str(version):
        return Decision(False, UNCHANGED, f"version {version} already holds @{alias}: nothing to do")
    if promote == "never":
        where = f"stays on version {champion_version}" if champion_version else "not set"
        return Decision(False, NOT_PROMOTED, f"version {version} registered, @{alias} {where} (promote=never)",
                        {names.GATE_TAG: NOT_PROMOTED, **figures})
    if promote == "force":
        replacing = f", replacing version {champion_version}" if champion_version else ""
        return Decision(True, FORCED, f"version {version} is now @{alias}{replacing} (promote=force: not compared)",
                        {names.GATE_TAG: FORCED, **figures})
    if champion_version is None:
        return Decision(True, PROMOTED, f"version {version} is now @{alias}: no version held @{alias} yet "
                                        f"(test RMSE {new_rmse:.6g})", {names.GATE_TAG: PROMOTED, **figures})
    if champion_error is None and rows_unknown is not None:
        return Decision(
            False, REJECTED,
            f"{kept}: cannot tell which of this model's test rows version {champion_version} trained on "
            f"({rows_unknown}), so no fair comparison; pass -P promote=force to move the alias anyway",
            {names.GATE_TAG: REJECTED, names.GATE_REASON_TAG: f"rows the champion trained on unknown: {rows_unknown}"[
                :5000], **figures})
    if champion_error is None and rows is not None and rows != test_rows and rows < MIN_UNSEEN_ROWS:
        reason = (f"only {rows} of the {test_rows} test rows are rows version {champion_version} never trained on "
                  f"(at least {MIN_UNSEEN_ROWS} are needed to compare)")
        return Decision(False, REJECTED, f"{kept}: {reason}; pass -P promote=force to move the alias anyway",
                        {names.GATE_TAG: REJECTED, names.GATE_REASON_TAG: reason, **figures})
    if champion_rmse is None:
        reason = champion_error or "unknown error"
        return Decision(
            False, REJECTED,
            f"{kept}: version {champion_version} cannot score this model's test data ({reason}); a different "
            f"table belongs under another registered_model_name, or pass -P promote=force",
            {names.GATE_TAG: REJECTED, names.GATE_REASON_TAG: f"champion cannot score the test data: {reason}"[:5000],
             **figures})
    threshold = champion_rmse * (1.0 - min_improvement)
    if new_rmse < threshold:
        return Decision(
            True, PROMOTED,
            f"version {version} is now @{alias}, replacing version {champion_version}: test RMSE {new_rmse:.6g} "
            f"is below {threshold:.6g} (version {champion_version}: {champion_rmse:.6g}, "
            f"min_improvement {min_improvement:g}{on_rows})",
            {names.GATE_TAG: PROMOTED, **figures})
    return Decision(
        False, REJECTED,
        f"{kept}: test RMSE {new_rmse:.6g} is not below {threshold:.6g} "
        f"(version {champion_version}: {champion_rmse:.6g}, min_improvement {min_improvement:g}{on_rows})",
        {names.GATE_TAG: REJECTED, **figures})


def decide_until_stable(read_champion: Callable[[], str | None], decide_against: Callable[[str | None], Decision],
                        attempts: int = MAX_ATTEMPTS) -> tuple[Decision, str | None]:
    """Decide against the version holding the alias, then re-read the alias; if another
    process moved it meanwhile, decide again against the new holder. Returns the decision and
    the champion it was made against. `package` runs this under `tracking.gate_lock`, so other
    package steps cannot move the alias meanwhile; the re-read guards against writers that do
    not take the lock. Raises GateRaced if the alias never settles."""
    champion = read_champion()
    for _ in range(attempts):
        decision = decide_against(champion)
        current = read_champion()
        if current == champion:
            return decision, champion
        champion = current
    raise GateRaced(f"the alias moved {attempts} times while this step compared against it; run package again")
