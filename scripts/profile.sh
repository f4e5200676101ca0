#!/usr/bin/env bash
# Where a receiver's CPU goes at saturation, by component: perf samples of one built-in variant
# (receiver on core 0, `didit-loadgen` closed loop on core 1, fresh Approved deliveries of
# scenarios/max-throughput.toml, loopback only), grouped into the kernel, the HMAC (ring,
# aws-lc, RustCrypto), the JSON parse (serde and the SIMD parsers, with the derive code they
# drive), the HTTP server and its runtime, the allocator and libc, and this project's own code.
# What `webhook-bench cost` measures as layers, this names by the code that runs.
#
#   bash scripts/profile.sh [VARIANT] [SECONDS]     # default hyper:ring:serde:memory 5
#
# Prints the groups (percent of the receiver's samples) and the top symbols; the raw data stays
# in the folder it names. Needs perf (Debian: linux-perf, installed when missing) and
# perf_event_paranoid <= 1, or root. Every run stops by itself after SECONDS + 4.
set -euo pipefail
cd "$(dirname "$0")/.."
variant=${1:-hyper:ring:serde:memory}
secs=${2:-5}
IFS=: read -r server hmac json store <<<"$variant"
if [ -z "${store:-}" ]; then
  echo "profile.sh: VARIANT is server:hmac:json:store, e.g. may:ring:serde:memory" >&2
  exit 2
fi
case "$store" in
  memory | null) ;;
  *) echo "profile.sh: the store is memory or null (a broker or SQLite file needs the runner: webhook-bench cost)" >&2; exit 2 ;;
esac
command -v perf >/dev/null || bash scripts/apt-install.sh linux-perf:perf
command -v taskset >/dev/null || { echo "taskset (util-linux) is needed to pin receiver and generator" >&2; exit 2; }
cargo build --release --workspace --bins >&2
bin=$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/release
out=$(mktemp -d "${TMPDIR:-/tmp}/didit-profile.XXXXXX")
export DIDIT_WEBHOOK_SECRET=webhook-bench-secret-not-a-real-key RUST_LOG=warn,may_minihttp=off
taskset -c 0 "$bin/didit-receiver" --server "$server" --hmac "$hmac" --json "$json" --store "$store" \
  --listen 127.0.0.1:0 --workers 1 --queue-capacity 1048576 >"$out/receiver.out" 2>"$out/receiver.log" &
rx=$!
trap 'kill "$rx" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  grep -q '^listening on' "$out/receiver.out" 2>/dev/null && break
  sleep 0.1
done
addr=$(sed -n 's/^listening on //p' "$out/receiver.out")
[ -n "$addr" ] || { echo "profile.sh: the receiver did not start:" >&2; tail -5 "$out/receiver.log" >&2; exit 1; }
pool=()
[ "$store" = null ] && pool=(--pool 1000)
taskset -c 1 "$bin/didit-loadgen" --scenario scenarios/max-throughput.toml --target "http://$addr" \
  --duration "$((secs + 2))s" --warmup 1s "${pool[@]}" --report "$out/loadgen.json" >/dev/null 2>"$out/loadgen.log" &
gen=$!
sleep 2
perf record -q -F 2999 -g -p "$rx" -o "$out/perf.data" -- sleep "$secs" 2>"$out/perf.log"
wait "$gen" || { echo "profile.sh: the generator failed:" >&2; tail -5 "$out/loadgen.log" >&2; exit 1; }
perf report -i "$out/perf.data" --no-children --sort symbol --stdio -g none --percent-limit 0 \
  2>/dev/null >"$out/report.txt"
rate=$(python3 -c 'import json, sys; print(round(json.load(open(sys.argv[1]))["load"]["achieved_rate"]))' "$out/loadgen.json")
echo "$variant: $secs s of perf samples at saturation ($rate req/s); perf data in $out"
python3 scripts/profile-groups.py "$out/report.txt"
