#!/usr/bin/env bash
# The HTTP load benchmark: the real runtime serving the synthetic channel (1,000 offers,
# 2,000 rules, 200 segments, 100 IPs) with a few thousand live sessions, measured with wrk
# side by side in one run: /healthz, get offers, and get offers each followed by a logged
# contact event. Usage: bench/http.sh [duration, default 10s] [connections, default 32]
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10s}"
connections="${2:-32}"
port=17801
work="$(mktemp -d)"
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk"; exit 1; }
cargo build --release -q -p kairos-cli
./target/release/kairos demo synthetic --out "$work" --customers 5000 >/dev/null
./target/release/kairos runtime --channel-file "$work/synthetic.yaml" --profiles "customers=$work/customers.csv" \
  --data "$work/data" --listen "127.0.0.1:$port" >"$work/runtime.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
python3 bench/sessions.py 127.0.0.1 "$port" 5000 "$work/sessions.txt"
echo "live sessions: $(curl -s "http://127.0.0.1:$port/metrics" | awk '/^kairos_sessions_live/ {print $2}')"

run() { # name, extra wrk args...
  local name="$1"; shift
  SESSIONS="$work/sessions.txt" wrk -t2 -c"$connections" -d"$duration" --latency "$@" >"$work/$name.txt"
  local rps p99
  rps=$(awk '/^Requests\/sec/ {print $2}' "$work/$name.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$work/$name.txt")
  echo "$name $rps $p99"
}
results="$(run healthz "http://127.0.0.1:$port/healthz"
run offers -s bench/offers.lua "http://127.0.0.1:$port"
run offers_contact -s bench/offers_contact.lua "http://127.0.0.1:$port")"
echo "$results" | awk -v c="$connections" '
  { rps[$1] = $2; p99[$1] = $3 }
  END {
    printf "%-16s %12s %10s\n", "run (" c " conns)", "requests/s", "p99"
    printf "%-16s %12.0f %10s\n", "healthz", rps["healthz"], p99["healthz"]
    printf "%-16s %12.0f %10s\n", "get offers", rps["offers"], p99["offers"]
    printf "%-16s %12.0f %10s   (get offers + contact event per pair: %.0f pairs/s)\n", "offers+contact", rps["offers_contact"], p99["offers_contact"], rps["offers_contact"] / 2
    printf "get offers / healthz:            %.0f%%\n", 100 * rps["offers"] / rps["healthz"]
    printf "offers with contact / healthz:   %.0f%%  (get offers per second)\n", 100 * (rps["offers_contact"] / 2) / rps["healthz"]
  }'
echo "history rows written: $(python3 -c "import sqlite3; print(sqlite3.connect('$work/data/kairos.db').execute('select count(*) from kairos_history').fetchone()[0])")"
