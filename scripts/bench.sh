#!/usr/bin/env bash
# npm run bench: the shipping release build and its size (raw and gzip -9), the native cost of
# the core's crypto (cargo bench), then tests/support/bench.mjs against a local wrangler dev:
# worker CPU per request kind, a V8 profile of each, storage rows and subrequests, and the cost
# per device-month.
#
# The requests run against a second release build that keeps the wasm name section
# (CARGO_PROFILE_RELEASE_STRIP=false) and unminified JS glue, so that the V8 profile names Rust
# and glue functions; its code
# section is printed beside the shipping build's. BENCH_NAMES=0 benchmarks the shipping build
# instead (faster, but the profile shows wasm-function[N]). See tests/support/bench.mjs for the
# BENCH_* variables.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Sizes of one wasm module: raw, gzip -9, and its code section (section id 10).
wasm_size() {
    local f="$1" label="$2"
    local raw gz code
    raw=$(wc -c <"$f")
    gz=$(gzip -9 -c "$f" | wc -c)
    code=$(node -e '
        const b = require("fs").readFileSync(process.argv[1]); let p = 8;
        const leb = () => { let r = 0, s = 0, x; do { x = b[p++]; r += (x & 0x7f) * 2 ** s; s += 7; } while (x & 0x80); return r; };
        while (p < b.length) { const id = b[p++]; const n = leb(); if (id === 10) { console.log(n); break; } p += n; }' "$f")
    awk -v f="$f" -v l="$label" -v raw="$raw" -v gz="$gz" -v code="$code" 'BEGIN {
        printf "bench: %s %s  raw %d bytes (%.1f KiB)  gzip -9 %d bytes (%.1f KiB)  code section %d bytes\n", l, f, raw, raw / 1024, gz, gz / 1024, code }'
}

bash scripts/build.sh
# worker-build 0.8 writes build/index_bg.wasm (build/worker/shim.mjs re-exports build/index.js)
wasm_size build/index_bg.wasm "shipping build"

# CPU cost of the pure core, natively.
cargo bench --quiet --bench core 2>/dev/null | grep '^bench:'

if [ "${BENCH_NAMES:-1}" != "0" ]; then
    # NO_MINIFY: worker-build leaves the JS glue unminified, so the profile names its functions too.
    NO_MINIFY=1 CARGO_PROFILE_RELEASE_STRIP=false bash scripts/build.sh
    wasm_size build/index_bg.wasm "benchmarked build (with names)"
fi
EDGEMDM_SKIP_BUILD=1 EDGEMDM_OPENAPI_VALIDATION=0 node tests/support/bench.mjs "$@"
if [ "${BENCH_NAMES:-1}" != "0" ]; then
    bash scripts/build.sh # leave the shipping build in build/
fi
