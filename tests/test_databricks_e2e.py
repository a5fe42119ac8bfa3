"""tabtune on Databricks end to end, without Databricks (docs/databricks.md).

A local HTTP stand-in for a workspace (127.0.0.1, a free port) answers the few REST endpoints our
code calls and records every request, so the tests assert on exactly what would be sent:

- classic: `mlflow run <project> -b databricks --backend-config databricks/cluster-spec.json`
  (the real MLflow CLI, on a `git archive` of the project and on a `git daemon` URL): the project
  tarball it uploads and the one-time run it submits;
- job: `python -m databricks_jobs.submit` (the real databricks-sdk): the job definition it sends.

And the job's tasks with the real prepare and tuning steps: three tuning workers on one Optuna
study, simulated locally with a real MLflow store (test_databricks_job.py has the job's
definition and the tasks with fake steps, in-process).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
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
from urllib.parse import parse_qs, urlsplit

import mlflow
import pytest

from databricks_jobs import job, task
from steps.lib import names
from tests.conftest import PROJECT_DIR
from tests.test_databricks_job import (
    CLUSTER_SPEC,
    EXPERIMENT,
    FAKE_SECRET,
    FAKE_SECRET_MARK,
    GIT_URL,
    JOB_CLUSTER,
    MAIN_DEFAULTS,
    TaskValues,
    assert_pipeline_job,
    assert_workers_job,
    default_store,
    fake_step,
    simulate_job,
)

pytestmark = pytest.mark.slow

TOKEN = "dapi-test-token"


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


# --------------------------------------------------------------- job: python -m databricks_jobs.submit
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


# ------------------------------------------------- job tasks with the real steps: workers on one study
@pytest.fixture
def local_store(tmp_path):
    with default_store(tmp_path) as client:
        yield client


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
    seed = int(MAIN_DEFAULTS["seed"])
    assert [w["seed"] for w in received["workers"]] == [str(seed), str(seed + 1), str(seed + 2)]
    assert {w["storage"] for w in received["workers"]} == {"env:TABTUNE_OPTUNA_STORAGE"}
    # The default study name, empty: the step derives it from the data run, so all join one study.
    assert {w["study_name"] for w in received["workers"]} == {MAIN_DEFAULTS["study_name"]} == {""}

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
