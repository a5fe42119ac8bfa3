#!/usr/bin/env bash
# Run every benchmark one after another (they need the machine to themselves) and keep each
# one's JSON in bench/results/ (not committed). Usage: bash bench/run_all.sh [name ...]
# memory.py needs psutil: pip install -r bench/requirements.txt
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p results
export MLFLOW_DISABLE_TELEMETRY=true
PY="${PYTHON:-python}"
all=(pipeline tuning_overhead trial_scaling pipeline_vs_script pruning workers memory)
for name in "${@:-${all[@]}}"; do
  echo "== $name ($(date +%T))" >&2
  "$PY" "$name.py" > "results/$name.json"
done
