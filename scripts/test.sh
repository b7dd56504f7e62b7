#!/usr/bin/env bash
# npm test: formatting and lints (native and wasm32), native unit tests, one
# release build, then the e2e tests
# (tests/*.test.mjs, node's built-in runner, one file at a time: each file
# starts its own wrangler dev). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.cargo/bin:$PATH"

bash scripts/bootstrap.sh

echo "test: cargo fmt --check"
cargo fmt --all -- --check

echo "test: cargo clippy (native, all targets; wasm32, the Worker)"
cargo clippy --quiet --all-targets -- -D warnings
cargo clippy --quiet --target wasm32-unknown-unknown --lib -- -D warnings

echo "test: cargo test (native)"
cargo test

echo "test: building the Worker (worker-build --release)"
start=$SECONDS
bash scripts/build.sh
echo "test: build done in $((SECONDS - start)) s"

shopt -s nullglob
files=(tests/*.test.mjs)
if [ "${#files[@]}" -eq 0 ]; then
    echo "test: no tests/*.test.mjs e2e tests yet"
    exit 0
fi
echo "test: e2e (${#files[@]} files)"
EDGEMDM_SKIP_BUILD=1 node --test --test-concurrency=1 "${files[@]}"
