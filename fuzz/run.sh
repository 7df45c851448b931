#!/usr/bin/env bash
# Runs every fuzz target for a bounded time: `fuzz/run.sh <seconds per target> [target…]`.
#
# cargo-fuzz builds with sanitizer flags that only nightly accepts; RUSTC_BOOTSTRAP=1 lets the
# stable toolchain take them. Each target starts from its committed seeds in fuzz/seeds and
# grows a corpus in fuzz/corpus (not committed). A crash leaves its input in
# fuzz/artifacts/<target>/ and makes this script fail; turn it into a regression test in the
# crate that owns the code, then replay it with `cargo fuzz run <target> <file>`.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-30}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  targets=(payload signature repo_url ws_message fossa_decode)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
# No AddressSanitizer by default: the crates fuzzed forbid `unsafe`, so what fuzzing finds
# here are panics, overflows and broken invariants, which need no sanitizer; leaving it out
# makes the build (every dependency, instrumented) markedly shorter. FUZZ_SANITIZER=address
# turns it back on.
sanitizer=(--sanitizer "${FUZZ_SANITIZER:-none}")

# Build every target once before the clock starts, so the time limit is spent fuzzing.
cargo fuzz build "${sanitizer[@]}"

for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  printf '\n--> fuzz %s for %ss\n' "$target" "$seconds"
  # The corpus directory comes first: libFuzzer writes new inputs there, and reads the seeds.
  cargo fuzz run "${sanitizer[@]}" "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
done
