#!/usr/bin/env bash
# The API contract, checked against a live server:
#   1. `openapi-spec-validator` validates docs/openapi.json (OpenAPI 3.1);
#   2. a freshly built Custodian starts on a temporary SQLite file, with a
#      tenant holding users and ledger items (so the user, item and disposal
#      routes reach their logic, not only their 404s);
#   3. schemathesis fetches the *served* document (GET /admin/v1/openapi.json)
#      and fuzzes every operation from it, bounded (examples per operation,
#      a time budget): positive and negative data, coverage, fuzzing and
#      stateful phases. It fails on any 5xx, any undocumented status code,
#      content type or header, any response body its schema rejects, an
#      operation that answers without its token, and an undocumented method
#      not refused with 405 and `Allow`.
#
# Usage: conformance/run-schemathesis.sh
#
# Environment (all optional):
#   SCHEMATHESIS_MAX_EXAMPLES   test cases per operation and phase (default 30)
#   SCHEMATHESIS_MAX_TIME       seconds for the whole fuzzing run (default 180)
#   SCHEMATHESIS_SEED           a seed to reproduce a run (default: random, printed)
#   SCHEMATHESIS_VENV           virtualenv (default: $REPO/target/openapi-venv)
#   SCHEMATHESIS_KEEP_WORKDIR=1 keep the temporary directory (server DB, logs)
#
# Logs of the last run: target/schemathesis/.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SCHEMATHESIS_VENV:-$REPO/target/openapi-venv}"
ARTIFACTS="$REPO/target/schemathesis"
# Pinned (with every dependency, conformance/schemathesis-constraints.txt):
# the checks and the generated data change between releases. Bump deliberately.
PINS="schemathesis==4.32.5 openapi-spec-validator==0.9.0"
CONSTRAINTS="$REPO/conformance/schemathesis-constraints.txt"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1

say() { printf '[schemathesis] %s\n' "$*"; }
die() {
    printf '[schemathesis] ERROR: %s\n' "$*" >&2
    exit 1
}

WORKDIR="$(mktemp -d "${TMPDIR:-/tmp}/custodian-schemathesis.XXXXXX")"
SERVER_PID=""
cleanup() {
    local rc=$?
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    mkdir -p "$ARTIFACTS" 2>/dev/null || true
    # Not schemathesis.toml: it holds a token.
    for f in server.log schemathesis.log report/junit-*.xml; do
        for g in "$WORKDIR"/$f; do
            [[ -f "$g" ]] && cp "$g" "$ARTIFACTS/" 2>/dev/null || true
        done
    done
    if [[ "${SCHEMATHESIS_KEEP_WORKDIR:-0}" == 1 ]]; then
        echo "[schemathesis] kept $WORKDIR" >&2
    else
        rm -rf "$WORKDIR"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# 1. The tools, in a virtualenv under target/ (reused while the pins match).
# ---------------------------------------------------------------------------
STAMP_WANTED="$(cat <(printf '%s\n' "$PINS") "$CONSTRAINTS" | sha256sum | cut -d' ' -f1)"
STAMP_FILE="$VENV/.custodian-openapi-stamp"
if [[ -x "$VENV/bin/schemathesis" && -f "$STAMP_FILE" && "$(cat "$STAMP_FILE")" == "$STAMP_WANTED" ]]; then
    say "reusing $VENV"
else
    say "creating $VENV with $PINS"
    case "$VENV" in
        "$REPO"/target/* | "${SCHEMATHESIS_VENV:-/nonexistent}") rm -rf "$VENV" ;;
        *) die "refusing to remove unexpected venv path $VENV" ;;
    esac
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        say "python3 has no venv/ensurepip; installing python3-venv"
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv
    fi
    python3 -m venv "$VENV"
    # shellcheck disable=SC2086
    "$VENV/bin/pip" install -q -c "$CONSTRAINTS" $PINS
    printf '%s\n' "$STAMP_WANTED" >"$STAMP_FILE"
fi

# ---------------------------------------------------------------------------
# 2. A standard validator accepts the committed document.
# ---------------------------------------------------------------------------
say "openapi-spec-validator docs/openapi.json"
"$VENV/bin/openapi-spec-validator" "$REPO/docs/openapi.json" || die "docs/openapi.json is not a valid OpenAPI document"

# ---------------------------------------------------------------------------
# 3. The server, with a tenant to work on.
# ---------------------------------------------------------------------------
say "building custodian (cargo build --locked)"
(cd "$REPO" && cargo build --locked --bin custodian) || die "cargo build --locked failed"
TARGET_DIR="$(cd "$REPO" && cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
BIN="$TARGET_DIR/debug/custodian"
cd "$WORKDIR"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
BASE="http://127.0.0.1:$PORT"
say "starting $BIN serve --bind 127.0.0.1:$PORT (cwd $WORKDIR)"
"$BIN" serve --bind "127.0.0.1:$PORT" >"$WORKDIR/server.log" 2>&1 </dev/null &
SERVER_PID=$!
up=0
deadline=$((SECONDS + 30))
while ((SECONDS < deadline)); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$BASE/healthz" 2>/dev/null; then
        up=1
        break
    fi
    sleep 0.5
done
if [[ "$up" != 1 ]]; then
    tail -n 100 "$WORKDIR/server.log" | sed 's/^/    server| /'
    die "custodian did not come up"
fi

token() { # scope -> the token (the last line create prints)
    "$BIN" token create --tenant fuzz --create-tenant --scope "$1" --name "schemathesis-$1" </dev/null | awk 'NF { last = $0 } END { print last }' | tr -d '[:space:]'
}
ADMIN="$(token admin)"
GATE="$(token gate)"
SCIM="$(token scim)"
[[ -n "$ADMIN" && -n "$GATE" && -n "$SCIM" ]] || die "token create printed no token"

# Users (one suspended, so it has a scheduled disposal) and items they own.
say "seeding users and ledger items"
read -r USER_ID DISPOSABLE_ID < <(python3 - "$BASE" "$SCIM" "$ADMIN" <<'PY'
import json, sys, urllib.request

base, scim, admin = sys.argv[1:4]

def call(method, path, token, body, ctype="application/json"):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + token, "Content-Type": ctype})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")

ids = []
for i in range(4):
    u = call("POST", "/scim/v2/Users", scim, {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": f"fuzz{i}@example.com", "externalId": f"ext-{i}",
        "emails": [{"value": f"fuzz{i}@example.com", "primary": True}],
        "active": i != 3,
    }, "application/scim+json")
    ids.append(u["id"])
for i in range(6):
    call("PUT", f"/admin/v1/content/doc/d{i}", admin, {"owner": ids[i % 2], "title": f"doc {i}"})
call("PUT", "/admin/v1/user-data/favorites/f1", admin, {"user": ids[0]})
print(ids[0], ids[2])
PY
) || die "seeding failed"
[[ -n "$USER_ID" && -n "$DISPOSABLE_ID" ]] || die "seeding printed no user ids"

# The `id` of the user routes names a real user (dispose has one of its own,
# so the others keep theirs after the first disposal); the gate operation
# runs with the gate token.
cat >"$WORKDIR/schemathesis.toml" <<TOML
[[operations]]
include-path = "/admin/v1/users/{id}/dispose"
parameters = { "path.id" = "$DISPOSABLE_ID" }

[[operations]]
include-path-regex = "^/admin/v1/users/"
parameters = { "path.id" = "$USER_ID" }

[[operations]]
include-path = "/gate/v1/check"
headers = { Authorization = "Bearer $GATE" }
TOML

# ---------------------------------------------------------------------------
# 4. The fuzzer, from the served document.
# ---------------------------------------------------------------------------
SEED="${SCHEMATHESIS_SEED:-$(python3 -c 'import random; print(random.randrange(1 << 31))')}"
CHECKS="not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,unsupported_method,ignored_auth,missing_required_header"
say "schemathesis run $BASE/admin/v1/openapi.json (seed $SEED, checks $CHECKS)"
set +e
SCHEMATHESIS_HOOKS=schemathesis_hooks PYTHONPATH="$REPO/conformance" \
    timeout --kill-after=30 "$(( ${SCHEMATHESIS_MAX_TIME:-180} + 120 ))" \
    "$VENV/bin/schemathesis" --no-color --config-file "$WORKDIR/schemathesis.toml" run "$BASE/admin/v1/openapi.json" \
    --header "Authorization: Bearer $ADMIN" \
    --checks "$CHECKS" \
    --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-30}" \
    --max-time "${SCHEMATHESIS_MAX_TIME:-180}" \
    --seed "$SEED" \
    --workers 2 \
    --report junit --report-dir "$WORKDIR/report" 2>&1 | tee "$WORKDIR/schemathesis.log"
RC=${PIPESTATUS[0]}
set -e
if [[ "$RC" != 0 ]]; then
    say "last lines of the server log (full log: target/schemathesis/server.log):"
    tail -n 40 "$WORKDIR/server.log" | sed 's/^/    server| /'
    die "schemathesis failed (exit $RC); reproduce with SCHEMATHESIS_SEED=$SEED"
fi
say "OK: no server error and no response that contradicts the document (seed $SEED)"
