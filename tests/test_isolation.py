"""run_forked: a heavy call in a forked child gives back its result or its error, never its memory."""

from __future__ import annotations

import os
import resource
import signal
import threading
import time

import numpy as np
import pytest

from steps.lib import isolation
from steps.lib.isolation import run_forked

MB = 1024  # ru_maxrss is in KiB on Linux


def _allocate_and_sum(megabytes: int) -> float:
    block = np.ones(megabytes * 1024 * 1024 // 8)
    return float(block.sum())


def test_the_result_comes_back_and_the_memory_stays_in_the_child():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert run_forked(_allocate_and_sum, 400) == 400 * 1024 * 1024 // 8
    # this process never held the 400 MB block; the child did, and its peak is on record
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * MB
    assert isolation.largest_child_maxrss() >= 400 * MB


def _fail(column: str):
    raise ValueError(f"column {column!r}: expected numbers")


def test_the_childs_error_comes_back_as_itself_with_its_traceback():
    with pytest.raises(ValueError, match="column 'price': expected numbers") as raised:
        run_forked(_fail, "price")
    assert any("in the forked child" in note and "_fail" in note for note in raised.value.__notes__)


def _kill_self():
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_child_killed_mid_call_is_reported():
    with pytest.raises(ChildProcessError, match=r"_kill_self ended without a result \(exit code -9"):
        run_forked(_kill_self)


def test_a_result_that_does_not_pickle_is_a_clear_error():
    with pytest.raises(ChildProcessError, match="does not pickle"):
        run_forked(lambda: threading.Lock())


def _sleep_recording_pid(path: str) -> None:
    with open(path, "w") as handle:
        handle.write(str(os.getpid()))
    time.sleep(60)


@pytest.fixture
def python_interrupt_handler():
    """Python's own Ctrl-C handler for the test, whatever an earlier test in this worker process
    left installed (with another, the interrupt never reaches run_forked: the child sleeps 60 s)."""
    earlier = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, earlier)


def test_an_interrupt_while_waiting_stops_the_child_at_once(tmp_path, python_interrupt_handler):
    pid_file = tmp_path / "child.pid"
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_forked(_sleep_recording_pid, str(pid_file))
    finally:
        timer.cancel()
    assert time.monotonic() - started < 30  # not the child's 60 s
    child = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)  # killed and reaped


def test_elsewhere_than_linux_the_call_runs_in_this_process(monkeypatch):
    monkeypatch.setattr(isolation.sys, "platform", "darwin")
    assert run_forked(os.getpid) == os.getpid()


def test_on_linux_the_call_runs_in_another_process():
    assert run_forked(os.getpid) != os.getpid()
