#!/usr/bin/env bash
# Counts the socket system calls the API process makes per create+delete pair on PostgreSQL: a fresh database,
# the built server (npm run build) in demo mode, 20 pairs to warm up, then `strace -c` over 200 sequential pairs
# of each shape (CPU-only, one H100). Writes are what each statement or batch of statements sent together costs
# (docs/benchmarks.md); the count does not depend on the machine's load. Needs strace (Debian: apt-get install strace).
#   bash bench/pg-syscalls.sh            (PAIRS=200 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v strace >/dev/null || { echo "pg-syscalls: needs strace (apt-get install strace)" >&2; exit 2; }
PG_ADMIN=${PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
PAIRS=${PAIRS:-200}
DB=vmplane_syscalls_$$
PORT=${PORT:-8021}
dir=$(mktemp -d)
psql "$PG_ADMIN" -qc "CREATE DATABASE $DB" >/dev/null
JWT_SECRET=syscall-count-secret-syscall-count-secret VMPLANE_DEMO=1 SDK_LATENCY_MS=0 SDK_FAILURE_RATE=0 SDK_STATE_PATH="$dir/h.sqlite" \
  DATABASE_URL="${PG_ADMIN%/*}/$DB" PORT=$PORT RECONCILE_INTERVAL_MS=0 LOG_LEVEL=warn node dist/src/main.js >"$dir/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $DB" >/dev/null; rm -rf "$dir"' EXIT
api=http://127.0.0.1:$PORT
for _ in $(seq 1 60); do curl -sf -o /dev/null "$api/health" && break; sleep 0.5; done
# node: sequential pairs as testuser; argv: count, extra JSON fields of the create
pairs() {
  node -e '
    const [api, n, extra] = process.argv.slice(1);
    (async () => {
      const form = { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "username=testuser&password=testpassword" };
      const { access_token } = await (await fetch(api + "/token", form)).json();
      const auth = { authorization: "Bearer " + access_token };
      const body = JSON.stringify({ name: "count", cpu_cores: 1, memory: 256, disk_size: 1, ...JSON.parse(extra) });
      for (let i = 0; i < Number(n); i++) {
        const created = await fetch(api + "/vms", { method: "POST", headers: { ...auth, "content-type": "application/json" }, body });
        const vm = await created.json();
        if (created.status !== 201) throw new Error("create answered " + created.status + ": " + JSON.stringify(vm));
        const deleted = await fetch(api + "/vms/" + vm.id, { method: "DELETE", headers: auth });
        if (deleted.status !== 200) throw new Error("delete answered " + deleted.status);
        await deleted.text();
      }
    })().catch((e) => { console.error(e.message); process.exit(1); });
  ' "$api" "$1" "$2"
}
count() {
  pairs 20 "$1"
  strace -f -c -e trace=write,writev,read -o "$dir/strace.txt" -p $server 2>/dev/null &
  local tracer=$!
  sleep 1
  pairs "$PAIRS" "$1"
  kill -INT $tracer
  wait $tracer 2>/dev/null || true
  awk -v n="$PAIRS" '$NF ~ /^(write|writev|read)$/ { c[$NF] = $4 + 0 } END { printf "writev %.1f, write %.1f, read %.1f", c["writev"] / n, c["write"] / n, c["read"] / n }' "$dir/strace.txt"
}
echo "socket system calls per create+delete pair over $PAIRS pairs: CPU-only $(count '{}'); one H100 $(count '{"gpu_count":1,"gpu_model":"h100-80gb"}')"
