"""The step scheduler `main` runs the pipeline with: a step starts once its inputs exist,
independent steps run side by side, and a failure stops the steps still running (real
processes, SIGTERM) before it is raised."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from dataclasses import dataclass

import pytest

from steps.lib import interrupts
from steps.lib.orchestration.scheduler import Started, run_steps
from tests.conftest import PROJECT_DIR


@dataclass(frozen=True)
class Step:
    name: str
    depends_on: tuple[str, ...] = ()
    fills_cores: bool = False


PIPELINE = [Step("prepare"), Step("tune_a", ("prepare",)), Step("tune_b", ("prepare",)),
            Step("refit", ("prepare", "tune_a", "tune_b"))]


def test_independent_steps_run_side_by_side_and_a_step_waits_for_its_inputs():
    both_tuning = threading.Barrier(2, timeout=30)  # broken (an error) unless both wait at once
    seen: dict[str, dict[str, str]] = {}

    def start(step, run_ids):
        seen[step.name] = dict(run_ids)

        def work():
            if step.name.startswith("tune"):
                both_tuning.wait()
            return f"run-{step.name}"
        return Started(work)

    finished: list[str] = []
    run_ids = run_steps(PIPELINE, start, lambda step, run_id: finished.append(step.name), at_once=2, grace_s=5)
    assert run_ids == {step.name: f"run-{step.name}" for step in PIPELINE}
    assert seen["tune_a"] == seen["tune_b"] == {"prepare": "run-prepare"}
    assert seen["refit"] == {"prepare": "run-prepare", "tune_a": "run-tune_a", "tune_b": "run-tune_b"}
    assert finished[0] == "prepare" and finished[-1] == "refit"


def test_at_once_1_runs_one_step_at_a_time_in_the_listed_order():
    lock, running, most = threading.Lock(), [0], [0]
    order: list[str] = []

    def start(step, run_ids):
        def work():
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
                order.append(step.name)
            threading.Event().wait(0.05)
            with lock:
                running[0] -= 1
            return step.name
        return Started(work)

    run_steps(PIPELINE, start, lambda *_: None, at_once=1, grace_s=5)
    assert most[0] == 1
    assert order == [step.name for step in PIPELINE]


def test_two_steps_that_fill_every_core_never_overlap_and_a_light_step_runs_beside_either():
    steps = [Step("prepare"), Step("tune_heavy_a", ("prepare",), fills_cores=True),
             Step("tune_heavy_b", ("prepare",), fills_cores=True), Step("tune_light", ("prepare",)),
             Step("refit", ("tune_heavy_a", "tune_heavy_b", "tune_light"), fills_cores=True)]
    lock, running = threading.Lock(), set()
    overlaps: list[frozenset[str]] = []
    light_done = threading.Event()

    def start(step, run_ids):
        def work():
            with lock:
                running.add(step.name)
                overlaps.append(frozenset(running))
            if step.name == "tune_heavy_a":
                light_done.wait(30)  # the light step must get to run while this one holds the cores
            elif step.name == "tune_light":
                light_done.set()
            threading.Event().wait(0.05)
            with lock:
                running.discard(step.name)
            return step.name
        return Started(work)

    run_steps(steps, start, lambda *_: None, at_once=3, grace_s=5)
    heavy = {step.name for step in steps if step.fills_cores}
    assert all(len(seen & heavy) <= 1 for seen in overlaps), overlaps
    assert any({"tune_heavy_a", "tune_light"} <= seen for seen in overlaps), overlaps
    assert light_done.is_set()


def test_a_reused_step_has_no_thread_and_its_dependents_start():
    threads: list[str] = []

    def start(step, run_ids):
        if step.name in ("prepare", "tune_a"):
            return f"earlier-{step.name}"  # reused: nothing to run

        def work():
            threads.append(step.name)
            return f"run-{step.name}"
        return Started(work)

    run_ids = run_steps(PIPELINE, start, lambda *_: None, at_once=2, grace_s=5)
    assert run_ids["tune_a"] == "earlier-tune_a" and run_ids["refit"] == "run-refit"
    assert sorted(threads) == ["refit", "tune_b"]


def test_a_step_listed_before_its_input_is_refused():
    with pytest.raises(ValueError, match="refit depends on"):
        run_steps([Step("refit", ("prepare",)), Step("prepare")], lambda *_: "x", lambda *_: None,
                  at_once=2, grace_s=5)


SCENARIO = textwrap.dedent("""
    import json, subprocess, sys, threading, time
    from dataclasses import dataclass
    from steps.lib.orchestration.scheduler import Started, run_steps

    @dataclass(frozen=True)
    class Step:
        name: str
        depends_on: tuple = ()
        fills_cores: bool = False

    sibling_started, outcome = threading.Event(), {}

    def start(step, run_ids):
        outcome.setdefault("started", []).append(step.name)
        def sibling():  # a step process that would run for a minute
            process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
            sibling_started.set()
            outcome["sibling_exit"] = process.wait()
            raise RuntimeError("sibling ended early")
        def failing():
            sibling_started.wait(30)
            time.sleep(0.5)
            raise RuntimeError("tune_a broke")
        return Started({"tune_a": failing, "tune_b": sibling, "refit": lambda: "never"}[step.name])

    steps = [Step("tune_a"), Step("tune_b"), Step("refit", ("tune_a", "tune_b"))]
    try:
        run_steps(steps, start, lambda *_: None, at_once=2, grace_s=20)
    except RuntimeError as error:
        outcome["raised"] = str(error)
    time.sleep(0.2)
    print(json.dumps(outcome))
""")


def test_a_failure_stops_the_running_sibling_with_sigterm_and_raises_the_first_error():
    result = subprocess.run([sys.executable, "-c", SCENARIO], cwd=PROJECT_DIR, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["raised"] == "tune_a broke"  # not the sibling's error, which the stop caused
    assert outcome["sibling_exit"] == -15  # SIGTERM, not the end of its minute
    assert outcome["started"] == ["tune_a", "tune_b"]  # refit never started


def test_children_lists_this_process_s_children_only():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert process.pid in interrupts.children()
        assert process.pid not in interrupts.children(process.pid)
        assert interrupts.children(process.pid) == []
    finally:
        process.kill()
        process.wait()
