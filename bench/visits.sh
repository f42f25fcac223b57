#!/usr/bin/env bash
# Whole visits (start session, get offers, end session in one /v1/batch) on the synthetic
# channel, against the runtime as one instance runs it (`kairos up`'s way: history and the
# imported profile table in embedded SQLite, sessions in memory) and as an instance of a
# server group runs it (history and the profile table in PostgreSQL, sessions and the group's
# counts in Redis), side by side in one run: visits/s, p99 and the server's own CPU per
# visit from /proc (the group's figure leaves out PostgreSQL's and Redis's own CPU, which the
# machine reports as busy). ROUNDS rounds (default 3) alternate the two; each figure is the
# median of its rounds.
# Usage: bench/visits.sh [duration, default 10s] [connections, default 32]; needs wrk, and
# KAIROS_BENCH_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test) and
# KAIROS_BENCH_REDIS_URL (default redis://127.0.0.1:6379/15, a database of its own, emptied
# first).
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10s}"
connections="${2:-32}"
rounds="${ROUNDS:-3}"
postgres="${KAIROS_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
redis="${KAIROS_BENCH_REDIS_URL:-redis://127.0.0.1:6379/15}"
customers=20000
port=17811
work="$(mktemp -d)"
server=""
schema="kairos_bench_$$"
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  psql -q "$postgres" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk"; exit 1; }
kairos="${KAIROS:-}"
if [ -z "$kairos" ]; then
  cargo build --release -q -p kairos-cli
  kairos=./target/release/kairos
fi
"$kairos" demo synthetic --out "$work" --customers "$customers" >/dev/null
psql -q "$postgres" -c "CREATE SCHEMA $schema" >/dev/null
separator='?'; [[ "$postgres" == *\?* ]] && separator='&'
scoped="${postgres}${separator}options=-c%20search_path%3D${schema}"
# Both read the profiles from the database that holds their history.
"$kairos" data import --table customers --key customer_id --database "$scoped" "$work/customers.csv" >/dev/null
mkdir -p "$work/data"
"$kairos" data import --table customers --key customer_id --database "sqlite://$work/data/kairos.db" \
  "$work/customers.csv" >/dev/null

start() { # store: embedded | group
  local args=(--channel-file "$work/synthetic.yaml" --listen "127.0.0.1:$port")
  if [ "$1" = embedded ]; then
    args+=(--data "$work/data")
  else
    redis-cli -u "$redis" flushdb >/dev/null
    args+=(--database "$scoped" --sessions "$redis" --data "$work/group")
  fi
  "$kairos" runtime "${args[@]}" >"$work/$1.log" 2>&1 &
  server=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
}
stop() { kill "$server"; wait "$server" 2>/dev/null || true; server=""; }
server_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
ticks_per_second=$(getconf CLK_TCK)
machine_ticks() { awk '$1 == "cpu" {for (i = 2; i <= 9; i++) total += $i; print $5 + $6, total}' /proc/stat; }

run() { # store
  start "$1"
  # A warm-up, so that both measure a running server, not its first connections.
  CUSTOMERS=$customers wrk -t2 -c"$connections" -d2s -s bench/visit.lua "http://127.0.0.1:$port" >/dev/null
  local ticks machine
  ticks=$(server_ticks)
  machine=$(machine_ticks)
  CUSTOMERS=$customers chrt --batch 0 wrk -t2 -c"$connections" -d"$duration" --latency -s bench/visit.lua \
    "http://127.0.0.1:$port" >"$work/$1.txt"
  local rps p99 requests non2xx
  rps=$(awk '/^Requests\/sec/ {print $2}' "$work/$1.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$work/$1.txt")
  requests=$(awk '/requests in/ {print $1}' "$work/$1.txt")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$work/$1.txt")
  echo "$1 $rps $p99 $(awk -v t=$(($(server_ticks) - ticks)) -v hz="$ticks_per_second" -v n="$requests" \
    -v before="$machine" -v after="$(machine_ticks)" 'BEGIN {
      split(before, b, " "); split(after, a, " ")
      printf "%.1f %.0f", t * 1e6 / hz / n, 100 * (a[1] - b[1]) / (a[2] - b[2]) }') ${non2xx:-0}"
  stop
}

results="$(for _ in $(seq "$rounds"); do run embedded; run group; done)"
echo "each round: store, visits/s, p99, server us/visit, machine idle %, non-2xx answers"
echo "$results"
echo "$results" | awk -v n="$rounds" -v c="$connections" '
  function median(name, column,   k, i, j, t, v) {
    k = count[name]
    for (i = 1; i <= k; i++) v[i] = values[name, i, column]
    for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    return k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
  }
  { k = ++count[$1]; for (i = 2; i <= NF; i++) values[$1, k, i] = $i; p99[$1] = p99[$1] " " $3 }
  END {
    printf "%-10s %10s %15s %6s  %s\n", "store (" c ")", "visits/s", "server us/visit", "idle%", "p99 of each round"
    printf "%-10s %10.0f %15.1f %6.0f  %s\n", "embedded", median("embedded", 2), median("embedded", 4), median("embedded", 5), p99["embedded"]
    printf "%-10s %10.0f %15.1f %6.0f  %s\n", "group", median("group", 2), median("group", 4), median("group", 5), p99["group"]
    printf "group / embedded: %.0f%% of the visits (medians of %d rounds)\n", 100 * median("group", 2) / median("embedded", 2), n
  }'
