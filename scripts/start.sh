#!/usr/bin/env bash
# npm start: build the Worker and serve it locally with wrangler dev.
# Storage (Durable Objects, KV) persists under .wrangler/state across restarts.
#   PORT=8787 (default)   EDGEMDM_WATCH=1 rebuilds on changes under src/
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/bootstrap.sh --serve
echo "start: building (worker-build --release)..."
bash scripts/build.sh

if [ ! -f .dev.vars ] || ! grep -q '^ADMIN_TOKEN=' .dev.vars; then
    echo "ADMIN_TOKEN=$(openssl rand -hex 16)" >>.dev.vars
    chmod 600 .dev.vars
    echo "start: wrote a new ADMIN_TOKEN to .dev.vars"
fi
admin_token="$(sed -n 's/^ADMIN_TOKEN=//p' .dev.vars | tail -n 1 | tr -d '"'"'"'')"
port="${PORT:-8787}"

# The fleet index's tables (migrations/), in the local D1 database; applied ones are skipped.
CI=true WRANGLER_SEND_METRICS=false npx wrangler d1 migrations apply INDEX --local \
    --persist-to .wrangler/state >/dev/null

cat <<MSG

  edgemdm is starting at   http://127.0.0.1:${port}/
  admin console            http://127.0.0.1:${port}/admin/
  admin token (.dev.vars)  ${admin_token}
                           (sign in to the console: create an admin with it first, e.g.
                            curl -H "Authorization: Bearer ${admin_token}" -H 'content-type: application/json' \\
                              -d '{"email":"you@example.com","display_name":"You","password":"a long passphrase","role":"admin"}' \\
                              http://127.0.0.1:${port}/api/v1/admins)
  state persisted in       .wrangler/state

MSG

# The build above is current; only let wrangler rebuild (its [build] command)
# on source changes when asked to.
if [ "${EDGEMDM_WATCH:-}" != "1" ]; then
    export EDGEMDM_SKIP_BUILD=1
fi
export WRANGLER_SEND_METRICS=false
exec npx wrangler dev --ip 127.0.0.1 --port "$port" --persist-to .wrangler/state
