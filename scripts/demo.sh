#!/usr/bin/env bash
# Sets up this machine and runs the demo: a throwaway etcd on a free loopback port, then
# calicoctl applying, listing and showing Calico resources from examples/. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --locked -q -p calicoctl -p e2e
exec target/debug/demo "$@"
