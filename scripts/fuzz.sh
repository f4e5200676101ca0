#!/usr/bin/env bash
# Runs the cargo-fuzz targets (fuzz/fuzz_targets) one after another, each for a given time, and
# prints how many executions each ran and whether it crashed.
#
#   bash scripts/fuzz.sh [--time SECONDS] [--jobs N] [--summary FILE] [TARGET[:SECONDS]...]
#
# Defaults: 300 s per target (TARGET:SECONDS overrides it for one), all targets (verify canon envelope may_request), 1 job. Needs a
# nightly toolchain (libFuzzer's sanitizer flags); installs cargo-fuzz with cargo if missing.
# New inputs go to target/fuzz-corpus/<target> (not committed); the committed seeds in
# fuzz/corpus/<target> are read, not grown. A crash leaves its input in fuzz/artifacts/<target>:
# commit it under fuzz/regressions/<target>/ and `cargo test -p didit-webhook --test fuzz_corpus`
# replays it. Writes a summary to target/fuzz-summary.json (or --summary FILE).
set -euo pipefail
cd "$(dirname "$0")/.."

secs=300
jobs=1
summary=target/fuzz-summary.json
targets=()
while (($#)); do
    case "$1" in
    --time) secs=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --summary) summary=$2; shift 2 ;;
    -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
    esac
done
((${#targets[@]})) || targets=(verify canon envelope may_request)

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz.sh: cargo fuzz needs a nightly toolchain: rustup toolchain install nightly" >&2
    exit 2
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

(cd fuzz && cargo +nightly fuzz build -O 2>&1 | tail -1) >&2
# With --jobs > 1 libFuzzer runs that many worker processes, each logging to fuzz/fuzz-N.log.
parallel=()
((jobs > 1)) && parallel=(-jobs="$jobs" -workers="$jobs")
mkdir -p target "$(dirname "$summary")"
echo "[" >"$summary"
failed=0
first=1
for spec in "${targets[@]}"; do
    t=${spec%%:*}
    secs_t=$secs
    [[ $spec == *:* ]] && secs_t=${spec#*:}
    if ! grep -q "^name = \"$t\"" fuzz/Cargo.toml || [[ $t == didit-fuzz ]]; then
        echo "fuzz.sh: no target $t (have: $(sed -n 's/^name = "\(.*\)"/\1/p' fuzz/Cargo.toml | grep -v didit-fuzz | tr '\n' ' '))" >&2
        exit 2
    fi
    work=target/fuzz-corpus/$t
    log=target/fuzz-$t.log
    mkdir -p "$work" "fuzz/artifacts/$t"
    echo "fuzz.sh: $t for ${secs_t} s (log $log)" >&2
    status=0
    (cd fuzz && cargo +nightly fuzz run -O "$t" "../$work" "corpus/$t" -- \
        -max_total_time="$secs_t" "${parallel[@]}" -print_final_stats=1 \
        -max_len=262144 -rss_limit_mb=4096) >"$log" 2>&1 || status=$?
    # libFuzzer's final stats: "stat::number_of_executed_units: N".
    shopt -s nullglob
    workers=(fuzz/fuzz-*.log)
    shopt -u nullglob
    execs=$(awk '/stat::number_of_executed_units/ {s += $2} END {print s + 0}' "$log" "${workers[@]}")
    if ((status != 0)); then
        failed=1
        verdict=crash
        echo "fuzz.sh: $t FAILED (exit $status); see $log and fuzz/artifacts/$t" >&2
    else
        verdict=ok
    fi
    ((${#workers[@]})) && cat "${workers[@]}" >>"$log"
    rm -f "${workers[@]}"
    printf '%-12s %8s s %14s executions  %s\n' "$t" "$secs_t" "$execs" "$verdict"
    ((first)) || echo "," >>"$summary"
    first=0
    printf '  {"target": "%s", "seconds": %s, "executions": %s, "result": "%s", "toolchain": "%s"}' \
        "$t" "$secs_t" "$execs" "$verdict" "$(rustc +nightly --version)" >>"$summary"
done
printf '\n]\n' >>"$summary"
echo "fuzz.sh: summary in $summary" >&2
exit $failed
