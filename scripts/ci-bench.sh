#!/usr/bin/env bash
# Regression and soak gates for CI.
# 1. Deterministic: Callgrind instruction counts of the core's hot paths (Gungraun) against
#    results/instructions-baseline.json, at 3 %.
# 2. Throughput: a quick run of a fixed small matrix (hyper and the naive peer, max-throughput,
#    3 interleaved rounds of 2 s) compared with the committed results/baseline.json; then the
#    gate tests itself: the same run with hyper deliberately slowed (200 µs of extra work per
#    delivery) must be reported as a regression.
# 3. Soak (quick): `webhook-bench soak --quick`: hyper at 80 % of its measured maximum on noisy
#    traffic for one minute after a 30 s warm-up (scenarios/soak.toml); fails on any mismatch,
#    transport errors or a receiver that dies; RSS growth and p99 drift are printed, and gated by
#    the full soak only.
#
# Usage: scripts/ci-bench.sh            # about three minutes after the build
# Env:   THRESHOLD (default 25%: this shared 2-core machine's run-to-run spread is about ±20 %)
#        UPDATE_BASELINE=1 writes both baselines from this run instead of comparing.
# Needs valgrind (installed from Debian when missing) and gungraun-runner 0.20.0 (installed with
# cargo when missing).
# Exit:  0 no regression, 1 regression (or the gate missed the slowed variant), 2 cannot compare.
set -euo pipefail
cd "$(dirname "$0")/.."
threshold="${THRESHOLD:-25%}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "== instruction counts (Gungraun)" >&2
if ! command -v valgrind >/dev/null; then
  echo "valgrind not found: installing the Debian package" >&2
  (apt-get update -qq && apt-get install -y -qq valgrind) >&2 || { echo "cannot install valgrind" >&2; exit 2; }
fi
if [ "$(gungraun-runner --version 2>/dev/null | awk '{print $2}')" != "0.20.0" ]; then
  echo "installing gungraun-runner 0.20.0 (must match the gungraun library)" >&2
  cargo install --locked --quiet gungraun-runner --version 0.20.0 >&2
fi
gate=(python3 scripts/instructions-gate.py)
[ "${UPDATE_BASELINE:-0}" = 1 ] && gate+=(--update)
cargo bench -p didit-webhook --bench instructions 2>"$work/bench.err" | "${gate[@]}" \
  || { rc=$?; tail -20 "$work/bench.err" >&2; exit "$rc"; }

cargo build --release --workspace --bins >&2
target_dir=$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
bench="$target_dir/release/webhook-bench"
quick=(run --quick --quiet --scenario scenarios/max-throughput.toml --repeat 3)

echo "== quick run" >&2
"$bench" "${quick[@]}" --receivers hyper:ring:serde,axum-naive:ring:serde --out "$work/current" >&2
if [ "${UPDATE_BASELINE:-0}" = 1 ]; then
  cp "$work/current/results.json" results/baseline.json
  echo "wrote results/baseline.json" >&2
  exit 0
fi
echo "== compare with results/baseline.json" >&2
"$bench" compare --baseline results/baseline.json --current "$work/current/results.json" --threshold "$threshold"

echo "== self-test: a deliberately slowed variant must be caught" >&2
"$bench" "${quick[@]}" --receivers hyper:ring:serde:slow200,axum-naive:ring:serde --out "$work/slowed" >&2
set +e
"$bench" compare --baseline results/baseline.json --current "$work/slowed/results.json" --threshold "$threshold"
rc=$?
set -e
if [ "$rc" -ne 1 ]; then
  echo "the gate did not report the slowed variant as a regression (exit $rc)" >&2
  exit 1
fi
echo "gate ok: the slowed variant was caught" >&2

echo "== soak (quick)" >&2
set +e
"$bench" soak --quick --quiet --out "$work/soak"
rc=$?
set -e
# One minute on a shared 2-core machine is enough to catch wrong answers and a dying receiver,
# which fail CI; RSS growth and p99 drift are judged by the full ten-minute soak (published under
# results/soak/) and only reported here, since one stalled second of this VM moves them.
python3 - "$work/soak/soak.json" "$rc" <<'PY'
import json, sys
path, rc = sys.argv[1], int(sys.argv[2])
try:
    v = json.load(open(path))["verdict"]
except (OSError, ValueError, KeyError) as e:
    sys.exit(f"soak: no verdict ({e}); exit {rc}")
hard = [f for f in v["failures"] if not f.startswith(("RSS grew", "p99 drifted"))]
if v["mismatches"] or hard:
    sys.exit("soak failed: " + "; ".join(hard or [f"{v['mismatches']} mismatches"]))
soft = [f for f in v["failures"] if f not in hard]
print("soak ok: no mismatches, receiver alive" + (" (reported, not gated here: " + "; ".join(soft) + ")" if soft else ""), file=sys.stderr)
PY
