#!/usr/bin/env bash
# The main job: build the release binaries, then run the default benchmark matrix
# (`webhook-bench run`: 12 receiver variants, five of them with durable stores and one with Kafka
# on tansu's in-memory engine, and the Node.js,
# Python, Go and Bun peers of peers/ (one process per receiver core, as our receivers get one
# worker per core, GOMAXPROCS for Go; Node.js and Python also with two processes on a single
# core's set), x 3 scenarios x
# 3 interleaved rounds, about twenty minutes), writing results/runs/<date>-<host>/ and
# refreshing results/README.md. Extra arguments go to `webhook-bench run` (see `--help`);
# PEERS=0 leaves the peers out. Loopback only; every run is bounded.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v taskset >/dev/null || { echo "taskset (util-linux) is needed to pin receiver and generator to cores" >&2; exit 2; }
# The NATS, RabbitMQ and Kafka variants run against real brokers the runner starts (Debian
# packages; tansu built with cargo, about 11 minutes the first time, and once more with its
# in-memory engine for kafka-memory): each is installed only when the chosen matrix
# (`--receivers`, default `default`) has a variant on it.
receivers=default
prev=
for a in "$@"; do
  [ "$prev" = --receivers ] && receivers=$a
  case "$a" in --receivers=*) receivers=${a#--receivers=} ;; esac
  prev=$a
done
needs() { case "$receivers" in default|all|*":$1"*) return 0 ;; *) return 1 ;; esac; }
brokers=()
needs nats && brokers+=(nats-server)
needs rabbitmq && brokers+=(rabbitmq-server:/usr/lib/rabbitmq/bin/rabbitmq-server)
[ ${#brokers[@]} -eq 0 ] || bash scripts/apt-install.sh "${brokers[@]}"
needs kafka && bash scripts/kafka-install.sh
# tansu's in-memory engine is a second build of its own, made only when a kafka-memory variant runs.
needs kafka-memory && bash scripts/kafka-install.sh --memory
peers=()
if [ "${PEERS:-1}" != 0 ]; then
  # Node.js (Debian's nodejs when missing), the Python peer's pinned virtualenv, Go (Debian's
  # golang-go) and the Go peer's binary (peers/go/bin), Bun pinned by npm (peers/bun/node_modules).
  bash scripts/peers-install.sh
  py="${DIDIT_PEERS_VENV:-${HOME:-/tmp}/.cache/didit-webhook-bench/peers-venv}/bin/python"
  peers=(
    --receiver "node=node peers/node/server.js --port {port} --workers {workers}"
    --receiver "node-cluster2=node peers/node/server.js --port {port} --workers 2"
    --receiver "python=$py peers/python/server.py --port {port} --workers {workers}"
    --receiver "python-workers2=$py peers/python/server.py --port {port} --workers 2"
    --receiver "go=peers/go/bin/didit-peer-go --port {port} --workers {workers}"
    --receiver "bun=peers/bun/node_modules/.bin/bun peers/bun/server.js --port {port} --workers {workers}"
    # Each peer's runtime and version, as the tables name them.
    --receiver-runtime "node=Node.js $(node --version)"
    --receiver-runtime "node-cluster2=Node.js $(node --version)"
    --receiver-runtime "python=$("$py" --version), FastAPI + uvicorn"
    --receiver-runtime "python-workers2=$("$py" --version), FastAPI + uvicorn"
    --receiver-runtime "go=$(go version | awk '{print $3}') net/http (Debian 12's Go)"
    --receiver-runtime "bun=Bun $(peers/bun/node_modules/.bin/bun --version), Bun.serve"
  )
fi
cargo build --release --workspace --bins >&2
target_dir=$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
exec "$target_dir/release/webhook-bench" run "${peers[@]}" "$@"
