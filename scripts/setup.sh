#!/usr/bin/env bash
# Installs the Debian packages the tests and the demo need. Idempotent; run as root.
# The Rust toolchain (cargo, rustc >= 1.88) must already be on PATH (rustup).
set -euo pipefail

packages=(
  etcd-server etcd-client   # the datastore the tests and the demo run against
  protobuf-compiler         # etcd-client builds its gRPC code with protoc
  iproute2 nftables         # network namespaces and the dataplane (later issues)
  bird2 frr gobgpd          # real BGP peers for the speaker's interop tests and benchmark
  ca-certificates
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Debian's etcd-server package may start a system etcd on 127.0.0.1:2379, and bird2/frr may
# start their daemons in the root namespace; our tests and demo run their own (etcd on free
# ports, BGP daemons inside their own network namespaces) and never touch those.

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found: install Rust with rustup (https://rustup.rs), then re-run" >&2
  exit 1
fi
