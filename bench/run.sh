#!/usr/bin/env bash
# Regenerates BENCHMARKS.md: builds Custodian and its load driver, then runs
#   1. workloads 1–6 on SQLite and on PostgreSQL (concurrency 32),
#   2. the peer, scim2-server from PyPI, on workloads 1–5 (concurrency 8),
#      with Custodian at the same concurrency in the same run,
#   3. two Custodian replicas on one PostgreSQL database,
#   4. the scale dataset (1,000,000 users, a 100,000-member group, owners of
#      10k/100k/1M items) on SQLite and PostgreSQL: lookups, paging, members,
#      disposal,
#   5. the criterion micro-benchmarks,
#   6. (optional, STEPS=hostile) the hostile workload: tenant A attacks with its
#      own token (and disposes an owner of HOSTILE_OWNER items) while tenant B's
#      lookups, PATCHes and gate checks are measured, on SQLite and PostgreSQL
#      (HOSTILE_BACKENDS); its reports go to $OUT/hostile-*.md (STEPS=hostile
#      alone leaves BENCHMARKS.md untouched),
# and writes BENCHMARKS.md from the JSON reports (bench/report.py) plus the
# hand-written analysis in bench/analysis.md.
#
#   bash bench/run.sh             # everything (about 30–40 minutes on 2 cores)
#   SCALE_USERS=100000 OWNERS=10000,100000 bash bench/run.sh   # a smaller scale tier
#   STEPS="crud peer" bash bench/run.sh                         # some steps only
#   STEPS=hostile HOSTILE_BACKENDS=sqlite bash bench/run.sh     # the hostile workload
#
# Needs what the README's two commands need, plus python3 with venv/pip (the
# peer) and the local PostgreSQL (127.0.0.1:5432, user postgres, trust auth).
# Everything binds to 127.0.0.1; every loop is bounded.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
REPO="$(pwd)"

CRUD_USERS="${CRUD_USERS:-5000}"
REQUESTS="${REQUESTS:-20000}"
SCALE_USERS="${SCALE_USERS:-1000000}"
GROUP_SIZE="${GROUP_SIZE:-100000}"
OWNERS="${OWNERS:-10000,100000,1000000}"
STEPS="${STEPS:-crud peer replicas scale criterion}"
OUT="${BENCH_OUT:-$REPO/target/bench}"
PG="postgres://postgres@127.0.0.1:5432"
BASE_PORT="${BENCH_PORT:-18080}"

mkdir -p "$OUT"
BIN="$REPO/target/release/custodian"
LOAD="$REPO/target/release/custodian-load"
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do
        [[ -n "$p" ]] && kill "$p" 2>/dev/null || true
    done
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }
want() { [[ " $STEPS " == *" $1 "* ]]; }

step "build (release)"
cargo build --release --locked --bin custodian --bin custodian-load

step "machine"
python3 - "$OUT/machine.json" <<'PY'
import json, os, platform, subprocess, sys
# What the figures depend on: "dirty" when any of it differs from the commit
# (the docs and BENCHMARKS.md itself, edited around a run, do not count).
MEASURED = "src benches examples migrations Cargo.toml Cargo.lock .cargo rust-toolchain.toml bench/run.sh bench/peer"
def sh(c):
    try: return subprocess.run(c, shell=True, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception: return ""
cpu = next((l.split(":",1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next((int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
json.dump({"cpu": cpu, "cores": os.cpu_count(), "mem_gib": round(mem/1048576, 1),
           "os": sh("grep PRETTY_NAME /etc/os-release | cut -d= -f2 | tr -d '\"'"),
           "kernel": platform.release(), "rustc": sh("rustc --version"),
           "postgres": sh("psql -h 127.0.0.1 -U postgres -d postgres -tAc 'SHOW server_version'"),
           "autovacuum": sh("psql -h 127.0.0.1 -U postgres -d postgres -tAc 'SHOW autovacuum'"),
           "shared_buffers": sh("psql -h 127.0.0.1 -U postgres -d postgres -tAc 'SHOW shared_buffers'"),
           "date": sh("date -u +%Y-%m-%dT%H:%MZ"), "commit": sh("git rev-parse --short HEAD") + (" (dirty)" if sh("git status --porcelain -- " + MEASURED) else "")},
          open(sys.argv[1], "w"), indent=1)
print(open(sys.argv[1]).read())
PY

# A policy whose brake does not stop a benchmark that deletes thousands of users.
POLICY="$OUT/policy.toml"
cat >"$POLICY" <<'TOML'
[default]
brake = { max_disposals_per_hour = 10000000 }
kinds = { draft = "delete" }
TOML

fresh_pg_db() { # NAME
    psql "$PG/postgres" -v ON_ERROR_STOP=1 -qc "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -qc "CREATE DATABASE $1" </dev/null
}

# start_custodian NAME DATABASE_URL PORT → sets SERVER_PID; log in $OUT/NAME.log
start_custodian() {
    local name="$1" url="$2" port="$3"
    CUSTODIAN_DATABASE_URL="$url" CUSTODIAN_BIND="127.0.0.1:$port" CUSTODIAN_POLICY_FILE="$POLICY" \
        CUSTODIAN_TOMBSTONE_KEY="$TOMBSTONE_KEY" "$BIN" serve >"$OUT/$name.log" 2>&1 &
    SERVER_PID=$!
    PIDS+=("$SERVER_PID")
    for _ in $(seq 1 300); do
        if curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; then return 0; fi
        kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$OUT/$name.log"; return 1; }
        sleep 0.2
    done
    echo "custodian did not become ready on port $port" >&2
    return 1
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# token URL SCOPE → prints a new token for tenant "bench"
token() {
    CUSTODIAN_DATABASE_URL="$1" CUSTODIAN_TOMBSTONE_KEY="$TOMBSTONE_KEY" \
        "$BIN" token create --tenant "${TENANT:-bench}" --create-tenant --scope "$2" --name "load-$2" | tail -n 1
}

TOMBSTONE_KEY="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"

# crud LABEL URL PORT CONCURRENCY [extra driver args…]
crud() {
    local label="$1" url="$2" port="$3" conc="$4"
    shift 4
    start_custodian "$label" "$url" "$port"
    local pid=$SERVER_PID
    local scim_token gate_token
    scim_token="$(token "$url" scim)"
    gate_token="$(token "$url" gate)"
    if [[ "$conc" == 32 ]]; then
        # Calibration: the same driver and HTTP stack with no database work
        # (/healthz), and with token verification only (/ServiceProviderConfig).
        for p in /healthz /scim/v2/ServiceProviderConfig; do
            LOAD_SCIM_TOKEN="$scim_token" "$LOAD" raw --url "http://127.0.0.1:$port" --path "$p" \
                --requests 50000 --concurrency 32 --label "$label-raw" --server-pid "$pid" \
                --json "$OUT/$label-raw$(echo "$p" | tr '/' '-').json" >/dev/null
        done
    fi
    LOAD_SCIM_TOKEN="$scim_token" LOAD_GATE_TOKEN="$gate_token" \
        "$LOAD" crud --url "http://127.0.0.1:$port" --label "$label" --server-pid "$pid" \
        --concurrency "$conc" --users "$CRUD_USERS" --requests "$REQUESTS" \
        --json "$OUT/$label.json" --markdown "$OUT/$label.md" "$@"
    stop "$pid"
}

if want crud; then
    step "workloads 1–6: Custodian on SQLite, concurrency 32"
    rm -rf "$OUT/sqlite-crud" && mkdir -p "$OUT/sqlite-crud"
    crud custodian-sqlite "sqlite://$OUT/sqlite-crud/custodian.db" "$BASE_PORT" 32
    step "workloads 1–6: Custodian on PostgreSQL, concurrency 32"
    fresh_pg_db custodian_bench
    crud custodian-postgres "$PG/custodian_bench" "$BASE_PORT" 32
fi

if want peer; then
    step "peer: scim2-server (PyPI) and Custodian, workloads 1–5, concurrency 8"
    bash bench/peer/scim2-server.sh install
    PEER_PORT=$((BASE_PORT + 1))
    PEER_PID="$(bash bench/peer/scim2-server.sh start "$PEER_PORT")"
    PIDS+=("$PEER_PID")
    "$LOAD" crud --url "http://127.0.0.1:$PEER_PORT" --scim-path /v2 \
        --label scim2-server --server-pid "$PEER_PID" --concurrency 8 --warmup 100 \
        --users "$CRUD_USERS" --requests "${PEER_REQUESTS:-500}" --page-walks 2 --no-cursor \
        --workloads lookup,patch,page,delete \
        --json "$OUT/scim2-server.json" --markdown "$OUT/scim2-server.md" || echo "(peer run reported failures; see the report)"
    bash bench/peer/scim2-server.sh stop "$PEER_PID"
    rm -rf "$OUT/sqlite-peer" && mkdir -p "$OUT/sqlite-peer"
    crud custodian-sqlite-c8 "sqlite://$OUT/sqlite-peer/custodian.db" "$BASE_PORT" 8 \
        --warmup 100 --page-walks 2 --no-cursor --workloads lookup,patch,page,delete
fi

if want replicas; then
    step "two Custodian replicas on one PostgreSQL database, 16 connections each"
    fresh_pg_db custodian_replicas
    url="$PG/custodian_replicas"
    start_custodian replica-a "$url" "$((BASE_PORT + 2))"
    PID_A=$SERVER_PID
    start_custodian replica-b "$url" "$((BASE_PORT + 3))"
    PID_B=$SERVER_PID
    SCIM_TOKEN="$(token "$url" scim)"
    GATE_TOKEN="$(token "$url" gate)"
    for r in a b; do
        port=$((BASE_PORT + 2)); pid=$PID_A
        [[ $r == b ]] && port=$((BASE_PORT + 3)) && pid=$PID_B
        LOAD_SCIM_TOKEN="$SCIM_TOKEN" LOAD_GATE_TOKEN="$GATE_TOKEN" "$LOAD" crud \
            --url "http://127.0.0.1:$port" --label "replica-$r" --server-pid "$pid" \
            --concurrency 16 --users "$CRUD_USERS" --requests "$REQUESTS" \
            --workloads lookup,patch,delete,gate \
            --json "$OUT/replica-$r.json" --markdown "$OUT/replica-$r.md" >/dev/null &
        eval "LOAD_$r=\$!"
    done
    rc=0
    wait "$LOAD_a" || rc=1
    wait "$LOAD_b" || rc=1
    # No lost or duplicated writes: both runs' surviving users, each exactly once.
    python3 bench/replica_check.py "http://127.0.0.1:$((BASE_PORT + 2))/scim/v2" "$SCIM_TOKEN" \
        "$OUT/replica-a.json" "$OUT/replica-b.json" >"$OUT/replicas-check.json" || rc=1
    cat "$OUT/replicas-check.json"
    stop "$PID_A"
    stop "$PID_B"
    [[ $rc == 0 ]] || echo "(replica run reported failures; see the report)"
fi

# scale LABEL DATABASE_URL
scale() {
    local label="$1" url="$2"
    /usr/bin/time -f '%e s, peak RSS %M KiB' -o "$OUT/$label-seed.time" \
        "$LOAD" seed --database-url "$url" --tenant bench --users "$SCALE_USERS" \
        --group-size "$GROUP_SIZE" --owners "$OWNERS" 2>&1 | tail -n 5
    cat "$OUT/$label-seed.time"
    start_custodian "$label" "$url" "$BASE_PORT"
    local pid=$SERVER_PID
    LOAD_SCIM_TOKEN="$(token "$url" scim)" LOAD_ADMIN_TOKEN="$(token "$url" admin)" \
        "$LOAD" scale --url "http://127.0.0.1:$BASE_PORT" --label "$label" --server-pid "$pid" \
        --users "$SCALE_USERS" --group-size "$GROUP_SIZE" --owners "$OWNERS" --requests "$REQUESTS" --index-samples 20 \
        --json "$OUT/$label.json" --markdown "$OUT/$label.md"
    stop "$pid"
}

if want scale; then
    step "scale: $SCALE_USERS users on SQLite"
    rm -rf "$OUT/sqlite-scale" && mkdir -p "$OUT/sqlite-scale"
    scale scale-sqlite "sqlite://$OUT/sqlite-scale/custodian.db"
    rm -rf "$OUT/sqlite-scale"
    step "scale: $SCALE_USERS users on PostgreSQL"
    fresh_pg_db custodian_scale
    scale scale-postgres "$PG/custodian_scale"
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS custodian_scale WITH (FORCE)" </dev/null
fi

if want criterion; then
    step "criterion micro-benchmarks"
    rm -rf "$REPO/target/criterion"
    cargo bench --locked --bench filter --bench patch --bench token --bench gate \
        -- --warm-up-time 1 --measurement-time 3 >"$OUT/criterion.log" 2>&1 ||
        { tail -30 "$OUT/criterion.log"; exit 1; }
    python3 bench/criterion-table.py >"$OUT/criterion.md"
    cat "$OUT/criterion.md"
fi

# hostile LABEL DATABASE_URL: tenant "bench" (A) seeded with an owner of
# $HOSTILE_OWNER items; tenant "victim" (B) starts empty. Its policy adds
# webhooks for A and B to the receivers the driver runs (the webhook attack).
HOOK_A_PORT=$((BASE_PORT + 50))
HOOK_B_PORT=$((BASE_PORT + 51))
export HOSTILE_HOOK_SECRET="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" # a Standard Webhooks secret (base64 key)
hostile() {
    local label="$1" url="$2"
    "$LOAD" seed --database-url "$url" --tenant bench --users "${HOSTILE_SEED_USERS:-10000}" \
        --group-size 100 --items-per-user 1 --owners "$HOSTILE_OWNER" 2>&1 | tail -n 2
    local saved_policy="$POLICY"
    POLICY="$OUT/hostile-policy.toml"
    cat "$saved_policy" - >"$POLICY" <<TOML
[tenants.bench]
webhooks = [{ url = "http://127.0.0.1:$HOOK_A_PORT/hook", secret_env = "HOSTILE_HOOK_SECRET" }]
[tenants.victim]
webhooks = [{ url = "http://127.0.0.1:$HOOK_B_PORT/hook", secret_env = "HOSTILE_HOOK_SECRET" }]
TOML
    start_custodian "$label" "$url" "$BASE_PORT"
    POLICY="$saved_policy"
    local pid=$SERVER_PID
    LOAD_SCIM_TOKEN="$(token "$url" scim)" LOAD_B_SCIM_TOKEN="$(TENANT=victim token "$url" scim)" \
        LOAD_GATE_TOKEN="$(TENANT=victim token "$url" gate)" \
        "$LOAD" hostile --url "http://127.0.0.1:$BASE_PORT" --label "$label" --server-pid "$pid" \
        --dispose-owner "$HOSTILE_OWNER" --hook-a-port "$HOOK_A_PORT" --hook-b-port "$HOOK_B_PORT" ${HOSTILE_ARGS:-} \
        --json "$OUT/$label.json" --markdown "$OUT/$label.md" || echo "(hostile run reported failures; see the report)"
    stop "$pid"
}

if want hostile; then
    HOSTILE_OWNER="${HOSTILE_OWNER:-1000000}"
    for b in ${HOSTILE_BACKENDS:-sqlite postgres}; do
        step "hostile workload on $b (owner of $HOSTILE_OWNER items)"
        if [[ $b == sqlite ]]; then
            rm -rf "$OUT/sqlite-hostile" && mkdir -p "$OUT/sqlite-hostile"
            hostile hostile-sqlite "sqlite://$OUT/sqlite-hostile/custodian.db"
            rm -rf "$OUT/sqlite-hostile"
        else
            # HOSTILE_PG_DB: another name when runs share the PostgreSQL server.
            local_db="${HOSTILE_PG_DB:-custodian_hostile}"
            fresh_pg_db "$local_db"
            hostile hostile-postgres "$PG/$local_db"
            psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $local_db WITH (FORCE)" </dev/null
        fi
    done
fi

# The hostile step alone leaves BENCHMARKS.md as it is (see bench/hostile-draft.md).
if [[ " $STEPS " != " hostile " ]]; then
    step "BENCHMARKS.md"
    python3 bench/report.py "$OUT" >"$REPO/BENCHMARKS.md"
    echo "wrote BENCHMARKS.md"
fi
