"""What a long step is doing, said while it does it.

Where the step's output is a terminal, a live tqdm bar (one line redrawn in place); where it is
not (CI, Databricks job logs, a file), a plain line every EVERY_S, so a log never fills with
carriage returns and a terminal never scrolls with repeats. `TABTUNE_PROGRESS=lines` (or `bar`)
overrides the terminal check.

Bars are for the steps that run alone (prepare, refit, package). The tuning steps say one line
per trial instead: `main` runs two of them side by side on the same terminal, where two bars
would overwrite each other."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

EVERY_S = 10.0  # how often a plain line says where long work is
SHOW_AFTER_S = 1.0  # a bar appears only for work that lasts longer than this
MODE_ENV = "TABTUNE_PROGRESS"


def bars_wanted(stream: TextIO | None = None) -> bool:
    """True where a live bar reads well: `stream` (stdout) is a terminal with a width, unless
    TABTUNE_PROGRESS says."""
    forced = os.environ.get(MODE_ENV, "").strip().lower()
    if forced in ("bar", "lines"):
        return forced == "bar"
    stream = stream or sys.stdout
    isatty = getattr(stream, "isatty", None)
    if not (isatty and isatty()):
        return False
    try:  # a terminal of no width (a pty nobody sized) would show an empty bar
        return os.get_terminal_size(stream.fileno()).columns > 0
    except (OSError, ValueError):
        return True


class _EverySecond:
    """A daemon thread that calls `tick()` each second between `_start_ticking()` and
    `_stop_ticking()`: what lets a phase or a heartbeat speak while the work it reports holds
    the main thread."""

    _thread: threading.Thread | None = None

    def _start_ticking(self, name: str) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.tick()

    def tick(self) -> None:
        raise NotImplementedError

    def _stop_ticking(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()


class Phase(_EverySecond):
    """`with Phase("prepare", "reading houses.csv"):` — work without a count (reading a table,
    uploading, hashing rows), said with its elapsed time: a bar that ticks each second on a
    terminal, else a line every EVERY_S while it lasts and one when it ends (if it lasted that long)."""

    def __init__(self, step: str, what: str, *, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic, bar: bool | None = None):
        self.label, self.stream, self.clock = f"{step}: {what}", stream or sys.stdout, clock
        self.bar_wanted = bars_wanted(self.stream) if bar is None else bar
        self.bar = None
        self.started = self.due = 0.0
        self._ticking = threading.Lock()

    def __enter__(self) -> Phase:
        self.started = self.clock()
        self.due = self.started + (SHOW_AFTER_S if self.bar_wanted else EVERY_S)
        self._start_ticking("tabtune-progress")
        return self

    def tick(self) -> None:
        """Redraw the bar, or print a line if one is due (called each second by the phase's thread)."""
        with self._ticking:
            now = self.clock()
            if self.bar_wanted and self.bar is None and now >= self.due:  # drawn once the work lasts
                from tqdm import tqdm

                self.bar = tqdm(total=None, desc=self.label, bar_format="{desc} [{elapsed}]", file=self.stream)
                self.bar.start_t -= now - self.started  # its clock from the phase's start
            if self.bar is not None:
                self.bar.refresh()
            elif not self.bar_wanted and now >= self.due:
                print(f"{self.label}… {now - self.started:.0f}s", file=self.stream, flush=True)
                self.due = now + EVERY_S

    def __exit__(self, *exc) -> None:
        self._stop_ticking()
        if self.bar is not None:
            self.bar.close()
        elif exc[0] is None and (elapsed := self.clock() - self.started) >= EVERY_S:
            print(f"{self.label}: done in {elapsed:.0f}s", file=self.stream, flush=True)


class Counted:
    """Work counted in units toward a known most (a CatBoost fit's trees, up to its tree count),
    with the best value so far: a bar on a terminal, else a line every EVERY_S.
    `best` formats that value, e.g. "best val RMSE {:.4f}"."""

    def __init__(self, label: str, total: int, unit: str, best: str, *, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic, bar: bool | None = None):
        self.label, self.unit, self.best = label, unit, best
        self.stream, self.clock = stream or sys.stdout, clock
        self.started = clock()
        self.due = self.started + EVERY_S  # the next plain line (with a bar: the next postfix text)
        self.bar = None
        if bars_wanted(self.stream) if bar is None else bar:
            from tqdm import tqdm

            # no percentage or time left: the most is a cap that early stopping rarely reaches
            self.bar = tqdm(total=total, desc=label, unit=f" {unit}", file=self.stream, delay=SHOW_AFTER_S,
                            leave=True, mininterval=0.5,
                            bar_format="{desc}: {n_fmt} of at most {total_fmt}{unit} [{elapsed}, {rate_fmt}{postfix}]")
            self.due = self.started

    def update(self, done: int, best: float) -> None:
        """`done` units so far, `best` the best value so far."""
        if self.bar is not None:
            if (now := self.clock()) >= self.due:  # the text only as often as tqdm redraws
                self.bar.set_postfix_str(self.best.format(best), refresh=False)
                self.due = now + self.bar.mininterval
            self.bar.update(done - self.bar.n)
            return
        now = self.clock()
        if now >= self.due:
            print(f"{self.label}: {done} {self.unit}, {self.best.format(best)}, {now - self.started:.0f}s",
                  file=self.stream, flush=True)
            self.due = now + EVERY_S

    def close(self, done: int, best: float) -> None:
        """The bar's last state stays on the terminal (where the fit stopped, its best); plain
        lines end as they are."""
        if self.bar is not None:
            self.bar.set_postfix_str(self.best.format(best), refresh=False)
            self.bar.update(done - self.bar.n)
            self.bar.close()


class Heartbeat(_EverySecond):
    """`with Heartbeat("tune_catboost", status) as beat:` — for work that says a line per unit
    (a trial) but whose units may each last minutes: whenever EVERY_S pass without a line of
    its own (`beat.said()` after each), a line `<step>: <status()>` (e.g. which trials are
    running and for how long). Plain lines on a terminal too: the tuning steps share one."""

    def __init__(self, step: str, status: Callable[[], str], *, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.step, self.status, self.stream, self.clock = step, status, stream or sys.stdout, clock
        self.due = 0.0
        self._lock = threading.Lock()

    def __enter__(self) -> Heartbeat:
        self.said()
        self._start_ticking("tabtune-heartbeat")
        return self

    def said(self) -> None:
        """The step has just said a line of its own: the next heartbeat is EVERY_S from now."""
        with self._lock:
            self.due = self.clock() + EVERY_S

    def tick(self) -> None:
        """Print the status line if EVERY_S passed without a line (called each second)."""
        with self._lock:
            now = self.clock()
            if now < self.due:
                return
            self.due = now + EVERY_S
        if text := self.status():
            print(f"{self.step}: {text}", file=self.stream, flush=True)

    def __exit__(self, *exc) -> None:
        self._stop_ticking()
