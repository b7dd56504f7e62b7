#!/usr/bin/env bash
# npm run bench: release build, Worker size (raw and gzip -9), then the
# request timings of tests/support/bench.mjs against a local wrangler dev.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/build.sh

shopt -s nullglob
# worker-build 0.8 writes build/index_bg.wasm (build/worker/shim.mjs re-exports build/index.js)
for f in build/*.wasm build/worker/*.wasm; do
    raw=$(wc -c <"$f")
    gz=$(gzip -9 -c "$f" | wc -c)
    awk -v f="$f" -v raw="$raw" -v gz="$gz" 'BEGIN {
        printf "bench: %s  raw %d bytes (%.1f KiB)  gzip -9 %d bytes (%.1f KiB)\n", f, raw, raw / 1024, gz, gz / 1024 }'
done

# CPU cost of the pure core, natively.
cargo bench --quiet --bench core 2>/dev/null | grep '^bench:'

if [ -f tests/support/bench.mjs ]; then
    EDGEMDM_SKIP_BUILD=1 node tests/support/bench.mjs "$@"
fi
