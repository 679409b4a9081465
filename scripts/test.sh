#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: installs the real clients the tests
# drive (see install-test-deps.sh), then `cargo test --workspace` (unit, integration,
# compile-fail and doc tests).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh
cargo test --workspace --all-features "$@"
