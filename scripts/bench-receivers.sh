#!/usr/bin/env bash
# Receiver throughput on a 4 KB signed status.updated body, measured side by side in one run:
# each variant's /webhooks/didit against its own /webhooks/null, and against the axum-naive peer.
# The receiver runs on one core with one worker, the generator on the other core; loopback only.
#
# Usage: scripts/bench-receivers.sh [seconds per run, default 8] [variants...]
#   variant = server:hmac:json, e.g. hyper:ring:serde (default: a representative set)
# Env: REPEAT (default 3) rounds, interleaved (A B C A B C ...) so drift hits every variant alike;
#   the table shows medians with min-max.
#   GEN=loadgen (default): didit-loadgen's raw client, closed loop, 32 connections, sending
#     deliveries built and signed before the run (`--pool`), every one of them fresh: a sized
#     pool of POOL_RATE (default 70000) deliveries per second of run. If a receiver outruns it the
#     run fails and says so; raise POOL_RATE (each pooled delivery holds ~9 KB of memory).
#   GEN=wrk: wrk with a Lua pool of 1,000 signed deliveries (scripts/wrk_pool.py). wrk repeats
#     them, so after the first 1,000 requests /webhooks/didit answers duplicates: the table's
#     "duplicates" column says how many. Kept for comparison with figures taken that way.
# wrk is the Debian package `wrk` (installed here when missing and apt-get is available).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-8}"; shift || true
variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(hyper:ring:serde hyper:aws-lc:serde may:ring:serde axum:ring:serde axum-naive:ring:serde)
gen="${GEN:-loadgen}"
case "$gen" in
  loadgen|wrk) ;;
  *) echo "GEN must be loadgen or wrk, not '$gen'" >&2; exit 2 ;;
esac

if [ "$gen" = wrk ] && ! command -v wrk >/dev/null; then
  echo "wrk not found: installing the Debian package" >&2
  (apt-get update -qq && apt-get install -y -qq wrk) >&2 || { echo "cannot install wrk; install it and retry" >&2; exit 2; }
fi
ncpu=$(nproc)
[ "$ncpu" -ge 2 ] || { echo "needs 2 cores (receiver and generator on separate cores); found $ncpu" >&2; exit 2; }

cargo build --release --bin didit-receiver --bin didit-loadgen >&2
bin=target/release/didit-receiver
export DIDIT_WEBHOOK_SECRET="bench-secret-$(date +%s)"
work=$(mktemp -d)
trap 'rm -rf "$work"; kill $(jobs -p) 2>/dev/null || true' EXIT

metric() { # addr outcome -> count
  curl -s "http://$1/metrics" | awk -v o="outcome=\"$2\"" 'index($0, o) && /^didit_webhooks_total/ {print $2}'
}

run_one() { # server hmac json path -> prints "req/s duplicate-share"
  local server=$1 hmac=$2 json=$3 path=$4
  taskset -c 0 "$bin" --server "$server" --hmac "$hmac" --json "$json" --store memory --listen 127.0.0.1:0 \
    --workers 1 --enable-null-endpoint --queue-capacity 65536 >"$work/out" 2>"$work/err" &
  local pid=$!
  for _ in $(seq 100); do grep -q "listening on" "$work/out" 2>/dev/null && break; sleep 0.05; done
  local addr; addr=$(sed -n 's/^listening on //p' "$work/out")
  [ -n "$addr" ] || { echo "receiver $server did not start: $(cat "$work/err")" >&2; exit 1; }
  local rps
  if [ "$gen" = loadgen ]; then
    # The null endpoint does not de-duplicate, so a small pool cycled is enough there.
    local pool=1000
    [ "$path" = /webhooks/null ] || pool=$(( ${POOL_RATE:-70000} * (secs + 1) ))
    if ! taskset -c 1 target/release/didit-loadgen --scenario scenarios/max-throughput.toml \
        --target "http://$addr" --path "$path" --max --http raw --pool "$pool" \
        --duration "${secs}s" --warmup 1s --connections 32 --quiet --report "$work/rep.json" \
        >"$work/lg" 2>&1; then
      kill -TERM $pid; wait $pid || true
      echo "didit-loadgen failed for $server $path: measurement invalid" >&2; cat "$work/lg" >&2; exit 1
    fi
    rps=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["load"]["achieved_rate"])' "$work/rep.json")
  else
    python3 scripts/wrk_pool.py "$work/pool.lua" --count 1000 --path "$path" 2>/dev/null
    taskset -c 1 wrk -t1 -c32 -d1s -s "$work/pool.lua" "http://$addr" >/dev/null   # warm-up
    taskset -c 1 wrk -t1 -c32 -d"${secs}s" -s "$work/pool.lua" "http://$addr" >"$work/wrk"
    if grep -q "Non-2xx" "$work/wrk"; then
      kill -TERM $pid; wait $pid || true
      echo "non-2xx answers for $server $path: measurement invalid" >&2; cat "$work/wrk" >&2; exit 1
    fi
    rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk")
  fi
  local acc dup
  acc=$(metric "$addr" accepted); dup=$(metric "$addr" duplicate)
  kill -TERM $pid; wait $pid || true
  python3 -c 'import sys; a, d = float(sys.argv[2] or 0), float(sys.argv[3] or 0); print(sys.argv[1], f"{d / (a + d):.3f}" if a + d else "-")' "$rps" "$acc" "$dup"
}

repeat="${REPEAT:-3}"
: >"$work/raw.tsv"
for round in $(seq "$repeat"); do
  for v in "${variants[@]}"; do
    IFS=: read -r server hmac json <<<"$v"
    echo "== round $round/$repeat: $v" >&2
    out=$(run_one "$server" "$hmac" "$json" /webhooks/didit); read -r d dshare <<<"$out"
    out=$(run_one "$server" "$hmac" "$json" /webhooks/null); read -r n _ <<<"$out"
    printf "%s\tdidit\t%s\t%s\n%s\tnull\t%s\t-\n" "$v" "$d" "$dshare" "$v" "$n" >>"$work/raw.tsv"
  done
done
python3 - "$work/raw.tsv" "$gen" "${variants[@]}" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
gen, variants = sys.argv[2], sys.argv[3:]
res, dup = {}, {}
for v, path, rps, share in rows:
    res.setdefault((v, path), []).append(float(rps))
    if path == "didit" and share != "-":
        dup.setdefault(v, []).append(float(share))
med = {k: statistics.median(x) for k, x in res.items()}
def rng(k):
    x = res[k]
    return f"{med[k]:,.0f} ({min(x):,.0f}–{max(x):,.0f})"
naive = next((v for v in variants if v.startswith("axum-naive")), None)
# Each round measures a variant's didit and null paths back to back, so the per-round ratio cancels
# drift that lasts longer than one pair; its median and range are shown beside the ratio of medians.
def paired(v):
    r = [d / n for d, n in zip(res[(v, "didit")], res[(v, "null")])]
    return f"{statistics.median(r):.2f} ({min(r):.2f}–{max(r):.2f})"
print("| variant | /webhooks/didit req/s, median (min–max) | /webhooks/null req/s | didit / null | per-round didit / null, median (min–max) | didit / naive | duplicates |")
print("|---|---|---|---|---|---|---|")
for v in variants:
    d, n = med[(v, "didit")], med[(v, "null")]
    to_naive = f"{d / med[(naive, 'didit')]:.2f}" if naive else "–"
    shares = dup.get(v, [])
    dups = f"{max(shares):.1%}" if shares else "–"
    print(f"| {v} | {rng((v, 'didit'))} | {rng((v, 'null'))} | {d / n:.2f} | {paired(v)} | {to_naive} | {dups} |")
gen = {"loadgen": "didit-loadgen --http raw, fresh pooled deliveries", "wrk": "wrk, Lua pool of 1,000"}[gen]
print(f"\n{len(rows) // 2 // max(len(variants), 1)} rounds, generator: {gen}; "
      "didit / null and didit / naive are ratios of medians; duplicates is the largest share of "
      "/webhooks/didit answers that were `duplicate` in any round.")
PY
