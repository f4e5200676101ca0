#!/usr/bin/env python3
"""Groups a `perf report --sort symbol --stdio -g none` into components (scripts/profile.sh).

Inlined code is charged to the function it was inlined into, so a group is "the symbols of that
component", not an exact line between them; the first matching rule wins, in the order below.
"""
import re
import sys

# (group, pattern over the symbol name); `[k]` symbols are the kernel's.
RULES = [
    ("HMAC (ring, aws-lc, RustCrypto)", r"\bring::|ring_core|sha256|aws_lc|\bsha2::|\bhmac::|GFp_"),
    ("JSON parse (serde, simd-json, sonic-rs)", r"serde|simd_json|sonic_rs|json::"),
    ("this project (didit_*)", r"didit_"),
    ("HTTP server and runtime", r"hyper|tokio|\bhttp::|httparse|\bmay\b|may::|may_minihttp|mio::|actix|axum|tower|bytes::|h1::"),
    ("allocator and libc", r"malloc|free|realloc|calloc|memcpy|memmove|memset|memcmp|__libc|_int_|cfree|tcache|pthread|__GI_|syscall|epoll|__lll"),
]
LINE = re.compile(r"^\s*([\d.]+)%\s+\[(.)\]\s+(.*)$")


def main(path: str) -> int:
    groups: dict[str, float] = {}
    top: list[tuple[float, str, str]] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = LINE.match(line)
            if not m:
                continue
            pct, kind, sym = float(m.group(1)), m.group(2), m.group(3).strip()
            if kind == "k":
                g = "kernel (syscalls, TCP, wake-ups)"
            else:
                g = next((name for name, rx in RULES if re.search(rx, sym)), "other")
            groups[g] = groups.get(g, 0.0) + pct
            top.append((pct, g, sym))
    if not top:
        print(f"{path}: no samples", file=sys.stderr)
        return 1
    print("\n| group | % of receiver CPU |\n|---|---|")
    for g, pct in sorted(groups.items(), key=lambda x: -x[1]):
        print(f"| {g} | {pct:.1f} |")
    print("\n| % | group | symbol |\n|---|---|---|")
    for pct, g, sym in sorted(top, reverse=True)[:15]:
        print(f"| {pct:.2f} | {g} | `{sym[:110]}` |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]) if len(sys.argv) == 2 else 2)
