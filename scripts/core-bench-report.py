#!/usr/bin/env python3
"""Summarise the core criterion benchmarks: a table per group and the core's performance targets.

Reads target/criterion/<group>/<function>/<size>/new/estimates.json (written by
`cargo bench -p didit-webhook --bench core`) and prints Markdown. Exits 2 when results are missing.
"""
import argparse
import json
import os
import sys

SIZES = ["300B", "4KB", "20KB", "200KB"]


def load(root):
    res = {}
    for group in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        gdir = os.path.join(root, group)
        for func in sorted(os.listdir(gdir)):
            fdir = os.path.join(gdir, func)
            if not os.path.isdir(fdir) or func == "report":
                continue
            for size in os.listdir(fdir):
                est = os.path.join(fdir, size, "new", "estimates.json")
                bench = os.path.join(fdir, size, "new", "benchmark.json")
                if not os.path.isfile(est):
                    continue
                with open(est) as f:
                    e = json.load(f)
                nbytes = None
                if os.path.isfile(bench):
                    with open(bench) as f:
                        t = json.load(f).get("throughput") or {}
                    nbytes = t.get("Bytes")
                res[(group, func, size)] = (e["median"]["point_estimate"], nbytes)
    return res


def fmt_time(ns):
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--criterion-dir", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "criterion"))
    args = ap.parse_args()
    res = load(args.criterion_dir)
    if not res:
        print(f"no criterion results under {args.criterion_dir}; run `cargo bench -p didit-webhook --bench core` first", file=sys.stderr)
        return 2

    groups = sorted({g for g, _, _ in res})
    for group in groups:
        funcs = sorted({f for g, f, _ in res if g == group})
        print(f"\n### {group} (median time, throughput)\n")
        print("| backend | " + " | ".join(SIZES) + " |")
        print("|---|" + "---|" * len(SIZES))
        for func in funcs:
            cells = []
            for size in SIZES:
                v = res.get((group, func, size))
                if v is None:
                    cells.append("–")
                    continue
                ns, nbytes = v
                mbps = f", {nbytes / ns * 1000:.0f} MB/s" if nbytes else ""
                cells.append(f"{fmt_time(ns)}{mbps}")
            print(f"| {func} | " + " | ".join(cells) + " |")

    def get(group, func, size):
        v = res.get((group, func, size))
        return v[0] if v else None

    print("\n### Targets\n")
    parsers = {f: get("parse_envelope", f, "4KB") for f in ("serde", "simd", "sonic")}
    parsers = {k: v for k, v in parsers.items() if v}
    if parsers:
        fastest = min(parsers, key=parsers.get)
        print(f"Fastest envelope parser at 4KB: {fastest} ({fmt_time(parsers[fastest])}).\n")
        print("| verify_raw 4KB | time | HMAC + fastest parse | ratio (target ≤ 1.3) |")
        print("|---|---|---|---|")
        for combo in sorted({f for g, f, s in res if g == "verify_raw" and "+" in f and not f.startswith("null")}):
            mac = combo.split("+")[0]
            t = get("verify_raw", combo, "4KB")
            h = get("hmac", mac, "4KB")
            if t and h:
                base = h + parsers[fastest]
                print(f"| {combo} | {fmt_time(t)} | {fmt_time(base)} | {t / base:.2f} |")
    print("\n| 20KB sample | verify_v2 | verify_raw | ratio (target ≤ 2.0) |")
    print("|---|---|---|---|")
    for combo in sorted({f for g, f, s in res if g == "verify_v2"}):
        v2 = get("verify_v2", combo, "20KB")
        raw = get("verify_raw", combo, "20KB")
        if v2 and raw:
            print(f"| {combo} | {fmt_time(v2)} | {fmt_time(raw)} | {v2 / raw:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
