#!/usr/bin/env bash
# The open-loop engine's ceiling against wrk's, side by side in one run (issue #4's capacity goal):
# both send 4 KB POSTs to a receiver's /webhooks/null endpoint over 32 persistent connections,
# the generator pinned to core 1, the receiver (may, the fastest null endpoint) to core 0.
# wrk runs twice: one static request (its fastest mode), and through scripts/wrk_pool.py's Lua pool
# of 1,000 pre-signed deliveries (how this project drives wrk); didit-loadgen runs twice: cycling
# 1,000 deliveries built before the run (--pool 1000, like for like with the Lua pool), and
# building and signing a fresh delivery for every request (what its /webhooks/didit runs do).
# Loopback only; every run is bounded.
#
# Besides each rate, the generator's own CPU time per request (user + system, /usr/bin/time, the
# whole process: didit-loadgen's start-up and warm-up included) says which side was the limit:
# a generator with CPU to spare was held back by the receiver.
#
# Usage: scripts/bench-loadgen-capacity.sh [seconds per run, default 8]
# Env: REPEAT (default 3) interleaved rounds; SERVER (default may).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-8}"
repeat="${REPEAT:-3}"
server="${SERVER:-may}"

bash scripts/apt-install.sh wrk time:/usr/bin/time >&2 \
  || { echo "cannot install wrk and time (Debian packages); install them and retry" >&2; exit 2; }
[ "$(nproc)" -ge 2 ] || { echo "needs 2 cores (receiver and generator on separate cores)" >&2; exit 2; }

cargo build --release --bin didit-receiver --bin didit-loadgen >&2
export DIDIT_WEBHOOK_SECRET="capacity-secret-$(date +%s)"
work=$(mktemp -d)
trap 'rm -rf "$work"; kill $(jobs -p) 2>/dev/null || true' EXIT

taskset -c 0 target/release/didit-receiver --server "$server" --store memory --listen 127.0.0.1:0 --workers 1 \
  --enable-null-endpoint >"$work/out" 2>"$work/err" &
for _ in $(seq 100); do grep -q "listening on" "$work/out" 2>/dev/null && break; sleep 0.05; done
addr=$(sed -n 's/^listening on //p' "$work/out")
[ -n "$addr" ] || { echo "receiver did not start: $(cat "$work/err")" >&2; exit 1; }

# wrk's fastest mode: one static request (a 4 KB body), no per-request Lua.
python3 - "$work/static.lua" <<'PY'
import sys
body = '{"padding":"' + "x" * (4096 - 14) + '"}'
open(sys.argv[1], "w").write(
    'wrk.method = "POST"\nwrk.body = [[%s]]\nwrk.headers["Content-Type"] = "application/json"\n' % body)
PY

: >"$work/raw.tsv"
# Runs a command under /usr/bin/time; its user + system CPU seconds go to $work/time.
timed() {
  /usr/bin/time -f "%U %S" -o "$work/time.raw" "$@"
  awk '{print $1 + $2}' "$work/time.raw" >"$work/time"
}
# One row for a wrk run: rate, requests sent, CPU seconds.
wrk_row() {
  printf "%s\t%s\t%s\t%s\n" "$1" "$(awk '/Requests\/sec/ {print $2}' "$work/wrk")" \
    "$(awk '/requests in/ {print $1}' "$work/wrk")" "$(cat "$work/time")" >>"$work/raw.tsv"
}
for round in $(seq "$repeat"); do
  echo "== round $round/$repeat: wrk" >&2
  taskset -c 1 wrk -t1 -c32 -d1s -s "$work/static.lua" "http://$addr/webhooks/null" >/dev/null
  timed taskset -c 1 wrk -t1 -c32 -d"${secs}s" -s "$work/static.lua" "http://$addr/webhooks/null" >"$work/wrk"
  wrk_row wrk
  echo "== round $round/$repeat: wrk + Lua pool" >&2
  python3 scripts/wrk_pool.py "$work/pool.lua" --count 1000 --path /webhooks/null 2>/dev/null
  taskset -c 1 wrk -t1 -c32 -d1s -s "$work/pool.lua" "http://$addr" >/dev/null
  timed taskset -c 1 wrk -t1 -c32 -d"${secs}s" -s "$work/pool.lua" "http://$addr" >"$work/wrk"
  wrk_row "wrk + Lua pool"
  for mode in pool fresh raw-pool raw-fresh; do
    echo "== round $round/$repeat: didit-loadgen, $mode" >&2
    extra=()
    case $mode in pool) extra=(--pool 1000);; raw-pool) extra=(--pool 1000 --http raw);; raw-fresh) extra=(--http raw);; esac
    timed taskset -c 1 target/release/didit-loadgen --scenario scenarios/max-throughput.toml \
      --target "http://$addr" --path /webhooks/null --max --connections 32 --warmup 1s \
      --duration "${secs}s" --quiet --report "$work/lg.json" "${extra[@]}" >/dev/null
    printf "didit-loadgen ($mode)\t%s\t%s\n" "$(python3 -c 'import json,sys; r = json.load(open(sys.argv[1])); print(r["load"]["achieved_rate"], r["requests"]["total"], sep="\t")' "$work/lg.json")" \
      "$(cat "$work/time")" >>"$work/raw.tsv"
  done
done
python3 - "$work/raw.tsv" "$repeat" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().splitlines() if l]
res, cpu = {}, {}
for name, rps, requests, cpu_s in rows:
    res.setdefault(name, []).append(float(rps))
    cpu.setdefault(name, []).append(float(cpu_s) / max(float(requests), 1.0) * 1e6)
med = {k: statistics.median(v) for k, v in res.items()}
print("| generator (one core) | /webhooks/null req/s, median (min–max) | generator CPU per request, µs, median (min–max) |")
print("|---|---|---|")
names = {"wrk": "wrk, one static request", "wrk + Lua pool": "wrk, Lua pool of 1,000 signed deliveries",
         "didit-loadgen (pool)": "didit-loadgen --pool 1000 (hyper client)",
         "didit-loadgen (fresh)": "didit-loadgen, fresh signed delivery per request (hyper client)",
         "didit-loadgen (raw-pool)": "didit-loadgen --pool 1000 --http raw",
         "didit-loadgen (raw-fresh)": "didit-loadgen --http raw, fresh signed delivery per request"}
for k in names:
    v = res[k]
    c = cpu[k]
    print(f"| {names[k]} | {med[k]:,.0f} ({min(v):,.0f}–{max(v):,.0f}) "
          f"| {statistics.median(c):.1f} ({min(c):.1f}–{max(c):.1f}) |")
lua = med["wrk + Lua pool"]
print(f"\nratios to wrk's Lua pool (like for like: 1,000 pre-signed deliveries), medians of {sys.argv[2]} interleaved rounds:")
for k in names:
    if k.startswith("didit-loadgen"):
        print(f"  {names[k]}: {med[k] / lua:.2f} (to wrk's static request: {med[k] / med['wrk']:.2f})")
PY
