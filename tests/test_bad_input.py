"""Bad input through the real CLI: one error line naming the parameter, the run FAILED, nothing registered."""

from __future__ import annotations

import re

import pytest

from tests.conftest import Store, check, make_frame

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    """A store holding one finished prepare run and one finished tune_lasso run on it."""
    store = Store(tmp_path_factory.mktemp("bad-input"))
    check(store.run("tune_lasso", {"alphas": "1,0.1"}))
    return store


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("files")
    frame = make_frame(n_rows=60, seed=1)
    frame.to_csv(root / "good.csv", index=False)
    frame.assign(y=frame["colour"]).to_csv(root / "text_target.csv", index=False)
    frame.iloc[0:0].to_csv(root / "empty.csv", index=False)
    frame.head(6).to_csv(root / "tiny.csv", index=False)
    (root / "broken.parquet").write_bytes(b"PAR1 this is not parquet")
    return root


def failed_once(store: Store, result, step: str, param: str) -> str:
    """Assert the CLI failed with one tabtune error line naming `param`; returns that line."""
    assert result.returncode != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.startswith("tabtune ")]
    assert len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith(f"tabtune {step}: error: {param}: "), lines[0]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    run_id = re.findall(r"Run \(ID '([0-9a-f]+)'\) failed", result.stderr)[-1]
    run = store.client.get_run(run_id)
    assert run.info.status == "FAILED"
    assert run.data.tags["tabtune.error"].startswith(f"{param}: ")
    assert store.client.search_registered_models() == []
    return lines[0]


@pytest.mark.parametrize(
    "params, param, text",
    [
        ({"target": "nope"}, "target", "no column 'nope'"),
        ({"data": "{files}/text_target.csv", "target": "y"}, "target", "must be numeric"),
        ({"data": "{files}/good.csv"}, "target", "required unless data=diabetes"),
        ({"data": "{files}/empty.csv", "target": "y"}, "data", "empty"),
        ({"data": "{files}/tiny.csv", "target": "y"}, "data", "too few"),
        ({"data": "{files}/broken.parquet", "target": "y"}, "data", "cannot read"),
        ({"data": "{files}/missing.csv", "target": "y"}, "data", "no such file"),
        ({"val_size": "1.5"}, "val_size", "1.5"),
        ({"val_size": "0.5", "test_size": "0.5"}, "val_size", "must be < 1"),
        ({"seed": "-1"}, "seed", "-1"),
    ],
)
def test_prepare_rejects(store, files, params, param, text):
    params = {k: v.format(files=files) for k, v in params.items()}
    before = len(store.runs_of("prepare", "FINISHED"))
    line = failed_once(store, store.run("prepare", params), "prepare", param)
    assert text in line
    assert len(store.runs_of("prepare", "FINISHED")) == before


def test_unparsable_alphas(store):
    assert "'abc' is not a number" in failed_once(
        store, store.run("tune_lasso", {"alphas": "1,abc"}), "tune_lasso", "alphas")


def test_trials_must_be_positive(store):
    failed_once(store, store.run("tune_catboost", {"trials": "0"}), "tune_catboost", "trials")


def test_run_ids_of_the_wrong_kind_or_unknown(store):
    (tune,) = store.runs_of("tune_lasso", "FINISHED")
    prepare_id = tune.data.tags["tabtune.data_run_id"]
    line = failed_once(store, store.run("tune_catboost", {"data_run_id": tune.info.run_id, "trials": "1"}),
                       "tune_catboost", "data_run_id")
    assert "'tune_lasso' run; expected a prepare run" in line
    line = failed_once(store, store.run("tune_catboost", {"data_run_id": "0" * 32}), "tune_catboost",
                       "data_run_id")
    assert "no run" in line
    failed_once(store, store.run("refit", {"tune_run_ids": prepare_id}), "refit", "tune_run_ids")
    failed_once(store, store.run("package", {"model_run_id": tune.info.run_id}), "package", "model_run_id")


def test_pipeline_stops_at_the_failing_step(store, files):
    result = store.run("main", {"data": f"{files}/missing.csv", "target": "y", "trials": "1"})
    assert result.returncode != 0
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("tabtune main: error")]
    failed_prepare = re.search(r"step prepare failed \(run ([0-9a-f]+)\)", line).group(1)
    pipeline_id = re.findall(r"Run \(ID '([0-9a-f]+)'\) failed", result.stderr)[-1]
    pipeline = store.client.get_run(pipeline_id)
    assert pipeline.info.status == "FAILED" and failed_prepare in pipeline.data.tags["tabtune.error"]
    assert pipeline.info.run_name == "tabtune"  # named from its first moment, not `capable-goat-293`
    children = store.children(pipeline_id)
    assert [c.info.run_id for c in children] == [failed_prepare]
    assert children[0].info.status == "FAILED"
    assert store.client.search_registered_models() == []


def test_pipeline_checks_alphas_before_any_step(store):
    result = store.run("main", {"alphas": "0.1,,x"})
    failed_once(store, result, "main", "alphas")
    pipeline_id = re.findall(r"Run \(ID '([0-9a-f]+)'\) failed", result.stderr)[-1]
    assert store.children(pipeline_id) == []
