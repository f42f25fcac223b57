#!/usr/bin/env bash
# Property-based API tests: schemathesis (`--checks all`, a fixed seed, bounded examples)
# against a real control plane (with an admin token) and a real runtime (with a touchpoint
# token), both of a `kairos up` over a fresh folder. Exits non-zero on any failure.
#
#   tests/api/run.sh [path/to/kairos]     (default: target/debug/kairos)
#
# Needs `st` (pip install schemathesis). Runs its `kairos up` on three free ports, so it runs
# beside another.
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

# Three consecutive ports nobody listens on: the control plane, staging, production.
base=$(python3 - <<'PY'
import random, socket
def free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False
while True:
    base = random.randrange(30000, 60000, 3)
    if all(free(base + n) for n in range(3)):
        print(base)
        break
PY
)
control="http://127.0.0.1:$base"
staging="http://127.0.0.1:$((base + 1))"

KAIROS_ADMIN_PASSWORD="$password" "$kairos" up --data "$work/kairos-data" --ports "$base" >"$work/up.log" 2>&1 &
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
  if call GET $staging/readyz >/dev/null 2>&1; then break; fi
  sleep 0.1
done
call GET $staging/readyz >/dev/null

field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
admin=$(call POST $control/api/login "{\"user\":\"admin\",\"password\":\"$password\"}" | field token)
touchpoint=$(call POST $control/api/tokens '{"kind":"touchpoint","for":"web","label":"schemathesis"}' "$admin" | field token)

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

run control $control/api/openapi.json "$here/control.toml" "$admin"

# Staging is open under `kairos up` (and the control plane's run changed its settings at
# random): close it, so the runtime requires the token.
call PUT $control/api/groups/staging '{"open":false}' "$admin" >/dev/null

# The runtime learns of the touchpoint token within a poll; then it requires it.
for _ in $(seq 1 100); do
  if ! call GET $staging/v1/version >/dev/null 2>&1; then break; fi
  sleep 0.1
done
call POST $staging/v1/sessions \
  '{"session_id":"schemathesis-session","channel":"web","audience_id":{"customer_id":1001}}' \
  "$touchpoint" >/dev/null
run runtime $staging/openapi.json "$here/runtime.toml" "$touchpoint"
exit "$status"
