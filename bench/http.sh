#!/usr/bin/env bash
# The HTTP load benchmark: the real runtime serving the synthetic channel (1,000 offers,
# 2,000 rules, 200 segments, 100 IPs) with a few thousand live sessions, measured with wrk
# side by side in one run: /healthz, get offers, and get offers each followed by a logged
# contact event. The three runs take turns for ROUNDS rounds (default 3) and each figure is
# the median of its rounds: on a shared 2-core machine one run of /healthz alone swings by
# a third. Each round's contact run gets sessions started just before it, enough for one
# visit per pair (PAIRS_PER_SECOND times the duration, default 30,000/s): a session meets
# the channel's cap of 5 contacts per visit after two pairs, and from then on its get offers
# serve nothing and its events log nothing, which would measure no-ops. Those visits are ended
# after each round, so every round runs with the same few thousand live sessions. The report
# gives the history rows written per pair (3 when every pair logs its 3 offers), and the
# writes each group commit served and its mean time (the runtime's kairos_history_* metrics).
# wrk runs under the batch scheduling policy (WRK_POLICY=normal: as any other process). wrk and
# the server share two cores, and under the normal policy each response the server writes wakes
# a wrk thread that preempts the server at once: 0.1 involuntary context switches per /healthz,
# 0.3 per get offers, 0.4-0.55 per offers+contact request, a cost no server with its clients on
# other machines pays, and one that grows with the server's work per request. A batch wrk waits
# for the server to yield (at most 0.06 preemptions per request), so the ratios measure the
# server.
# Usage: bench/http.sh [duration, default 10s] [connections, default 32]; KAIROS=path/to/kairos
# measures that binary instead of building this checkout (to compare two builds).
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10s}"
connections="${2:-32}"
rounds="${ROUNDS:-3}"
visits=$(( ${PAIRS_PER_SECOND:-30000} * ${duration%s} ))
port=17801
work="$(mktemp -d)"
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT

command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk"; exit 1; }
case "${WRK_POLICY:-batch}" in
  batch) wrk=(chrt --batch 0 wrk) ;;
  normal) wrk=(wrk) ;;
  *) echo "WRK_POLICY must be batch or normal"; exit 1 ;;
esac
if curl -sf "http://127.0.0.1:$port/healthz" >/dev/null; then
  echo "port $port is taken by another server: stop it first"; exit 1
fi
kairos="${KAIROS:-}"
if [ -z "$kairos" ]; then
  cargo build --release -q -p kairos-cli
  kairos=./target/release/kairos
fi
"$kairos" demo synthetic --out "$work" --customers "$visits" >/dev/null
"$kairos" runtime --channel-file "$work/synthetic.yaml" --profiles "customers=$work/customers.csv" \
  --data "$work/data" --listen "127.0.0.1:$port" >"$work/runtime.log" 2>&1 &
server=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
live() { curl -s "http://127.0.0.1:$port/metrics" | awk '/^kairos_sessions_live/ {print $2}'; }
# The history writer's commits, writes committed and seconds spent committing, so far.
writer() {
  curl -s "http://127.0.0.1:$port/metrics" | awk '
    $1 == "kairos_history_commit_duration_seconds_count" {c = $2}
    $1 == "kairos_history_writes_total" {w = $2}
    $1 == "kairos_history_commit_duration_seconds_sum" {t = $2}
    END {print c, w, t}'
}
# Starts (or with END=1 ends) the sessions PREFIX0..PREFIX<COUNT-1> for customers 0..COUNT-1,
# and writes their IDs to FILE. Usage: sessions PREFIX COUNT FILE
sessions() {
  PREFIX="$1" COUNT="$2" wrk -t2 -c8 -d"$(($2 / 4000 + 2))s" -s bench/sessions.lua "http://127.0.0.1:$port" >/dev/null
  seq 0 $(($2 - 1)) | sed "s/^/$1/" >"$3"
}
sessions s 5000 "$work/sessions.txt"
[ "$(live)" -eq 5000 ] || { echo "started $(live) sessions of 5000"; exit 1; }
echo "live sessions: $(live)"

rows() {
  python3 -c "import sqlite3; print(sqlite3.connect('$work/data/kairos.db').execute('select count(*) from kairos_history').fetchone()[0])"
}
# CPU time the server process has used, in clock ticks (user + system).
server_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
# CPU time of the request workers and of the history writer, in clock ticks.
worker_writer_ticks() {
  for task in /proc/"$server"/task/*; do echo "$(cat "$task/comm") $(awk '{print $14 + $15}' "$task/stat")"; done |
    awk '$1 == "tokio-rt-worker" {w += $2} $1 == "kairos-history" {h += $2} END {print w + 0, h + 0}'
}
# Times the server's threads were preempted, summed over its threads.
server_preempted() { cat /proc/"$server"/task/*/status | awk '/^nonvoluntary_ctxt_switches/ {n += $2} END {print n}'; }
ticks_per_second=$(getconf CLK_TCK)
# The machine's idle (with I/O wait), stolen and total CPU ticks (user to steal; guest time is
# already in user): idle time while connections wait on syncs, and time the host gave to other
# machines, which no code change here can win back.
machine_ticks() { awk '$1 == "cpu" {for (i = 2; i <= 9; i++) total += $i; print $5 + $6, $9, total}' /proc/stat; }
run() { # name, sessions file, extra wrk args...
  local name="$1" sessions="$2"; shift 2
  local ticks threads preempted machine rps p99 requests
  ticks=$(server_ticks)
  threads=$(worker_writer_ticks)
  preempted=$(server_preempted)
  machine=$(machine_ticks)
  SESSIONS="$sessions" "${wrk[@]}" -t2 -c"$connections" -d"$duration" --latency "$@" >"$work/$name.txt"
  rps=$(awk '/^Requests\/sec/ {print $2}' "$work/$name.txt")
  p99=$(awk '$1 == "99%" {print $2}' "$work/$name.txt")
  requests=$(awk '/requests in/ {print $1}' "$work/$name.txt")
  # The server's own CPU per request (what wrk, on the same cores, does not blur) and how
  # often it was preempted per request.
  echo "$name $rps $p99 $(awk -v t=$(($(server_ticks) - ticks)) -v hz="$ticks_per_second" -v n="$requests" \
    -v p=$(($(server_preempted) - preempted)) -v before="$machine" -v after="$(machine_ticks)" \
    -v threads_before="$threads" -v threads_after="$(worker_writer_ticks)" 'BEGIN {
      split(before, b, " "); split(after, a, " "); whole = a[3] - b[3]
      split(threads_before, tb, " "); split(threads_after, ta, " ")
      printf "%.1f %.2f %.0f %.0f %.1f %.1f", t * 1e6 / hz / n, p / n, 100 * (a[1] - b[1]) / whole, 100 * (a[2] - b[2]) / whole,
        (ta[1] - tb[1]) * 1e6 / hz / n, (ta[2] - tb[2]) * 1e6 / hz / n }')"
}
results="$(for round in $(seq "$rounds"); do
  run healthz "$work/sessions.txt" "http://127.0.0.1:$port/healthz"
  run offers "$work/sessions.txt" -s bench/offers.lua "http://127.0.0.1:$port"
  # Fresh visits of the same customers each round: a customer's daily cap per offer (5)
  # leaves most offers open after a few rounds of 3.
  sessions "r$round-" "$visits" "$work/visits_$round.txt"
  [ "$(live)" -eq $((5000 + visits)) ] || { echo "round $round: $(live) sessions live, not $((5000 + visits))" >&2; exit 1; }
  before=$(rows)
  writer_before=$(writer)
  contact="$(run offers_contact "$work/visits_$round.txt" -s bench/offers_contact.lua "http://127.0.0.1:$port")"
  echo "$contact"
  echo "rows $(($(rows) - before)) $(echo "$contact" | awk '{print $2}') $(awk -v b="$writer_before" -v a="$(writer)" 'BEGIN {
    split(b, x, " "); split(a, y, " "); print y[1] - x[1], y[2] - x[2], y[3] - x[3] }')"
  # Back to the few thousand live sessions the next round is measured with.
  END=1 sessions "r$round-" "$visits" "$work/visits_$round.txt"
  [ "$(live)" -eq 5000 ] || { echo "round $round: $(live) sessions live after ending its visits" >&2; exit 1; }
done)"
echo "each round: run, requests/s, p99, server us/request, server preemptions/request, machine idle %, stolen %,"
echo "  request workers us/request, history writer us/request"
echo "(rows: history rows written, requests/s, commits, writes committed, seconds committing)"
echo "$results"
echo "$results" | awk -v policy="${WRK_POLICY:-batch}" -v c="$connections" -v d="${duration%s}" -v n="$rounds" '
  # column: 2 requests/s, 4 server us/request, 5 server preemptions/request, 6 idle %, 7 stolen %,
  # 8 request workers us/request, 9 history writer us/request
  function median(name, column,   k, i, j, t, v) {
    k = count[name]
    for (i = 1; i <= k; i++) v[i] = values[name, i, column]
    for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    return k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
  }
  $1 == "rows" { pairs += $3 / 2 * d; written += $2; commits += $4; writes += $5; committing += $6; next }
  {
    k = ++count[$1]
    for (i = 2; i <= NF; i++) values[$1, k, i] = $i
    p99[$1] = p99[$1] " " $3
  }
  function row(label, name) {
    printf "%-16s %12.0f %14.1f %9.1f %8.1f %12.2f %6.0f %7.0f  %s\n", label, median(name, 2), median(name, 4), median(name, 8), median(name, 9), median(name, 5), median(name, 6), median(name, 7), p99[name]
  }
  END {
    printf "%-16s %12s %14s %9s %8s %12s %6s %7s  %s\n", "run (" c " conns)", "requests/s", "server us/req", "workers", "writer", "preempt/req", "idle%", "stolen%", "p99 of each round"
    row("healthz", "healthz")
    row("get offers", "offers")
    row("offers+contact", "offers_contact")
    printf "medians of %d rounds of %ss, wrk scheduled as %s; offers+contact: get offers + contact event\n", n, d, policy
    printf "get offers / healthz:                     %.0f%%\n", 100 * median("offers", 2) / median("healthz", 2)
    printf "offers+contact requests / healthz:        %.0f%%\n", 100 * median("offers_contact", 2) / median("healthz", 2)
    printf "get offers with their contact / healthz:  %.0f%%  (pairs per second)\n", 100 * median("offers_contact", 2) / 2 / median("healthz", 2)
    printf "history rows written by the contact runs: %d (%.1f per pair)\n", written, written / pairs
    if (commits > 0) printf "their group commits: %.1f writes each, %.2f ms each on average\n", writes / commits, 1000 * committing / commits
  }'
