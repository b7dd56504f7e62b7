#!/usr/bin/env bash
# Release build of the Worker with worker-build 0.8: build/index.js +
# build/index_bg.wasm, and build/worker/shim.mjs (wrangler.toml's main), which
# re-exports build/index.js. Quiet on success; prints the build log on failure
# (EDGEMDM_BUILD_VERBOSE=1 prints it always).
#
# EDGEMDM_SKIP_BUILD=1 makes this a no-op: wrangler.toml runs this script as its
# [build] command every time `wrangler dev` starts, and the tests build once and
# then start wrangler many times.
set -euo pipefail
if [ "${EDGEMDM_SKIP_BUILD:-}" = "1" ]; then
    exit 0
fi
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/bootstrap.sh --serve

export PATH="$HOME/.cargo/bin:$PATH"
# worker-build would otherwise download these; only package registries are reachable here.
export WASM_BINDGEN_BIN=wasm-bindgen
export ESBUILD_BIN="$PWD/node_modules/.bin/esbuild"
export WASM_OPT_BIN="$PWD/node_modules/.bin/wasm-opt"
# Panic messages name source files; name them relative to the crate and the registry rather
# than by this machine's paths (smaller, and the same from every build machine).
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="--remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}/registry/src/= --remap-path-prefix=$PWD/="

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
start=$SECONDS
if ! worker-build --release >"$log" 2>&1; then
    cat "$log" >&2
    echo "build: worker-build --release FAILED" >&2
    exit 1
fi
# The shipping build keeps no custom sections: with the Rust symbols stripped, what is left is
# names for wasm-bindgen's own shims, the producers list and the target features, none of them
# read at runtime (1.8 KB of gzip). A build with CARGO_PROFILE_RELEASE_STRIP=false (the bench's
# profile) keeps its names.
if [ "${CARGO_PROFILE_RELEASE_STRIP:-}" != "false" ]; then
    node -e '
        const fs = require("fs");
        const f = process.argv[1];
        const b = fs.readFileSync(f);
        const out = [b.subarray(0, 8)];
        let p = 8;
        const leb = () => { let r = 0, s = 0, x; do { x = b[p++]; r += (x & 0x7f) * 2 ** s; s += 7; } while (x & 0x80); return r; };
        while (p < b.length) {
            const start = p;
            const id = b[p++];
            const n = leb();
            p += n;
            if (id !== 0) out.push(b.subarray(start, p)); // 0: a custom section
        }
        fs.writeFileSync(f, Buffer.concat(out));' build/index_bg.wasm
fi
# The admin console and the OpenAPI document: build/console (wrangler.toml's [assets]).
if ! node scripts/build-console.mjs >"$log" 2>&1; then
    cat "$log" >&2
    echo "build: the admin console FAILED" >&2
    exit 1
fi
if [ -n "${EDGEMDM_BUILD_VERBOSE:-}" ]; then
    cat "$log"
    echo "build: done in $((SECONDS - start)) s"
fi
