"""What a long step says while it works: a bar on a terminal, plain lines at a steady rhythm elsewhere."""

from __future__ import annotations

import io

import pytest

from steps.lib import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bars_only_where_the_output_is_a_terminal_unless_the_environment_says(monkeypatch):
    monkeypatch.delenv(progress.MODE_ENV, raising=False)
    assert progress.bars_wanted(Terminal()) and not progress.bars_wanted(io.StringIO())
    monkeypatch.setenv(progress.MODE_ENV, "lines")
    assert not progress.bars_wanted(Terminal())
    monkeypatch.setenv(progress.MODE_ENV, "bar")
    assert progress.bars_wanted(io.StringIO())


def test_a_real_terminal_gets_bars_once_it_has_a_width(monkeypatch):
    """A pseudo-terminal nobody sized (0 columns, as `script` without a terminal gives) would
    show an empty bar: plain lines there; once sized, bars."""
    import fcntl
    import os
    import pty
    import struct
    import termios

    monkeypatch.delenv(progress.MODE_ENV, raising=False)
    leader, follower = pty.openpty()
    try:
        with os.fdopen(follower, "w", closefd=False) as terminal:
            fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
            assert terminal.isatty() and not progress.bars_wanted(terminal)
            fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
            assert progress.bars_wanted(terminal)
    finally:
        os.close(leader)
        os.close(follower)


def test_without_a_terminal_a_phase_says_what_it_does_every_ten_seconds_and_when_it_ended():
    out, clock = io.StringIO(), Clock()
    with progress.Phase("prepare", "reading houses.csv", stream=out, clock=clock, bar=False) as phase:
        for _ in range(9):
            clock.now += 1.0
            phase.tick()
        assert out.getvalue() == ""  # nothing for work shorter than EVERY_S
        for _ in range(16):
            clock.now += 1.0
            phase.tick()
    assert out.getvalue().splitlines() == ["prepare: reading houses.csv… 10s", "prepare: reading houses.csv… 20s",
                                           "prepare: reading houses.csv: done in 25s"]


def test_a_short_phase_and_a_failed_one_leave_no_line():
    out, clock = io.StringIO(), Clock()
    with progress.Phase("package", "scoring 32 test rows", stream=out, clock=clock, bar=False):
        clock.now += 3.0
    with pytest.raises(ValueError), progress.Phase("package", "scoring", stream=out, clock=clock, bar=False):
        clock.now += 30.0
        raise ValueError("column 'age' must be numeric")
    assert out.getvalue() == ""


def test_on_a_terminal_a_phase_is_one_redrawn_line_with_its_elapsed_time(monkeypatch):
    monkeypatch.setattr(progress, "SHOW_AFTER_S", 0.0)
    out = Terminal()
    with progress.Phase("refit", "logging the model (blend)", stream=out) as phase:
        phase.tick()
        phase.tick()
    drawn = [line for line in out.getvalue().split("\r") if line.strip()]
    assert len(drawn) >= 2 and all(line.strip().startswith("refit: logging the model (blend) [00:0") for line in drawn)
    assert out.getvalue().endswith("\n") and out.getvalue().count("\n") == 1  # one line left behind


def test_counted_work_says_its_count_and_best_so_far_at_the_rhythm():
    out, clock = io.StringIO(), Clock()
    counted = progress.Counted("refit: catboost tuned", 5000, "trees", "best val RMSE {:.2f}", stream=out,
                               clock=clock, bar=False)
    for trees in range(1, 31):
        clock.now += 1.0
        counted.update(trees, 60.0 - trees / 10)
    counted.close(30, 57.0)
    assert out.getvalue().splitlines() == ["refit: catboost tuned: 10 trees, best val RMSE 59.00, 10s",
                                           "refit: catboost tuned: 20 trees, best val RMSE 58.00, 20s",
                                           "refit: catboost tuned: 30 trees, best val RMSE 57.00, 30s"]


def test_a_heartbeat_speaks_only_after_ten_seconds_without_a_line_of_the_step():
    """Tuning says a line per trial; a heartbeat fills only the silences (a trial lasting
    minutes), saying what the status function says."""
    out, clock = io.StringIO(), Clock()
    statuses = iter(["still running #3 (10s); 2/20 trials done", "still running #3 (20s); 2/20 trials done", ""])
    with progress.Heartbeat("tune_catboost", lambda: next(statuses), stream=out, clock=clock) as beat:
        clock.now += 9.0
        beat.tick()
        assert out.getvalue() == ""
        beat.said()  # the step's own line at 9 s
        clock.now += 9.0
        beat.tick()
        assert out.getvalue() == ""  # 9 s since the step's line
        clock.now += 1.0
        beat.tick()
        clock.now += 10.0
        beat.tick()
        clock.now += 10.0
        beat.tick()  # an empty status says nothing
    assert out.getvalue().splitlines() == ["tune_catboost: still running #3 (10s); 2/20 trials done",
                                           "tune_catboost: still running #3 (20s); 2/20 trials done"]
