"""tabtune on Databricks, tested without Databricks (docs/databricks.md).

A local HTTP stand-in for a workspace (127.0.0.1, a free port) answers the few REST endpoints our
code calls and records every request, so the tests assert on exactly what would be sent:

- classic: `mlflow run <project> -b databricks --backend-config databricks/cluster-spec.json`
  (the real MLflow CLI): the project tarball it uploads and the one-time run it submits;
- job: `python -m databricks_jobs.submit` (the real databricks-sdk): the job definition, and how
  the tasks hand each other run IDs (simulated locally with a real MLflow store and fake steps).
"""

from __future__ import annotations

import hashlib
import importlib
import io
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from databricks_jobs import job, task
from steps.lib import names, tracking
from steps.lib.errors import InputError
from steps.lib.pipeline import steps as pipeline_steps
from tests.conftest import PROJECT_DIR

TOKEN = "dapi-test-token"
# A recognisable fake secret: the Optuna storage URL with its password, as a Databricks secret holds it.
FAKE_SECRET_MARK = "s3cret-4711-not-for-bodies"
FAKE_SECRET = f"postgresql://tabtune:{FAKE_SECRET_MARK}@optuna-db.example:5432/optuna"
EXPERIMENT = "/Shared/tabtune-test"
CLUSTER_SPEC = PROJECT_DIR / "databricks" / "cluster-spec.json"
JOB_CLUSTER = PROJECT_DIR / "databricks" / "job-cluster.json"


# ------------------------------------------------------------------------------- the stand-in
@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body or b"{}")


@dataclass
class Workspace:
    """What the stand-in holds: every request in order, uploaded DBFS files, created jobs."""

    host: str = ""
    requests: list[Request] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    jobs: dict[int, dict] = field(default_factory=dict)
    unanswered: list[str] = field(default_factory=list)

    def called(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if (r.method, r.path) == (method, path)]

    def only(self, method: str, path: str) -> Request:
        found = self.called(method, path)
        assert len(found) == 1, f"{method} {path} called {len(found)} times"
        return found[0]

    def answer(self, request: Request) -> tuple[int, dict]:
        """The workspace's reply: just enough, and correct, for MLflow and databricks-sdk to go on."""
        method, path, body = request.method, request.path, request.json() if request.body[:1] == b"{" else {}
        if path == "/.well-known/databricks-config":  # databricks-sdk's host metadata probe
            return 200, {"oidc_endpoint": f"{self.host}/oidc", "workspace_id": "1234567890"}
        if path == "/api/2.0/mlflow/experiments/get-by-name":
            name = request.query["experiment_name"][0]
            return 200, {"experiment": {"experiment_id": "123", "name": name, "lifecycle_stage": "active",
                                        "artifact_location": "dbfs:/databricks/mlflow-tracking/123"}}
        if path == "/api/2.0/mlflow/runs/create":
            run_id = uuid.uuid4().hex
            info = {"run_id": run_id, "run_uuid": run_id, "experiment_id": body["experiment_id"],
                    "user_id": body.get("user_id", ""), "status": "RUNNING", "start_time": body["start_time"],
                    "lifecycle_stage": "active", "artifact_uri": f"dbfs:/mlflow-tracking/123/{run_id}"}
            return 200, {"run": {"info": info, "data": {"tags": body.get("tags", [])}}}
        if path in ("/api/2.0/mlflow/runs/log-batch", "/api/2.0/mlflow/runs/set-tag"):
            return 200, {}
        if path == "/api/2.0/dbfs/get-status":
            stored = self.files.get(body["path"].lstrip("/"))
            if stored is not None:
                return 200, {"path": body["path"], "is_dir": False, "file_size": len(stored)}
            return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"No file at {body['path']}."}
        if method == "POST" and path.startswith("/dbfs/"):  # MLflow's upload: the raw tarball
            self.files[path.removeprefix("/dbfs/")] = request.body
            return 200, {}
        if path == "/api/2.0/jobs/runs/submit":
            return 200, {"run_id": 1001}
        if path == "/api/2.0/jobs/runs/get":
            run_id = int(request.query["run_id"][0])
            return 200, {"run_id": run_id, "job_id": 2002, "state": {"life_cycle_state": "PENDING"},
                         "run_page_url": f"{self.host}/#job/2002/run/{run_id}"}
        if path == "/api/2.2/jobs/list":
            name = request.query.get("name", [None])[0]
            found = [{"job_id": job_id, "settings": settings} for job_id, settings in self.jobs.items()
                     if name in (None, settings["name"])]
            return 200, {"jobs": found, "has_more": False} if found else {"has_more": False}
        if path == "/api/2.2/jobs/create":
            job_id = 3000 + len(self.jobs) + 1
            self.jobs[job_id] = body
            return 200, {"job_id": job_id}
        if path == "/api/2.2/jobs/reset":
            self.jobs[body["job_id"]] = body["new_settings"]
            return 200, {}
        if path == "/api/2.2/jobs/run-now":
            return 200, {"run_id": 4001, "number_in_job": 4001}
        self.unanswered.append(f"{method} {path}")
        return 404, {"error_code": "ENDPOINT_NOT_FOUND", "message": f"No API found for '{method} {path}'"}


class _Handler(BaseHTTPRequestHandler):
    def _handle(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        request = Request(self.command, url.path, parse_qs(url.query), dict(self.headers), body)
        workspace: Workspace = self.server.workspace
        workspace.requests.append(request)
        status, payload = workspace.answer(request)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def log_message(self, *args) -> None:  # keep the test output clean
        pass


@pytest.fixture
def workspace():
    """A Databricks workspace stand-in on 127.0.0.1 (a free port), for one test."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.workspace = Workspace(host=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.workspace
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def databricks_env(workspace: Workspace, tmp_path: Path) -> dict[str, str]:
    """A child environment that reaches only the stand-in: its host, a test token, no proxies,
    no ~/.databrickscfg, no MLflow telemetry."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "DATABRICKS_")) and "proxy" not in k.lower()}
    env.update(
        DATABRICKS_HOST=workspace.host,
        DATABRICKS_TOKEN=TOKEN,
        DATABRICKS_CONFIG_FILE=str(tmp_path / "no-databrickscfg"),
        MLFLOW_TRACKING_URI="databricks",
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        NO_PROXY="127.0.0.1,localhost",
        PATH=str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""),
    )
    return env


def run(args: list[str], env: dict[str, str], cwd: Path = PROJECT_DIR) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def assert_ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, f"{result.args}\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"


def assert_token_only_in_headers(workspace: Workspace) -> None:
    for request in workspace.requests:
        if request.path.startswith("/api/"):
            assert request.headers.get("Authorization") == f"Bearer {TOKEN}", request.path
        assert TOKEN.encode() not in request.body, f"token in the body of {request.method} {request.path}"


# -------------------------------------------------------------------- classic: mlflow run -b databricks
REQUIRED = {"MLproject", "python_env.yaml", "conda.yaml", "requirements.txt", "steps/main.py",
            "steps/lib/tracking/__init__.py"}
UNWANTED = (".git", ".venv", "mlflow.db", "mlruns", "__pycache__", ".pytest_cache")


def test_cluster_spec_is_a_new_cluster_with_marked_placeholders():
    spec = json.loads(CLUSTER_SPEC.read_text())
    assert "existing_cluster_id" not in spec  # MLflow refuses it
    cluster = spec["new_cluster"]
    assert {"spark_version", "node_type_id", "num_workers"} <= set(cluster)
    assert cluster["node_type_id"].startswith("REPLACE-ME")
    assert re.fullmatch(r"12\.2\.x-cpu-ml-scala2\.12", cluster["spark_version"])  # pre-13.0 ML runtime


@pytest.fixture
def project_zip(tmp_path) -> Path:
    """The committed project as `git archive` makes it: tracked files only."""
    path = tmp_path / "tabtune.zip"
    subprocess.run(["git", "archive", "--format=zip", "-o", str(path), "HEAD"], cwd=PROJECT_DIR, check=True)
    return path


@pytest.fixture
def git_url(tmp_path):
    """The project's repository served by `git daemon` on 127.0.0.1: a real git:// URL."""
    if subprocess.run(["git", "daemon", "--help"], capture_output=True).returncode not in (0, 129):
        pytest.skip("git daemon is not installed")
    base = tmp_path / "git"
    subprocess.run(["git", "clone", "--quiet", "--bare", str(PROJECT_DIR), str(base / "tabtune.git")],
                   check=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    daemon = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={base}",
                               "--listen=127.0.0.1", f"--port={port}", str(base)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"git://127.0.0.1:{port}/tabtune.git"
    try:
        for _ in range(50):
            if subprocess.run(["git", "ls-remote", url], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        yield url
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)


def mlflow_run_databricks(uri: str, workspace: Workspace, tmp_path: Path) -> subprocess.CompletedProcess:
    """`mlflow run <uri> -b databricks --backend-config databricks/cluster-spec.json -e main`."""
    args = [sys.executable, "-m", "mlflow", "run", uri, "-b", "databricks",
            "--backend-config", str(CLUSTER_SPEC), "-e", "main", "--experiment-name", EXPERIMENT]
    return run(args, databricks_env(workspace, tmp_path), cwd=tmp_path)


def uploaded_archive(workspace: Workspace) -> tuple[str, set[str]]:
    """The DBFS path of the one project tarball uploaded, and the paths inside its top folder."""
    (path, data), = workspace.files.items()
    assert path == f"mlflow-experiments/123/projects-code/{hashlib.sha256(data).hexdigest()}.tar.gz"
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        members = archive.getnames()
    assert all(m == "mlflow-project" or m.startswith("mlflow-project/") for m in members)
    return path, {m.removeprefix("mlflow-project/") for m in members if m != "mlflow-project"}


def unwanted(paths: set[str]) -> set[str]:
    return {p for p in paths if any(part in UNWANTED for part in Path(p).parts)}


def test_classic_backend_uploads_the_clean_project_and_submits_mlflow_run(workspace, project_zip, tmp_path):
    result = mlflow_run_databricks(str(project_zip), workspace, tmp_path)
    assert_ok(result)

    # What MLflow's databricks backend calls, in order (the host metadata probe is databricks-sdk's).
    calls = [f"{r.method} {r.path}" for r in workspace.requests if not r.path.startswith("/.well-known/")]
    dbfs_path, files = uploaded_archive(workspace)
    assert calls == [
        "GET /api/2.0/mlflow/experiments/get-by-name",
        "POST /api/2.0/mlflow/runs/create",
        "POST /api/2.0/mlflow/runs/log-batch",   # the entry point's parameters
        "POST /api/2.0/mlflow/runs/set-tag",     # mlflow.project.backend=databricks
        "GET /api/2.0/dbfs/get-status",
        f"POST /dbfs/{dbfs_path}",
        "POST /api/2.0/jobs/runs/submit",
        "GET /api/2.0/jobs/runs/get",            # for the run page URL; then it returns (no polling)
        *["POST /api/2.0/mlflow/runs/set-tag"] * 4,
    ]
    assert not workspace.unanswered

    # The archive: the project, nothing else.
    assert REQUIRED <= files and any(f.startswith("steps/") for f in files)
    assert unwanted(files) == set()

    # The MLflow run it made for the project, in the experiment named on the command line.
    created = workspace.only("POST", "/api/2.0/mlflow/runs/create").json()
    assert created["experiment_id"] == "123"
    assert {"key": "mlflow.project.entryPoint", "value": "main"} in created["tags"]

    # The one-time job run: our cluster spec, and a shell command that unpacks the upload and
    # runs `mlflow run` on it with entry point main, resuming the run created above.
    submitted = workspace.only("POST", "/api/2.0/jobs/runs/submit").json()
    spec = json.loads(CLUSTER_SPEC.read_text())
    assert submitted["new_cluster"] == spec["new_cluster"]
    assert submitted["libraries"] == [{"pypi": {"package": f"mlflow=={mlflow.__version__}"}}]
    task_ = submitted["shell_command_task"]
    assert task_["env_vars"] == {"MLFLOW_TRACKING_URI": "databricks", "MLFLOW_EXPERIMENT_ID": "123"}
    assert task_["command"][:2] == ["bash", "-c"]
    script = task_["command"][2]
    assert f"/dbfs/{dbfs_path}" in script
    mlflow_run_line = shlex.split(script.strip().splitlines()[-1])
    project_dir = "/databricks/mlflow/projects/" + Path(dbfs_path).name.removesuffix(".tar.gz")
    run_id = next(r.json()["run_id"] for r in workspace.called("POST", "/api/2.0/mlflow/runs/log-batch"))
    assert mlflow_run_line[:5] == ["mlflow", "run", project_dir, "--entry-point", "main"]
    backend_config = json.loads(mlflow_run_line[mlflow_run_line.index("-c") + 1])
    assert backend_config == {"_mlflow_local_backend_run_id": run_id}
    assert_token_only_in_headers(workspace)


def test_classic_backend_from_a_git_url_also_ships_the_clone_s_git_folder(workspace, git_url, tmp_path):
    """`mlflow run <git-url> -b databricks` tars MLflow's shallow clone as it is, `.git` included
    (MLflow only filters out `mlruns`): harmless, but why docs/databricks.md runs a `git archive`."""
    result = mlflow_run_databricks(git_url, workspace, tmp_path)
    assert_ok(result)
    _, files = uploaded_archive(workspace)
    assert REQUIRED <= files
    assert {Path(p).parts[0] for p in unwanted(files)} == {".git"}
    submitted = workspace.only("POST", "/api/2.0/jobs/runs/submit").json()
    assert submitted["run_name"] == f"MLflow Run for {git_url}"


# --------------------------------------------------------------------------- job: databricks_jobs
GIT_URL = "https://github.com/example/tabtune"


def P(name: str) -> str:  # a job parameter reference
    return "{{job.parameters." + name + "}}"


def V(task_key: str, key: str = "run_id") -> str:  # a task value reference
    return "{{tasks." + task_key + ".values." + key + "}}"


PIPELINE = {"pipeline_run_id": V("prepare", "pipeline_run_id")}
TASK_PARAMETERS = {
    "prepare": {"step": "prepare", "role": "step", "entry_point": "prepare", "experiment": P("experiment"),
                "data": P("data"), "target": P("target"), "seed": P("seed")},
    "tune_lasso": {"step": "tune_lasso", "role": "step", "entry_point": "tune_lasso", **PIPELINE, "alphas": P("alphas"),
                   "seed": P("seed"), "tune_rows": P("tune_rows"), "data_run_id": V("prepare")},
    "tune_catboost": {"step": "tune_catboost", "role": "step", "entry_point": "tune", **PIPELINE, "trials": P("trials"),
                      "iterations": P("iterations"), "seed": P("seed"), "storage": P("storage"),
                      "study_name": P("study_name"), "n_jobs": P("n_jobs"), "pruner": P("pruner"),
                      "tune_rows": P("tune_rows"), "family": "catboost", "data_run_id": V("prepare")},
    "refit": {"step": "refit", "role": "step", "entry_point": "refit", **PIPELINE,
              "max_iterations": P("max_iterations"), "early_stopping_rounds": P("early_stopping_rounds"),
              "try_defaults": P("try_defaults"), "data_run_id": V("prepare"),
              "tune_run_ids": f"{V('tune_lasso')},{V('tune_catboost')}"},
    "package": {"step": "package", "role": "step", "entry_point": "package", **PIPELINE,
                "registered_model_name": P("registered_model_name"), "alias": P("alias"),
                "min_improvement": P("min_improvement"), "promote": P("promote"), "model_run_id": V("refit")},
}
CONTROL = set(job.CONTROL_KEYS)


def assert_pipeline_job(settings: dict, notebook_path: str = "databricks_jobs/task_notebook") -> None:
    """The tabtune job: five tasks, the dependency edges of `mlflow run`'s order, each task the
    task notebook with its step's parameters, every reference resolvable when the task starts."""
    tasks = {t["task_key"]: t for t in settings["tasks"]}
    assert list(tasks) == ["prepare", "tune_lasso", "tune_catboost", "refit", "package"]
    edges = {(d["task_key"], key) for key, t in tasks.items() for d in t.get("depends_on", [])}
    assert edges == {("prepare", "tune_lasso"), ("prepare", "tune_catboost"), ("prepare", "refit"),
                     ("tune_lasso", "refit"), ("tune_catboost", "refit"), ("refit", "package")}
    upstream_of = {key: {d["task_key"] for d in t.get("depends_on", [])} for key, t in tasks.items()}

    def ancestors(key: str) -> set[str]:
        return set().union(*({up} | ancestors(up) for up in upstream_of[key]))

    job_parameters = {p["name"] for p in settings["parameters"]}
    for key, t in tasks.items():
        source = "GIT" if notebook_path == job.NOTEBOOK else "WORKSPACE"
        assert t["notebook_task"] == {"notebook_path": notebook_path, "source": source,
                                      "base_parameters": TASK_PARAMETERS[key]}
        assert t["job_cluster_key"] == settings["job_clusters"][0]["job_cluster_key"]
        assert t["libraries"] == [{"pypi": {"package": pin}} for pin in job.requirement_pins()]
        entry_point = TASK_PARAMETERS[key]["entry_point"]
        step_options = {p.name for p in importlib.import_module(f"steps.{entry_point}").command.params}
        assert set(TASK_PARAMETERS[key]) - CONTROL <= step_options
        for value in TASK_PARAMETERS[key].values():
            assert set(re.findall(r"\{\{job\.parameters\.(\w+)\}\}", value)) <= job_parameters
            assert set(re.findall(r"\{\{tasks\.(\w+)\.values\.\w+\}\}", value)) <= ancestors(key)


def test_job_runs_the_steps_in_dependency_order():
    settings = job.build_job(experiment=EXPERIMENT, cluster={"spark_version": "15.4.x"}, git_url=GIT_URL)
    assert_pipeline_job(settings)
    assert settings["git_source"] == {"git_url": GIT_URL, "git_provider": "gitHub", "git_branch": "main"}
    assert settings["job_clusters"] == [
        {"job_cluster_key": "tabtune", "new_cluster": {"spark_version": "15.4.x"}}]
    assert (PROJECT_DIR / f"{job.NOTEBOOK}.py").read_text().startswith("# Databricks notebook source\n")


def test_job_parameter_defaults_are_the_mlproject_ones():
    settings = job.build_job(experiment=EXPERIMENT, cluster={}, workspace_dir="/Workspace/Users/me/tabtune")
    defaults = {p["name"]: p["default"] for p in settings["parameters"]}
    assert defaults == {"experiment": EXPERIMENT, "data": "diabetes", "target": "", "trials": "50",
                        "alphas": "1,0.3,0.1,0.03,0.01,0.003,0.001", "iterations": "500", "seed": "42",
                        "tune_rows": "0", "storage": "", "study_name": "", "n_jobs": "1", "pruner": "none",
                        "max_iterations": "5000", "early_stopping_rounds": "100", "try_defaults": "true",
                        "registered_model_name": "tabtune-regressor", "alias": "champion",
                        "min_improvement": "0", "promote": "gate"}
    assert_pipeline_job(settings, notebook_path="/Workspace/Users/me/tabtune/databricks_jobs/task_notebook")
    assert "git_source" not in settings


def test_task_notebook_reads_its_parameters_and_runs_its_task(monkeypatch):
    """The notebook, executed as Databricks would (its folder as working directory, `dbutils` a
    global), finds the repository, reads exactly its task's parameters and hands them on."""
    calls = []
    monkeypatch.setattr(task, "run_task", lambda *args, **kwargs: calls.append((args, kwargs)))
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(PROJECT_DIR / "databricks_jobs")
    notebook = PROJECT_DIR / f"{job.NOTEBOOK}.py"
    settings = job.build_job(experiment=EXPERIMENT, cluster={}, git_url=GIT_URL, workers=2)
    tasks = {t["task_key"]: t for t in settings["tasks"]}
    for key, task_settings in [("refit", tasks["refit"]), ("tune_catboost", tasks["tune_catboost"]),
                               ("tune_catboost_worker", tasks["tune_catboost_workers"]["for_each_task"]["task"])]:
        calls.clear()
        params = task_settings["notebook_task"]["base_parameters"]
        task_values, secrets = TaskValues().of(key), SimpleNamespace(get=lambda scope, key: FAKE_SECRET)
        dbutils = SimpleNamespace(widgets=SimpleNamespace(get=params.__getitem__), secrets=secrets,
                                  jobs=SimpleNamespace(taskValues=task_values))
        exec(compile(notebook.read_text(), str(notebook), "exec"), {"dbutils": dbutils, "__name__": "__main__"})
        assert calls == [((params["step"], params, task_values), {"secrets": secrets})]
    assert sys.path[0] == str(PROJECT_DIR)


def test_databricks_folder_does_not_shadow_the_sdk():
    """With the repository root first on sys.path (as in the task notebook), `databricks` is still
    databricks-sdk's namespace package: our `databricks/` folder holds no Python."""
    assert not list((PROJECT_DIR / "databricks").rglob("*.py"))
    code = "import sys; sys.path.insert(0, sys.argv[1]); import databricks.sdk as s; print(s.__file__)"
    found = subprocess.run([sys.executable, "-c", code, str(PROJECT_DIR)], capture_output=True, text=True,
                           check=True)
    assert (PROJECT_DIR / "databricks") not in Path(found.stdout.strip()).resolve().parents


def submit(workspace: Workspace, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "databricks_jobs.submit", *args], databricks_env(workspace, tmp_path))


@pytest.fixture
def filled_cluster(tmp_path) -> Path:
    """databricks/job-cluster.json with its placeholders filled in, as a user would."""
    path = tmp_path / "cluster.json"
    path.write_text(JOB_CLUSTER.read_text().replace("REPLACE-ME-node-type", "i3.xlarge"))
    return path


def test_submit_creates_the_job_then_updates_it_and_starts_runs(workspace, filled_cluster, tmp_path):
    args = ["--git-url", GIT_URL, "--experiment", EXPERIMENT, "--cluster", str(filled_cluster)]
    assert_ok(submit(workspace, tmp_path, *args, "-P", "trials=10", "-P", "target="))

    expected = job.build_job(experiment=EXPERIMENT, cluster=job.load_cluster(filled_cluster), git_url=GIT_URL)
    created = workspace.only("POST", "/api/2.2/jobs/create").json()
    assert created == expected  # the definition reaches the API whole, through the SDK's types
    assert_pipeline_job(created)
    assert created["job_clusters"][0]["new_cluster"]["node_type_id"] == "i3.xlarge"
    started = workspace.only("POST", "/api/2.2/jobs/run-now").json()
    assert started == {"job_id": 3001, "job_parameters": {"trials": "10", "target": ""}}

    # Submitting again updates that job instead of creating a second one.
    assert_ok(submit(workspace, tmp_path, *args))
    assert len(workspace.called("POST", "/api/2.2/jobs/create")) == 1
    assert workspace.only("POST", "/api/2.2/jobs/reset").json() == {"job_id": 3001, "new_settings": expected}
    assert workspace.called("POST", "/api/2.2/jobs/run-now")[-1].json() == {"job_id": 3001}
    assert not workspace.unanswered
    assert_token_only_in_headers(workspace)


def test_submit_refuses_placeholders_and_unknown_parameters(workspace, filled_cluster, tmp_path):
    result = submit(workspace, tmp_path, "--git-url", GIT_URL, "--experiment", EXPERIMENT)
    assert result.returncode != 0 and "REPLACE-ME" in result.stderr
    result = submit(workspace, tmp_path, "--git-url", GIT_URL, "--experiment", EXPERIMENT,
                    "--cluster", str(filled_cluster), "-P", "trails=3")
    assert result.returncode != 0 and "trails=3" in result.stderr
    assert workspace.requests == []


def worker_task_parameters() -> dict[str, str]:
    """What each iteration of tune_catboost's for_each_task gets: tune_catboost's parameters, with
    the storage read from the secret and the worker's index from the iteration's input."""
    return {**TASK_PARAMETERS["tune_catboost"], "role": "worker", "worker": "{{input}}",
            "storage_secret_scope": "tabtune", "storage_secret_key": "optuna-storage",
            "storage": "env:TABTUNE_OPTUNA_STORAGE"}


def assert_workers_job(settings: dict, workers: int) -> None:
    """tune_catboost as `workers` Optuna workers in a for_each_task, then a collect task under the
    step's own key, so refit's reference is unchanged; lasso (a grid) stays one task."""
    tasks = {t["task_key"]: t for t in settings["tasks"]}
    assert list(tasks) == ["prepare", "tune_lasso", "tune_catboost_workers", "tune_catboost", "refit", "package"]
    loop = tasks["tune_catboost_workers"]
    assert loop["depends_on"] == [{"task_key": "prepare"}]
    cluster = settings["job_clusters"][0]["new_cluster"]
    assert loop["for_each_task"] == {
        "inputs": json.dumps(list(range(workers))), "concurrency": workers,
        "task": {"task_key": "tune_catboost_worker", "new_cluster": cluster,
                 "libraries": [{"pypi": {"package": pin}} for pin in job.requirement_pins()],
                 "notebook_task": {"notebook_path": job.NOTEBOOK, "source": "GIT",
                                   "base_parameters": worker_task_parameters()}}}
    assert json.loads(loop["for_each_task"]["inputs"]) == list(range(workers))
    collect = tasks["tune_catboost"]
    assert collect["depends_on"] == [{"task_key": "tune_catboost_workers"}]
    assert collect["notebook_task"]["base_parameters"] == {
        "step": "tune_catboost", "role": "collect", **PIPELINE, "workers": str(workers)}
    for key in ("prepare", "tune_lasso", "refit", "package"):
        assert tasks[key]["notebook_task"]["base_parameters"] == TASK_PARAMETERS[key]
    assert {d["task_key"] for d in tasks["refit"]["depends_on"]} == {"prepare", "tune_lasso", "tune_catboost"}
    names_ = {p["name"] for p in settings["parameters"]}
    assert "storage" not in names_  # no task reads it: the workers' storage is the secret
    worker_options = set(worker_task_parameters()) - CONTROL
    assert worker_options <= {p.name for p in importlib.import_module("steps.tune").command.params}
    for value in worker_task_parameters().values():
        assert set(re.findall(r"\{\{job\.parameters\.(\w+)\}\}", value)) <= names_
        assert set(re.findall(r"\{\{tasks\.(\w+)\.values\.\w+\}\}", value)) <= {"prepare"}


def test_workers_run_tuning_as_a_for_each_task_on_one_study():
    settings = job.build_job(experiment=EXPERIMENT, cluster={"spark_version": "15.4.x"}, git_url=GIT_URL, workers=4)
    assert_workers_job(settings, 4)
    assert job.build_job(experiment=EXPERIMENT, cluster={}, git_url=GIT_URL, workers=1) == job.build_job(
        experiment=EXPERIMENT, cluster={}, git_url=GIT_URL)
    with pytest.raises(ValueError, match="workers"):
        job.build_job(experiment=EXPERIMENT, cluster={}, git_url=GIT_URL, workers=0)
    assert job.parameter_names("tune_catboost", "worker") == list(worker_task_parameters())


def assert_secret_in_no_body(workspace: Workspace) -> None:
    assert workspace.requests
    for request in workspace.requests:
        for text in (FAKE_SECRET.encode(), FAKE_SECRET_MARK.encode()):
            assert text not in request.body, f"the secret in the body of {request.method} {request.path}"
            assert text.decode() not in request.path + json.dumps(request.query)


def test_submit_with_workers_sends_the_for_each_job_and_no_secret(workspace, filled_cluster, tmp_path):
    """The storage URL is in the submitting shell's environment (as a careless user might have
    it) and in no request: the job names the secret, never its value."""
    env = databricks_env(workspace, tmp_path) | {"TABTUNE_OPTUNA_STORAGE": FAKE_SECRET}
    args = ["--git-url", GIT_URL, "--experiment", EXPERIMENT, "--cluster", str(filled_cluster), "--workers", "3",
            "-P", "trials=30"]
    assert_ok(run([sys.executable, "-m", "databricks_jobs.submit", *args], env))
    created = workspace.only("POST", "/api/2.2/jobs/create").json()
    assert created == job.build_job(experiment=EXPERIMENT, cluster=job.load_cluster(filled_cluster),
                                    git_url=GIT_URL, workers=3)
    assert_workers_job(created, 3)
    assert workspace.only("POST", "/api/2.2/jobs/run-now").json() == {"job_id": 3001,
                                                                       "job_parameters": {"trials": "30"}}
    assert not workspace.unanswered
    assert_secret_in_no_body(workspace)
    assert_token_only_in_headers(workspace)


# ----------------------------------------------------- job tasks: run-ID passing, locally simulated
class TaskValues:
    """Stands in for dbutils.jobs.taskValues: what each task set, under its task key."""

    def __init__(self):
        self.values: dict[str, dict[str, object]] = {}

    def of(self, task_key: str):
        store = self.values.setdefault(task_key, {})

        class _Task:
            @staticmethod
            def set(key, value):
                json.dumps(value)  # Databricks only takes JSON-able values
                store[key] = value

        return _Task()

    def resolve(self, template: str, job_parameters: dict[str, str]) -> str:
        """A parameter with its dynamic value references replaced, as Databricks does."""
        template = re.sub(r"\{\{job\.parameters\.(\w+)\}\}", lambda m: job_parameters[m[1]], template)
        return re.sub(r"\{\{tasks\.(\w+)\.values\.(\w+)\}\}", lambda m: str(self.values[m[1]][m[2]]),
                      template)


@pytest.fixture
def local_store(tmp_path, monkeypatch):
    """A throwaway sqlite tracking store as the default one, as a Databricks notebook has its workspace."""
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.chdir(tmp_path)  # MLflow puts a new experiment's artifacts in ./mlruns
    previous = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    try:
        yield MlflowClient(uri)
    finally:
        mlflow.set_tracking_uri(previous)


def fake_step(received: dict, fail: str | None = None):
    """A step that trains nothing: it resumes its run through the project's own tracking code
    and, as refit, logs what the pipeline run summarises."""

    def runner(entry_point: str, options: dict[str, str]) -> str:
        step = names.tune_step(options["family"]) if entry_point == names.TUNE else entry_point
        received[step] = options
        with tracking.step_run(step) as run_id:
            if step == fail:
                raise InputError("trials", "no trial completed")
            if step == names.REFIT:
                tracking.log_results(metrics={"test_rmse": 51.5})
                tracking.log_text("family,val_rmse,test_rmse\ncatboost,50.0,51.5\n", names.LEADERBOARD_FILE)
            return run_id

    return runner


def simulate_job(values: TaskValues, runner, overrides: dict[str, str] | None = None, workers: int = 1,
                 secrets=None) -> None:
    """Run the job's tasks in its order, each with its parameters resolved from job parameters and
    the task values set so far: what Databricks does, minus the cluster. A for_each_task runs its
    nested task once per input, one after another (`{{input}}` resolved to the input); its
    iterations' task values are kept apart, as no other task may reference them."""
    settings = job.build_job(experiment=EXPERIMENT, cluster={}, git_url=GIT_URL, workers=workers)
    job_parameters = {p["name"]: p["default"] for p in settings["parameters"]} | (overrides or {})
    done: set[str] = set()
    for t in settings["tasks"]:
        assert {d["task_key"] for d in t.get("depends_on", [])} <= done  # the list is in dependency order
        if "for_each_task" in t:
            loop = t["for_each_task"]
            for item in json.loads(loop["inputs"]):
                templates = loop["task"]["notebook_task"]["base_parameters"]
                params = {key: values.resolve(value.replace("{{input}}", json.dumps(item)), job_parameters)
                          for key, value in templates.items()}
                iteration = TaskValues().of(f"{loop['task']['task_key']}[{item}]")
                task.run_task(params["step"], params, iteration, runner=runner, secrets=secrets)
        else:
            templates = t["notebook_task"]["base_parameters"]
            params = {key: values.resolve(value, job_parameters) for key, value in templates.items()}
            task.run_task(params["step"], params, values.of(t["task_key"]), runner=runner, secrets=secrets)
        done.add(t["task_key"])


def test_tasks_hand_each_other_run_ids_and_nest_under_one_pipeline_run(local_store):
    values, received = TaskValues(), {}
    simulate_job(values, fake_step(received), overrides={"trials": "7"})

    ids = {step.name: values.values[step.name]["run_id"] for step in pipeline_steps()}
    pipeline_run_id = values.values["prepare"]["pipeline_run_id"]
    data_run_id = ids["prepare"]
    assert received == {
        "prepare": {"data": "diabetes", "target": "", "seed": "42"},
        "tune_lasso": {"data_run_id": data_run_id, "alphas": "1,0.3,0.1,0.03,0.01,0.003,0.001", "seed": "42",
                       "tune_rows": "0"},
        "tune_catboost": {"data_run_id": data_run_id, "trials": "7", "iterations": "500", "seed": "42",
                          "storage": "", "study_name": "", "n_jobs": "1", "pruner": "none", "tune_rows": "0",
                          "family": "catboost"},
        "refit": {"data_run_id": data_run_id, "tune_run_ids": f"{ids['tune_lasso']},{ids['tune_catboost']}",
                  "max_iterations": "5000", "early_stopping_rounds": "100", "try_defaults": "true"},
        "package": {"model_run_id": ids["refit"], "registered_model_name": "tabtune-regressor",
                    "alias": "champion", "min_improvement": "0", "promote": "gate"},
    }

    pipeline = local_store.get_run(pipeline_run_id)
    assert pipeline.info.status == "FINISHED"
    assert local_store.get_experiment(pipeline.info.experiment_id).name == EXPERIMENT
    assert pipeline.data.tags[names.STEP_TAG] == "main"
    assert {k: v for k, v in pipeline.data.tags.items() if k.startswith(names.STEP_RUN_TAG_PREFIX)} == {
        names.STEP_RUN_TAG_PREFIX + step: run_id for step, run_id in ids.items()}
    assert pipeline.data.metrics["test_rmse"] == 51.5
    artifacts = {a.path for a in local_store.list_artifacts(pipeline_run_id)}
    assert {names.LEADERBOARD_FILE, names.SUMMARY_FILE} <= artifacts
    for step, run_id in ids.items():
        step_run = local_store.get_run(run_id)
        assert step_run.info.status == "FINISHED"
        assert step_run.data.tags["mlflow.parentRunId"] == pipeline_run_id
        assert step_run.data.tags[names.STEP_TAG] == step
        assert step_run.info.run_name == step
    assert "MLFLOW_RUN_ID" not in os.environ


def test_a_failed_step_fails_the_pipeline_run_and_publishes_nothing(local_store):
    values = TaskValues()
    with pytest.raises(InputError):
        simulate_job(values, fake_step({}, fail=names.tune_step("catboost")))

    assert "run_id" not in values.values["tune_catboost"]
    assert names.REFIT not in values.values  # Databricks would skip it: upstream failed
    pipeline = local_store.get_run(values.values["prepare"]["pipeline_run_id"])
    failed_run_id = local_store.search_runs(
        [pipeline.info.experiment_id], f"tags.`{names.STEP_TAG}` = 'tune_catboost'")[0].info.run_id
    assert pipeline.info.status == "FAILED"
    assert pipeline.data.tags[names.ERROR_TAG] == f"step tune_catboost failed (run {failed_run_id})"
    assert local_store.get_run(failed_run_id).info.status == "FAILED"


def test_step_options_are_checked_and_typed_by_the_step_command():
    assert task.step_kwargs("tune_catboost", {"data_run_id": "abc", "trials": "3", "iterations": "30",
                                              "seed": "42"}) == {
        "data_run_id": "abc", "trials": 3, "iterations": 30, "seed": 42, "timeout_s": 0.0, "storage": "",
        "study_name": "", "n_jobs": 1, "pruner": "none", "parent_run_id": "", "thread_count": 0, "tune_rows": 0}
    assert task.step_kwargs("prepare", {"data": "diabetes", "target": "", "seed": "1"})["val_size"] == 0.2
    import click

    with pytest.raises(click.BadParameter) as bad:
        task.step_kwargs("tune_catboost", {"trials": "0"})
    assert bad.value.param.name == "trials"


class FakeSecrets:
    """Stands in for dbutils.secrets: one secret, the Optuna storage URL; records what was read."""

    def __init__(self, scope: str, key: str, value: str):
        self.stored, self.read = {(scope, key): value}, []

    def get(self, scope: str, key: str) -> str:
        self.read.append((scope, key))
        return self.stored[(scope, key)]


def test_workers_share_one_study_and_refit_gets_its_tuning_run(local_store, tmp_path):
    """Three tuning workers, as the for_each_task runs them, with the real prepare and tune steps
    (tiny: 4 trials of 20 trees) on one Optuna study in a sqlite file whose URL is the secret: the
    first worker's run is the tuning run, the others are nested under it; the collect task
    publishes that run, refit receives it; the URL is in no MLflow param, tag or artifact."""
    mark = "s3cret-4711"
    secret_url = f"sqlite:///{tmp_path / f'optuna-{mark}.db'}"
    secrets = FakeSecrets("tabtune", "optuna-storage", secret_url)
    values, received, fake = TaskValues(), {}, None

    def runner(entry_point: str, options: dict[str, str]) -> str:
        if entry_point in (names.PREPARE, names.TUNE):
            if entry_point == names.TUNE:
                received.setdefault("workers", []).append(dict(options))
                assert os.environ[job.STORAGE_ENV] == secret_url
            return task.run_step(entry_point, options)
        return fake(entry_point, options)

    fake = fake_step(received)
    simulate_job(values, runner, overrides={"trials": "4", "iterations": "20"}, workers=3, secrets=secrets)

    assert secrets.read == [("tabtune", "optuna-storage")] * 3
    assert job.STORAGE_ENV not in os.environ  # the secret does not outlive the step
    assert [w["seed"] for w in received["workers"]] == ["42", "43", "44"]
    assert {w["storage"] for w in received["workers"]} == {"env:TABTUNE_OPTUNA_STORAGE"}
    assert {w["study_name"] for w in received["workers"]} == {""}  # derived from the data run: one study

    pipeline_run_id = values.values["prepare"]["pipeline_run_id"]
    tuning_run_id = values.values["tune_catboost"]["run_id"]
    assert received["refit"]["tune_run_ids"] == f"{values.values['tune_lasso']['run_id']},{tuning_run_id}"
    pipeline = local_store.get_run(pipeline_run_id)
    assert pipeline.info.status == "FINISHED"
    assert pipeline.data.tags[names.STEP_RUN_TAG_PREFIX + "tune_catboost"] == tuning_run_id
    worker_ids = [pipeline.data.tags[f"{task.WORKER_RUN_TAG_PREFIX}tune_catboost.{i}"] for i in range(3)]
    assert worker_ids[0] == tuning_run_id  # the first worker created the study: its run is the tuning run
    tuning = local_store.get_run(tuning_run_id)
    assert tuning.data.tags[names.STEP_TAG] == "tune_catboost"
    assert tuning.data.tags[names.PARENT_RUN_TAG] == pipeline_run_id
    assert "best_trial" in tuning.data.tags and tuning.data.metrics["trials_complete"] == 4
    for worker_id in worker_ids[1:]:
        tags = local_store.get_run(worker_id).data.tags
        assert tags[names.STEP_TAG] == "tune_catboost.worker"
        assert tags[names.TUNING_RUN_TAG] == tuning_run_id
        assert tags[names.PARENT_RUN_TAG] == tuning_run_id  # nested under the study's tuning run
    trials = local_store.search_runs([tuning.info.experiment_id],
                                     f"tags.`{names.PARENT_RUN_TAG}` = '{tuning_run_id}'")
    assert len([r for r in trials if names.TRIAL_NUMBER_TAG in r.data.tags]) == 4

    # The secret URL is nowhere in the tracking store: no param, tag, metric name or artifact.
    everything = local_store.search_runs([tuning.info.experiment_id])
    assert len(everything) > 8
    for found in everything:
        assert mark not in json.dumps([found.data.params, found.data.tags, list(found.data.metrics)])
        for path in Path(found.info.artifact_uri.removeprefix("file://")).rglob("*"):
            if path.is_file():
                assert mark.encode() not in path.read_bytes(), path


def test_collect_refuses_workers_on_different_studies_or_missing(local_store):
    """The collect task fails the pipeline run when a worker's run is missing, or when workers
    logged to two tuning runs (they did not share a study)."""
    pipeline_run_id = task.start_pipeline_run(EXPERIMENT)
    params = {"step": "tune_catboost", "role": "collect", "pipeline_run_id": pipeline_run_id, "workers": "2"}
    first = tracking.create_run("tune_catboost", tags={names.STEP_TAG: "tune_catboost", "best_trial": "0"},
                                parent_run_id=pipeline_run_id)
    tracking.log_results(tags={f"{task.WORKER_RUN_TAG_PREFIX}tune_catboost.0": first}, run_id=pipeline_run_id)
    with pytest.raises(RuntimeError, match=r"expected the runs of workers \['0', '1'\], found \['0'\]"):
        task.run_task("tune_catboost", params, TaskValues().of("tune_catboost"))
    second = tracking.create_run("tune_catboost", tags={names.STEP_TAG: "tune_catboost", "best_trial": "0"},
                                 parent_run_id=pipeline_run_id)
    tracking.log_results(tags={f"{task.WORKER_RUN_TAG_PREFIX}tune_catboost.1": second}, run_id=pipeline_run_id)
    values = TaskValues()
    with pytest.raises(RuntimeError, match="2 tuning runs"):
        task.run_task("tune_catboost", params, values.of("tune_catboost"))
    assert values.values["tune_catboost"] == {}
    assert local_store.get_run(pipeline_run_id).info.status == "FAILED"


# ------------------------------------------------------------------ asset bundle: databricks.yml
def bundle_resources(tmp_path: Path, variables: dict[str, object]) -> dict:
    """What `databricks bundle deploy` gets from databricks.yml's Python resource loader: the
    CLI's `load_resources` phase of databricks-bundles, run in-process on the bundle configuration
    as the CLI hands it over (target chosen, variables given their values)."""
    import yaml
    from databricks.bundles import build

    config = yaml.safe_load((PROJECT_DIR / "databricks.yml").read_text())
    target = next(name for name, settings in config["targets"].items() if settings.get("default"))
    values = {name: spec.get("default") for name, spec in config["variables"].items()} | variables
    given = {**config, "bundle": {**config["bundle"], "target": target},
             "variables": {name: {"value": value} for name, value in values.items()}}
    paths = {name: tmp_path / f"bundle-{name}.json" for name in ("input", "output", "diagnostics")}
    paths["input"].write_text(json.dumps(given))
    args = build._Args(phase="load_resources", input=str(paths["input"]), output=str(paths["output"]),
                       diagnostics=str(paths["diagnostics"]), locations=None, unknown_args=[])
    monkeypatched_path = list(sys.path)
    try:
        sys.path.insert(0, str(PROJECT_DIR))  # the CLI runs the loader from the bundle root
        result, _, diagnostics = build.python_mutator(args)
    finally:
        sys.path[:] = monkeypatched_path
    assert not diagnostics.has_error(), diagnostics
    return result["resources"]


@pytest.mark.parametrize("workers", [1, 3])
def test_bundle_job_is_build_job_typed_by_databricks_bundles(tmp_path, workers):
    from databricks.bundles.jobs import Job

    config_text = (PROJECT_DIR / "databricks.yml").read_text()
    assert '"databricks_jobs.bundle:load_resources"' in config_text
    resources = bundle_resources(tmp_path, {"node_type_id": "i3.xlarge", "workers": str(workers)})
    assert list(resources) == ["jobs"] and list(resources["jobs"]) == ["tabtune"]
    cluster = job.load_cluster(JOB_CLUSTER) | {"node_type_id": "${var.node_type_id}"}
    expected = job.build_job(experiment="${var.experiment}", cluster=cluster, workspace_dir="${workspace.file_path}",
                             workers=workers, secret_scope="${var.secret_scope}", secret_key="${var.secret_key}")
    assert resources["jobs"]["tabtune"] == expected  # through Job.from_dict and back, nothing lost
    assert Job.from_dict(expected).as_dict() == expected
    if workers > 1:
        tasks = {t["task_key"]: t for t in expected["tasks"]}
        assert tasks["tune_catboost_workers"]["for_each_task"]["concurrency"] == workers
    with pytest.raises(ValueError, match="Unexpected field"):  # the types do check our dicts
        Job.from_dict({**expected, "tasks": [{**expected["tasks"][0], "notebook": {}}]})


def test_bundle_variables_cover_what_the_job_interpolates():
    import yaml

    config = yaml.safe_load((PROJECT_DIR / "databricks.yml").read_text())
    from databricks_jobs import bundle

    text = json.dumps(bundle.job_settings({"workers": 2}))
    assert set(re.findall(r"\$\{var\.(\w+)\}", text)) <= set(config["variables"])
    assert "${workspace.file_path}/databricks_jobs/task_notebook" in text
    assert "databricks-bundles==1.22.1" in (PROJECT_DIR / "requirements-dev.txt").read_text()
    assert "databricks-bundles" not in (PROJECT_DIR / "requirements.txt").read_text()
