#!/usr/bin/env bash
# Opt-in timing test of each HMAC backend's signature comparison (dudect-style Welch t-test,
# crates/didit-webhook/tests/timing.rs): forged tags wrong in the first byte vs the last byte,
# interleaved, |t| < 4.5 required. Release build, pinned to one core (default 1; TIMING_CPU=n),
# TIMING_SAMPLES per class (default 1,000,000). Runs the backends one after another.
set -euo pipefail
cd "$(dirname "$0")/.."
cpu=${TIMING_CPU:-1}
pin=()
command -v taskset >/dev/null && pin=(taskset -c "$cpu")
cargo test --release -p didit-webhook --test timing --no-run >&2
exec "${pin[@]}" cargo test --release -p didit-webhook --test timing -- --ignored --nocapture --test-threads 1
