"""SIGINT and SIGTERM stop the whole pipeline, and every run it left RUNNING ends KILLED.

Why this is needed: `mlflow run` (the CLI) starts the entry point with `bash -c` in its own
process group, and `main` starts each step the same way through `mlflow.projects.run`
(synchronous). Python dies at once on SIGTERM, so a SIGTERM to the CLI alone left `main` and
the running step behind, still tuning, their runs RUNNING forever. On SIGINT MLflow cancels its
child with SIGTERM and marks the run FAILED, which again killed `main` without cleanup.

The design, four layers, each covering the next one's gaps:

- **The parent's death reaches the child.** Every step process asks Linux for SIGTERM when its
  parent dies (`prctl(PR_SET_PDEATHSIG)`), so a CLI that died on SIGTERM still stops `main`,
  and a `main` that was killed still stops its step. (No-op elsewhere than Linux.)
- **A signal becomes an exception.** SIGINT and SIGTERM raise `Interrupted`, a
  `KeyboardInterrupt` (CatBoost turns it into a plain one when it comes during a fit; the
  cleanup catches KeyboardInterrupt and asks `signal_name` which signal it was): Optuna and
  `except Exception` let it through, the step's run context
  ends its run KILLED (tag `tabtune.interrupted` = the signal), the tuning step first writes
  the trials it queued and ends its still-RUNNING trial runs KILLED, and the process exits
  128 + the signal (130 for SIGINT, 143 for SIGTERM). Because it is a KeyboardInterrupt, MLflow's
  own `_wait_for` in `main` catches it too and forwards SIGTERM to the running step. Later
  signals are ignored, so a second Ctrl-C does not cut that cleanup short (SIGKILL still does).
- **Never inside a store write.** An exception raised while the main thread is inside the SQL
  tracking store (SQLAlchemy, sqlite3) can leave its connection holding the database's write
  lock; on a sqlite store every other write, the cleanup's included, then waits for MLflow's
  20 s busy timeout and fails with "database is locked". And a KeyboardInterrupt raised while
  Optuna records a finished trial (`_tell_with_warning`, its storage) turns into an
  UnboundLocalError in Optuna's `_run_trial` (the kind of bug of optuna/optuna#5280), so the
  tuning step ended FAILED with that error instead of KILLED. The signal is therefore noted
  and raised in the frame that called the store or the tell, as soon as that call returns.
- **Bounded.** Python runs a handler only between bytecodes, so a step in the middle of a
  CatBoost fit notices the signal when the fit returns. `main` therefore registers a hook that
  runs `STOP_GRACE_S` (steps/main.py) after the signal: it ends the runs left RUNNING KILLED and SIGKILLs whatever
  is left of its process tree.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

HANDLED = (signal.SIGINT, signal.SIGTERM)
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_hooks: list[tuple[float, Callable[[], None]]] = []
_received: list[int] = []
_received_at_ms: list[int] = []


class Interrupted(KeyboardInterrupt):
    """This process got SIGINT or SIGTERM (directly, or because its parent died)."""

    def __init__(self, signum: int):
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum
        self.signal_name = signal.Signals(signum).name
        self.exit_code = 128 + signum


def install() -> None:
    """Turn SIGINT/SIGTERM into `Interrupted`, and ask for SIGTERM when the parent dies.

    Called once at the start of every step process, in its main thread."""
    for signum in HANDLED:
        signal.signal(signum, _handle)
    parent = os.getppid()
    if _set_parent_death_signal(signal.SIGTERM) and os.getppid() != parent:
        raise Interrupted(signal.SIGTERM)  # the parent died while we asked: as if the signal had come


def after_interrupt(delay_s: float, hook: Callable[[], None]) -> None:
    """Run `hook` on a daemon thread `delay_s` seconds after the first signal (if the process
    still runs by then): the bound on a cleanup that waits for something stuck."""
    _hooks.append((delay_s, hook))


def received() -> int | None:
    """The signal this process got, if any."""
    return _received[0] if _received else None


def received_at_ms() -> int | None:
    """When this process got its signal (milliseconds since the epoch, the clock run end times
    use), if it got one: a run that ended FAILED after it was stopped by it."""
    return _received_at_ms[0] if _received_at_ms else None


def signal_name(error: KeyboardInterrupt) -> str:
    """The signal behind a KeyboardInterrupt, e.g. SIGTERM. Libraries may catch `Interrupted`
    and raise a plain KeyboardInterrupt instead (CatBoost does, when the signal comes during a
    fit), so the signal this process received counts, not the exception's type."""
    return signal.Signals(getattr(error, "signum", None) or received() or signal.SIGINT).name


def exit_code(error: KeyboardInterrupt) -> int:
    """128 + the signal, as a shell reports a process ended by it: 130 SIGINT, 143 SIGTERM."""
    return 128 + signal.Signals[signal_name(error)]


# where a signal must not raise halfway (see "Never inside a store write" above)
_STORE_CODE = ("/sqlalchemy/", "sqlalchemy_store", "/mlflow/store/db/", "/sqlite3/", "/optuna/storages/",
               "/optuna/study/_tell.py")


def _handle(signum: int, frame) -> None:
    if _received:
        return  # already stopping: let the cleanup finish
    _received.append(signum)
    _received_at_ms.append(int(time.time() * 1000))
    for other in HANDLED:
        signal.signal(other, signal.SIG_IGN)
    for delay_s, hook in _hooks:
        timer = threading.Timer(delay_s, hook)
        timer.daemon = True
        timer.start()
    caller = _caller_of_store_code(frame)
    if caller is not None:
        _raise_when_back_in(caller, signum)
        return
    raise Interrupted(signum)


def _caller_of_store_code(frame):
    """If the interrupted code is inside a store write (anywhere below it: the store may be
    calling back into other code, e.g. logging, or Optuna's tell into the sampler), the frame
    that called it; else None."""
    caller = None
    while frame is not None:
        if any(part in frame.f_code.co_filename for part in _STORE_CODE):
            caller = frame.f_back
        frame = frame.f_back
    return caller


def _raise_when_back_in(frame, signum: int) -> None:
    """Raise `Interrupted` in `frame` as soon as it runs again, i.e. once the store call it
    made has returned or raised. A trace function on that frame only, as pdb's `set_trace`
    sets one (new frames are not traced, so the rest of that call slows down only slightly);
    an exception raised by a trace function propagates in the traced frame."""

    def interrupt(traced, event: str, arg):
        sys.settrace(None)
        traced.f_trace = None
        raise Interrupted(signum)

    frame.f_trace = interrupt
    frame.f_trace_lines = True
    sys.settrace(_trace_no_new_frame)


def _trace_no_new_frame(frame, event: str, arg) -> None:
    return None


def _set_parent_death_signal(signum: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        return ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    return False


def children(pid: int | None = None) -> list[int]:
    """Process IDs whose parent is `pid` (default: this process)."""
    return _children_by_parent().get(pid or os.getpid(), [])


def descendants(pid: int | None = None) -> list[int]:
    """Process IDs below `pid` (default: this process), children first."""
    children_of = _children_by_parent()
    found, queue = [], [pid or os.getpid()]
    while queue:
        for child in children_of.get(queue.pop(0), []):
            found.append(child)
            queue.append(child)
    return found


def _children_by_parent() -> dict[int, list[int]]:
    """Every process's children, from /proc on Linux and from `ps` elsewhere (macOS)."""
    children_of: dict[int, list[int]] = {}
    if not os.path.isdir("/proc"):
        import subprocess

        with contextlib.suppress(OSError, subprocess.SubprocessError):
            listing = subprocess.run(["ps", "-A", "-o", "pid=", "-o", "ppid="], capture_output=True,
                                     text=True, timeout=10).stdout
            for line in listing.splitlines():
                pid, ppid = (int(field) for field in line.split())
                children_of.setdefault(ppid, []).append(pid)
        return children_of
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    stat = handle.read()
            except OSError:
                continue
            fields = stat[stat.rfind(b")") + 2:].split()  # after "pid (comm) ": state ppid …
            children_of.setdefault(int(fields[1]), []).append(int(entry))
    return children_of


def kill_descendants() -> None:
    """SIGKILL every process below this one (the last resort once the grace period is over)."""
    for pid in descendants():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
