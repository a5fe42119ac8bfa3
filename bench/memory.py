"""Peak memory of the whole pipeline on a 1,000,000-row synthetic regression table with 20
numeric and 3 categorical columns, against the size of that table as float64.

    python bench/memory.py [--rows 1000000] [--trials 5] [--iterations 100] [--parallel-steps 2]

Prints JSON: the table's float64 size, the peak resident memory of the largest single process
and of the whole process tree (sampled every 0.2 s), the pipeline's wall time, per-step times."""

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


def tree_rss(root: int) -> dict[int, int]:
    """Resident bytes of `root` and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        children.setdefault(int(fields["PPid"].strip()), []).append(int(entry.name))
        if "VmRSS" in fields:
            rss[int(entry.name)] = int(fields["VmRSS"].split()[0]) * 1024
    found, frontier = {}, [root]
    while frontier:
        pid = frontier.pop()
        found[pid] = rss.get(pid, 0)
        frontier += children.get(pid, [])
    return found


_modules: dict[int, str] = {}


def step_module(pid: int) -> str:
    """The tabtune step a process runs ("steps.refit", …), from its command line; "" if none."""
    if pid not in _modules:
        try:
            words = Path(f"/proc/{pid}/cmdline").read_text().split("\0")
        except OSError:
            return ""
        _modules[pid] = next((w for w in words if w.startswith("steps.")), "")
    return _modules[pid]


def step_walls(uri: str) -> dict[str, float]:
    """Wall seconds of each step run in the store (start to end), keyed by run name."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    walls = {}
    for experiment in client.search_experiments():
        for run in client.search_runs([experiment.experiment_id], "attributes.status = 'FINISHED'"):
            if run.info.end_time and "tabtune.step" in run.data.tags:
                walls[run.info.run_name] = round((run.info.end_time - run.info.start_time) / 1000, 1)
    return walls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--max-iterations", type=int, default=300, help="refit's early-stopping budget")
    parser.add_argument("--tune-rows", type=int, default=0, help="tune on a sample of this many train rows")
    parser.add_argument("--parallel-steps", type=int, default=2, help="main's parallel_steps (1 = one at a time)")
    args = parser.parse_args()
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
    peak = {"tree": 0, "single": 0, "single_cmd": ""}
    step_peaks: dict[str, int] = {}  # steps.<module> -> largest RSS seen for a process running it
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            sizes = tree_rss(process.pid)
            peak["tree"] = max(peak["tree"], sum(sizes.values()))
            for step_pid, step_size in sizes.items():
                step = step_module(step_pid)
                if step:
                    step_peaks[step] = max(step_peaks.get(step, 0), step_size)
            pid, size = max(sizes.items(), key=lambda item: item[1], default=(0, 0))
            if size > peak["single"]:
                peak["single"] = size
                try:
                    peak["single_cmd"] = Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")[:120]
                except OSError:
                    pass
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = process.communicate()
    stop.set()
    sampler.join()
    wall = time.perf_counter() - started
    if process.returncode != 0:
        sys.exit(f"pipeline failed:\n{stderr[-4000:]}")
    mb = 1024 * 1024
    emit("memory", {
        "rows": args.rows, "trials": args.trials, "iterations": args.iterations,
        "max_iterations": args.max_iterations, "parallel_steps": args.parallel_steps,
        "data_float64_mb": round(float64_bytes / mb, 1),
        "peak_single_process_mb": round(peak["single"] / mb, 1), "peak_single_process": peak["single_cmd"],
        "peak_process_tree_mb": round(peak["tree"] / mb, 1),
        "single_over_data": round(peak["single"] / float64_bytes, 2),
        "tree_over_data": round(peak["tree"] / float64_bytes, 2),
        "pipeline_wall_s": round(wall, 1),
        "peak_per_step_mb": {step: round(size / mb, 1) for step, size in sorted(step_peaks.items())},
        "peak_per_step_over_data": {step: round(size / float64_bytes, 2) for step, size in sorted(step_peaks.items())},
        "step_wall_s": step_walls(uri),
    })


if __name__ == "__main__":
    main()
