"""The project's own files agree with each other: env pins, MLproject parameters, click options."""

import importlib
import re

import pytest
import yaml

from steps.lib.orchestration import pipeline, project_file
from tests.conftest import PROJECT_DIR

STEPS = ["main", "prepare", "tune_lasso", "tune", "tune_catboost", "refit", "package"]


def _pins(lines):
    return {re.split("==", line)[0].lower(): line for line in lines if isinstance(line, str)}


def test_env_files_pin_the_same_versions():
    python_env = yaml.safe_load((PROJECT_DIR / "python_env.yaml").read_text())
    conda = yaml.safe_load((PROJECT_DIR / "conda.yaml").read_text())
    conda_pip = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    requirements = [
        line.strip() for line in (PROJECT_DIR / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert all("==" in line for line in python_env["dependencies"])
    assert _pins(python_env["dependencies"]) == _pins(conda_pip) == _pins(requirements)
    assert f"python={python_env['python']}" in conda["dependencies"]
    pip_pin = python_env["build_dependencies"][0].split("==")[1]
    assert f"pip={pip_pin}" in conda["dependencies"]


def test_installed_versions_match_the_pins():
    from importlib.metadata import version

    python_env = yaml.safe_load((PROJECT_DIR / "python_env.yaml").read_text())
    for name, line in _pins(python_env["dependencies"]).items():
        assert version(name) == line.split("==")[1], name


def test_mlproject_and_the_parameter_reference_are_what_the_step_options_write():
    """The steps' click options are the one declaration of every parameter: MLproject and
    docs/parameters.md are written from them (python -m steps.lib.orchestration.project_file)."""
    assert (PROJECT_DIR / "MLproject").read_text() == project_file.mlproject()
    assert (PROJECT_DIR / "docs" / "parameters.md").read_text() == project_file.parameters_doc()


@pytest.mark.parametrize("step", STEPS)
def test_mlproject_runs_each_step_with_every_option(step):
    spec = yaml.safe_load((PROJECT_DIR / "MLproject").read_text())["entry_points"][step]
    command = importlib.import_module(f"steps.{step}").command
    options = {p.name for p in command.params}
    assert set(spec["parameters"]) == options
    for name in options:
        assert f"--{name.replace('_', '-')} {{{name}}}" in spec["command"]
    assert set(re.findall(r"\{(\w+)\}", spec["command"])) == options
    assert spec["command"].startswith(f"python -m steps.{step} ")
    assert set(STEPS) == set(yaml.safe_load((PROJECT_DIR / "MLproject").read_text())["entry_points"])


def test_main_offers_every_step_setting_with_the_step_s_own_default():
    """What main passes on is what the step would use when run on its own."""
    main_options = {option.name: option for option in importlib.import_module("steps.main").command.params}
    for step in STEPS[1:]:
        for option in pipeline.setting_options(step) if step != "tune_catboost" else []:
            assert main_options[option.name].default == option.default, (step, option.name)
            assert type(main_options[option.name].type) is type(option.type), (step, option.name)
    assert {"data_run_id", "tune_run_ids", "model_run_id", "parent_run_id", "thread_count", "family"}.isdisjoint(
        main_options)


@pytest.mark.parametrize("step", STEPS)
def test_mlproject_defaults_match_step_option_defaults(step):
    """`mlflow run` passes each MLproject default to the step as a string on the command line: read
    through the option's type, it must be the default the step uses when run on its own."""
    spec = yaml.safe_load((PROJECT_DIR / "MLproject").read_text())["entry_points"][step]["parameters"]
    command = importlib.import_module(f"steps.{step}").command
    mismatches = {}
    for option in command.params:
        assert "default" in spec[option.name], f"MLproject {step}.{option.name} has no default"
        through_mlflow = option.type.convert(str(spec[option.name]["default"]), option, None)
        if through_mlflow != option.default:
            mismatches[option.name] = (spec[option.name]["default"], option.default)
    assert mismatches == {}, "MLproject default vs click default"


def test_run_output_is_ignored():
    ignored = (PROJECT_DIR / ".gitignore").read_text().split()
    for pattern in ["mlflow.db", "mlruns/", "mlartifacts/", "catboost_info/", ".venv/", "*.pkl"]:
        assert pattern in ignored
