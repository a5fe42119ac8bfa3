"""How every step's command line behaves: one error line naming the parameter, exit code 2,
the step's run marked FAILED with the message as a tag."""

from __future__ import annotations

import os
import sys

import click

from steps.lib import interrupts
from steps.lib.errors import InputError


class Whole(click.IntRange):
    """A whole number in a range; "50.0" counts as 50, since MLproject declares counts as floats
    and MLflow passes what the user typed (so trials=50 and trials=50.0 are the same run)."""

    name = "whole number"

    def convert(self, value, param, ctx):
        if isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                pass
            else:
                if number.is_integer():
                    value = int(number)
        return super().convert(value, param, ctx)


class Switch(click.Choice):
    """A yes/no setting as MLproject passes it, the text "true" or "false" (any case), read as a
    bool; `as_text` writes it back the same way when main forwards it."""

    name = "switch"

    def __init__(self):
        super().__init__(("true", "false"), case_sensitive=False)

    def convert(self, value, param, ctx):
        if isinstance(value, bool):
            return value
        return super().convert(value, param, ctx) == "true"


class StepOnly(click.Option):
    """An option `main` neither offers nor forwards: a run ID it wires from the upstream step, the
    family a generic step is run for, or a knob of one tuning worker. Every other option of a step
    is a pipeline setting, offered by `main` under the same name with the same default."""


def as_text(value) -> str:
    """A setting's value as a step's command line takes it (what `mlflow run -P` passes on)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


SEED_NUMBER = Whole(min=0, max=2**31 - 1)
FRACTION = click.FloatRange(min=0.0, max=1.0, min_open=True, max_open=True)

# Options several steps take, declared here once so the steps cannot disagree on them.
SEED = click.Option(["--seed"], type=SEED_NUMBER, default=42, show_default=True,
                    help="Seeds the split, the samplers and every fit: a rerun gives the same numbers.")
TUNE_ROWS = click.Option(["--tune-rows"], type=Whole(min=0), default=0, show_default=True,
                         help="Tune on a seeded sample of this many training rows (0 = all); refit uses all.")
DATA_RUN_ID = StepOnly(["--data-run-id"], default="",
                       help="The prepare run to read ('' = the latest FINISHED one with default settings).")


def main(command: click.Command, step: str) -> None:
    """Run a step's click command; turn bad input into one clear line instead of a traceback,
    and SIGINT/SIGTERM into a run ended KILLED and exit code 130/143 (steps/lib/interrupts.py)."""
    # Steps run unattended: no download progress bars in the logs.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
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
