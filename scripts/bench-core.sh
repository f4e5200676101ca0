#!/usr/bin/env bash
# Runs the core criterion benchmarks on one core and prints the summary with the core's performance targets.
# Usage: scripts/bench-core.sh [criterion filter]   e.g. scripts/bench-core.sh verify_raw
# Env: BENCH_CPU (default 1) pins the run to that core when taskset exists; DIDIT_SHARED_DIR as in tests.
set -euo pipefail
cd "$(dirname "$0")/.."
cpu="${BENCH_CPU:-1}"
pin=()
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -gt "$cpu" ]; then
  pin=(taskset -c "$cpu")
fi
echo "== cargo bench -p didit-webhook --bench core ${*:-} (pinned: ${pin[*]:-no})" >&2
"${pin[@]}" cargo bench -p didit-webhook --bench core -- "$@"
python3 scripts/core-bench-report.py
