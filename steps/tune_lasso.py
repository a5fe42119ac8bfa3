"""tune_lasso: LASSO over a grid of alphas, one child run per alpha.

Reads: the prepare run `data_run_id` (or the latest one with default settings).
Writes: this step's run, with one child run per alpha (params alpha, max_iter, family; metrics
val_rmse/val_mae/val_r2, fit_s); on the step run: param best_alpha, metric best_val_rmse,
`best.json` (what refit reads), the plot `plots/val_rmse_by_alpha.png`, and the tag
`tabtune.warning` when the best alpha sits on the edge of the grid."""

from __future__ import annotations

import click

from steps.lib import names, options, tracking
from steps.lib.families import get_family
from steps.lib.orchestration import cli, lineage
from steps.lib.search.grid import parse_alphas
from steps.lib.search.out_of_fold import log_out_of_fold
from steps.lib.search.tuning import Validation, best_result, evaluate_grid


def run(*, data_run_id: str, alphas: str, seed: int, tune_rows: int = 0, validation: str = "auto",
        folds: int = 5) -> str:
    """Fit one LASSO per alpha and log each; returns this step's run ID."""
    grid = parse_alphas(alphas)
    family = get_family("lasso")
    with tracking.step_run(names.TUNE_LASSO, {names.FAMILY_TAG: family.name}) as run_id:
        data_run_id = lineage.data_run(data_run_id)
        tracking.set_tags({names.DATA_RUN_TAG: data_run_id})
        splits = lineage.load_splits(data_run_id)
        scoring = Validation.for_splits(validation, folds, splits)
        tracking.set_tags({names.VALIDATION_TAG: scoring.name})
        # Sampled with the data's own seed, as tune samples it: every tuning step tunes on the same rows.
        splits = splits.with_train_sample(tune_rows, splits.seed)
        writer = tracking.ChildRunWriter(run_id)

        def log_point(result) -> None:
            writer.write(
                name=f"alpha-{result.params['alpha']:g}",
                params={**result.params, **family.fixed_params(), "family": family.name},
                metrics={**result.metrics, "fit_s": result.fit_s},
                tags={names.TRIAL_STATE_TAG: result.state, names.TRIAL_NUMBER_TAG: str(result.number)},
                failed=False,
            )
            print(f"tune_lasso: alpha={result.params['alpha']:g} val_rmse={result.value:.4f}", flush=True)

        results = evaluate_grid(family, [{"alpha": a} for a in grid], splits, seed=seed,
                                validation=scoring,
                                on_trial=log_point)
        if results[0].out_of_fold is not None:
            log_out_of_fold(splits, family.name, {f"alpha_{r.params['alpha']:g}": (r.params, r.out_of_fold)
                                                  for r in results})
        best = best_result(results)
        best_alpha = best.params["alpha"]
        tags = {}
        if len(grid) > 1 and best_alpha in (min(grid), max(grid)):
            tags[names.WARNING_TAG] = (
                f"best alpha {best_alpha:g} is on the edge of the grid; widen `alphas` past it"
            )
            print(f"tune_lasso: warning: {tags[names.WARNING_TAG]}")
        tracking.log_results(
            params={"best_alpha": best_alpha},
            metrics={"best_val_rmse": best.value, "best_val_mae": best.metrics["val_mae"],
                     "best_val_r2": best.metrics["val_r2"]},
            tags=tags,
        )
        tracking.log_json(
            {"family": family.name, "params": best.params, "val_rmse": best.value, "trial": best.number},
            names.BEST_FILE,
        )
        from steps.lib.model import plots

        tracking.log_figure(
            plots.rmse_by_alpha(grid, [r.value for r in results], best_alpha),
            f"{names.PLOTS_DIR}/val_rmse_by_alpha.png",
        )
        return run_id


OPTIONS = [
    options.DATA_RUN_ID,
    click.Option(["--alphas"], default="1,0.3,0.1,0.03,0.01,0.003,0.001", show_default=True,
                 help="LASSO's grid of regularization strengths, comma-separated; one child run each."),
    options.SEED,
    options.TUNE_ROWS,
    options.VALIDATION,
    options.FOLDS,
]
command = click.Command(names.TUNE_LASSO, params=OPTIONS, callback=run)


if __name__ == "__main__":
    cli.main(command, names.TUNE_LASSO)
