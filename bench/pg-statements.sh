#!/usr/bin/env bash
# Counts the statements PostgreSQL executes for one create+delete pair (and one GET) through the API:
# a fresh database with log_statement=all, the built server (npm run build) in demo mode, five pairs of
# each shape, and the lines the server log gained. Needs a local PostgreSQL superuser and its log file.
#   bash bench/pg-statements.sh            (PG_LOG=/var/log/postgresql/postgresql-15-main.log by default)
set -euo pipefail
cd "$(dirname "$0")/.."
PG_ADMIN=${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
PG_LOG=${PG_LOG:-$(ls /var/log/postgresql/postgresql-*-main.log | head -1)}
DB=vmplane_statements_$$
PORT=${PORT:-8019}
dir=$(mktemp -d)
psql "$PG_ADMIN" -qc "CREATE DATABASE $DB" -c "ALTER DATABASE $DB SET log_statement = 'all'" >/dev/null
JWT_SECRET=statement-count-secret-statement-count VMPLANE_DEMO=1 SDK_LATENCY_MS=0 SDK_FAILURE_RATE=0 SDK_STATE_PATH="$dir/h.sqlite" \
  DATABASE_URL="${PG_ADMIN%/*}/$DB" PORT=$PORT RECONCILE_INTERVAL_MS=0 OPERATION_POLL_MS=60000 node dist/src/main.js >"$dir/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $DB" >/dev/null; rm -rf "$dir"' EXIT
api=http://127.0.0.1:$PORT
for _ in $(seq 1 60); do curl -sf -o /dev/null "$api/health" && break; sleep 0.5; done
field() { node -pe "JSON.parse(require('fs').readFileSync(0)).$1"; }
token=$(curl -s -X POST "$api/token" -d 'username=testuser&password=testpassword' | field access_token)
pair() {
  local id
  id=$(curl -s -X POST "$api/vms" -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d "{\"name\":\"count\",\"cpu_cores\":2,\"memory\":4096,\"disk_size\":20$1}" | field id)
  curl -s -o /dev/null -X DELETE "$api/vms/$id" -H "authorization: Bearer $token"
  curl -s -o /dev/null "$api/vms/$id" -H "authorization: Bearer $token"
}
count() {
  local before after
  pair "$1" # warm: the token check's user read, first plans
  before=$(wc -l <"$PG_LOG")
  for _ in 1 2 3 4 5; do pair "$1"; done
  sleep 0.3
  after=$(wc -l <"$PG_LOG")
  sed -n "$((before + 1)),${after}p" "$PG_LOG" | grep -cE 'LOG:  (statement|execute [^:]*):'
}
cpu=$(count '')
gpu=$(count ',"gpu_count":1,"gpu_model":"h100-80gb"')
echo "statements per create+delete pair and one GET, over 5 pairs: CPU-only $(node -pe "($cpu/5).toFixed(1)"), one H100 $(node -pe "($gpu/5).toFixed(1)")"
