#!/usr/bin/env bash
# The main job: build the release binaries, then run the default benchmark matrix
# (`webhook-bench run`: 8 receiver variants, three of them with durable stores, x 3 scenarios x 3
# interleaved rounds, about ten minutes),
# writing results/runs/<date>-<host>/ and refreshing results/README.md. Extra arguments go to
# `webhook-bench run` (see `--help`). Loopback only; every run is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v taskset >/dev/null || { echo "taskset (util-linux) is needed to pin receiver and generator to cores" >&2; exit 2; }
# The NATS variant runs against a real nats-server (Debian package), started by the runner.
if ! command -v nats-server >/dev/null; then
  echo "installing nats-server (apt-get) for the hyper:ring:serde:nats variant" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nats-server >/dev/null
fi
cargo build --release --bins >&2
target_dir=$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
exec "$target_dir/release/webhook-bench" run "$@"
