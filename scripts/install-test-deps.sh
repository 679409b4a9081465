#!/usr/bin/env bash
# Installs the programs the test suite drives (real clients, peers and proxies), on a fresh
# Debian machine (CI: Debian 12, root, CI=true). Idempotent and quiet: installs only what is
# missing. Needs root (or sudo) for apt-get.
#
# - curl, openssl, chromium: HTTP/TLS/browser clients of the acceptance tests;
# - nginx (Debian's nginx-light is enough): the reverse proxy of examples/tests/deploy_*.rs;
# - systemd-socket-activate (package systemd): socket activation in examples/tests/deploy_*.rs.
# - python3-grpcio: a stock gRPC client from another language (examples/tests/tonic_greeter.rs).
set -euo pipefail

need=()
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  need+=(nginx-light)
fi
command -v systemd-socket-activate >/dev/null 2>&1 || need+=(systemd)
/usr/bin/python3 -c 'import grpc' >/dev/null 2>&1 || need+=(python3-grpcio)

if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "installing test dependencies: ${need[*]}"
  $SUDO apt-get update -qq
  # The nginx package would start the system service on installation where an init system
  # runs; the tests start their own nginx on loopback ports with their own configuration, so
  # the package's service is kept from starting (policy-rc.d) and stopped if it started.
  POLICY=/usr/sbin/policy-rc.d
  POLICY_ADDED=""
  if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
    $SUDO chmod +x "$POLICY"
    POLICY_ADDED=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  if [ -n "$POLICY_ADDED" ]; then $SUDO rm -f "$POLICY"; fi
fi
