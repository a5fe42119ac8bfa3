"""Run one heavy call in a short-lived forked process, so the memory it used is gone when it returns.

Why: a large fit leaves memory behind in the process that ran it (CatBoost keeps about 600 MB
after a 1M-row fit and its model are freed; `malloc_trim` does not return it), and the next fit
stacks its own working memory on top. `refit` fits every family in turn on the same table; in a
fork each fit starts from what the step holds (the splits, shared copy-on-write, never copied)
and only the result comes back. Forking costs milliseconds, not the seconds a fresh interpreter
would spend importing, so on Linux every table takes this one path (elsewhere the call runs
in the step's own process, see `run_forked`).

The child does no tracking: it has no MLflow run and never touches the store. It ends on SIGINT
and SIGTERM at once (the step process turns those into `Interrupted` and kills the child), and
its own error comes back as the same exception, with the child's traceback as a note.

A child must not be forked from a process that has already run OpenMP code (scikit-learn's
histogram boosting): GNU OpenMP is not fork-safe, and the child's first parallel region hangs.
Refit fits and predicts nothing itself before its forks, so its children may."""

from __future__ import annotations

import multiprocessing
import resource
import signal
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
_child_peaks: list[int] = []


def run_forked(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`function(*args, **kwargs)` in a forked child; its result (or its exception) returned here.
    The result must pickle: it crosses a pipe, never a file. Elsewhere than Linux the call runs
    in this process: macOS can crash a forked child that touches a system framework the parent
    had loaded, and the tables this is for are fitted on Linux servers."""
    if not sys.platform.startswith("linux"):
        return function(*args, **kwargs)
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(sender, function, args, kwargs), daemon=True)
    child.start()
    sender.close()
    try:
        try:
            succeeded, value, peak = receiver.recv()
        except EOFError:
            child.join()
            raise ChildProcessError(
                f"{_name(function)} ended without a result (exit code {child.exitcode}; "
                "a negative code is the signal that killed it, e.g. -9 when memory ran out)"
            ) from None
    finally:
        if child.is_alive():
            child.kill()  # on an interrupt here: stop the fit at once, do not wait for it
        child.join()
        receiver.close()
    _child_peaks.append(peak)
    if not succeeded:
        raise value
    return value


def largest_child_maxrss() -> int:
    """The highest resident memory any `run_forked` child of this process reached, in
    `ru_maxrss` units (KiB on Linux; 0 if none): part of the step's own peak, since the step
    asked for that memory."""
    return max(_child_peaks, default=0)


def _child(sender, function: Callable[..., Any], args: tuple, kwargs: dict) -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)  # the parent does the cleanup; the child just stops
    try:
        outcome = (True, function(*args, **kwargs))
    except BaseException as error:  # noqa: BLE001 - every failure goes back to the parent as is
        error.add_note(f"in the forked child:\n{traceback.format_exc()}")
        outcome = (False, error)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        sender.send((*outcome, peak))
    except Exception as unsendable:  # noqa: BLE001 - a result or error that does not pickle
        sender.send((False, ChildProcessError(f"{_name(function)}: its outcome does not pickle: {unsendable!r}"),
                     peak))
    sender.close()


def _name(function: Callable[..., Any]) -> str:
    return getattr(function, "__qualname__", repr(function))
