"""How every step's command line fails (steps/lib/orchestration/cli.py): `cli.main` in a child
process (it installs signal handlers), with a real sqlite store holding the run `mlflow run` would
have made for the step."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap

import pytest

from steps.lib import names
from steps.lib.orchestration import cli
from tests.conftest import PROJECT_DIR, Store, mlflow_env

# ------------------------------------------------------------------------------- cli.main
STEP = textwrap.dedent("""
    import click

    from steps.lib import options
    from steps.lib.errors import InputError
    from steps.lib.orchestration import cli
    from steps.lib.tracking import StepFailed

    def run(trials, fail):
        if fail == "input":
            raise InputError("storage", "cannot open postgresql://tabtune:pa55word@db.example/optuna")
        if fail == "step":
            raise StepFailed("refit", "abc123")

    command = click.Command("demo", callback=run, params=[
        click.Option(["--trials"], type=options.Whole(min=1), default=1),
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


# ------------------------------------------------------------------------------- whole lines
class RecordedWrites(io.RawIOBase):
    """A terminal that remembers each write it was given."""

    def __init__(self):
        self.writes: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.writes.append(bytes(data))
        return len(data)


def test_each_printed_line_reaches_the_terminal_in_one_write(monkeypatch):
    # as PYTHONUNBUFFERED leaves stdout: unbuffered, print writes a line and its newline apart,
    # and a step running beside this one could write between the two
    terminal = RecordedWrites()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(terminal, write_through=True))
    monkeypatch.setattr(sys, "stderr", io.TextIOWrapper(RecordedWrites(), write_through=True))
    cli.whole_lines()
    print("main: tune_lasso: ran", "0123abcd")
    assert terminal.writes == [b"main: tune_lasso: ran 0123abcd\n"]  # and at once, not when the step ends
