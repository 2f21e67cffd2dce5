#!/bin/bash
# SCIM DELETE vs scim2-server (issue 14): custodian-load crud, 8 connections, 20,000 users,
# the delete workload, the peer then Custodian on a fresh SQLite file. NOPEER=1 skips the peer.
# Run from the repository root after `cargo build --release`.
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${BENCH_OUT:-target/bench/delete-pair}"; mkdir -p "$OUT"; BIN=target/release/custodian; LOAD=target/release/custodian-load
cat > $OUT/policy.toml <<'TOML'
[default]
brake = { max_disposals_per_hour = 10000000 }
kinds = { draft = "delete" }
TOML
KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
if [ -z "${NOPEER:-}" ]; then
bash bench/peer/scim2-server.sh install >/dev/null 2>&1
PP=$(bash bench/peer/scim2-server.sh start 18691)
$LOAD crud --url http://127.0.0.1:18691 --scim-path /v2 --label peer --concurrency 8 --warmup 100 --users 20000 --workloads delete 2>&1 | grep -iE "delete|create" | tail -3
bash bench/peer/scim2-server.sh stop "$PP"
fi
rm -rf $OUT/db && mkdir -p $OUT/db
URL=sqlite://$OUT/db/custodian.db
CUSTODIAN_BLOCKING_THREAD_NICE=${NICE:-10} CUSTODIAN_DATABASE_URL=$URL CUSTODIAN_BIND=127.0.0.1:18690 CUSTODIAN_POLICY_FILE=$OUT/policy.toml CUSTODIAN_TOMBSTONE_KEY=$KEY $BIN serve > $OUT/server.log 2>&1 &
SP=$!
for i in $(seq 1 100); do curl -fsS http://127.0.0.1:18690/readyz >/dev/null 2>&1 && break; sleep 0.2; done
TOK=$(CUSTODIAN_DATABASE_URL=$URL CUSTODIAN_TOMBSTONE_KEY=$KEY $BIN token create --tenant bench --create-tenant --scope scim --name load 2>/dev/null | tail -n1)
LOAD_SCIM_TOKEN=$TOK $LOAD crud --url http://127.0.0.1:18690 --label custodian --concurrency 8 --warmup 100 --users 20000 --workloads delete 2>&1 | grep -iE "delete|create" | tail -3
kill $SP; wait $SP 2>/dev/null
