#!/usr/bin/env bash
# The RGI benchmarks, end to end: installs wrk and h2load when missing, builds every server in
# release mode, runs the harness (servers on core 0, load on core 1), and regenerates
# BENCHMARKS.md, bench/chart.svg and bench/results/*.json.
#
#   bench/run.sh            full run: 3 rounds of 5 s windows (about 15 min + build)
#   bench/run.sh --quick    1 round of 2 s windows (about 3 min + build)
#   bench/run.sh --only plaintext,pipelined --servers hyper,rgi-hello --rounds 1
#   bench/run.sh --render   rewrites BENCHMARKS.md and bench/chart.svg from bench/results/*.json
#                           and bench/analysis.md, measuring nothing (after an analysis edit)
#
# Set CARGO_TARGET_DIR to share a build directory (default: bench/target).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/bench/target}"
export CARGO_TARGET_DIR="$target"
started=$(date +%s)

say() { printf '[run.sh %4ss] %s\n' "$(( $(date +%s) - started ))" "$*"; }

if [ "${1:-}" = "--render" ]; then
    say "building the harness (bench workspace, release)"
    (cd "$repo/bench" && cargo build --release -q -p rgi-bench-harness)
    exec "$target/release/rgi-bench" --repo "$repo" --render
fi

if [ "$(nproc)" -lt 2 ]; then
    echo "bench/run.sh needs 2 CPUs (server on core 0, load on core 1)" >&2
    exit 2
fi

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v taskset >/dev/null || missing+=(util-linux)
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]}"
    sudo_cmd=()
    [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

say "building the contenders (root workspace, release)"
(cd "$repo" && cargo build --release -q -p rgi-examples --bin hello --bin axum_app --bin websocket_echo)
# Three separate builds, so that feature unification keeps the peers' dependency graph equal
# to the contenders' (shared artifacts, same code): actix and the harness add features.
say "building the peers, the counting wrappers and the harness (bench workspace, release)"
(cd "$repo/bench" && cargo build --release -q -p rgi-bench-servers --features count-allocs)
(cd "$repo/bench" && cargo build --release -q -p rgi-bench-actix --features count-allocs)
(cd "$repo/bench" && cargo build --release -q -p rgi-bench-harness)

# The harness runs in its own process group, so that the trap can end it and every server it
# started (the servers are its children) by that group's id.
harness_pid=""
cleanup() {
    if [ -n "$harness_pid" ] && kill -0 "$harness_pid" 2>/dev/null; then
        kill -TERM -- "-$harness_pid" 2>/dev/null || true
        sleep 1
        kill -KILL -- "-$harness_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT INT TERM

say "running the harness (progress below; servers on core 0, load on core 1)"
setsid taskset -c 1 "$target/release/rgi-bench" \
    --repo "$repo" \
    --root-bin "$target/release" \
    --bench-bin "$target/release" \
    --log-dir "$target/bench-logs" \
    --command "bench/run.sh${*:+ $*}" \
    "$@" &
harness_pid=$!
status=0
wait "$harness_pid" || status=$?
harness_pid=""
say "finished (exit $status); total $(( ($(date +%s) - started) / 60 )) min"
exit "$status"
