"""Every name shared between steps, spelled once: step names, tags, limits, artifact paths."""

from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]  # the project's root: MLproject, requirements.txt, steps/

PREPARE = "prepare"
TUNE = "tune"  # the Optuna tuning entry point, for any family
TUNE_LASSO = "tune_lasso"  # the LASSO grid (the tutorial's alphas), also a step name
REFIT = "refit"
PACKAGE = "package"
MAIN = "main"
TUNE_PREFIX = "tune_"
WORKER_SUFFIX = ".worker"


def tune_step(family: str) -> str:
    """The step name of a tuning run of `family` (run name and tag), e.g. tune_catboost."""
    return f"{TUNE_PREFIX}{family}"


def worker_step(family: str) -> str:
    """The step name of a worker run that joined another tuning run's shared study."""
    return tune_step(family) + WORKER_SUFFIX


def trial_run_name(number: int) -> str:
    """The child run name of an Optuna trial, e.g. trial-007."""
    return f"trial-{number:03d}"


def is_tune_step(step: str | None) -> bool:
    return bool(step) and step.startswith(TUNE_PREFIX) and not step.endswith(WORKER_SUFFIX)


def is_worker_step(step: str | None) -> bool:
    return bool(step) and step.startswith(TUNE_PREFIX) and step.endswith(WORKER_SUFFIX)


# Tags
STEP_TAG = "tabtune.step"
PEAK_RSS_METRIC = "peak_rss_mb"  # every step run: its process's resident memory high-water mark
DATA_RUN_TAG = "tabtune.data_run_id"
TUNE_RUNS_TAG = "tabtune.tune_run_ids"
REFIT_RUN_TAG = "tabtune.refit_run_id"
TUNING_RUN_TAG = "tabtune.tuning_run_id"
STUDY_NAME_TAG = "tabtune.study_name"
CACHE_KEY_TAG = "tabtune.cache_key"  # what determined the step run (steps/lib/orchestration/step_cache.py)
REUSED_FROM_TAG = "tabtune.reused_from"  # a pipeline's stand-in for an earlier run it reused
STUDY_STORAGE_TAG = "tabtune.study_storage"
WORKER_TAG = "tabtune.worker"
ATTEMPT_TAG = "tabtune.attempt"  # a client-made ID per child-run creation: a retried create is found, not doubled
DATA_DIGEST_TAG = "tabtune.data_digest"
DATA_SETTINGS_TAG = "tabtune.data_settings"
FAMILY_TAG = "tabtune.family"
VALIDATION_TAG = "tabtune.validation"  # how candidates were scored: holdout or cv (what validation=auto chose)
# on a holdout tuning run: "true" when each trial was scored on its own reshuffle of train+val
RESHUFFLED_TAG = "tabtune.holdout_reshuffled"
TRIAL_STATE_TAG = "tabtune.trial_state"
TRIAL_NUMBER_TAG = "tabtune.trial_number"
MODEL_URI_TAG = "tabtune.model_uri"
REFIT_FROM_TAG = "tabtune.refit_from"  # which refit candidate the model is: tuned, or defaults (CatBoost's own)
MODEL_FINGERPRINT_TAG = "tabtune.model_fingerprint"  # on refit runs and registered versions
# The champion gate's verdict on a registered version, and the figures it compared
GATE_TAG = "tabtune.gate"  # promoted / rejected / forced / not_promoted
GATE_NEW_RMSE_TAG = "tabtune.gate_new_test_rmse"
GATE_CHAMPION_RMSE_TAG = "tabtune.gate_champion_test_rmse"
GATE_CHAMPION_VERSION_TAG = "tabtune.gate_champion_version"
GATE_MIN_IMPROVEMENT_TAG = "tabtune.gate_min_improvement"
GATE_REASON_TAG = "tabtune.gate_reason"  # why the champion could not be compared
GATE_ROWS_TAG = "tabtune.gate_rows"  # how many test rows both were scored on (neither trained on them)
GATE_TAGS = (GATE_TAG, GATE_NEW_RMSE_TAG, GATE_CHAMPION_RMSE_TAG, GATE_CHAMPION_VERSION_TAG,
             GATE_MIN_IMPROVEMENT_TAG, GATE_REASON_TAG, GATE_ROWS_TAG)
ERROR_TAG = "tabtune.error"
INTERRUPTED_TAG = "tabtune.interrupted"  # SIGINT / SIGTERM: why a run ended KILLED (steps/lib/interrupts.py)
WARNING_TAG = "tabtune.warning"
BEST_MODEL_TAG = "best_model"
STEP_RUN_TAG_PREFIX = "tabtune.run_id."
PARENT_RUN_TAG = "mlflow.parentRunId"  # MLflow's own: what nests a run under another
SOURCE_TAGS = ("mlflow.source.name", "mlflow.source.git.repoURL", "mlflow.gitRepoURL")  # may hold a token

# Limits
MAX_PARAM_LENGTH = 6000  # longer param values are cut to this many characters
MAX_ERROR_LENGTH = 5000  # an error message in ERROR_TAG is cut to this many characters

# Artifacts
SPLITS_DIR = "splits"
SCHEMA_FILE = "schema.json"
BEST_FILE = "best.json"
TRIALS_FILE = "trials.csv"
BLEND_FILE = "blend.json"  # refit run of a blend: its members, their weights and final parameters
# validation=cv: the tuning step's complete candidates' out-of-fold predictions, beside the target
# (and each column's family and parameters)
OUT_OF_FOLD_DIR, OUT_OF_FOLD_FILE, CANDIDATES_FILE = "out_of_fold", "predictions.parquet", "candidates.json"
LEADERBOARD_FILE = "leaderboard.csv"
PREPROCESSOR_DIR = "preprocessor"
PLOTS_DIR = "plots"
MODEL_NAME = "model"
MODEL_CARD_FILE = "model_card.md"
SUMMARY_FILE = "pipeline_summary.md"

SPLITS = ("train", "val", "test")
DEFAULT_DATA = "diabetes"


def default_model_name(data: str) -> str:
    """The registered model a table's versions go to when no name is given: `tabtune_<file
    stem>` (`ames.csv` -> `tabtune_ames`, diabetes -> `tabtune_diabetes`), so each table starts
    its own lineage and a champion never has to judge another table's rows. Letters, digits and
    underscores only: valid in Unity Catalog once prefixed with `catalog.schema.`."""
    import re
    from urllib.parse import urlparse

    path = urlparse(data).path if "://" in data else data
    stem = re.split(r"[\\/]", path.rstrip("/\\"))[-1].split(".")[0] or "table"
    return "tabtune_" + (re.sub(r"[^a-z0-9_]+", "_", stem.lower()).strip("_") or "table")
