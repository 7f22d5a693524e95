#!/usr/bin/env bash
# Sets up this machine and runs the whole test suite (what CI runs). Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
# Benchmarks are not run here (they are figures, not checks), but they must build.
cargo bench --workspace --locked --no-run
