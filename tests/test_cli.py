"""How every step's command line reads its options and fails (steps/lib/cli.py): the option
types in-process; `cli.main` in a child process (it installs signal handlers), with a real sqlite
store holding the run `mlflow run` would have made for the step."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import click
import pytest

from steps.lib import cli, names
from tests.conftest import PROJECT_DIR, Store, mlflow_env


# ------------------------------------------------------------------------------- option types
def test_whole_reads_a_whole_number_written_as_a_float_as_an_int():
    value = cli.Whole(min=1)("50.0")
    assert (value, type(value)) == (50, int)


@pytest.mark.parametrize("text", ["50.5", "fifty", ""])
def test_whole_refuses_what_is_not_a_whole_number(text):
    with pytest.raises(click.BadParameter, match="is not a valid whole number"):
        cli.Whole(min=1)(text)


@pytest.mark.parametrize("text", ["0", "65", "65.0"])
def test_whole_refuses_a_number_out_of_its_range(text):
    with pytest.raises(click.BadParameter, match=r"is not in the range 1<=x<=64"):
        cli.Whole(min=1, max=64)(text)


@pytest.mark.parametrize("text", ["0", "1", "-0.1", "1.5"])
def test_fraction_is_strictly_between_0_and_1(text):
    with pytest.raises(click.BadParameter, match=r"is not in the range 0\.0<x<1\.0"):
        cli.FRACTION(text)


@pytest.mark.parametrize(("text", "value"), [("true", True), ("FALSE", False), (True, True), (False, False)])
def test_switch_reads_true_or_false_in_any_case_as_a_bool(text, value):
    assert cli.Switch()(text) is value


def test_switch_refuses_anything_else():
    with pytest.raises(click.BadParameter, match="'yes' is not one of 'true', 'false'"):
        cli.Switch()("yes")


@pytest.mark.parametrize(("value", "text"), [(True, "true"), (False, "false"), (50, "50"), (0.2, "0.2"), ("a", "a")])
def test_as_text_writes_a_setting_back_as_the_step_reads_it(value, text):
    assert cli.as_text(value) == text


# ------------------------------------------------------------------------------- cli.main
STEP = textwrap.dedent("""
    import click

    from steps.lib import cli
    from steps.lib.errors import InputError
    from steps.lib.tracking import StepFailed

    def run(trials, fail):
        if fail == "input":
            raise InputError("storage", "cannot open postgresql://tabtune:pa55word@db.example/optuna")
        if fail == "step":
            raise StepFailed("refit", "abc123")

    command = click.Command("demo", callback=run, params=[
        click.Option(["--trials"], type=cli.Whole(min=1), default=1),
        click.Option(["--fail"], default=""),
    ])
    cli.main(command, "demo")
""")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    return Store(tmp_path_factory.mktemp("cli"))


def run_step(store: Store, *args: str) -> tuple[subprocess.CompletedProcess, str]:
    """The demo step's command line, resuming a fresh RUNNING run as under `mlflow run`; the
    finished process and that run's ID."""
    run_id = store.client.create_run("0").info.run_id
    result = subprocess.run([sys.executable, "-c", STEP, *args], cwd=PROJECT_DIR, capture_output=True, text=True,
                            env=mlflow_env(store.uri, MLFLOW_RUN_ID=run_id), timeout=120)
    return result, run_id


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_a_refused_option_is_one_line_naming_it_exit_2_and_the_run_s_error_tag(store):
    result, run_id = run_step(store, "--trials", "0")
    line = "tabtune demo: error: trials: 0 is not in the range x>=1."
    assert (result.returncode, error_lines(result)) == (2, [line])
    assert store.client.get_run(run_id).data.tags[names.ERROR_TAG] == line.removeprefix("tabtune demo: error: ")


def test_the_step_s_input_error_is_one_line_with_urls_masked(store):
    result, run_id = run_step(store, "--fail", "input")
    line = "tabtune demo: error: storage: cannot open postgresql://tabtune:***@db.example/optuna"
    assert (result.returncode, error_lines(result)) == (2, [line])
    assert "pa55word" not in store.client.get_run(run_id).data.tags[names.ERROR_TAG]


def test_a_failed_step_run_is_one_line_and_exit_1(store):
    result, _ = run_step(store, "--fail", "step")
    assert (result.returncode, error_lines(result)) == (1, ["tabtune demo: error: step refit failed (run abc123)"])
