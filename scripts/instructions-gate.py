#!/usr/bin/env python3
"""Instruction-count gate: reads Gungraun's output of `cargo bench -p didit-webhook --bench
instructions` on stdin, compares each benchmark's Callgrind instruction count with
results/instructions-baseline.json, prints a table, and exits 0 (within the threshold), 1 (a
count grew beyond it) or 2 (cannot compare: a benchmark missing on either side).

  --update  writes the baseline from this run instead of comparing.
  --threshold 3  percent growth allowed (counts are deterministic; the slack is for toolchain noise).
"""
import argparse, json, re, sys, os

ap = argparse.ArgumentParser()
ap.add_argument("--baseline", default=os.path.join(os.path.dirname(__file__), "..", "results", "instructions-baseline.json"))
ap.add_argument("--threshold", type=float, default=3.0)
ap.add_argument("--update", action="store_true")
a = ap.parse_args()

counts, current = {}, None
for line in sys.stdin:
    m = re.match(r"^\S+::\S+::(\S+) (\S+?):", line)
    if m:
        current = f"{m.group(1)} {m.group(2)}"
        continue
    m = re.match(r"^\s+Instructions:\s+(\d+)", line)
    if m and current:
        counts[current] = int(m.group(1))
        current = None
if not counts or min(counts.values()) == 0:
    print("no (or zero) Gungraun instruction counts in the input: did the benchmark run?", file=sys.stderr)
    sys.exit(2)

if a.update:
    with open(a.baseline, "w") as f:
        json.dump({"schema": "instructions-baseline/1",
                   "command": "cargo bench -p didit-webhook --bench instructions",
                   "tool": "Gungraun 0.20 (Callgrind), valgrind's virtual CPU",
                   "counts": dict(sorted(counts.items()))}, f, indent=2)
        f.write("\n")
    print(f"wrote {a.baseline} ({len(counts)} benchmarks)")
    sys.exit(0)

try:
    base = json.load(open(a.baseline))
except OSError as e:
    print(f"cannot read the baseline {a.baseline}: {e}", file=sys.stderr)
    sys.exit(2)
if base.get("schema") != "instructions-baseline/1":
    print(f"{a.baseline}: unknown schema {base.get('schema')!r}", file=sys.stderr)
    sys.exit(2)
b = base["counts"]
missing = sorted(set(b) ^ set(counts))
print(f"{'benchmark':<34} {'baseline':>12} {'current':>12} {'change':>8}")
worst = 0
for k in sorted(set(b) & set(counts)):
    ch = (counts[k] / b[k] - 1) * 100
    flag = "  REGRESSION" if ch > a.threshold else ""
    print(f"{k:<34} {b[k]:>12} {counts[k]:>12} {ch:>+7.2f}%{flag}")
    if ch > a.threshold:
        worst = 1
if missing:
    print(f"cannot compare: benchmarks on one side only: {', '.join(missing)}", file=sys.stderr)
    sys.exit(2)
print("instruction counts: " + ("REGRESSION beyond %.1f %%" % a.threshold if worst else "within %.1f %% of the baseline" % a.threshold))
sys.exit(worst)
