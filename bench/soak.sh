#!/usr/bin/env bash
# Two-replica soak (issue 17): the test tests/replicas.rs run for minutes instead of CI's 60 s —
# two real `custodian serve` processes on one fresh PostgreSQL database, a load driver on both
# (creates, lookups, content, DELETEs, deactivations with a 2 s grace, reactivations, a mass
# deactivation tripping the brake), a SIGHUP policy edit on one replica then the other, and two
# webhook receivers (one failing every 25th delivery). It prints throughput, errors (5xx, dropped),
# webhook delivery lag (p50/p99/max from an event's occurredAt to its first accepted delivery) and
# the disposal and brake counts, and fails if any invariant of the test breaks (see its header).
#
#   bash bench/soak.sh                  # 10 minutes, release build
#   SOAK_SECONDS=240 bash bench/soak.sh # 4 minutes
#   PROFILE=dev bash bench/soak.sh      # reuse the debug build of `cargo test`
#
# Needs PostgreSQL: CUSTODIAN_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/test); the
# test creates its own database there and drops it afterwards. Output: target/bench/soak.log.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SECONDS_WANTED="${SOAK_SECONDS:-600}"
PROFILE="${PROFILE:-release}"
export CUSTODIAN_TEST_PG_URL="${CUSTODIAN_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}"
OUT=target/bench; mkdir -p "$OUT"
flags=(--locked --test replicas)
[[ "$PROFILE" == release ]] && flags+=(--release)
echo "soak: ${SECONDS_WANTED} s, ${PROFILE} build, database server ${CUSTODIAN_TEST_PG_URL%/*}" >&2
CUSTODIAN_SOAK_SECONDS="$SECONDS_WANTED" cargo test "${flags[@]}" -- replicas_soak --nocapture --test-threads 1 2>&1 |
    tee "$OUT/soak.log" | grep -E "replica soak:|^  (driver|events|disposals):|panicked|test result"
grep -q "^test result: ok. 1 passed" "$OUT/soak.log"
