"""How every step's command line behaves: one error line naming the parameter, exit code 2,
the step's run marked FAILED with the message as a tag; SIGINT/SIGTERM end it KILLED."""

from __future__ import annotations

import os
import sys

import click

from steps.lib import interrupts
from steps.lib.errors import InputError


def main(command: click.Command, step: str) -> None:
    """Run a step's click command; turn bad input into one clear line instead of a traceback,
    and SIGINT/SIGTERM into a run ended KILLED and exit code 130/143 (steps/lib/interrupts.py)."""
    # Steps run unattended: no download progress bars in the logs.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    whole_lines()
    own_run_id = os.environ.get("MLFLOW_RUN_ID", "")  # MLflow clears it once the run is started
    try:
        interrupts.install()
        _check_tracking_server(step)
        command.main(standalone_mode=False)
    except KeyboardInterrupt as interrupt:
        _interrupted(step, interrupt, own_run_id)
    except click.exceptions.Abort as abort:  # how click reraises a KeyboardInterrupt
        if isinstance(abort.__cause__, KeyboardInterrupt):
            _interrupted(step, abort.__cause__, own_run_id)
        raise
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.ClickException as error:
        _fail(step, _click_message(error))
    except InputError as error:
        _fail(step, str(error))
    except Exception as error:
        from steps.lib.tracking import StepFailed

        if isinstance(error, StepFailed):
            _fail(step, str(error), exit_code=1)
        raise


def whole_lines() -> None:
    """Each printed line reaches the terminal in one write, still as soon as it ends. Steps run
    side by side print to one terminal; unbuffered (PYTHONUNBUFFERED), `print` writes a line and
    its newline apart, so another step's line could land inside it ("main: tune_lasso: ran …")."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)  # absent when a caller replaced the stream
        if reconfigure:
            reconfigure(line_buffering=True, write_through=False)


def _check_tracking_server(step: str) -> None:
    """Stop with one line naming the tracking server when it cannot be reached, instead of
    MLflow's minutes of retries; no run is tagged (that would need the server)."""
    from steps.lib.tracking import unreachable_tracking_server

    problem = unreachable_tracking_server()
    if problem:
        print(f"tabtune {step}: error: {problem}", file=sys.stderr, flush=True)
        sys.exit(1)


def _click_message(error: click.ClickException) -> str:
    param = getattr(error, "param", None)
    if param is not None and param.name:
        return f"{param.name}: {error.message}"
    return error.format_message()


def _fail(step: str, message: str, exit_code: int = 2) -> None:
    from steps.lib.secrets import mask_url
    from steps.lib.tracking import tag_failed_run

    message = mask_url(message)
    print(f"tabtune {step}: error: {message}", file=sys.stderr, flush=True)
    tag_failed_run(message)
    sys.exit(exit_code)


def _interrupted(step: str, interrupt: KeyboardInterrupt, run_id: str) -> None:
    """One line, the run `mlflow run` made for this step ended KILLED (if nothing ended it yet,
    e.g. the signal came before the step started its run), and 128 + the signal as exit code."""
    from steps.lib.tracking import end_killed

    name = interrupts.signal_name(interrupt)
    print(f"tabtune {step}: interrupted by {name}; run {run_id or '(none)'} ends KILLED", file=sys.stderr,
          flush=True)
    if run_id:
        end_killed([run_id], name)
    sys.exit(interrupts.exit_code(interrupt))
