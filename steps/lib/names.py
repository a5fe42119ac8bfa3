"""Every name shared between steps, spelled once: step names, tags, limits, artifact paths."""

PREPARE = "prepare"
TUNE_LASSO = "tune_lasso"
TUNE_CATBOOST = "tune_catboost"
REFIT = "refit"
PACKAGE = "package"
MAIN = "main"
TUNE_STEPS = (TUNE_LASSO, TUNE_CATBOOST)
TUNE_WORKER = f"{TUNE_CATBOOST}.worker"  # a tune_catboost run that joined another run's study

# Tags
STEP_TAG = "tabtune.step"
DATA_RUN_TAG = "tabtune.data_run_id"
TUNE_RUNS_TAG = "tabtune.tune_run_ids"
REFIT_RUN_TAG = "tabtune.refit_run_id"
TUNING_RUN_TAG = "tabtune.tuning_run_id"
DATA_SETTINGS_TAG = "tabtune.data_settings"
FAMILY_TAG = "tabtune.family"
TRIAL_STATE_TAG = "tabtune.trial_state"
TRIAL_NUMBER_TAG = "tabtune.trial_number"
MODEL_URI_TAG = "tabtune.model_uri"
ERROR_TAG = "tabtune.error"
WARNING_TAG = "tabtune.warning"
BEST_MODEL_TAG = "best_model"
STEP_RUN_TAG_PREFIX = "tabtune.run_id."
SOURCE_TAGS = ("mlflow.source.name", "mlflow.source.git.repoURL", "mlflow.gitRepoURL")  # may hold a token

# Limits
MAX_PARAM_LENGTH = 6000  # longer param values are cut to this many characters
MAX_ERROR_LENGTH = 5000  # an error message in ERROR_TAG is cut to this many characters

# Artifacts
SPLITS_DIR = "splits"
SCHEMA_FILE = "schema.json"
BEST_FILE = "best.json"
TRIALS_FILE = "trials.csv"
LEADERBOARD_FILE = "leaderboard.csv"
PREPROCESSOR_DIR = "preprocessor"
PLOTS_DIR = "plots"
MODEL_NAME = "model"
MODEL_CARD_FILE = "model_card.md"
SUMMARY_FILE = "pipeline_summary.md"

SPLITS = ("train", "val", "test")
DEFAULT_DATA = "diabetes"
