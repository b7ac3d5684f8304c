#!/usr/bin/env bash
# A short run of every fuzz target, as CI does: builds them with libFuzzer
# and AddressSanitizer (nightly Rust, cargo-fuzz), then runs each for
# SECONDS_PER_TARGET seconds from the committed seeds. Inputs it finds go
# to a scratch corpus, never into fuzz/seeds. A crash fails the run and
# leaves its input in fuzz/artifacts/TARGET/.
#
#   bash fuzz/smoke.sh                 # 10 s per target
#   SECONDS_PER_TARGET=600 bash fuzz/smoke.sh   # the 10-minute runs
#
# The long runs in the notes used the same command with a kept corpus:
#   cargo +nightly fuzz run -O TARGET fuzz/corpus/TARGET fuzz/seeds/TARGET -- -max_total_time=600
set -euo pipefail
cd "$(dirname "$0")"

SECONDS_PER_TARGET=${SECONDS_PER_TARGET:-10}
CARGO_FUZZ_VERSION=0.13.2

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz smoke: the nightly toolchain is missing: rustup toolchain install nightly" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install --locked --quiet cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

cargo +nightly fuzz build -O
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in $(cargo +nightly fuzz list); do
    mkdir -p "$scratch/$target"
    log="$scratch/$target.log"
    if ! cargo +nightly fuzz run -O "$target" "$scratch/$target" "seeds/$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" >"$log" 2>&1; then
        tail -40 "$log" >&2
        echo "fuzz smoke: $target failed (input in fuzz/artifacts/$target/)" >&2
        exit 1
    fi
    echo "fuzz smoke: $target: $(grep -E '^Done [0-9]+ runs' "$log" | tail -1)"
done
