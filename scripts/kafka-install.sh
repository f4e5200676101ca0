#!/usr/bin/env bash
# Installs the Kafka-protocol broker the Kafka store is tested and benchmarked against: tansu
# 0.6.0 (Apache Kafka compatible, written in Rust), built from crates.io with the SQLite storage
# engine only, the engine that is durable on local disk. Skipped when `tansu` is already on PATH
# or in Cargo's bin folder ($CARGO_HOME/bin, default ~/.cargo/bin), which is where it goes.
# A cold build takes about 11 minutes on 2 cores (410 crates); it needs only Cargo and a C
# compiler (SQLite is compiled in).
set -euo pipefail
version=0.6.0
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
