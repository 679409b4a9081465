#!/usr/bin/env python3
"""Instructions per request, counted by valgrind (callgrind): the noise-free companion of the
harness's CPU figures.

    bench/scripts/instructions.py [--scenarios plaintext,pipelined,echo,h2c]
                                  [--servers hyper,hyper-pf,...] [--requests N] [--out FILE]

The harness's server CPU per request moves with the host by more than the differences it is
meant to show (see BENCHMARKS.md). The number of instructions a server executes per request
does not: each server runs under `valgrind --tool=callgrind`, `h2load` sends exactly N and then
2N requests (in two runs), and the difference of the two totals over N is the steady-state cost
of a request — startup and connection setup cancel out. The figure counts user-space
instructions only (no kernel, no cache misses: `memmove` of a large value counts as few
instructions), so it complements CPU time and does not replace it.

Printed (and written to --out, default bench/profiles/instructions.md): instructions per
request for every server and scenario with the ratio to the scenario's baseline, and for
each contender against its peer (rgi-server + `hello` against the scenario's baseline, axum on
rgi-server against `axum::serve`) the difference by component: the crate of each function,
libc split into memmove, malloc/free and the rest.

Needs the release binaries that bench/run.sh builds (CARGO_TARGET_DIR, default bench/target),
valgrind and h2load (installed with apt when missing). Servers listen on 127.0.0.1 only.
"""

import argparse
import collections
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RGI_FLAGS = ["--workers", "1", "--no-access-log", "--log-level", "warn"]

# name -> (binary, arguments before/after the address)
SERVERS = {
    "hyper": ("peer", lambda addr: ["hyper", addr]),
    "hyper-pf": ("peer", lambda addr: ["hyper-pf", addr]),
    "hyper-auto": ("peer", lambda addr: ["hyper-auto", addr]),
    "axum": ("peer", lambda addr: ["axum", addr]),
    "actix": ("peer-actix", lambda addr: [addr]),
    "rgi-hello": ("hello", lambda addr: ["--bind", addr, *RGI_FLAGS]),
    "rgi-axum": ("axum_app", lambda addr: ["--bind", addr, *RGI_FLAGS]),
}

# scenario -> (h2load arguments, path, baseline, servers that take part)
SCENARIOS = {
    "plaintext": (["--h1", "-c8", "-m1"], "/", "hyper", None),
    "pipelined": (["--h1", "-c8", "-m16"], "/", "hyper-pf", None),
    "echo": (["--h1", "-c8", "-m1", "-d", "{body}"], "/echo", "hyper", None),
    "h2c": (["-c8", "-m4"], "/", "hyper-auto", {"hyper-auto", "axum", "rgi-hello", "rgi-axum"}),
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server did not listen on {port} within {seconds} s")


def functions(out_file: Path) -> collections.Counter:
    """Self instructions per function, from callgrind_annotate."""
    text = subprocess.run(
        ["callgrind_annotate", "--auto=no", "--threshold=100", str(out_file)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    counts = collections.Counter()
    listing = False
    for line in text.splitlines():
        if "file:function" in line:
            listing = True
            continue
        match = re.match(r"\s*([\d,]+)\s+(?:\([\s\d.]+%\)\s+)?(.*)", line)
        if not listing or not match:
            continue
        name = re.sub(r" \[[^\]]*\]$", "", match.group(2).strip())
        name = name.split(":", 1)[1] if re.match(r"^[^<:]*\.(rs|c|S|h):", name) else name
        counts[name] += int(match.group(1).replace(",", ""))
    return counts


def measure(binary: Path, args, scenario, requests, workdir: Path):
    """Per-request instructions of one server in one scenario, by function."""
    load, path, _, _ = SCENARIOS[scenario]
    body = workdir / "body.bin"
    body.write_bytes(b"x" * 1024)
    totals = []
    for n in (requests, 2 * requests):
        port = free_port()
        out = workdir / f"callgrind.{binary.name}.{scenario}.{n}"
        server = subprocess.Popen(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(binary),
             *args(f"127.0.0.1:{port}")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_for(port, server)
            result = subprocess.run(
                ["h2load", "-n", str(n), *[a.format(body=body) for a in load],
                 f"http://127.0.0.1:{port}{path}"],
                capture_output=True,
                text=True,
                timeout=600,
            )
            if f"{n} succeeded" not in result.stdout:
                raise RuntimeError(f"h2load: not all {n} requests succeeded:\n{result.stdout}")
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        totals.append(functions(out))
    diff = totals[1]
    diff.subtract(totals[0])
    return {name: count / requests for name, count in diff.items()}


def component(name: str) -> str:
    if "memmove" in name or "memcpy" in name:
        return "libc: memmove"
    if re.search(r"^(malloc|free|cfree|_int_|realloc|calloc|unlink_chunk|malloc_consolidate)", name):
        return "libc: malloc/free"
    crate = re.match(r"<?([a-z_0-9]+)::", name)
    return crate.group(1) if crate else "libc and other"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--out", default=str(REPO / "bench/profiles/instructions.md"))
    options = parser.parse_args()

    packages = [package for tool, package in (("valgrind", "valgrind"), ("h2load", "nghttp2-client"))
                if shutil.which(tool) is None]
    if packages:
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        print(f"[instructions] installing {' '.join(packages)}", file=sys.stderr, flush=True)
        subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True)
        subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", *packages], check=True)

    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "bench/target")) / "release"
    servers = options.servers.split(",")
    for name in servers:
        if name not in SERVERS:
            parser.error(f"unknown server {name!r} (one of {', '.join(SERVERS)})")
        if not (target / SERVERS[name][0]).exists():
            parser.error(f"{target / SERVERS[name][0]} is missing: build with bench/run.sh first")

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in options.scenarios.split(","):
            if scenario not in SCENARIOS:
                parser.error(f"unknown scenario {scenario!r} (one of {', '.join(SCENARIOS)})")
            only = SCENARIOS[scenario][3]
            for name in servers:
                if only is not None and name not in only:
                    continue
                binary, args = SERVERS[name]
                print(f"[instructions] {scenario}: {name}", file=sys.stderr, flush=True)
                results[(scenario, name)] = measure(
                    target / binary, args, scenario, options.requests, Path(tmp)
                )

    lines = [
        "# Instructions per request (callgrind)",
        "",
        f"`bench/scripts/instructions.py --requests {options.requests}`: user-space instructions",
        "per request, steady state (2N requests minus N, over N), `h2load` with 8 connections",
        "(plaintext and echo 1 request in flight each, pipelined 16, h2c 4 streams); **bold** =",
        "ratio to the scenario's baseline.",
        "",
    ]
    scenarios = [s for s in options.scenarios.split(",") if any(k[0] == s for k in results)]
    lines.append("| Server | " + " | ".join(
        f"{s} (vs {SCENARIOS[s][2]})" for s in scenarios) + " |")
    lines.append("|---|" + "---|" * len(scenarios))
    for name in servers:
        cells = []
        for scenario in scenarios:
            own = results.get((scenario, name))
            base = results.get((scenario, SCENARIOS[scenario][2]))
            if own is None:
                cells.append("—")
                continue
            total = sum(own.values())
            ratio = f" **{total / sum(base.values()):.2f}×**" if base else ""
            cells.append(f"{total:,.0f}{ratio}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")

    # Each contender against its peer: rgi-server + hello against the scenario's baseline,
    # axum on rgi-server against `axum::serve`.
    pairs = [(s, "rgi-hello", SCENARIOS[s][2], "rgi-server + `hello`") for s in scenarios]
    pairs += [(s, "rgi-axum", "axum", "axum on rgi-server") for s in scenarios]
    for scenario, contender, peer, label in pairs:
        own = results.get((scenario, contender))
        base = results.get((scenario, peer))
        if own is None or base is None:
            continue
        by = collections.Counter()
        for name, count in own.items():
            by[component(name)] += count
        for name, count in base.items():
            by[component(name)] -= count
        lines += [
            "",
            f"## {scenario}: {label} minus {peer}, by component",
            "",
            "| Component | instructions per request |",
            "|---|---|",
        ]
        for name, count in sorted(by.items(), key=lambda item: -abs(item[1])):
            if abs(count) >= 20:
                lines.append(f"| {name} | {count:+,.0f} |")
        lines.append(f"| **total** | **{sum(by.values()):+,.0f}** |")

    text = "\n".join(lines) + "\n"
    print(text)
    Path(options.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
