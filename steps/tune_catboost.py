"""tune_catboost: CatBoost tuned by Optuna TPE at a fixed tree count, one child run per trial.

The entry point users know from the tutorial; the generic `tune` step with family=catboost
(see steps/tune.py for what it reads and writes)."""

from __future__ import annotations

from steps import tune
from steps.lib import names
from steps.lib.orchestration import cli

FAMILY = "catboost"
command = tune.family_command(FAMILY)


def run(**options) -> str:
    return tune.run(family=FAMILY, **options)


if __name__ == "__main__":
    cli.main(command, names.tune_step(FAMILY))
