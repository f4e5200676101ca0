#!/usr/bin/env bash
# The main job: build the release binaries, then run the default benchmark matrix
# (`webhook-bench run`: 10 receiver variants, four of them with durable stores, x 3 scenarios x 3
# interleaved rounds, about a quarter of an hour),
# writing results/runs/<date>-<host>/ and refreshing results/README.md. Extra arguments go to
# `webhook-bench run` (see `--help`). Loopback only; every run is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v taskset >/dev/null || { echo "taskset (util-linux) is needed to pin receiver and generator to cores" >&2; exit 2; }
# The NATS and RabbitMQ variants run against real brokers (Debian packages) the runner starts.
bash scripts/apt-install.sh nats-server rabbitmq-server:/usr/lib/rabbitmq/bin/rabbitmq-server
cargo build --release --bins >&2
target_dir=$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
exec "$target_dir/release/webhook-bench" run "$@"
