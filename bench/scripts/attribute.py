#!/usr/bin/env python3
"""CPU per request by component, for two servers profiled under the same load.

    attribute.py A.txt A_REQ_PER_S B.txt B_REQ_PER_S [SECONDS] [HZ] [TOP]

A.txt and B.txt are `perf report --no-children --sort dso,sym -g none -n` outputs of
`perf record -F HZ -g -p PID -- sleep SECONDS` (defaults: 5 s, 2000 Hz), taken while the load
generator ran at the given rates. Each sample stands for 1/HZ s of the server's CPU, so a
component's nanoseconds per request are samples / HZ / (SECONDS x req/s).

Components are the crate of each symbol's path (rgi_server, hyper, http, ...); libc is split
into memmove, malloc/free and the rest; the kernel is one component. Printed: the components
sorted by how much more A spends on them than B, the totals, and the TOP symbols by the same
difference.
"""

import collections
import re
import sys

LINE = re.compile(r"\s*([\d.]+)%\s+(\d+)\s+(\S+)\s+\[(.)\]\s+(.*)")


def component(dso: str, symbol: str) -> str:
    if dso.startswith("[kernel"):
        return "kernel"
    if dso.startswith("libc"):
        if "memmove" in symbol or "memcpy" in symbol:
            return "libc: memmove"
        if re.search(r"malloc|free|_int_|unlink_chunk|consolidate", symbol):
            return "libc: malloc/free"
        return "libc: other"
    if dso == "[vdso]":
        return "vdso (clock reads)"
    path = symbol.lstrip("<")
    crate = re.match(r"([a-z_0-9]+)::", path)
    return crate.group(1) if crate else path[:30]


def read(path: str):
    components, symbols = collections.Counter(), collections.Counter()
    with open(path, encoding="utf-8", errors="replace") as report:
        for line in report:
            match = LINE.match(line)
            if not match:
                continue
            samples, dso, symbol = int(match.group(2)), match.group(3), match.group(5).strip()
            components[component(dso, symbol)] += samples
            symbols[symbol] += samples
    return components, symbols


def main() -> None:
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    a_path, a_rate, b_path, b_rate = sys.argv[1], float(sys.argv[2]), sys.argv[3], float(sys.argv[4])
    seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 5.0
    hz = float(sys.argv[6]) if len(sys.argv) > 6 else 2000.0
    top = int(sys.argv[7]) if len(sys.argv) > 7 else 30
    a, b = read(a_path), read(b_path)

    def ns(samples: float, rate: float) -> float:
        return samples / hz / (seconds * rate) * 1e9

    for title, index, limit in (("component", 0, None), ("symbol", 1, top)):
        names = set(a[index]) | set(b[index])
        rows = [(n, ns(a[index][n], a_rate), ns(b[index][n], b_rate)) for n in names]
        rows.sort(key=lambda row: row[2] - row[1])
        print(f"{'ns/request by ' + title:<60} {'A':>8} {'B':>8} {'A - B':>8}")
        for name, x, y in rows[:limit]:
            print(f"{name[:60]:<60} {x:8.1f} {y:8.1f} {x - y:+8.1f}")
        if index == 0:
            print(f"{'total':<60} {sum(r[1] for r in rows):8.1f} {sum(r[2] for r in rows):8.1f}")
        print()


if __name__ == "__main__":
    main()
