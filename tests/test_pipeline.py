"""The pipeline as data: which step consumes what, and the checks `main` makes before any step."""

from __future__ import annotations

import pytest

from steps import main
from steps.lib.errors import InputError
from steps.lib.orchestration import pipeline
from tests.test_outcome import finished

# Every setting main offers, at its default, with some set as a user would.
SETTINGS = {option.name: option.default for option in pipeline.all_setting_options()} | dict(
    tune_rows=0, data="d.csv", target="y", val_size=0.25, trials=7, alphas="1,0.1", iterations=30, seed=3,
    timeout_s=60.0, registered_model_name="m", max_iterations=100, early_stopping_rounds=10, try_defaults=False,
    min_improvement=0.01)
WORKER_KNOBS = {"parent_run_id", "thread_count"}  # a tuning step's options that main never passes


def test_default_pipeline_is_the_tutorial_s_five_steps_in_order():
    steps = pipeline.steps()
    assert [s.name for s in steps] == ["prepare", "tune_lasso", "tune_catboost", "refit", "package"]
    assert [s.entry_point for s in steps] == ["prepare", "tune_lasso", "tune", "refit", "package"]
    assert steps[3].depends_on == ("prepare", "tune_lasso", "tune_catboost")


def test_the_steps_that_fill_every_core_are_the_optuna_tuned_families_and_refit():
    steps = pipeline.steps(("lasso", "catboost", "hist_gradient_boosting"))
    assert [s.name for s in steps if s.fills_cores] == ["tune_catboost", "tune_hist_gradient_boosting", "refit"]


def test_each_step_gets_its_settings_and_its_upstream_run_ids():
    steps = {s.name: s for s in pipeline.steps(("lasso", "hist_gradient_boosting"))}
    run_ids = {"prepare": "P", "tune_lasso": "L", "tune_hist_gradient_boosting": "H", "refit": "R"}
    expected = {
        "prepare": {"data": "d.csv", "target": "y", "val_size": "0.25", "test_size": "0.2", "seed": "3"},
        "tune_lasso": {"alphas": "1,0.1", "seed": "3", "tune_rows": "0", "data_run_id": "P"},
        "tune_hist_gradient_boosting": {
            "trials": "7", "iterations": "30", "seed": "3", "timeout_s": "60.0", "storage": "", "study_name": "",
            "n_jobs": "1", "pruner": "none", "tune_rows": "0", "family": "hist_gradient_boosting",
            "data_run_id": "P"},
        "refit": {"max_iterations": "100", "early_stopping_rounds": "10", "try_defaults": "false",
                  "data_run_id": "P", "tune_run_ids": "L,H"},
        "package": {"registered_model_name": "m", "alias": "champion", "min_improvement": "0.01", "promote": "gate",
                    "model_run_id": "R"},
    }
    for name, step in steps.items():
        parameters = step.parameters(SETTINGS, run_ids)
        assert expected[name].items() <= parameters.items(), name
        # every option of the entry point, and nothing else, is given (a new option needs no wiring here)
        options = {option.name for option in pipeline.entry_point_options(step.entry_point)}
        assert set(parameters) == options - WORKER_KNOBS, name


def test_families_are_parsed_with_one_clear_error():
    assert pipeline.parse_families(" lasso , hist_gradient_boosting ") == ("lasso", "hist_gradient_boosting")
    with pytest.raises(InputError, match=r"^families: unknown model family 'xgboost'; known: catboost, "):
        pipeline.parse_families("lasso,xgboost")
    with pytest.raises(InputError, match=r"^families: duplicate"):
        pipeline.parse_families("lasso,lasso")
    with pytest.raises(InputError, match=r"^families: expected a comma list"):
        pipeline.parse_families(" , ")


def test_untuned_families_are_parsed_with_one_clear_error():
    assert pipeline.parse_untuned_families("") == ()
    assert pipeline.parse_untuned_families(" hist_gradient_boosting ") == ("hist_gradient_boosting",)
    # LASSO and CatBoost have no untuned candidate of this kind (CatBoost's defaults: try_defaults)
    for name in ("lasso", "catboost", "xgboost"):
        with pytest.raises(InputError, match=rf"^untuned_families: '{name}' cannot be weighed untuned; expected a "
                                             r"comma list from hist_gradient_boosting, or nothing$"):
            pipeline.parse_untuned_families(name)
    with pytest.raises(InputError, match=r"^untuned_families: duplicate families in "):
        pipeline.parse_untuned_families("hist_gradient_boosting, hist_gradient_boosting")
    with pytest.raises(InputError, match=r"^untuned_families: 'lasso'"):
        main.check(pipeline.steps(), {**SETTINGS, "untuned_families": "lasso"})  # before any step runs


def test_main_refuses_one_study_name_for_two_tuned_families_before_any_step():
    steps = pipeline.steps(("catboost", "hist_gradient_boosting"))
    with pytest.raises(InputError, match=r"^study_name: one study name for 2 tuned families"):
        main.check(steps, {**SETTINGS, "study_name": "s"})
    main.check(pipeline.steps(), {**SETTINGS, "study_name": "s"})  # one tuned family: fine
    with pytest.raises(InputError, match=r"^alphas:"):
        main.check(steps, {**SETTINGS, "alphas": "x"})
    with pytest.raises(InputError, match=r"^promote: expected one of gate, force, never"):
        main.check(steps, {**SETTINGS, "promote": "always"})
    with pytest.raises(InputError, match=r"^min_improvement: expected a fraction in \[0, 1\)"):
        main.check(steps, {**SETTINGS, "min_improvement": 1.0})


def test_main_ends_saying_where_the_results_are():
    text = main.closing_lines(finished("3"), "run1", "sqlite:////abs/mlflow.db",
                              "mlflow ui --backend-store-uri sqlite:////abs/mlflow.db")
    assert text.splitlines() == [
        "main: test_rmse=2.0000; pipeline run run1",
        "main: Registered m version 3; @champion now points to it.",
        "main: results are in sqlite:////abs/mlflow.db; look at it: mlflow ui --backend-store-uri "
        "sqlite:////abs/mlflow.db  (then open http://127.0.0.1:5000)",
        "main: load the model: mlflow.pyfunc.load_model('models:/m@champion')",
    ]
    # The pipeline run's page, in the UI's Model training mode (not the GenAI mode it opens in).
    page = "http://127.0.0.1:5000/#/experiments/7/runs/run1?workflowType=machine_learning"
    local = main.closing_lines(finished("3"), "run1", "sqlite:////abs/mlflow.db", "mlflow ui …", page)
    assert local.splitlines()[2] == (f"main: results are in sqlite:////abs/mlflow.db; look at it: mlflow ui …  "
                                     f"(then open {page})")
    server = main.closing_lines(finished("3"), "run1", "http://server", None, page.replace("127.0.0.1:5000", "server"))
    assert server.splitlines()[2].endswith("open http://server/#/experiments/7/runs/run1?workflowType=machine_learning")
    # The alias stayed on another version: the line loads the version this run registered.
    kept = main.closing_lines(finished("1"), "run1", "http://server", None).splitlines()
    assert kept[1] == "main: Registered m version 3; @champion stays on version 1."
    assert kept[-1] == "main: load the model: mlflow.pyfunc.load_model('models:/m/3')"


def test_an_unnamed_pipeline_registers_under_its_table_s_name():
    from steps.lib import names

    assert names.default_model_name("diabetes") == "tabtune_diabetes"
    assert names.default_model_name("/data/Ames Housing.csv") == "tabtune_ames_housing"
    assert names.default_model_name("s3://bucket/sales-2024.parquet?versionId=3") == "tabtune_sales_2024"


def test_main_refuses_a_model_name_unity_catalog_would_refuse_before_any_step(monkeypatch):
    """On Databricks with Unity Catalog, `package` would fail on `tabtune-regressor` after the
    whole tuning budget was spent: main says so first, naming the parameter and the form."""
    import mlflow

    steps = pipeline.steps()
    default = {**SETTINGS, "registered_model_name": "tabtune-regressor"}
    main.check(steps, default)  # the default name on a workspace registry (here: the local store)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", "databricks-uc")
    mlflow.set_registry_uri(None)  # no earlier test's registry set in this process
    with pytest.raises(InputError, match=r"^registered_model_name: 'tabtune-regressor' is not a Unity Catalog name: "
                                         r"use catalog\.schema\.name"):
        main.check(steps, default)
    for bad in ("main.tabtune", "main..tabtune"):
        with pytest.raises(InputError, match=r"^registered_model_name:"):
            main.check(steps, {**SETTINGS, "registered_model_name": bad})
    main.check(steps, {**SETTINGS, "registered_model_name": "main.ml.tabtune"})
