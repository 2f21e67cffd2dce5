#!/usr/bin/env bash
# PostgreSQL tails and per-replica speed (issue 17): the crud workloads on
# SQLite and then on PostgreSQL in one run, the read workloads (the three
# lookups and the closed-loop gate) each for SECONDS seconds, 32 connections,
# the driver on the same machine (as BENCHMARKS.md measures). Prints per
# workload and backend: req/s, p50, p99, max, requests over 100 ms and when
# the slowest began; then PostgreSQL's req/s as a share of SQLite's.
#
#   bash bench/pg-tails.sh                      # 60 s per read workload
#   SECONDS_PER=10 USERS=5000 bash bench/pg-tails.sh
#   BINDIR=/path/to/release bash bench/pg-tails.sh   # another build's binaries
#   BACKENDS=postgres bash bench/pg-tails.sh    # one backend only
#   OPEN_REQUESTS=20000 bash bench/pg-tails.sh  # requests of the open-loop gate (10,000/s offered)
#   AUTOGROUP=keep bash bench/pg-tails.sh       # leave the kernel's autogroup scheduling as it is
#
# Scheduling: with kernel.sched_autogroup_enabled=1 (this machine's default)
# each session gets one share of the CPU, so PostgreSQL (started by its
# service, in a session of its own) gets one share for all its backends
# while Custodian and the driver get another; on two busy cores its
# backends then waited up to 499 ms to run (`perf sched latency`; Custodian's
# threads at most 3 ms). The two cores are meant to be shared by every
# process alike, so the script turns autogroup off for the run (as root)
# and restores it on exit; AUTOGROUP=keep measures the default instead.
#
# Reports (JSON, markdown, server logs) go to $OUT (default target/pg-tails).
# PostgreSQL: a fresh database custodian_pgtails on 127.0.0.1:5432 (user
# postgres, trust), dropped and created by this script; its statements slower
# than 50 ms are logged by the server (ALTER DATABASE … SET
# log_min_duration_statement), so the PostgreSQL log tells which statements
# made a tail. Everything binds to 127.0.0.1; every loop is bounded.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO="$(pwd)"
SECONDS_PER="${SECONDS_PER:-60}"
USERS="${USERS:-5000}"
CONC="${CONC:-32}"
PORT="${BENCH_PORT:-18180}"
BACKENDS="${BACKENDS:-sqlite postgres}"
OUT="${OUT:-$REPO/target/pg-tails}"
PG="${PG:-postgres://postgres@127.0.0.1:5432}"
PGDB="${PGDB:-custodian_pgtails}"
# Appended to the server's URL: e.g. PG_QUERY='?sslmode=disable', or with PG=postgresql://
# PG_QUERY='?host=/var/run/postgresql' for the Unix socket.
PG_QUERY="${PG_QUERY:-}"
if [[ -z "${BINDIR:-}" ]]; then
    cargo build --release --locked --bin custodian --bin custodian-load >&2
    BINDIR="$REPO/target/release"
fi
mkdir -p "$OUT"
SERVER_PID=""
AG=/proc/sys/kernel/sched_autogroup_enabled
AG_WAS="$(cat "$AG" 2>/dev/null || echo absent)"
AG_CHANGED=""
# Every step guarded: under `set -e` a failing command would end the trap
# before autogroup is restored.
cleanup() {
    if [[ -n "$SERVER_PID" ]]; then kill "$SERVER_PID" 2>/dev/null || true; fi
    if [[ -n "$AG_CHANGED" ]]; then echo 1 >"$AG" 2>/dev/null || true; fi
}
trap cleanup EXIT
if [[ "$AG_WAS" == 1 && "${AUTOGROUP:-off}" != keep ]]; then
    if (echo 0 >"$AG") 2>/dev/null; then
        AG_CHANGED=1
    else
        echo "cannot turn autogroup off (not root?): measuring with it on" >&2
    fi
fi
echo "kernel.sched_autogroup_enabled: $(cat "$AG" 2>/dev/null || echo absent) (was $AG_WAS)" >&2

KEY="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
cat >"$OUT/policy.toml" <<'TOML'
[default]
brake = { max_disposals_per_hour = 10000000 }
kinds = { draft = "delete" }
TOML

run_backend() { # NAME URL
    local name="$1" url="$2"
    CUSTODIAN_DATABASE_URL="$url" CUSTODIAN_BIND="127.0.0.1:$PORT" \
        CUSTODIAN_POLICY_FILE="$OUT/policy.toml" CUSTODIAN_TOMBSTONE_KEY="$KEY" \
        "$BINDIR/custodian" serve >"$OUT/$name.log" 2>&1 &
    SERVER_PID=$!
    local ready=""
    for _ in $(seq 1 300); do
        if curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then ready=1; break; fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.2
    done
    [[ -n "$ready" ]] || { tail -20 "$OUT/$name.log" >&2; return 1; }
    tok() {
        CUSTODIAN_DATABASE_URL="$url" CUSTODIAN_TOMBSTONE_KEY="$KEY" "$BINDIR/custodian" token create \
            --tenant bench --create-tenant --scope "$1" --name "tails-$1" | tail -n 1
    }
    local scim gate
    scim="$(tok scim)"
    gate="$(tok gate)"
    echo "== $name: $(uptime)" >&2
    LOAD_SCIM_TOKEN="$scim" LOAD_GATE_TOKEN="$gate" "$BINDIR/custodian-load" crud \
        --url "http://127.0.0.1:$PORT" --label "$name" --server-pid "$SERVER_PID" \
        --concurrency "$CONC" --users "$USERS" --seconds "$SECONDS_PER" --requests "${OPEN_REQUESTS:-5000}" \
        --workloads lookup,patch,delete,gate \
        --json "$OUT/$name.json" --markdown "$OUT/$name.md" >/dev/null
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
}

for b in $BACKENDS; do
    case "$b" in
        sqlite)
            rm -rf "$OUT/sqlite" && mkdir -p "$OUT/sqlite"
            run_backend sqlite "sqlite://$OUT/sqlite/custodian.db"
            ;;
        postgres)
            psql "$PG/postgres" -v ON_ERROR_STOP=1 -q \
                -c "DROP DATABASE IF EXISTS $PGDB WITH (FORCE)" -c "CREATE DATABASE $PGDB" \
                -c "ALTER DATABASE $PGDB SET log_min_duration_statement = 50" </dev/null
            run_backend postgres "$PG/$PGDB$PG_QUERY"
            ;;
        *) echo "unknown backend $b" >&2; exit 2 ;;
    esac
done

echo "kernel.sched_autogroup_enabled during the run: $(cat "$AG" 2>/dev/null || echo absent); $(nproc) cores; $(date -u +%FT%TZ)"
echo
python3 - "$OUT" $BACKENDS <<'PY'
import json, os, sys
out, backends = sys.argv[1], sys.argv[2:]
runs = {b: json.load(open(os.path.join(out, b + ".json")))["results"] for b in backends}
names = [r["workload"] for r in runs[backends[0]]]
print("| workload | backend | requests | errors | req/s | p50 ms | p99 ms | max ms | over 100 ms | slowest began at |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for n in names:
    for b in backends:
        r = next((x for x in runs[b] if x["workload"] == n), None)
        if r is None:
            continue
        e = r.get("extra", {})
        print(f"| {n} | {b} | {r['requests']} | {r['errors']} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | "
              f"{r['p99_ms']:.2f} | {r['max_ms']:.1f} | {e.get('over_100ms', 0):.0f} | {e.get('max_at_s', 0):.1f} s |")
if len(backends) == 2:
    print()
    print(f"| workload | {backends[1]} / {backends[0]} req/s |")
    print("|---|---:|")
    for n in names:
        a = next((x for x in runs[backends[0]] if x["workload"] == n), None)
        b = next((x for x in runs[backends[1]] if x["workload"] == n), None)
        if a and b and a["rps"] > 0 and "open loop" not in n:
            print(f"| {n} | {b['rps'] / a['rps']:.2f} |")
PY
