#!/usr/bin/env bash
# Used for bench/issue15-admin-gate.md: a before/after pair of one server change.
# gate-pair.sh BINDIR LABEL PORT: custodian from BINDIR on a fresh SQLite db, then the
# crud driver: create, PATCH, DELETE, then the gate (closed loop, concurrency 32).
set -euo pipefail
BINDIR="$1"; LABEL="$2"; PORT="$3"
D="${TMPDIR:-/tmp}/custodian-gate-pair/$LABEL"; rm -rf "$D"; mkdir -p "$D"
KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
printf '[default]\nbrake = { max_disposals_per_hour = 10000000 }\n' > "$D/policy.toml"
export CUSTODIAN_DATABASE_URL="sqlite://$D/c.db" CUSTODIAN_TOMBSTONE_KEY="$KEY" CUSTODIAN_POLICY_FILE="$D/policy.toml"
CUSTODIAN_BIND="127.0.0.1:$PORT" "$BINDIR/custodian" serve > "$D/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
tok() { "$BINDIR/custodian" token create --tenant bench --create-tenant --scope "$1" --name "load-$1" | tail -n 1; }
LOAD_SCIM_TOKEN=$(tok scim) LOAD_GATE_TOKEN=$(tok gate) "$BINDIR/custodian-load" crud \
  --url "http://127.0.0.1:$PORT" --label "$LABEL" --server-pid "$PID" --users 2000 \
  --requests 20000 --workloads patch,delete,gate --markdown "$D/report.md" > /dev/null
cat "$D/report.md"
