"""package: register the refit model as a new version, after proving it serves.

Reads: the refit run `model_run_id` (or the latest FINISHED one): its model and lineage tags.
Writes: a new version of `registered_model_name` with alias `alias` and tags naming the data,
tuning and refit runs, registered only after the model loaded through pyfunc, predicted its
input example and rejected a frame with a wrongly typed column; on this step's run: params
registered_version, and `model_card.md`."""

from __future__ import annotations

import re

import click

from steps.lib import cli, lineage, names, tracking
from steps.lib.errors import InputError
from steps.lib.serving import check_serves, model_card


def run(*, model_run_id: str, registered_model_name: str, alias: str) -> str:
    """Check, register and alias the model; returns this step's run ID."""
    if not registered_model_name.strip():
        raise InputError("registered_model_name", "must not be empty")
    if not alias or alias.lower() == "latest" or re.fullmatch(r"[vV]\d+", alias):
        raise InputError("alias", f"{alias!r} is empty or reserved by MLflow; use a name such as 'champion'")
    with tracking.step_run(names.PACKAGE) as run_id:
        model_run_id = lineage.model_run(model_run_id)
        refit_tags = tracking.run_tags(model_run_id)
        model_uri = refit_tags[names.MODEL_URI_TAG]
        check_serves(tracking.load_pyfunc(model_uri))
        lineage_tags = {
            "data_run_id": refit_tags[names.DATA_RUN_TAG],
            "tune_run_ids": refit_tags[names.TUNE_RUNS_TAG],
            "refit_run_id": model_run_id,
            "package_run_id": run_id,
        }
        version = tracking.register_model(model_uri, registered_model_name, alias, lineage_tags)
        metrics = tracking.run_metrics(model_run_id)
        tracking.log_results(
            params={"registered_version": version.version, "model_uri": model_uri},
            tags={names.REFIT_RUN_TAG: model_run_id},
        )
        tracking.log_text(
            model_card(registered_model_name, version.version, alias, refit_tags[names.FAMILY_TAG],
                       model_uri, lineage_tags, metrics),
            names.MODEL_CARD_FILE,
        )
        print(f"package: {registered_model_name} version {version.version} is @{alias}; run {run_id}")
        return run_id


@click.command()
@click.option("--model-run-id", default="")
@click.option("--registered-model-name", default="tabtune-regressor", show_default=True)
@click.option("--alias", default="champion", show_default=True)
def command(**options) -> None:
    run(**options)


if __name__ == "__main__":
    cli.main(command, names.PACKAGE)
