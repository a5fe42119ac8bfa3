"""The tabtune Databricks job, in-process and without Databricks (docs/databricks.md): the job
definition (databricks_jobs/job.py) and the bundle's (bundle.py, databricks.yml), the task
notebook, and how the tasks hand each other run IDs (task.py), simulated here with a real sqlite
tracking store and fake steps. The job submitted to a workspace stand-in, `mlflow run -b
databricks`, and tasks running the real tuning step are in test_databricks_e2e.py (slow).

Defaults and parameter sets come from MLproject, as the job's own do: what `mlflow run -e main`
offers is the contract, and each step task takes the settings of its entry point that `main`
offers too."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import click
import mlflow
import pytest
import yaml
from mlflow.tracking import MlflowClient

from databricks_jobs import job, task
from steps.lib import names, tracking
from steps.lib.errors import InputError
from steps.lib.orchestration.pipeline import steps as pipeline_steps
from tests.conftest import PROJECT_DIR

# A recognisable fake secret: the Optuna storage URL with its password, as a Databricks secret holds it.
FAKE_SECRET_MARK = "s3cret-4711-not-for-bodies"
FAKE_SECRET = f"postgresql://tabtune:{FAKE_SECRET_MARK}@optuna-db.example:5432/optuna"
EXPERIMENT = "/Shared/tabtune-test"
GIT_URL = "https://github.com/example/tabtune"
CLUSTER_SPEC = PROJECT_DIR / "databricks" / "cluster-spec.json"
JOB_CLUSTER = PROJECT_DIR / "databricks" / "job-cluster.json"

# ------------------------------------------------------------------------- MLproject, the contract
ENTRY_POINTS = yaml.safe_load((PROJECT_DIR / "MLproject").read_text())["entry_points"]
# `mlflow run -e main`'s parameters and their defaults, as strings (what a job parameter holds).
MAIN_DEFAULTS = {name: str(spec.get("default", "")) for name, spec in ENTRY_POINTS[names.MAIN]["parameters"].items()}
JOB_ENTRY_POINTS = ("prepare", "tune_lasso", "tune", "refit", "package")  # what the default job's tasks run


def settings_of(entry_point: str) -> list[str]:
    """The pipeline settings an entry point takes: its MLproject parameters that `main` offers too
    (not the run IDs, the family or a worker's knobs, which only the step has)."""
    return [name for name in ENTRY_POINTS[entry_point]["parameters"] if name in MAIN_DEFAULTS]


# Every job parameter but the experiment: each setting some task's entry point takes.
JOB_SETTINGS = {name for entry_point in JOB_ENTRY_POINTS for name in settings_of(entry_point)}


def P(name: str) -> str:  # a job parameter reference
    return "{{job.parameters." + name + "}}"


def V(task_key: str, key: str = "run_id") -> str:  # a task value reference
    return "{{tasks." + task_key + ".values." + key + "}}"


PIPELINE = {"pipeline_run_id": V("prepare", "pipeline_run_id")}


def step_task(step: str, entry_point: str, control: dict[str, str], **wired: str) -> dict[str, str]:
    """A step task's notebook parameters: which step, its role and entry point, where the pipeline
    run is (`control`), each setting of the entry point from the job parameter of that name, and
    the options the job wires itself (`wired`: upstream run IDs, the family)."""
    return {"step": step, "role": "step", "entry_point": entry_point, **control,
            **{name: P(name) for name in settings_of(entry_point)}, **wired}


TASK_PARAMETERS = {
    "prepare": step_task("prepare", "prepare", {"experiment": P("experiment"),
                                                "check_registered_model_name": P("registered_model_name")}),
    "tune_lasso": step_task("tune_lasso", "tune_lasso", PIPELINE, data_run_id=V("prepare")),
    "tune_catboost": step_task("tune_catboost", "tune", PIPELINE, family="catboost", data_run_id=V("prepare")),
    "refit": step_task("refit", "refit", PIPELINE, data_run_id=V("prepare"),
                       tune_run_ids=f"{V('tune_lasso')},{V('tune_catboost')}"),
    "package": step_task("package", "package", PIPELINE, model_run_id=V("refit")),
}
CONTROL = set(job.CONTROL_KEYS)


def test_cluster_spec_is_a_new_cluster_with_marked_placeholders():
    spec = json.loads(CLUSTER_SPEC.read_text())
    assert "existing_cluster_id" not in spec  # MLflow refuses it
    cluster = spec["new_cluster"]
    assert {"spark_version", "node_type_id", "num_workers"} <= set(cluster)
    assert cluster["node_type_id"].startswith("REPLACE-ME")
    assert re.fullmatch(r"12\.2\.x-cpu-ml-scala2\.12", cluster["spark_version"])  # pre-13.0 ML runtime


# --------------------------------------------------------------------------- job: databricks_jobs
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
    assert defaults == {"experiment": EXPERIMENT} | {name: MAIN_DEFAULTS[name] for name in JOB_SETTINGS}
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


@contextlib.contextmanager
def default_store(directory: Path) -> Iterator[MlflowClient]:
    """A throwaway sqlite tracking store in `directory` as the default one, as a Databricks
    notebook has its workspace's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_RUN_ID", raising=False)
        patch.chdir(directory)  # MLflow puts a new experiment's artifacts in ./mlruns
        previous = mlflow.get_tracking_uri()
        uri = f"sqlite:///{directory / 'mlflow.db'}"
        mlflow.set_tracking_uri(uri)
        try:
            yield MlflowClient(uri)
        finally:
            mlflow.set_tracking_uri(previous)


@pytest.fixture
def local_store(tmp_path):
    with default_store(tmp_path) as client:
        yield client


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
    assert MAIN_DEFAULTS["trials"] != "7"
    simulate_job(values, fake_step(received), overrides={"trials": "7"})

    ids = {step.name: values.values[step.name]["run_id"] for step in pipeline_steps()}
    pipeline_run_id = values.values["prepare"]["pipeline_run_id"]
    data_run_id = ids["prepare"]
    settings = MAIN_DEFAULTS | {"trials": "7"}

    def given(entry_point: str) -> dict[str, str]:  # each setting the step takes, as the job run has it
        return {name: settings[name] for name in settings_of(entry_point)}

    assert received == {
        "prepare": given("prepare"),
        "tune_lasso": {**given("tune_lasso"), "data_run_id": data_run_id},
        "tune_catboost": {**given("tune"), "data_run_id": data_run_id, "family": "catboost"},
        "refit": {**given("refit"), "data_run_id": data_run_id,
                  "tune_run_ids": f"{ids['tune_lasso']},{ids['tune_catboost']}"},
        "package": {**given("package"), "model_run_id": ids["refit"]},
    }
    assert received["tune_catboost"]["trials"] == "7"

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


def test_a_worker_samples_with_the_pipeline_seed_plus_its_index_whatever_its_spelling(local_store):
    """MLproject declares seed a float, so a job run may pass "42.0": worker 1 then tunes with seed 43."""

    class Secrets:
        def get(self, scope: str, key: str) -> str:
            return "sqlite:///unused.db"

    received: dict = {}
    step = next(s for s in pipeline_steps(("catboost",)) if s.entry_point == names.TUNE)
    pipeline_run_id = task.start_pipeline_run(EXPERIMENT)
    params = {key: value for key, value in job.worker_parameters(step).items() if "{{" not in value}
    params |= {"seed": "42.0", "family": "catboost", job.WORKER_KEY: "1", job.PIPELINE_RUN_KEY: pipeline_run_id}
    task.run_worker(step.name, params, TaskValues().of(step.name), Secrets(), runner=fake_step(received))
    assert received[step.name]["seed"] == "43"
    assert received[step.name]["storage"] == f"env:{job.STORAGE_ENV}"


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


def typed_defaults(entry_point: str) -> dict[str, object]:
    """An entry point's MLproject defaults as the step's run() gets them: MLproject's floats as
    numbers (a whole-number option's int compares equal), strings as they are."""
    return {name: float(spec["default"]) if spec["type"] == "float" else spec.get("default", "")
            for name, spec in ENTRY_POINTS[entry_point]["parameters"].items()}


@pytest.fixture
def step_calls(monkeypatch):
    """What task.run_step hands each step's run(): the real entry point modules, with run()
    recording its keyword arguments instead of running the step."""
    calls: dict[str, dict] = {}

    def recorder(entry_point: str):
        def run(**kwargs) -> str:
            calls[entry_point] = kwargs
            return "a-run-id"

        return run

    for entry_point in ("prepare", "tune_catboost"):
        monkeypatch.setattr(importlib.import_module(f"steps.{entry_point}"), "run", recorder(entry_point))
    return calls


def test_step_options_are_typed_by_the_step_command_with_the_mlproject_defaults(step_calls):
    task.run_step("tune_catboost", {"data_run_id": "abc", "trials": "3", "iterations": "30", "seed": "42"})
    task.run_step("prepare", {"data": "diabetes", "target": "", "seed": "1"})
    given = {"data_run_id": "abc", "trials": 3, "iterations": 30, "seed": 42}
    assert step_calls["tune_catboost"] == typed_defaults("tune_catboost") | given
    assert [type(step_calls["tune_catboost"][name]) for name in ("trials", "iterations", "seed")] == [int] * 3
    assert step_calls["prepare"] == typed_defaults("prepare") | {"seed": 1}


def test_step_options_are_checked_by_the_step_command(step_calls):
    with pytest.raises(click.BadParameter) as bad:
        task.run_step("tune_catboost", {"trials": "0"})
    assert bad.value.param.name == "trials"
    assert step_calls == {}  # refused before the step ran


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
    config = yaml.safe_load((PROJECT_DIR / "databricks.yml").read_text())
    from databricks_jobs import bundle

    text = json.dumps(bundle.job_settings({"workers": 2}))
    assert set(re.findall(r"\$\{var\.(\w+)\}", text)) <= set(config["variables"])
    assert "${workspace.file_path}/databricks_jobs/task_notebook" in text
    assert "databricks-bundles==1.22.1" in (PROJECT_DIR / "requirements-dev.txt").read_text()
    assert "databricks-bundles" not in (PROJECT_DIR / "requirements.txt").read_text()
