#!/usr/bin/env bash
# The ceiling on one tenant's event-emitting writes on PostgreSQL (issue 17).
#
# Every SCIM write that emits an event (create, PATCH, PUT, DELETE) takes
# its tenant's counter row for one statement and the COMMIT: the row lock is
# what makes an event's `seq` order its commit order (src/store/outbox.rs).
# So one tenant's writes run one at a time through that window, however
# many replicas and connections there are. This measures the window alone
# with pgbench on a scratch database (nothing of Custodian's): 32 clients
#   shared:  BEGIN; UPDATE one counter row ... RETURNING; COMMIT  (one tenant)
#   spread:  the same, each client on its own row                  (32 tenants)
# `shared` is the most event-emitting writes per second one tenant can make
# on this machine, before any of the write's own work; `spread` shows the
# limit is the row, not the commit.
#
#   bash bench/pg-floor.sh                 # 15 s per script
#   SECONDS_PER=30 bash bench/pg-floor.sh
#   AUTOGROUP=keep bash bench/pg-floor.sh  # see bench/pg-tails.sh on autogroup
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECONDS_PER="${SECONDS_PER:-15}"
PG="${PG:-postgres://postgres@127.0.0.1:5432}"
DB="${PGDB:-custodian_pgfloor}"
OUT="${OUT:-$(pwd)/target/pg-floor}"
mkdir -p "$OUT"
AG=/proc/sys/kernel/sched_autogroup_enabled
AG_WAS="$(cat "$AG" 2>/dev/null || echo absent)"
AG_CHANGED=""
restore() { if [[ -n "$AG_CHANGED" ]]; then echo 1 >"$AG" 2>/dev/null || true; fi; }
trap restore EXIT
if [[ "$AG_WAS" == 1 && "${AUTOGROUP:-off}" != keep ]] && (echo 0 >"$AG") 2>/dev/null; then AG_CHANGED=1; fi

psql "$PG/postgres" -v ON_ERROR_STOP=1 -q -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" </dev/null
psql "$PG/$DB" -v ON_ERROR_STOP=1 -q </dev/null <<'SQL'
CREATE TABLE tenant_counters (tenant_id TEXT PRIMARY KEY, next_seq BIGINT NOT NULL);
INSERT INTO tenant_counters SELECT 't' || n, 1 FROM generate_series(1, 32) n;
SQL
cat >"$OUT/shared.sql" <<'SQL'
BEGIN;
UPDATE tenant_counters SET next_seq = next_seq + 1 WHERE tenant_id = 't1' RETURNING next_seq;
COMMIT;
SQL
cat >"$OUT/spread.sql" <<'SQL'
BEGIN;
UPDATE tenant_counters SET next_seq = next_seq + 1 WHERE tenant_id = 't' || :client_id + 1 RETURNING next_seq;
COMMIT;
SQL
echo "kernel.sched_autogroup_enabled during the run: $(cat "$AG" 2>/dev/null || echo absent); $(nproc) cores; $(date -u +%FT%TZ)"
echo
echo "| script | clients | tx/s | latency avg ms |"
echo "|---|---:|---:|---:|"
for s in shared spread; do
    pgbench -n -M prepared -c 32 -j 2 -T "$SECONDS_PER" -f "$OUT/$s.sql" "$PG/$DB" >"$OUT/$s.txt" 2>&1
    tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$OUT/$s.txt")
    lat=$(sed -n 's/^latency average = \([0-9.]*\) ms/\1/p' "$OUT/$s.txt")
    printf '| %s | 32 | %.0f | %s |\n' "$s" "$tps" "$lat"
done
psql "$PG/postgres" -q -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" </dev/null
