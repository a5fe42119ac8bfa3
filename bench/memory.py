"""Peak memory of the whole pipeline on a 1,000,000-row synthetic regression table with 20
numeric and 3 categorical columns, against the size of that table as float64.

    python bench/memory.py [--rows 1000000] [--trials 5] [--iterations 100] [--parallel-steps 2]

Needs psutil (`pip install -r bench/requirements.txt`). While the pipeline's `mlflow run` runs, a
thread polls every process under it every 0.2 s with psutil and keeps, per step:

- `sampled_peak_rss_mb`: the largest resident set (RSS) any one of the step's processes had: the
  step process itself or a fit it forked (steps/lib/isolation.py). This is what `top` shows as
  RES for the biggest process.
- `sampled_peak_step_tree_mb`: the step process and its forked fits, summed at each poll.
- `recorded_peak_rss_mb`: what the step run records itself (metric `peak_rss_mb`: `ru_maxrss`
  of the step process or of its largest forked fit, whichever is higher; per process, never a sum).

and for the whole tree under `mlflow run`: the peak of the sum of every process's RSS, which
steps' processes made it up at that moment ("other": `mlflow run` itself), and the peak of the
sum of their PSS (proportional set size: a page shared by n processes counts 1/n in each). A
forked fit shares its parent's pages copy-on-write; those pages are resident in both, so they
count in both processes' RSS and the RSS sum overstates the physical memory the tree holds; the
PSS sum does not. Sampling at 0.2 s can miss a peak shorter than that; `ru_maxrss` cannot.

Prints JSON: the table's float64 size, those figures, the pipeline's wall time, per-step walls."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from _common import PROJECT_DIR, emit, temp_store

MB = 1024 * 1024


def synthetic(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    numeric = rng.normal(size=(rows, 20))
    frame = pd.DataFrame(numeric, columns=[f"x{i}" for i in range(20)])
    levels = {"region": 8, "channel": 4, "segment": 12}
    y = numeric[:, :5] @ np.array([3.0, -2.0, 1.5, 0.5, 1.0]) + rng.normal(scale=0.5, size=rows)
    for column, count in levels.items():
        codes = rng.integers(0, count, size=rows)
        frame[column] = pd.Categorical.from_codes(codes, [f"{column}-{i}" for i in range(count)]).astype(str)
        y += (codes - count / 2) * 0.3
    frame["y"] = y
    return frame


def step_of(words: list[str]) -> str:
    """The tabtune step a command line runs, as its run's `tabtune.step` tag names it ("refit",
    "tune_catboost", …); "" for any other process (`mlflow run`, the shell it starts)."""
    module = next((w for w in words if w.startswith("steps.")), "")
    if module == "steps.tune" and "--family" in words[:-1]:
        return f"tune_{words[words.index('--family') + 1]}"
    return module.removeprefix("steps.")


class TreeSampler(threading.Thread):
    """Polls the RSS (and PSS) of `root` and every process under it until `stop` is set."""

    def __init__(self, root: int, interval_s: float = 0.2) -> None:
        super().__init__(daemon=True)
        import psutil

        self.psutil = psutil
        self.root = psutil.Process(root)
        self.interval_s = interval_s
        self.stop = threading.Event()
        self.labels: dict[int, str] = {}  # pid -> step ("" if none); a forked fit keeps its step's command line
        self.forked: dict[int, bool] = {}  # pid -> a fit forked by its step's process
        self.commands: dict[int, str] = {}  # pid -> its command line (first 120 characters)
        self.tree_peak = {"rss": 0, "pss": 0, "at_s": 0.0, "by_step": {}}
        self.single_peak = {"rss": 0, "step": "", "forked": False, "command": ""}
        self.steps: dict[str, dict] = {}  # step -> {"rss", "forked", "step_tree", "processes"}
        self.polls = 0
        self.started = time.perf_counter()

    def run(self) -> None:
        while not self.stop.is_set():
            self.poll()
            self.stop.wait(self.interval_s)

    def poll(self) -> None:
        psutil = self.psutil
        try:
            processes = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        sizes: dict[int, tuple[int, int]] = {}  # pid -> (rss, pss)
        for process in processes:
            try:
                if process.pid not in self.labels:
                    words, parent = process.cmdline(), process.ppid()
                    step = step_of(words)
                    self.forked[process.pid] = bool(step) and self.labels.get(parent) == step
                    self.commands[process.pid] = " ".join(words)[:120]
                    self.labels[process.pid] = step
                full = process.memory_full_info()  # rss from /proc/<pid>/statm, pss from smaps_rollup
                sizes[process.pid] = (full.rss, full.pss)
            except psutil.Error:  # ended between the listing and the read
                continue
        self.polls += 1
        by_step: dict[str, int] = {}
        for pid, (rss, _) in sizes.items():
            step = self.labels[pid]
            by_step[step or "other"] = by_step.get(step or "other", 0) + rss
            if step:
                figures = self.steps.setdefault(step, {"rss": 0, "forked": False, "step_tree": 0, "processes": set()})
                figures["processes"].add(pid)
                if rss > figures["rss"]:
                    figures["rss"], figures["forked"] = rss, self.forked[pid]
            if rss > self.single_peak["rss"]:
                self.single_peak = {"rss": rss, "step": step, "forked": self.forked[pid],
                                    "command": self.commands[pid]}
        for step, rss in by_step.items():
            if step in self.steps:
                self.steps[step]["step_tree"] = max(self.steps[step]["step_tree"], rss)
        total_rss = sum(rss for rss, _ in sizes.values())
        if total_rss > self.tree_peak["rss"]:
            self.tree_peak.update(rss=total_rss, at_s=round(time.perf_counter() - self.started, 1),
                                  by_step={step: round(rss / MB, 1) for step, rss in sorted(by_step.items())})
        self.tree_peak["pss"] = max(self.tree_peak["pss"], sum(pss for _, pss in sizes.values()))


def step_runs(uri: str) -> dict[str, dict]:
    """Per step run in the store (keyed by its `tabtune.step` tag): wall seconds, start to end,
    and the `peak_rss_mb` it recorded."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    runs = {}
    for experiment in client.search_experiments():
        for run in client.search_runs([experiment.experiment_id], "attributes.status = 'FINISHED'"):
            step = run.data.tags.get("tabtune.step")
            if run.info.end_time and step:
                runs[step] = {"wall_s": round((run.info.end_time - run.info.start_time) / 1000, 1),
                              "peak_rss_mb": run.data.metrics.get("peak_rss_mb")}
    return runs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--max-iterations", type=int, default=300, help="refit's early-stopping budget")
    parser.add_argument("--tune-rows", type=int, default=0, help="tune on a sample of this many train rows")
    parser.add_argument("--parallel-steps", type=int, default=2, help="main's parallel_steps (1 = one at a time)")
    args = parser.parse_args()
    try:
        import psutil  # noqa: F401 - checked before minutes of work, used by TreeSampler
    except ImportError:
        sys.exit("bench/memory.py needs psutil: pip install -r bench/requirements.txt")
    frame = synthetic(args.rows)
    float64_bytes = frame.shape[0] * frame.shape[1] * 8
    path = Path(tempfile.mkdtemp(prefix="tabtune-memory-")) / "synthetic.parquet"
    frame.to_parquet(path)
    del frame
    uri = temp_store()
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
           "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    command = [sys.executable, "-m", "mlflow", "run", str(PROJECT_DIR), "--env-manager", "local",
               "-P", f"data={path}", "-P", "target=y", "-P", f"trials={args.trials}",
               "-P", f"iterations={args.iterations}", "-P", "alphas=1,0.1,0.01",
               "-P", f"max_iterations={args.max_iterations}", "-P", f"tune_rows={args.tune_rows}",
               "-P", f"parallel_steps={args.parallel_steps}"]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=PROJECT_DIR, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
    sampler = TreeSampler(process.pid)
    sampler.start()
    _, stderr = process.communicate()
    sampler.stop.set()
    sampler.join()
    wall = time.perf_counter() - started
    if process.returncode != 0:
        sys.exit(f"pipeline failed:\n{stderr[-4000:]}")
    runs = step_runs(uri)
    over = float64_bytes
    steps = {}
    for step in sorted(set(sampler.steps) | set(runs)):
        sampled, run = sampler.steps.get(step), runs.get(step, {})
        recorded = run.get("peak_rss_mb")
        steps[step] = {
            "recorded_peak_rss_mb": recorded,
            "sampled_peak_rss_mb": round(sampled["rss"] / MB, 1) if sampled else None,
            "sampled_peak_is_forked_fit": sampled["forked"] if sampled else None,
            "sampled_peak_step_tree_mb": round(sampled["step_tree"] / MB, 1) if sampled else None,
            "processes": len(sampled["processes"]) if sampled else 0,
            "recorded_over_data": round(recorded * MB / over, 2) if recorded else None,
            "sampled_over_data": round(sampled["rss"] / over, 2) if sampled else None,
            "wall_s": run.get("wall_s"),
        }
    emit("memory", {
        "rows": args.rows, "trials": args.trials, "iterations": args.iterations,
        "max_iterations": args.max_iterations, "parallel_steps": args.parallel_steps,
        "data_float64_mb": round(float64_bytes / MB, 1),
        "sample_interval_s": sampler.interval_s, "polls": sampler.polls,
        "peak_single_process_mb": round(sampler.single_peak["rss"] / MB, 1),
        "peak_single_process_step": sampler.single_peak["step"],
        "peak_single_process_is_forked_fit": sampler.single_peak["forked"],
        "peak_single_process": sampler.single_peak["command"],
        "peak_process_tree_mb": round(sampler.tree_peak["rss"] / MB, 1),
        "peak_process_tree_at_s": sampler.tree_peak["at_s"],
        "peak_process_tree_by_step_mb": sampler.tree_peak["by_step"],
        "peak_process_tree_pss_mb": round(sampler.tree_peak["pss"] / MB, 1),
        "single_over_data": round(sampler.single_peak["rss"] / over, 2),
        "tree_over_data": round(sampler.tree_peak["rss"] / over, 2),
        "tree_pss_over_data": round(sampler.tree_peak["pss"] / over, 2),
        "pipeline_wall_s": round(wall, 1),
        "steps": steps,
    })


if __name__ == "__main__":
    main()
