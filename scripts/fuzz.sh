#!/usr/bin/env bash
# Fuzzes every bgp::wire decoder with cargo-fuzz for N seconds each (default 60):
#   scripts/fuzz.sh [seconds]
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Not part of CI: the
# same target bodies run on stable in `cargo test -p bgp --test wire_fuzz`.
#
# New interesting inputs go to bgp/fuzz/work/<target>/ (ignored by git); the committed seeds in
# bgp/fuzz/corpus/<target>/ are only read. A crash is saved under bgp/fuzz/artifacts/<target>/:
# add it to bgp/fuzz/corpus/<target>/ and as a unit test in bgp/src/wire/ once fixed.
set -euo pipefail
seconds="${1:-60}"
cd "$(dirname "$0")/../bgp/fuzz"
for target in $(cargo +nightly fuzz list); do
    echo "== fuzzing $target for ${seconds}s"
    mkdir -p "work/$target"
    cargo +nightly fuzz run "$target" "work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1
done
