#!/usr/bin/env bash
# Installs what edgemdm needs to build, run and test, and only what is missing.
#
# Idempotent and quiet: prints one line per thing it installs, nothing when all
# is in place, and a tool's full output only when its install fails.
#
#   bash scripts/bootstrap.sh          everything the tests need
#   bash scripts/bootstrap.sh --serve  only what building and serving need (no browser)
# Can be run (`bash scripts/bootstrap.sh`) or sourced; it exports nothing and
# leaves the caller's shell options and working directory alone.
#
# Installs:
#   - rustup components rustfmt and clippy (tests only)
#   - rustup target wasm32-unknown-unknown
#   - worker-build 0.8.7                     (cargo install --locked)
#   - wasm-bindgen-cli = the wasm-bindgen version in Cargo.lock
#     (cargo install without --locked: one of its locked deps is not on crates.io)
#   - node_modules                            (npm ci, when missing or older than package-lock.json)
#   - openssl (the admin token, certificate checks) and, for the tests only, Debian chromium
#     (e2e browser tests) and sqlite3 (reading objects' local storage), via apt-get

_edgemdm_bootstrap() (
    set -euo pipefail

    local for_tests=1
    if [ "${1:-}" = "--serve" ]; then
        for_tests=0
    fi

    local root
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    cd "$root"
    export PATH="$HOME/.cargo/bin:$PATH"

    local WORKER_BUILD_VERSION=0.8.7

    # quietly NAME CMD...: announce NAME, run CMD with output to a log, show the log on failure.
    quietly() {
        local what="$1"
        shift
        echo "bootstrap: installing $what"
        local log
        log="$(mktemp)"
        if ! "$@" >"$log" 2>&1; then
            echo "bootstrap: FAILED: $what ($*)" >&2
            tail -n 60 "$log" >&2
            rm -f "$log"
            return 1
        fi
        rm -f "$log"
    }

    # --- tools that must already be on the machine ---
    local t
    for t in cargo rustup node npm; do
        if ! command -v "$t" >/dev/null 2>&1; then
            echo "bootstrap: '$t' is not installed; this machine kind should provide it" >&2
            return 1
        fi
    done

    local node_major
    node_major="$(node -p 'process.versions.node.split(".")[0]')"
    if [ "$node_major" -lt 20 ]; then
        echo "bootstrap: Node.js >= 20 is required (wrangler 4.86); found $(node --version)" >&2
        return 1
    fi

    # --- Debian packages (one apt-get update at most) ---
    local apt_pkgs=()
    if [ "$for_tests" = 1 ] && [ ! -x /usr/bin/chromium ]; then
        apt_pkgs+=(chromium)
    fi
    command -v openssl >/dev/null 2>&1 || apt_pkgs+=(openssl)
    # The tests read Durable Object storage as workerd keeps it locally (SQLite files).
    if [ "$for_tests" = 1 ]; then
        command -v sqlite3 >/dev/null 2>&1 || apt_pkgs+=(sqlite3)
    fi
    if [ "${#apt_pkgs[@]}" -gt 0 ]; then
        apt_install() {
            local sudo=""
            [ "$(id -u)" -eq 0 ] || sudo="sudo"
            $sudo apt-get update -qq &&
                $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
        }
        quietly "Debian packages: ${apt_pkgs[*]} (apt-get)" apt_install "${apt_pkgs[@]}"
    fi

    # --- rustfmt and clippy: `npm test` checks formatting and lints ---
    if [ "$for_tests" = 1 ]; then
        local components
        components="$(rustup component list --installed 2>/dev/null || true)"
        local c
        for c in rustfmt clippy; do
            if ! grep -q "^$c" <<<"$components"; then
                quietly "rustup component $c" rustup component add "$c"
            fi
        done
    fi

    # --- Rust wasm target ---
    local targets
    targets="$(rustup target list --installed 2>/dev/null || true)"
    if ! grep -qx wasm32-unknown-unknown <<<"$targets"; then
        quietly "rustup target wasm32-unknown-unknown" rustup target add wasm32-unknown-unknown
    fi

    # --- worker-build ---
    local have
    have="$(worker-build --version 2>/dev/null || true)"
    if [ "${have##* }" != "$WORKER_BUILD_VERSION" ]; then
        quietly "worker-build $WORKER_BUILD_VERSION (cargo install, ~3 min)" \
            cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked
    fi

    # --- wasm-bindgen CLI, exactly the library version in Cargo.lock ---
    if [ ! -f Cargo.lock ]; then
        cargo generate-lockfile -q
    fi
    local want
    want="$(awk '/^\[\[package\]\]/{n=""} /^name = /{n=$3} /^version = / && n=="\"wasm-bindgen\""{gsub(/"/,"",$3); print $3; exit}' Cargo.lock)"
    if [ -z "$want" ]; then
        echo "bootstrap: no wasm-bindgen in Cargo.lock (is the worker crate a wasm32 dependency?)" >&2
        return 1
    fi
    have="$(wasm-bindgen --version 2>/dev/null || true)"
    if [ "${have##* }" != "$want" ]; then
        quietly "wasm-bindgen-cli $want (cargo install, ~2 min)" \
            cargo install wasm-bindgen-cli --version "$want"
    fi

    # --- npm devDependencies (wrangler+workerd, esbuild, binaryen, playwright-core, ajv) ---
    if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
        quietly "node_modules (npm ci)" npm ci --no-audit --no-fund --loglevel=error
        touch node_modules/.package-lock.json
    fi
)

# The last command's status is the script's exit status when run, and the
# return status of `source` when sourced.
_edgemdm_bootstrap "$@"
