#!/usr/bin/env bash
# Property-based API tests: schemathesis (`--checks all`, a fixed seed, bounded examples)
# against a real control plane (with an admin token) and a real runtime (with a touchpoint
# token), both of a `kairos up` over a fresh folder. Exits non-zero on any failure.
#
#   tests/api/run.sh [path/to/kairos]     (default: target/debug/kairos)
#
# Needs `st` (pip install schemathesis) and the ports of `kairos up` (7700-7702) free.
set -euo pipefail
cd "$(dirname "$0")/../.."
kairos="${1:-target/debug/kairos}"
here="tests/api"
work="$(mktemp -d)"
password="schemathesis-admin"

cleanup() {
  if [ -n "${up:-}" ]; then kill "$up" 2>/dev/null || true; wait "$up" 2>/dev/null || true; fi
  if [ -n "${KEEP:-}" ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

for port in 7700 7701 7702; do
  if python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1',$port))!=0)"; then
    echo "port $port is taken: is a kairos up running?" >&2
    exit 1
  fi
done

KAIROS_ADMIN_PASSWORD="$password" "$kairos" up --data "$work/kairos-data" >"$work/up.log" 2>&1 &
up=$!

# JSON over HTTP without curl: python3 is on every machine this runs on.
call() { # METHOD URL [BODY [TOKEN]]
  python3 - "$@" <<'PY'
import json, sys, urllib.request
method, url = sys.argv[1], sys.argv[2]
body = sys.argv[3].encode() if len(sys.argv) > 3 and sys.argv[3] else None
request = urllib.request.Request(url, data=body, method=method)
request.add_header("content-type", "application/json")
if len(sys.argv) > 4:
    request.add_header("authorization", "Bearer " + sys.argv[4])
print(urllib.request.urlopen(request, timeout=10).read().decode())
PY
}

for _ in $(seq 1 600); do
  if call GET http://127.0.0.1:7701/readyz >/dev/null 2>&1; then break; fi
  sleep 0.1
done
call GET http://127.0.0.1:7701/readyz >/dev/null

field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
admin=$(call POST http://127.0.0.1:7700/api/login "{\"user\":\"admin\",\"password\":\"$password\"}" | field token)
touchpoint=$(call POST http://127.0.0.1:7700/api/tokens '{"kind":"touchpoint","for":"web","label":"schemathesis"}' "$admin" | field token)

status=0
run() { # NAME URL CONFIG TOKEN
  echo "== schemathesis: $1"
  # The token reaches schemathesis as the security schemes' credentials (see the configs).
  # Run from the scratch folder: schemathesis keeps a cache where it runs.
  if ! (cd "$work" && KAIROS_TOKEN="$4" st --config-file "$OLDPWD/$3" run "$2" --checks all \
      --seed 1 --no-color --report junit --report-dir "$work/report-$1") >"$work/$1.log" 2>&1; then
    status=1
  fi
  sed -n '/SUMMARY/,$p' "$work/$1.log"
  if [ "$status" -ne 0 ]; then
    # What failed, with the requests that reproduce it.
    sed -n '/FAILURES/,/SUMMARY/p' "$work/$1.log" | head -300
  fi
}

run control http://127.0.0.1:7700/api/openapi.json "$here/control.toml" "$admin"

# Staging is open under `kairos up` (and the control plane's run changed its settings at
# random): close it, so the runtime requires the token.
call PUT http://127.0.0.1:7700/api/groups/staging '{"open":false}' "$admin" >/dev/null

# The runtime learns of the touchpoint token within a poll; then it requires it.
for _ in $(seq 1 100); do
  if ! call GET http://127.0.0.1:7701/v1/version >/dev/null 2>&1; then break; fi
  sleep 0.1
done
call POST http://127.0.0.1:7701/v1/sessions \
  '{"session_id":"schemathesis-session","channel":"web","audience_id":{"customer_id":1001}}' \
  "$touchpoint" >/dev/null
run runtime http://127.0.0.1:7701/openapi.json "$here/runtime.toml" "$touchpoint"
exit "$status"
