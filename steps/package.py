"""package: register the refit model (once), after proving it serves, and let it take the alias
only if it beats the version holding it on the same data.

Reads: the refit run `model_run_id` (or the latest FINISHED one): its model, lineage tags and
fingerprint; the test split of its prepare run; the version currently holding `alias`.
Writes: a new version of `registered_model_name` — unless a version with the same fingerprint
(same data, family, final parameters, code and pins) exists, which is then used instead — registered only
after the model loaded through pyfunc, predicted its input example and rejected a frame with a
wrongly typed column; tags naming the data, tuning and refit runs, the fingerprint, which refit
candidate the model is (tabtune.refit_from: tuned, or CatBoost's own defaults), the gate's
verdict (tabtune.gate and the two test RMSEs), a description with the test RMSE and lineage.
The champion gate (`promote`=gate): both models score the new model's test split less the rows
the champion trained on (rows known by their values' hash, read from the champion's prepare run);
the alias moves only if new RMSE < champion RMSE * (1 - min_improvement), and stays if fewer than
gate.MIN_UNSEEN_ROWS rows are left to compare on. On this step's run: params
registered_version, model_uri, registered_new; the gate tags; `model_card.md`."""

from __future__ import annotations

import re
from dataclasses import dataclass

import click
import numpy as np
import pandas as pd

from steps.lib import names, options, tracking
from steps.lib.data.row_identity import unseen_by_champion
from steps.lib.errors import InputError
from steps.lib.model import gate
from steps.lib.model.serving import check_serves, model_card
from steps.lib.orchestration import cli, lineage
from steps.lib.progress import Phase


def run(*, model_run_id: str, registered_model_name: str, alias: str, min_improvement: float = 0.0,
        promote: str = "gate") -> str:
    """Check, register (once) and gate the model; returns this step's run ID."""
    if registered_model_name:
        _check_names(registered_model_name, alias)
    gate.check_settings(min_improvement, promote)
    with tracking.step_run(names.PACKAGE) as run_id:
        model_run_id = lineage.model_run(model_run_id)
        name = registered_model_name
        if not name:  # derived from the data: checked here, a given one was checked before the run
            name = _default_name(model_run_id)
            _check_names(name, alias)
        candidate = _candidate(model_run_id, run_id)
        fingerprint = candidate.refit_tags.get(names.MODEL_FINGERPRINT_TAG)
        # One package step at a time per registered model, from the look for an identical version
        # to the alias move: two identical models are never both registered, and no two steps
        # interleave their read-compare-move (the registry has no compare-and-set on aliases).
        with tracking.gate_lock(name):
            existing = tracking.find_version(name, {names.MODEL_FINGERPRINT_TAG: fingerprint}) if fingerprint else None
            verdict = _Verdict(candidate, name, alias, min_improvement, promote, registered_new=existing is None)
            if existing is not None:
                version = str(existing.version)
                print(f"package: identical to version {version} (same data, parameters and code): nothing registered")
                decision = _gate_and_apply(name, alias, version, verdict.decide, verdict.record)
            else:
                if not fingerprint:
                    print(f"package: refit run {candidate.model_run_id} has no {names.MODEL_FINGERPRINT_TAG} tag: "
                          "registering without a check for an identical version")
                with tracking.new_version(candidate.model_uri, name, candidate.version_tags(),
                                          candidate.description()) as registered:
                    version = str(registered.version)
                    decision = _gate_and_apply(name, alias, version, verdict.decide, verdict.record)
        print(f"package: {decision.message}")
        print(f"package: {name} version {version}; run {run_id}")
        return run_id


def _default_name(model_run_id: str) -> str:
    """`tabtune_<data file stem>` of the table the refit run's data run read."""
    data_run_id = tracking.run_tags(model_run_id)[names.DATA_RUN_TAG]
    name = names.default_model_name(tracking.download_json(data_run_id, names.SCHEMA_FILE).get("source", ""))
    print(f"package: registered_model_name not given: {name} (from the data file's name)")
    return name


def _check_names(registered_model_name: str, alias: str) -> None:
    tracking.check_model_name(registered_model_name)
    if not alias or alias.lower() == "latest" or re.fullmatch(r"[vV]\d+", alias):
        raise InputError("alias", f"{alias!r} is empty or reserved by MLflow; use a name such as 'champion'")


@dataclass(frozen=True)
class Candidate:
    """The refit model up for registration: where it came from, proven to serve, its predictions
    of its own test split and its test RMSE there (the rows the gate compares on, less those a
    champion trained on)."""

    model_run_id: str
    refit_tags: dict[str, str]
    model_uri: str
    x_test: pd.DataFrame
    y_test: pd.Series
    predictions: np.ndarray
    test_rmse: float
    lineage_tags: dict[str, str]

    @property
    def data_run_id(self) -> str:
        return self.lineage_tags["data_run_id"]

    def version_tags(self) -> dict[str, str]:
        """Tags of a new registered version: its lineage, fingerprint and refit candidate."""
        extra = {tag: self.refit_tags[tag] for tag in (names.MODEL_FINGERPRINT_TAG, names.REFIT_FROM_TAG)
                 if self.refit_tags.get(tag)}  # absent on refit runs made before the tags
        return {**self.lineage_tags, **extra}

    def description(self) -> str:
        """The registered version's description: how good it is and where it came from."""
        lineage_tags = self.lineage_tags
        return (f"{self.refit_tags[names.FAMILY_TAG]} regressor, test RMSE {self.test_rmse:.6g} on the test split "
                f"of data run {lineage_tags['data_run_id']}. Tuned in runs {lineage_tags['tune_run_ids']}, refit "
                f"in run {lineage_tags['refit_run_id']}, registered by package run {lineage_tags['package_run_id']}.")


def _candidate(model_run_id: str, package_run_id: str) -> Candidate:
    """The refit run's model, loaded through pyfunc and checked to serve, scored on its test split."""
    refit_tags = tracking.run_tags(model_run_id)
    model_uri = refit_tags[names.MODEL_URI_TAG]
    with Phase(names.PACKAGE, "loading the model and checking that it serves"):
        model = tracking.load_pyfunc(model_uri)
        check_serves(model)
    x_test, y_test = lineage.load_test_rows(refit_tags[names.DATA_RUN_TAG])
    lineage_tags = {"data_run_id": refit_tags[names.DATA_RUN_TAG], "tune_run_ids": refit_tags[names.TUNE_RUNS_TAG],
                    "refit_run_id": model_run_id, "package_run_id": package_run_id}
    with Phase(names.PACKAGE, f"scoring {len(x_test):,} test rows"):
        predictions = gate.predictions_of(model, x_test)
    return Candidate(model_run_id, refit_tags, model_uri, x_test, y_test, predictions, gate.rmse(predictions, y_test),
                     lineage_tags)


@dataclass(frozen=True)
class Comparison:
    """Both models' RMSE on the rows the gate compares them on, or why the champion could not be
    compared: it cannot score the rows (`champion_error`), or which rows it trained on is unknown
    (`rows_unknown`). `rows` of the new model's `test_rows` test rows are ones the champion never
    trained on."""

    new_rmse: float
    champion_rmse: float | None = None
    champion_error: str | None = None
    rows: int | None = None
    test_rows: int | None = None
    rows_unknown: str | None = None


class _Verdict:
    """The gate's decision for one candidate against whichever version holds the alias, and its
    record on this step's run; each champion is loaded and scored once."""

    def __init__(self, candidate: Candidate, name: str, alias: str, min_improvement: float, promote: str, *,
                 registered_new: bool):
        self.candidate, self.name, self.alias = candidate, name, alias
        self.min_improvement, self.promote, self.registered_new = min_improvement, promote, registered_new
        self.comparisons: dict[str, Comparison] = {}  # champion version -> the comparison with it

    def decide(self, version: str, champion: str | None) -> gate.Decision:
        candidate = self.candidate
        if champion is not None and champion != version and champion not in self.comparisons:
            self.comparisons[champion] = _compare(self.name, champion, candidate)
        comparison = self.comparisons.get(champion, Comparison(candidate.test_rmse))
        return gate.decide(version=version, alias=self.alias, new_rmse=comparison.new_rmse,
                           champion_version=champion, champion_rmse=comparison.champion_rmse,
                           champion_error=comparison.champion_error, min_improvement=self.min_improvement,
                           promote=self.promote, rows=comparison.rows, test_rows=comparison.test_rows,
                           rows_unknown=comparison.rows_unknown)

    def record(self, version: str, decision: gate.Decision) -> None:
        """The verdict and model card on this step's run, written before the alias can move: if
        the artifact store refuses the card, the step fails with nothing aliased (and a new
        version is deleted again by new_version)."""
        candidate = self.candidate
        tracking.log_results(
            params={"registered_model": self.name, "registered_version": version, "model_uri": candidate.model_uri,
                    "registered_new": self.registered_new},
            tags={names.REFIT_RUN_TAG: candidate.model_run_id, **decision.tags},
        )
        holds_alias = decision.promote or decision.state == gate.UNCHANGED
        tracking.log_text(
            model_card(self.name, version, self.alias, candidate.refit_tags[names.FAMILY_TAG], candidate.model_uri,
                       candidate.lineage_tags, tracking.run_metrics(candidate.model_run_id), holds_alias=holds_alias,
                       gate=decision.message),
            names.MODEL_CARD_FILE,
        )


def _gate_and_apply(name: str, alias: str, version: str, decide, record) -> gate.Decision:
    """Decide against the alias's holder and `record` the verdict, then tag the version with the
    verdict and move the alias if it won; the caller holds the registered model's gate lock."""

    def decide_and_record(champion: str | None) -> gate.Decision:
        decision = decide(version, champion)
        record(version, decision)
        return decision

    decision, _ = gate.decide_until_stable(lambda: tracking.alias_version(name, alias), decide_and_record)
    if decision.tags:
        tracking.tag_version(name, version, decision.tags, replacing=names.GATE_TAGS)
    if decision.promote:
        tracking.set_alias(name, alias, version)
    return decision


def _compare(name: str, version: str, candidate: Candidate) -> Comparison:
    """The champion `version` against the candidate on the candidate's test rows that the champion
    never trained on (all of them when both came from the same splits)."""
    with Phase(names.PACKAGE, f"loading version {version} and scoring the test rows with it"):
        try:
            champion = tracking.load_pyfunc(tracking.version_uri(name, version))
        except Exception as error:  # noqa: BLE001 - a champion that does not load cannot be compared
            return Comparison(candidate.test_rmse, champion_error=f"it does not load: {gate.short_reason(error)}")
        predictions, error = gate.champion_predictions(champion, candidate.x_test)
    if error is not None:
        return Comparison(candidate.test_rmse, champion_error=error)
    test_rows = len(candidate.y_test)
    try:
        unseen = _unseen_test_rows(name, version, candidate)
    except Exception as error:  # noqa: BLE001 - no lineage tag, or its data run is gone or elsewhere
        return Comparison(candidate.test_rmse, rows_unknown=gate.short_reason(error))
    rows = int(unseen.sum())
    if rows == test_rows:
        return Comparison(candidate.test_rmse, gate.rmse(predictions, candidate.y_test), rows=rows, test_rows=rows)
    if rows == 0:
        return Comparison(candidate.test_rmse, rows=0, test_rows=test_rows)
    y = candidate.y_test[unseen]
    return Comparison(gate.rmse(candidate.predictions[unseen], y), gate.rmse(predictions[unseen], y), rows=rows,
                      test_rows=test_rows)


def _unseen_test_rows(name: str, version: str, candidate: Candidate) -> np.ndarray:
    """Which of the candidate's test rows the champion never trained on: none dropped when both
    were refit on the same prepare run; else rows are matched by their values against the train
    and val splits of the champion's prepare run (and of the candidate's, which may repeat them)."""
    champion_data_run = tracking.version_tags(name, version).get("data_run_id")
    if not champion_data_run:
        raise KeyError(f"version {version} has no data_run_id tag naming the prepare run it was trained on")
    if champion_data_run == candidate.data_run_id:
        return np.ones(len(candidate.y_test), dtype=bool)
    test = candidate.x_test.assign(**{str(candidate.y_test.name): candidate.y_test.to_numpy()})
    with Phase(names.PACKAGE, f"finding the test rows version {version} never trained on"):
        return unseen_by_champion(test, lineage.load_training_rows(champion_data_run),
                                  lineage.load_training_rows(candidate.data_run_id))


OPTIONS = [
    options.StepOnly(["--model-run-id"], default="", help="The refit run to register ('' = the latest FINISHED one)."),
    click.Option(["--registered-model-name"], default="", show_default=True,
                 help="The registered model a new version goes to ('' = tabtune_<data file name>, one per table; "
                      "catalog.schema.name on Unity Catalog)."),
    click.Option(["--alias"], default="champion", show_default=True,
                 help="The alias the gate may move to the new version."),
    click.Option(["--min-improvement"], type=click.FloatRange(min=0.0, max=1.0, max_open=True), default=0.0,
                 show_default=True, help="Relative test-RMSE improvement over the champion needed to take the alias."),
    click.Option(["--promote"], type=click.Choice(gate.PROMOTE_MODES), default="gate", show_default=True,
                 help="gate: compare with the champion; force: take the alias; never: register only."),
]
command = click.Command(names.PACKAGE, params=OPTIONS, callback=run)


if __name__ == "__main__":
    cli.main(command, names.PACKAGE)
