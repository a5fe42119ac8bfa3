"""tabtune away from its checkout: from a git URL, step by step in separate directories, against a
shared tracking server on PostgreSQL, and with credentials in URLs that must not leak."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import mlflow
import numpy as np
import pytest

from tests.conftest import PROJECT_DIR, TINY, ServerStore, check, mlflow_run
from tests.servers import bare_clone, git_daemon, smart_http

pytestmark = pytest.mark.slow
SECRET = "s3cret-pw"


def last_run_id(result) -> str:
    return re.findall(r"Run \(ID '([0-9a-f]+)'\) succeeded", result.stderr)[-1]


def descendants(store, run_id: str) -> list:
    found, frontier = [], [run_id]
    while frontier:
        children = store.children(frontier.pop())
        found += children
        frontier += [c.info.run_id for c in children]
    return found


@pytest.fixture(scope="module")
def served_repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("git")
    _, commit = bare_clone(PROJECT_DIR, root)
    return root, commit


def test_pipeline_from_a_git_url_at_a_commit(store, served_repo, tmp_path):
    root, commit = served_repo
    caller = tmp_path / "caller"
    caller.mkdir()
    with git_daemon(root) as base:
        result = check(mlflow_run(store.uri, "main", TINY, uri=f"{base}/tabtune.git", cwd=caller,
                                  extra_args=["-v", commit]))
        standalone = check(mlflow_run(store.uri, "tune_catboost", {"trials": 1, "iterations": 10},
                                      uri=f"{base}/tabtune.git", cwd=caller, extra_args=["-v", "main"]))
    pipeline_id = last_run_id(result)
    runs = [store.client.get_run(pipeline_id), *descendants(store, pipeline_id)]
    step_runs = [r for r in runs if "mlflow.project.entryPoint" in r.data.tags]
    assert len(step_runs) == 6
    assert {r.data.tags["mlflow.source.git.commit"] for r in step_runs} == {commit}
    # The steps ran from the one checkout MLflow made for main (a temp dir), cloned from the URL.
    (checkout,) = {r.data.tags["mlflow.source.name"] for r in step_runs[1:]}
    assert checkout.startswith("file://") and str(caller) not in checkout and str(PROJECT_DIR) not in checkout
    assert {r.data.tags["mlflow.source.git.repoURL"] for r in step_runs} == {f"{base}/tabtune.git"}
    tune = store.client.get_run(last_run_id(standalone))
    assert tune.data.tags["mlflow.source.git.commit"] == commit
    assert tune.data.tags["mlflow.source.git.branch"] == "main"
    assert list(caller.iterdir()) == []


def test_each_step_in_its_own_directory_with_only_run_ids(store, tmp_path):
    def clone(name: str) -> Path:
        """A separate checkout per 'machine', so no step can see files another wrote."""
        target = tmp_path / name
        subprocess.run(["git", "clone", "--quiet", str(PROJECT_DIR), str(target)], check=True)
        return target

    def step(name: str, params: dict) -> str:
        checkout = clone(name)
        result = check(mlflow_run(store.uri, name, params, uri=str(checkout), cwd=checkout))
        return last_run_id(result)

    data_run_id = step("prepare", {})
    lasso = step("tune_lasso", {"data_run_id": data_run_id, "alphas": "1,0.1"})
    catboost = step("tune_catboost", {"data_run_id": data_run_id, "trials": 2, "iterations": 20})
    refit = step("refit", {"data_run_id": data_run_id, "tune_run_ids": f"{lasso},{catboost}"})
    package = step("package", {"model_run_id": refit})
    assert len(store.runs()) == 1 + 1 + 2 + 1 + 2 + 1 + 1
    assert store.client.get_run(package).data.tags["tabtune.refit_run_id"] == refit
    for name in ("tune_lasso", "tune_catboost", "refit", "package"):
        assert not list((tmp_path / name).glob("mlruns")) and not list((tmp_path / name).glob("*.db"))


def leaks(store, run_ids: list[str], text: str, tmp_path: Path) -> list[str]:
    """Every place in the store where `text` occurs: params, tags, artifacts, logged models."""
    found = []
    for run_id in run_ids:
        run = store.client.get_run(run_id)
        for kind, values in (("param", run.data.params), ("tag", run.data.tags)):
            found += [f"{run_id} {kind} {k}" for k, v in values.items() if text in v]
        local = Path(mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="", tracking_uri=store.uri, dst_path=str(tmp_path / run_id)))
        found += [f"{run_id} artifact {p}" for p in local.rglob("*")
                  if p.is_file() and text.encode() in p.read_bytes()]
    experiment_ids = [e.experiment_id for e in store.client.search_experiments()]
    for model in store.client.search_logged_models(experiment_ids):
        found += [f"model {model.model_id} tag {k}" for k, v in model.tags.items() if text in v]
        found += [f"model {model.model_id} param {k}" for k, v in model.params.items() if text in v]
    return found


def own_log_lines(result, text: str) -> list[str]:
    """Output lines containing `text`, except MLflow echoing the URL the user typed."""
    return [line for line in (result.stdout + result.stderr).splitlines()
            if text in line and "Fetching project from" not in line]


@pytest.fixture(scope="module")
def secret_git_url(served_repo):
    root, _ = served_repo
    with smart_http(root, "tabtune", SECRET) as host:
        yield f"http://tabtune:{SECRET}@{host}/tabtune.git"


def test_no_secret_from_a_git_url_in_the_sqlite_store(store, secret_git_url, tmp_path):
    result = check(mlflow_run(store.uri, "tune_catboost", {"trials": 1, "iterations": 10}, uri=secret_git_url,
                              cwd=tmp_path))
    run_ids = [r.info.run_id for r in store.runs()]
    assert len(run_ids) == 3  # tune_catboost, its prepare run, one trial
    assert leaks(store, run_ids, SECRET, tmp_path / "scan") == []
    assert own_log_lines(result, SECRET) == []
    tags = store.client.get_run(last_run_id(result)).data.tags
    assert tags["mlflow.source.name"].startswith("http://tabtune:***@")


def test_pipeline_on_a_postgres_backed_server(tracking_server, secret_git_url, tmp_path):
    server = ServerStore(tracking_server)
    result = check(mlflow_run(server.uri, "main", {**TINY, "trials": 2}, uri=secret_git_url, cwd=tmp_path))
    pipeline_id = last_run_id(result)
    runs = descendants(server, pipeline_id)
    steps = {r.data.tags["tabtune.step"]: r for r in runs
             if r.data.tags.get("mlflow.parentRunId") == pipeline_id}
    assert sorted(steps) == ["package", "prepare", "refit", "tune_catboost", "tune_lasso"]
    assert len(server.children(steps["tune_lasso"].info.run_id)) == 3
    assert len(server.children(steps["tune_catboost"].info.run_id)) == 2
    # Artifacts go through the server (proxied), never to a path the client can see.
    assert server.client.get_run(pipeline_id).info.artifact_uri.startswith("mlflow-artifacts:")
    version = server.client.get_model_version_by_alias("tabtune_diabetes", "champion")
    assert version.tags["refit_run_id"] == steps["refit"].info.run_id
    model = mlflow.pyfunc.load_model("models:/tabtune_diabetes@champion") if _use(server) else None
    predictions = np.asarray(model.predict(model.input_example)).ravel()
    assert np.isfinite(predictions).all() and len(predictions) == len(model.input_example)
    assert leaks(server, [pipeline_id, *[r.info.run_id for r in runs]], SECRET, tmp_path / "scan") == []
    assert own_log_lines(result, SECRET) == []


def _use(store) -> bool:
    mlflow.set_tracking_uri(store.uri)
    mlflow.set_registry_uri(store.uri)
    return True


def test_no_secret_from_a_database_tracking_uri(postgres_cluster, tmp_path):
    """The tracking store itself reached through a database URL that carries a password."""
    from tests.conftest import Store

    store = Store(tmp_path)
    store.uri = postgres_cluster["url"]("mlflow")
    store.client = mlflow.tracking.MlflowClient(tracking_uri=store.uri, registry_uri=store.uri)
    store.client.create_experiment("database-uri", artifact_location=(tmp_path / "artifacts").as_uri())
    result = check(mlflow_run(store.uri, "tune_lasso", {"alphas": "1,0.1"},
                              extra_args=["--experiment-name", "database-uri"]))
    experiment = store.client.get_experiment_by_name("database-uri")
    run_ids = [r.info.run_id for r in store.client.search_runs([experiment.experiment_id])]
    assert len(run_ids) == 4  # tune_lasso, its prepare run, two alphas
    assert leaks(store, run_ids, SECRET, tmp_path / "scan") == []
    assert own_log_lines(result, SECRET) == []
