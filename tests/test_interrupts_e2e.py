"""What happens when things fail, through the real `mlflow run` CLI: a signal to the top process
stops the whole pipeline with every run it left RUNNING ended KILLED, and the rerun resumes at
the interrupted step; an unreachable tracking server is named in one line instead of retried
for minutes. The project is a copy, so its processes are told apart from any other by path."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import PROJECT_DIR, TINY, Store, check, make_frame, mlflow_env, mlflow_run_args
from tests.servers import free_port

pytestmark = pytest.mark.slow
BUDGET = {"trials": 100, "iterations": 300}  # seconds of tuning: mid-tuning when the signal comes
# The signal comes 5-20 s into tuning; the rerun tunes what is left of the budget, so time bounds
# it (100 more trials cost two minutes of CI, and the rerun's steps are what the test checks)
SIGNALLED_BUDGET = {**BUDGET, "timeout_s": 45}
STOP_WITHIN_S = 15  # "within a few seconds", with a margin for a busy machine


def copy_project(root: Path) -> Path:
    project = root / "project"
    project.mkdir()
    shutil.copytree(PROJECT_DIR / "steps", project / "steps", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("MLproject", "python_env.yaml", "conda.yaml", "requirements.txt"):
        shutil.copy(PROJECT_DIR / name, project)
    return project


def pipeline_processes(project: Path) -> list[str]:
    """Processes of this project: `mlflow run <project>` and the steps (which run in <project>)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            args = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(f"/proc/{entry}/cwd")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue  # gone meanwhile, or not ours
        if state == "Z":
            continue  # exited, not yet reaped by its parent
        if (str(project) in args and "mlflow" in args) or (cwd == str(project) and "steps." in args):
            found.append(f"{entry} {args}")
    return found


def default_sigint() -> None:
    """SIGINT acted on, as in a user's terminal: a test run started in the background by a
    non-interactive shell (`cmd &`, nohup) ignores SIGINT, and every child would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def pipeline_in_background(project: Path, store: Store, params: dict, *, ready_when: tuple[str, ...]):
    """`mlflow run <project> -e main` in its own session, its output read as it comes (so no
    process of the pipeline blocks on a full pipe); yields the process and its output lines
    once every text in `ready_when` has been printed. On leaving, what is left of its process
    group is SIGKILLed."""
    process = subprocess.Popen(mlflow_run_args("main", params, uri=str(project)), cwd=project,
                               env=mlflow_env(store.uri), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True, preexec_fn=default_sigint)
    output: list[str] = []
    ready = threading.Event()
    pending = set(ready_when)

    def drain() -> None:
        for line in process.stdout:
            output.append(line)
            pending.difference_update({text for text in pending if text in line})
            if not pending:
                ready.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        assert ready.wait(timeout=600), "".join(output)[-4000:]
        yield process, output
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        reader.join(timeout=30)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_mlflow_run_ends_everything_killed_and_the_rerun_resumes(tmp_path, signum):
    """What either signal leaves behind; after SIGTERM, the same command resumes at the step it stopped."""
    store, project = Store(tmp_path), copy_project(tmp_path)
    data = tmp_path / "table.csv"
    make_frame(n_rows=120, seed=9).to_csv(data, index=False)
    params = {**TINY, "data": str(data), "target": "y", **SIGNALLED_BUDGET}
    # tune_lasso runs beside tune_catboost: signal once it finished, so the rerun's
    # expectations below do not depend on which of the two was quicker
    with pipeline_in_background(project, store, params,
                                ready_when=("tune_catboost: trial #", "main: tune_lasso: ran")) as (process, output):
        os.kill(process.pid, signum)  # the top process only, not its group
        deadline = time.monotonic() + STOP_WITHIN_S
        while (left := pipeline_processes(project)) and time.monotonic() < deadline:
            time.sleep(0.2)
        with_group_gone = pipeline_processes(project)
    said = "".join(output)
    assert left == [], f"still running {STOP_WITHIN_S}s after {signum.name}: {with_group_gone}\n{said[-4000:]}"
    # `mlflow run` dies on SIGTERM (PDEATHSIG tells `main`); on SIGINT it cancels `main` with SIGTERM
    # itself. Either way `main` and the step get SIGTERM, and say so.
    assert "tabtune tune: interrupted by SIGTERM" in said, said[-3000:]  # tune_catboost is entry point tune
    assert "tabtune main: interrupted by SIGTERM" in said, said[-3000:]

    (pipeline,) = store.runs_of("main")
    (tuning_run,) = store.runs_of("tune_catboost")
    others = [run for run in store.runs() if run.info.run_id != pipeline.info.run_id]
    assert {run.info.status for run in others} <= {"FINISHED", "KILLED"}, [
        (run.info.run_name, run.info.status, run.data.tags.get("tabtune.interrupted")) for run in others]
    assert tuning_run.info.status == "KILLED"
    assert tuning_run.data.tags["tabtune.interrupted"] == "SIGTERM"
    trials = store.children(tuning_run.info.run_id)
    assert trials and all(t.info.status in ("FINISHED", "KILLED") for t in trials)
    assert all(t.data.tags["tabtune.interrupted"] == "SIGTERM" for t in trials if t.info.status == "KILLED")
    # After SIGINT, MLflow's CLI marks its own run FAILED once `main` has exited (it cannot tell
    # that main ended it KILLED); nothing of ours runs after that. The tag still says why.
    assert pipeline.info.status == ("KILLED" if signum == signal.SIGTERM else "FAILED")
    assert pipeline.data.tags["tabtune.interrupted"] == "SIGTERM"

    if signum == signal.SIGINT:
        return  # the rerun after Ctrl-C: test_reuse_e2e's persistent-study test, which also counts its trials
    rerun = check(store.run("main", params, uri=str(project), cwd=project)).stdout
    said_again = dict(re.findall(r"^main: (\w+): (ran|reused) [0-9a-f]+$", rerun, flags=re.M))
    assert said_again == {"prepare": "reused", "tune_lasso": "reused", "tune_catboost": "ran", "refit": "ran",
                          "package": "ran"}


def closed_port_uri() -> str:
    return f"http://user:pw@127.0.0.1:{free_port()}"  # nothing listens there once the socket is closed


def test_a_step_against_an_unreachable_tracking_server_says_so_in_one_line_within_30_s():
    uri = closed_port_uri()
    env = {**mlflow_env(uri), "MLFLOW_EXPERIMENT_ID": "0"}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "steps.prepare"], cwd=PROJECT_DIR, env=env,
                            capture_output=True, text=True, timeout=300)
    took = time.monotonic() - started
    masked = uri.replace("user:pw@", "user:***@")
    assert result.returncode == 1, result.stderr[-4000:]
    assert result.stderr.splitlines() == [
        f"tabtune prepare: error: tracking server {masked} is unreachable: Connection refused"]
    assert took < 30


def test_mlflow_run_against_an_unreachable_server_with_retries_off_fails_within_30_s(tmp_path):
    """`mlflow run` creates the run itself before any code of ours runs, so its own retry
    settings decide how long it takes (about 250 s with the defaults, measured)."""
    uri = closed_port_uri().replace("user:pw@", "")
    started = time.monotonic()
    result = subprocess.run(mlflow_run_args("main", {**TINY}), cwd=tmp_path,
                            env=mlflow_env(uri, MLFLOW_HTTP_REQUEST_MAX_RETRIES="0"),
                            capture_output=True, text=True, timeout=300)
    took = time.monotonic() - started
    assert result.returncode != 0
    assert f"API request to {uri}/api/2.0/mlflow/runs/create failed" in result.stderr
    assert took < 30


FAULT = """
        import pathlib, time  # injected by the test: wait until told, then fail as a step does
        while not pathlib.Path("fail-now").exists():
            time.sleep(0.1)
        from steps.lib.errors import InputError
        raise InputError("alphas", "injected fault")
"""


def test_a_step_that_fails_beside_another_stops_it_and_the_pipeline_names_the_failed_one(tmp_path):
    """tune_lasso and tune_catboost run side by side: when tune_lasso fails mid-tuning of
    tune_catboost, tune_catboost is stopped (KILLED, not left to finish its budget), no later
    step runs, and the pipeline run names tune_lasso."""
    store, project = Store(tmp_path), copy_project(tmp_path)
    step_file = project / "steps" / "tune_lasso.py"
    anchor = "        tracking.set_tags({names.DATA_RUN_TAG: data_run_id})\n"
    assert anchor in step_file.read_text()
    step_file.write_text(step_file.read_text().replace(anchor, anchor + FAULT))
    params = {**TINY, **BUDGET}
    with pipeline_in_background(project, store, params, ready_when=("tune_catboost: trial #",)) as (process, output):
        (project / "fail-now").touch()  # tune_lasso is waiting for this, tune_catboost is tuning
        deadline = time.monotonic() + STOP_WITHIN_S + 30  # + the time tune_lasso takes to fail
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        left = pipeline_processes(project)
    said = "".join(output)
    assert process.returncode not in (None, 0), said[-4000:]
    assert left == [], said[-4000:]
    assert "tabtune tune_lasso: error: alphas: injected fault" in said, said[-4000:]
    (lasso,) = store.runs_of("tune_lasso")
    assert f"tabtune main: error: step tune_lasso failed (run {lasso.info.run_id})" in said, said[-4000:]
    assert lasso.info.status == "FAILED" and lasso.data.tags["tabtune.error"] == "alphas: injected fault"
    (catboost,) = store.runs_of("tune_catboost")
    assert catboost.info.status == "KILLED" and catboost.data.tags["tabtune.interrupted"] == "SIGTERM"
    trials = store.children(catboost.info.run_id)
    assert 0 < len(trials) < BUDGET["trials"]  # stopped mid-budget
    assert all(t.info.status in ("FINISHED", "KILLED") for t in trials)
    assert store.runs_of("refit") == [] and store.runs_of("package") == []
    (pipeline,) = store.runs_of("main")
    assert pipeline.info.status == "FAILED" and pipeline.info.run_name == "tabtune"
    assert pipeline.data.tags["tabtune.error"] == f"step tune_lasso failed (run {lasso.info.run_id})"
