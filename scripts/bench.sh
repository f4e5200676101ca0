#!/usr/bin/env bash
# The main job: build the release binaries, then run the default benchmark matrix
# (`webhook-bench run`: 5 receiver variants x 2 scenarios x 3 interleaved rounds, a few minutes),
# writing results/runs/<date>-<host>/ and refreshing results/README.md. Extra arguments go to
# `webhook-bench run` (see `--help`). Loopback only; every run is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v taskset >/dev/null || { echo "taskset (util-linux) is needed to pin receiver and generator to cores" >&2; exit 2; }
cargo build --release --bins >&2
target_dir=$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
exec "$target_dir/release/webhook-bench" run "$@"
