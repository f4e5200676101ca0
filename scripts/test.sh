#!/usr/bin/env bash
# The project's test command (README "Set up"): installs what the tests need beyond Cargo, then
# runs every test. Extra arguments go to `cargo test` (e.g. `bash scripts/test.sh --test it durability::`).
#
# - nats-server (Debian package): tests/it/durability.rs starts a real JetStream server on a free
#   loopback port and kills it mid-run.
# - rabbitmq-server (Debian package): the same with a real RabbitMQ node (its own node name,
#   ports and data folder; the package's system service is not started).
# - tansu (crates.io, `cargo install`, about 11 minutes the first time: scripts/kafka-install.sh):
#   the same with a real Kafka-protocol broker (SQLite storage in a throwaway folder).
# - prlimit (util-linux): the "disk full" test lowers the receiver's file-size limit.
# - chattr (e2fsprogs): the read-only test sets the store's files immutable (needs root, as the
#   apt-get above does).
# - python3: the CPython oracle for signatures and canonicalisation.
# - wrk and time (Debian packages): `webhook-bench capacity` measures the generator against wrk.
# - valgrind (Debian package): `webhook-bench cost --callgrind` counts instructions per request.
# - curl, nodejs (Debian packages) and the pinned Python clients of tests/clients/requirements.txt
#   (pip, into a virtualenv: scripts/clients-install.sh): tests/it/real_clients.rs sends with them.
# - the example services of examples/ (a Cargo workspace of their own, built before the tests).
# - the peer receivers' Node.js and pinned Python packages (scripts/peers-install.sh, a
#   virtualenv of their own), Go (Debian's golang-go, the Go peer built into peers/go/bin) and
#   the pinned Bun (npm ci in peers/bun): tests/it/peers.rs runs them.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/apt-install.sh nats-server util-linux:prlimit e2fsprogs:chattr python3 wrk time:/usr/bin/time \
  rabbitmq-server:/usr/lib/rabbitmq/bin/rabbitmq-server curl nodejs:node valgrind
bash scripts/kafka-install.sh
DIDIT_CLIENTS_PYTHON=$(bash scripts/clients-install.sh)
export DIDIT_CLIENTS_PYTHON
bash scripts/peers-install.sh

# The binaries live in their own packages, so the end-to-end suite finds them in the target
# folder rather than through Cargo's CARGO_BIN_EXE_* (which covers one package only).
cargo build --workspace --bins
# The services a team copies build on their own, as an outside project's would, into the same
# target folder: tests/it/examples.rs runs the report card against them.
cargo build --locked --manifest-path examples/Cargo.toml --target-dir "${CARGO_TARGET_DIR:-target}"
exec cargo test --workspace --all-targets "$@"
