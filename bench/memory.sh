#!/usr/bin/env bash
# Resident memory of the runtime holding about a million idle sessions of the synthetic
# channel (each with its 5-field profile). Usage: bench/memory.sh [sessions, default 1000000]
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-1000000}"
port=17802
work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
cargo build --release -q -p kairos-cli
./target/release/kairos demo synthetic --out "$work" --customers 5000 >/dev/null
./target/release/kairos runtime --channel-file "$work/synthetic.yaml" --profiles "customers=$work/customers.csv" \
  --data "$work/data" --listen "127.0.0.1:$port" --idle-minutes 120 >"$work/runtime.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
rss() { awk '/^VmRSS/ {print $2}' "/proc/$server/status"; }
base=$(rss)
live=0
while [ "$live" -lt "$target" ]; do
  COUNT=$((target - live)) CUSTOMERS=5000 wrk -t2 -c32 -d"$(((target - live) / 10000 + 2))s" \
    -s bench/sessions.lua "http://127.0.0.1:$port" >/dev/null
  live=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^kairos_sessions_live/ {print $2}')
done
now=$(rss)
echo "sessions live: $live"
echo "resident memory: $((now / 1024)) MiB (before sessions: $((base / 1024)) MiB), $(( (now - base) * 1024 / live )) bytes per session"
