"""refit: choose the family with the best val RMSE, refit it on train+val, score it on test.

Reads: the tuning runs `tune_run_ids` (their `best.json`, their `tabtune.validation` tag, and
if they were cross-validated their `out_of_fold/`) and their prepare run's splits. Tuned on the
holdout but told to cross-validate the final model (validation=auto on a long table), refit
weighs the best trial's parameters over the folds itself and keeps those out-of-fold
predictions in its own run's `out_of_fold/`.
Writes: this step's run, tagged best_model=true, with the model (a pyfunc model that takes raw
rows, its estimator saved by its family's MLflow flavor; signature on raw features, input
example; URI in tag tabtune.model_uri), metrics test_rmse/test_mae/test_r2 (also on the logged
model, so the Models view shows them) and val_rmse, the tags tabtune.refit_from (tuned, or
CatBoost's own defaults when those early-stopped lower on val; each candidate's early-stopped
val RMSE is metric refit_val_rmse_<candidate>) and tabtune.model_fingerprint (data, family,
final parameters, code, pins: see steps/lib/model/fingerprint.py), `leaderboard.csv` (every
family refit the same way), the fitted preprocessor (`preprocessor/preprocessor.skops` +
`scaler.json`: no pickle), and plots. When the final model is cross-validated, ensemble
selection over every candidate's out-of-fold predictions (the tuning runs' and, kept in this
run's `out_of_fold/`, CatBoost's defaults on the same folds and each family of `untuned_families`
that nobody tuned, with its library's defaults) may choose a blend instead (family
`blend`, refit_from `blend`): its members refit on train+val (with final=bag, the bags refit
already fitted for those candidates), weighed inside the one model, `blend.json` listing
them; the leaderboard has a `blend` row either way (its val_rmse, like every row's, the mean
over the folds of each fold's RMSE). On a table `validation=auto` keeps on the holdout for its
width (not its length), the families are ranked by their kept candidate's RMSE on the val split
(each tuning trial was scored on a reshuffle of its own), which is the leaderboard's val_rmse,
and the final model is the equal-weight average of the chosen family's candidates (CatBoost's
tuned parameters and its defaults), each refit on train+val with its early-stopped count, listed
in `blend.json` (family `blend`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import click
import numpy as np
import pandas as pd

from steps.lib import names, options, tracking
from steps.lib.data.tables import unconform
from steps.lib.families import get_family, refit_options
from steps.lib.isolation import run_forked
from steps.lib.model.blending import Bag, flattened, weighted_predictions
from steps.lib.model.metrics import score
from steps.lib.model.serving import RAW_ROWS_MODEL
from steps.lib.model.training import Fitted, bag_params, refit_and_test
from steps.lib.orchestration import cli, lineage, pipeline
from steps.lib.progress import Phase
from steps.lib.search import ensemble
from steps.lib.search.out_of_fold import load_out_of_fold, log_candidates
from steps.lib.search.tuning import Validation

# A second kind of boosted trees, untuned: 2-3 % lower test RMSE on txhousing, -0.4 to +0.9 % on three other tables
# (BENCHMARKS.md, the untuned third family)
UNTUNED_DEFAULT = "hist_gradient_boosting"


def run(*, data_run_id: str, tune_run_ids: str, max_iterations: int, early_stopping_rounds: int,
        validation: str = "auto", folds: int = 5, final: str = "bag", untuned_families: str = "",
        **family_settings) -> str:
    """Refit every tuned family, keep the best on val (or, cross-validated, a blend of candidates
    when it beats the best one out of fold; on a table held out for its width, the plain average
    of the chosen family's candidates); returns this step's run ID. `family_settings` are
    the families' own switches (families/*.py `refit_options`). `untuned_families` is empty unless
    given: the command line's default (UNTUNED_DEFAULT) is the product's, while a caller in its own
    process opts in, since a fork that runs OpenMP hangs where its parent ran it before
    (steps/lib/isolation.py), as a test process that fitted HistGradientBoosting has."""
    with tracking.step_run(names.REFIT) as run_id:
        data_run_id, tune_ids = lineage.tune_runs(tune_run_ids, data_run_id)
        splits = lineage.load_splits(data_run_id)
        seed = splits.seed  # one seed for the whole pipeline: the one the data was split with
        scoring = Validation.for_splits(validation, folds, splits, final=True)
        tracking.set_tags({names.VALIDATION_TAG: scoring.name})
        budget = {"max_iterations": max_iterations, "early_stopping_rounds": early_stopping_rounds,
                  "folds": scoring.folds, "final": final, "val_predictions": scoring.average_on_val}
        # Tuned on the holdout (a table between auto's two limits), no tuning run has out-of-fold
        # predictions: this run weighs the tuned candidates over folds itself.
        tuned_over_folds = all(tracking.run_tags(tune_id).get(names.VALIDATION_TAG) == options.CV
                               for tune_id in tune_ids)
        rows, chosen, weighed, bags = _refit_families(tune_ids, splits, seed, family_settings, budget,
                                                      tuned_over_folds)
        if budget["folds"]:  # families nobody tuned join a blend over folds (not an average on val)
            tuned = {row["family"] for row in rows}
            for name in pipeline.parse_untuned_families(untuned_families):
                if name not in tuned:
                    weighed.update(_weigh_untuned(name, splits, seed, family_settings, budget, rows, bags))
        if budget["folds"] and (tuned_over_folds or chosen.name in {family for family, _, _ in weighed.values()}):
            if weighed:  # on the same folds: a blend weighs them beside the tuning's candidates
                log_candidates(splits, weighed)
            blend_from = [*(tune_ids if tuned_over_folds else []), *([run_id] if weighed else [])]
            chosen = _blend(blend_from, splits, seed, family_settings, budget, rows, bags) or chosen
        elif scoring.average_on_val:
            chosen = _average_on_val(weighed, splits, seed, rows, chosen) or chosen
        x_test, y_test = splits.xy("test")
        example = unconform(x_test.head(5), splits.categorical)
        with Phase(names.REFIT, f"logging the model ({chosen.name})"):
            model_uri = tracking.log_model(chosen.members, splits.numeric, splits.categorical, example,
                                           served_by=RAW_ROWS_MODEL)
        tracking.link_model_metrics(model_uri, chosen.metrics)  # test metrics: on this run and on the model
        tracking.log_results(
            params={"family": chosen.name, **{f"final_{k}": v for k, v in chosen.logged_params.items()}},
            metrics={"val_rmse": chosen.val_rmse, "fit_s": chosen.fit_s,
                     **{f"refit_val_rmse_{name}": value for name, value in chosen.refit_val_rmse.items()}},
            tags={names.BEST_MODEL_TAG: "true", names.FAMILY_TAG: chosen.name, names.REFIT_FROM_TAG: chosen.kept,
                  names.MODEL_URI_TAG: model_uri, names.DATA_RUN_TAG: data_run_id,
                  names.TUNE_RUNS_TAG: ",".join(tune_ids),
                  names.MODEL_FINGERPRINT_TAG: _fingerprint(data_run_id, splits, chosen.name, chosen.identity)},
        )
        tracking.log_table(pd.DataFrame(rows), names.LEADERBOARD_FILE)
        _log_preprocessor(splits)
        _log_plots(chosen, splits, y_test, chosen.predict(x_test))
        print(f"refit: chose {chosen.name}, test_rmse={chosen.metrics['test_rmse']:.4f}; run {run_id}")
        return run_id


BLEND = "blend"  # the family name of a blend, in the leaderboard and tags


@dataclass(frozen=True)
class Final:
    """The model refit logs and package registers: one family's, or a blend of several (each
    member a family, its model fitted on train+val, and its weight); a bag (`final=bag`) is
    stored as its fold models, each weighed 1/k."""

    name: str  # the family, or "blend"
    members: list[tuple[Any, Any, float]]
    params: dict[str, Any]
    metrics: dict[str, float]  # on test
    fit_s: float
    kept: str  # which refit candidate: tuned, defaults (CatBoost's own), or blend
    val_rmse: float  # what it was chosen by: val (or mean fold) RMSE, or the blend's, scored fold by fold the same way
    refit_val_rmse: dict[str, float]

    @property
    def logged_params(self) -> dict[str, Any]:
        """The final parameters as run parameters: a blend's members by name and weight (the
        whole of each is in blend.json; a run parameter holds at most a few thousand characters)."""
        if self.name != BLEND:
            return self.params
        members = json.loads(self.params["members"])
        return {"members": ", ".join(f"{m['candidate']}*{m['weight']:.3f}" for m in members)}

    @property
    def identity(self) -> dict[str, Any]:
        """The parameters that make this model this model: a blend's members by family, parameters
        and weight, without the run IDs in their candidate names (a rerun that fits the same blend
        from reused or new runs is the same model, registered once)."""
        if self.name != BLEND:
            return self.params
        members = json.loads(self.params["members"])
        return {"members": sorted(({k: v for k, v in m.items() if k != "candidate"} for m in members),
                                  key=lambda m: json.dumps(m, sort_keys=True))}

    def predict(self, x):
        return weighted_predictions([(model, weight) for _, model, weight in self.members], x)


def _refit_families(tune_ids: list[str], splits, seed: int, family_settings: dict, budget: dict,
                    tuned_over_folds: bool = True):
    """Every tuned family refit the same way, best val RMSE first; the leaderboard rows, the
    best family's final model, the other candidates the families weighed over folds (such as
    CatBoost's defaults, and the tuned parameters themselves when the tuning runs did not
    cross-validate them: (family, parameters, out-of-fold predictions) by column), and every
    family's bags of those candidates (by `_candidate_key`), which a blend serves as they are.
    Averaging on val (`val_predictions`), the families are ranked by their kept candidate's RMSE
    on the one val split every family predicts, not by their tuning runs' best val RMSE: a trial
    scored on its own reshuffle of train+val (Validation.reshuffle) is not on that split, and the
    best of 50 reshuffles is the luckiest of them."""
    candidates = sorted(
        ({**tracking.download_json(tune_id, names.BEST_FILE), "tune_run_id": tune_id} for tune_id in tune_ids),
        key=lambda best: best["val_rmse"],
    )
    on_val = budget.get("val_predictions")  # asked for on the holdout only (Validation.average_on_val)
    y_val = splits.xy("val")[1] if on_val else None
    rows, finals, weighed, bags = [], [], {}, {}
    for rank, best in enumerate(candidates):
        family = get_family(best["family"], **family_settings)
        # Each family in its own fork: what one fit leaves behind never stacks under the next.
        _import_library(family, best["params"], splits, seed)
        # ranked on val after refitting, every family keeps its model (tables of at most 50,000 rows)
        # Tuned on a sample of train: refit weighs its candidates on those rows (Family.refit_plan)
        judge_rows = int(tracking.run_metrics(best["tune_run_id"]).get("tune_rows", 0))
        fitted = run_forked(_refit, family, best["params"], splits, seed, keep_model=rank == 0 or on_val,
                            judge_rows=judge_rows, **budget)
        val_rmse = best["val_rmse"]
        if on_val:
            val_rmse = score(y_val, fitted.refit.held_out[fitted.refit.kept][1], "val")["val_rmse"]
        rows.append({"family": family.name, "tune_run_id": best["tune_run_id"], "chosen": False,
                     "val_rmse": val_rmse, **fitted.metrics, "refit_from": fitted.refit.kept,
                     "final_params": json.dumps(fitted.params, sort_keys=True)})
        print(f"refit: {family.name} val_rmse={val_rmse:.4f} test_rmse={fitted.metrics['test_rmse']:.4f}")
        if fitted.refit.val_rmse:  # the candidates it weighed (CatBoost: its tuned parameters and its own defaults)
            trees = fitted.params.get("iterations")
            print(f"refit: {family.name} weighed " + ", ".join(
                f"{name} val_rmse={value:.4f}" for name, value in fitted.refit.val_rmse.items())
                + f": kept {fitted.refit.kept}" + (f" ({trees} trees)" if trees else ""))
        weighed.update({f"{family.name}_{name}": (family.name, params, predictions)
                        for name, (params, predictions) in fitted.refit.out_of_fold.items()
                        if name != "tuned" or not tuned_over_folds})
        # on one holdout split, asked for: every candidate with its predictions of val
        weighed.update({f"{family.name}_{name}": (family.name, params, predictions)
                        for name, (params, predictions) in fitted.refit.held_out.items()})
        bags.update(_bags(family, fitted))
        if fitted.model is not None:
            finals.append(Final(family.name, flattened([(family, fitted.model, 1.0)]), fitted.params,
                                fitted.metrics, fitted.fit_s, fitted.refit.kept, val_rmse, fitted.refit.val_rmse))
    final = min(finals, key=lambda each: each.val_rmse)  # the first on ties: the tuning's order
    rows[[row["family"] for row in rows].index(final.name)]["chosen"] = True
    return rows, final, weighed, bags


def _import_library(family, params: dict, splits, seed: int) -> None:
    """Import the family's library here, once, by building (never fitting: no OpenMP thread
    starts, see steps/lib/isolation.py) its model: each fork then starts with it instead of
    importing it again, 1-3 s a family, before this process imports it anyway to read the result."""
    family.build(params, splits, seed)


def _bags(family, fitted: Fitted) -> dict:
    """A family's bags by the candidate whose out-of-fold predictions a blend would weigh, with
    the seconds the plan took to fit them all (which a blend that reuses one counts once)."""
    return {_candidate_key(family.name, fitted.refit.out_of_fold[name][0]): (family.name, params, Bag(models),
                                                                            fitted.fit_s)
            for name, (params, models) in fitted.refit.bags.items() if name in fitted.refit.out_of_fold}


def _weigh_untuned(name: str, splits, seed: int, family_settings: dict, budget: dict, rows: list,
                   bags: dict) -> dict:
    """A family nobody tuned, weighed over the folds with its own defaults, as CatBoost's defaults
    are: a blend candidate (its out-of-fold predictions, by column), a bag the blend can serve,
    a leaderboard row. A second kind of trees is worth a few percent on some tables at a fraction
    of a third tuning step's time (BENCHMARKS.md); the blend gives it no weight where it is not."""
    # One thread: as fast as two at these sizes alone, 2-5 x faster on shared cores, where OpenMP's
    # waiting threads spin (BENCHMARKS.md, threads of the third family)
    family = get_family(name, thread_count=1, **family_settings)
    _import_library(family, family.untuned_params, splits, seed)
    fitted = run_forked(_refit, family, family.untuned_params, splits, seed, keep_model=False, alternatives=False,
                        **budget)
    [val_rmse] = fitted.refit.val_rmse.values()
    rows.append({"family": family.name, "tune_run_id": "", "chosen": False, "val_rmse": val_rmse, **fitted.metrics,
                 "refit_from": UNTUNED, "final_params": json.dumps(fitted.params, sort_keys=True)})
    print(f"refit: {family.name} untuned val_rmse={val_rmse:.4f} test_rmse={fitted.metrics['test_rmse']:.4f}"
          f" ({fitted.fit_s:.1f}s)")
    bags.update(_bags(family, fitted))
    return {f"{family.name}_{UNTUNED}": (family.name, params, predictions)
            for params, predictions in (fitted.refit.out_of_fold or fitted.refit.held_out).values()}


UNTUNED = "untuned"  # refit_from of a family weighed with its own defaults, and its blend column's suffix


def _candidate_key(family: str, params: dict) -> str:
    """One candidate whatever its tree count: how a blend member finds the bag refit already has."""
    return json.dumps([family, {k: v for k, v in params.items() if k != "iterations"}], sort_keys=True, default=float)


def _blend(tune_ids: list[str], splits, seed: int, family_settings: dict, budget: dict, rows: list,
           bags: dict | None = None) -> Final | None:
    """Ensemble selection over every cross-validated candidate of every run given (the tuning
    runs, and this refit run for the candidates it weighed itself), on their out-of-fold
    predictions: the blend, its members refit on train+val (or, `final=bag`, the bag refit
    already fitted for a candidate, from `bags`), when it beats the best single candidate out
    of fold; else None. Adds its row to the leaderboard either way."""
    found = load_out_of_fold(tune_ids)
    if found is None:
        return None
    target, predictions, candidates = found
    # scored fold by fold, as the tuning runs scored each family's val_rmse in the leaderboard
    blend = ensemble.select(target, predictions, folds=splits.fold_numbers(budget["folds"], len(target)))
    print(f"refit: blend of {len(blend.weights)} candidates, out-of-fold RMSE {blend.rmse:.4f}; "
          f"best single {blend.best_single_rmse:.4f}")
    row = {"family": BLEND, "tune_run_id": ",".join(tune_ids), "chosen": blend.beats_best_single,
           "val_rmse": blend.rmse, "refit_from": BLEND, "best_single_oof_rmse": blend.best_single_rmse}
    if not blend.beats_best_single:
        rows.append(row)
        return None
    members, described, fit_s, reused_s = [], [], 0.0, {}
    for column, weight in blend.weights.items():
        family = get_family(candidates[column]["family"], **family_settings)
        bagged = (bags or {}).get(_candidate_key(family.name, candidates[column]["params"]))
        if bagged and budget["final"] == "bag":  # the very fold models whose predictions earned the weight
            _, params, model, reused_s[family.name] = bagged
            fitted = Fitted(model, bag_params(params, model.models), {}, 0.0)
        else:
            fitted = run_forked(_refit, family, candidates[column]["params"], splits, seed, keep_model=True,
                                alternatives=False, **budget)
        members.append((family, fitted.model, weight))
        described.append({"candidate": column, "family": family.name, "weight": weight, "params": fitted.params})
        fit_s += fitted.fit_s
    return _chosen_blend(flattened(members), described, fit_s + sum(reused_s.values()), blend, row, rows, splits)


def _chosen_blend(members: list, described: list[dict], fit_s: float, blend, row: dict, rows: list,
                  splits) -> Final:
    """The blend as the final model: scored on test, the only leaderboard row chosen, its
    members listed in blend.json."""
    x_test, y_test = splits.xy("test")
    final = Final(BLEND, members, {"members": json.dumps(described, sort_keys=True, default=float)}, {}, fit_s,
                  BLEND, blend.rmse, {})
    final = replace(final, metrics=score(y_test, final.predict(x_test), "test"))
    for other in rows:
        other["chosen"] = False
    rows.append({**row, **final.metrics, "final_params": final.params["members"]})
    tracking.log_json(described, names.BLEND_FILE)
    return final


def _average_on_val(candidates: dict, splits, seed: int, rows: list, chosen: Final) -> Final | None:
    """On one holdout split (a table too wide for folds): the chosen family's candidates
    ((family, final parameters, predictions of val) by column; CatBoost's are its tuned parameters
    and its own defaults), each refit on train+val with the tree count early stopping gave it,
    averaged with equal weights; None when the family weighed one candidate. Val does not weigh
    them: on a few hundred rows it ranks them no better than a coin, and weights fitted to it
    (ensemble selection's) gave a higher test RMSE than the plain average in 11 of 13 measured
    runs (ames, BENCHMARKS.md). Its leaderboard row shows its val RMSE, for information."""
    members = {column: (params, predictions) for column, (name, params, predictions) in candidates.items()
               if name == chosen.name}
    if len(members) < 2:
        return None
    _, y_val = splits.xy("val")
    single = {column: score(y_val, predictions, "val")["val_rmse"] for column, (_, predictions) in members.items()}
    average = np.mean([np.asarray(predictions, dtype="float64") for _, predictions in members.values()], axis=0)
    best = min(single, key=single.get)
    blend = ensemble.Blend(weights={column: 1 / len(members) for column in members},
                           rmse=score(y_val, average, "val")["val_rmse"], best_single=best,
                           best_single_rmse=single[best])
    print(f"refit: the average of {chosen.name}'s {len(members)} candidates, val RMSE {blend.rmse:.4f}; "
          f"best single {blend.best_single_rmse:.4f}")
    row = {"family": BLEND, "tune_run_id": "", "chosen": True, "val_rmse": blend.rmse,
           "refit_from": BLEND, "best_single_val_rmse": blend.best_single_rmse}
    [(family, kept_model, _)] = chosen.members
    fitted, described, fit_s = [], [], 0.0
    for column, weight in blend.weights.items():
        params, _ = members[column]
        if params == chosen.params:  # the kept candidate: fitted on train+val already
            model, seconds = kept_model, chosen.fit_s
        else:
            model, seconds = run_forked(_fit_on_train_val, family, params, splits, seed)
        fitted.append((family, model, weight))
        described.append({"candidate": column, "family": chosen.name, "weight": weight, "params": params})
        fit_s += seconds
    return _chosen_blend(fitted, described, fit_s, blend, row, rows, splits)


def _fit_on_train_val(family, params: dict, splits, seed: int):
    """One candidate's final parameters fitted on train+val: a blend member; with its seconds."""
    import time

    model = family.build(params, splits, seed)
    with family.threads():
        started = time.perf_counter()
        model.fit(*splits.train_val())
        return model, time.perf_counter() - started


def _refit(family, params: dict, splits, seed: int, *, keep_model: bool, **budget) -> Fitted:
    """One family's final model and test scores; only the winner's model comes back (the others
    are scored for the leaderboard and dropped where they were fitted), with every family's bags."""
    fitted = refit_and_test(family, params, splits, seed, **budget)
    return fitted if keep_model else replace(fitted, model=None)  # its bags stay: a blend may serve them


def _fingerprint(data_run_id: str, splits, family: str, params: dict) -> str:
    """What makes this model this model: the data (the prepare run's digest of the table, the
    split seed and a digest of each split), the family, the final parameters, the code under
    steps/ and the pinned requirements. `package` registers a fingerprint only once."""
    from steps.lib.data.tables import frame_digest
    from steps.lib.model.fingerprint import model_fingerprint, project_code_digest, requirement_pins
    from steps.lib.names import PROJECT_DIR

    data = {"data_digest": tracking.run_tags(data_run_id).get(names.DATA_DIGEST_TAG, ""), "seed": splits.seed,
            "splits": {split: frame_digest(getattr(splits, split)) for split in names.SPLITS}}
    return model_fingerprint(data=data, family=family, params=params, code=project_code_digest(),
                             requirements=requirement_pins((PROJECT_DIR / "requirements.txt").read_text()))


def _log_preprocessor(splits) -> None:
    """The scaler/encoder fitted on train+val, in formats that load without running code."""
    import skops.io

    from steps.lib.data.features import build_preprocessor, scaler_statistics

    x_train_val, _ = splits.train_val()
    preprocessor = build_preprocessor(splits.numeric, splits.categorical, rows=len(x_train_val)).fit(x_train_val)
    tracking.log_files(
        {
            "preprocessor.skops": lambda path: skops.io.dump(preprocessor, path),
            "scaler.json": lambda path: path.write_text(json.dumps(scaler_statistics(preprocessor), indent=2)),
        },
        names.PREPROCESSOR_DIR,
    )


def _log_plots(final: Final, splits, y_test, predictions) -> None:
    from steps.lib.model import plots

    title = f"{final.name} on test"
    tracking.log_figure(plots.predicted_vs_actual(y_test, predictions, title),
                        f"{names.PLOTS_DIR}/predicted_vs_actual.png")
    tracking.log_figure(plots.residuals(y_test, predictions, title), f"{names.PLOTS_DIR}/residuals.png")
    if final.name == BLEND:
        return  # a blend has no one set of importances or coefficients
    family = final.members[0][0]
    # A bag's importances are the mean over its fold models (weights 1/k each).
    explained = [(family.explain(model, splits), weight) for _, model, weight in final.members]
    if explained[0][0] is None:
        return  # the family has no importances or coefficients to show
    explained = sum(values * weight for values, weight in explained).rename(explained[0][0].name)
    tracking.log_figure(plots.feature_bars(explained, f"{family.name}: {explained.name}"),
                        f"{names.PLOTS_DIR}/feature_{explained.name}.png")


OPTIONS = [
    options.DATA_RUN_ID,
    options.StepOnly(["--tune-run-ids"], default="",
                 help="Comma list of tuning run IDs (tune_lasso, tune_catboost, tune_<family>)."),
    click.Option(["--max-iterations"], type=options.Whole(min=1), default=5000, show_default=True,
                 help="Most trees (iterations) the final fit may grow; early stopping on val picks the count."),
    click.Option(["--early-stopping-rounds"], type=options.Whole(min=1), default=100, show_default=True,
                 help="Stop growing once val RMSE has not improved for this many iterations."),
    options.VALIDATION,
    options.FOLDS,
    click.Option(["--final"], type=click.Choice(("refit", "bag")), default="bag", show_default=True,
                 help="When cross-validated, the final model: the chosen candidate's fold models averaged, no "
                      "refit (bag: CatBoost, HistGradientBoosting; LASSO refits), or one refit on train+val with "
                      "the folds' mean tree count (refit). On a holdout split there are no folds: refit."),
    click.Option(["--untuned-families"], default=UNTUNED_DEFAULT, show_default=True,
                 help="Families weighed untuned, with their library's defaults, where the final model is chosen "
                      "over folds and the family was not tuned: each one more blend candidate "
                      "for one early-stopped fit per fold (hist_gradient_boosting, or nothing)."),
    *refit_options(),
]
command = click.Command(names.REFIT, params=OPTIONS, callback=run)


if __name__ == "__main__":
    cli.main(command, names.REFIT)
