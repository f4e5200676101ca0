#!/usr/bin/env bash
# Installs the Kafka-protocol broker the Kafka store is tested and benchmarked against: tansu
# 0.6.0 (Apache Kafka compatible, written in Rust), built from crates.io.
#
#   bash scripts/kafka-install.sh            # the SQLite engine only, durable on local disk: what
#                                            # the tests and the `kafka` variant use, in Cargo's
#                                            # bin folder ($CARGO_HOME/bin, default ~/.cargo/bin)
#   bash scripts/kafka-install.sh --memory   # also the in-memory engine (tansu's `dynostore`
#                                            # feature, a second build) in a root of its own,
#                                            # $DIDIT_TANSU_MEMORY_ROOT (default
#                                            # ~/.cache/didit-webhook-bench/tansu-memory): what the
#                                            # `kafka-memory` variant of scripts/bench.sh uses
#
# Each is skipped when its engine is already there: the SQLite build when `tansu` is on PATH or
# in Cargo's bin folder, the in-memory one when the binary in its root starts a broker on
# `memory://` (a build without the feature refuses it at once with FeatureNotEnabled). A cold build takes about 11
# minutes on 2 cores (410 crates; a few more for the in-memory engine); it needs only Cargo and a
# C compiler (SQLite is compiled in).
set -euo pipefail
version=0.6.0

if [ "${1:-}" = --memory ]; then
  root="${DIDIT_TANSU_MEMORY_ROOT:-${HOME:-/root}/.cache/didit-webhook-bench/tansu-memory}"
  bin="$root/bin/tansu"
  if [ -x "$bin" ]; then
    # Probe the engine on a free loopback port for 3 s: refused means a build without it.
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    probe_dir=$(mktemp -d)
    said=$(cd "$probe_dir" && timeout 3 "$bin" broker --storage-engine memory://tansu/ \
      --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" 2>&1 || true)
    rm -rf "$probe_dir"
    # A build with the engine says `ready in`; one without it, FeatureNotEnabled.
    if grep -q "ready in" <<<"$said" && ! grep -q FeatureNotEnabled <<<"$said"; then
      exit 0
    fi
    echo "kafka-install.sh: $bin has no in-memory engine; building it again" >&2
  fi
  echo "installing tansu $version with its SQLite and in-memory engines into $root (about 12 minutes on 2 cores)" >&2
  cargo install tansu --version "$version" --locked --no-default-features \
    --features libsql,dynostore --root "$root" --force >&2
  exit 0
fi

bin_dir="${CARGO_HOME:-${HOME:-/root}/.cargo}/bin"
found=$(command -v tansu || true)
[ -z "$found" ] && [ -x "$bin_dir/tansu" ] && found="$bin_dir/tansu"
if [ -n "$found" ]; then
  have=$("$found" --version 2>/dev/null | awk '{print $NF}' || true)
  if [ -n "$have" ] && [ "$have" != "$version" ]; then
    echo "kafka-install.sh: $found is tansu $have; the tests expect $version (cargo install tansu --version $version --locked --force ...)" >&2
  fi
  exit 0
fi
echo "installing tansu $version with cargo (SQLite engine only; about 11 minutes on 2 cores)" >&2
cargo install tansu --version "$version" --locked --no-default-features --features libsql >&2
