#!/usr/bin/env bash
# How a create's latency grows with the fleet: the built server (npm run build) in demo mode on SQLite with
# a generated fleet of HOSTS hosts (two thirds with 8 A100s, a third CPU-only), FILL of the GPU hosts
# filled with 8-GPU VMs first, then 60 sequential creates (each deleted again) of a CPU-only VM and of a
# 1-GPU one, as one client sees them. Prints the median and p90 of POST /vms.
#   bash bench/fleet-size.sh [HOSTS=1500] [FILL=0]        (ROOT=DIR: another checkout's dist, for before/after)
set -euo pipefail
cd "$(dirname "$0")/.."
hosts=${1:-1500}
fill=${2:-0}
root=${ROOT:-$PWD}
port=${PORT:-8029}
dir=$(mktemp -d)
node -e "
const { randomUUID } = require('node:crypto');
const hosts = Array.from({ length: $hosts }, (_, i) => ({
  name: 'node-' + String(i).padStart(5, '0'), region: i % 2 ? 'us-east-1' : 'us-west-2', cpu_cores: 96, memory_mib: 786432, disk_gib: 8000,
  gpus: Array.from({ length: i % 3 === 0 ? 0 : 8 }, (_, k) => ({ index: k, product_name: 'NVIDIA A100-SXM4-80GB', memory_mib: 81920,
    pci_address: '0000' + (i % 65536).toString(16).padStart(4, '0') + ':' + (k + 16).toString(16) + ':00.0', uuid: 'GPU-' + randomUUID() })),
}));
require('fs').writeFileSync('$dir/fleet.json', JSON.stringify({ hosts }));"
if curl -sf -o /dev/null "http://127.0.0.1:$port/health"; then echo "bench/fleet-size.sh: port $port is taken (set PORT)" >&2; exit 2; fi
# exec: $! is the server itself, so the trap stops it and not only the subshell.
(cd "$root" && exec env VMPLANE_DEMO=1 FLEET_FILE="$dir/fleet.json" PORT=$port DATABASE_URL="sqlite:$dir/db.sqlite" SDK_STATE_PATH="$dir/h.sqlite" \
  SDK_LATENCY_MS=0 SDK_FAILURE_RATE=0 QUOTA_GPUS=1000000 QUOTA_VCPUS=10000000 QUOTA_MEMORY_MIB=2000000000 QUOTA_VMS=10000000 \
  RECONCILE_INTERVAL_MS=0 node dist/src/main.js >"$dir/server.log" 2>&1) &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$dir"' EXIT
api=http://127.0.0.1:$port
for _ in $(seq 1 240); do curl -sf -o /dev/null "$api/health" && break; sleep 0.5; done
token=$(curl -s -X POST "$api/token" -d 'username=admin&password=adminpassword' | node -pe 'JSON.parse(require("fs").readFileSync(0)).access_token')
API=$api TOKEN=$token FILL=$fill HOSTS=$hosts node -e "
const headers = { authorization: 'Bearer ' + process.env.TOKEN, 'content-type': 'application/json' };
const post = (body) => fetch(process.env.API + '/vms', { method: 'POST', headers, body: JSON.stringify({ cpu_cores: 2, memory: 4096, disk_size: 20, ...body }) });
(async () => {
  for (let i = 0; i < Number(process.env.FILL); i++) {
    const r = await post({ name: 'fill', gpu_count: 8, gpu_model: 'a100-80gb' });
    if (r.status !== 201) throw new Error('filling host ' + (i + 1) + ' of ' + process.env.FILL + ': ' + r.status + ' ' + (await r.text()));
    await r.arrayBuffer();
  }
  for (const [label, body] of [['CPU-only', {}], ['1 A100', { gpu_count: 1, gpu_model: 'a100-80gb' }]]) {
    const times = [];
    for (let i = 0; i < 60; i++) {
      const start = performance.now();
      const r = await post({ name: 'timed', ...body });
      const vm = await r.json();
      if (r.status !== 201) throw new Error(label + ': ' + r.status + ' ' + JSON.stringify(vm));
      times.push(performance.now() - start);
      await (await fetch(process.env.API + '/vms/' + vm.id, { method: 'DELETE', headers })).arrayBuffer();
    }
    times.sort((a, b) => a - b);
    console.log(process.env.HOSTS + ' hosts, ' + process.env.FILL + ' filled, ' + label + ': POST /vms median ' + times[30].toFixed(1) + ' ms, p90 ' + times[54].toFixed(1) + ' ms');
  }
})().catch((error) => { console.error(error.message); process.exit(1); });"
