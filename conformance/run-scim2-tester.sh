#!/usr/bin/env bash
# Run the external RFC 7643/7644 checker `scim2-tester` (through its command
# line, `scim2-cli`) against a freshly started Custodian. Every check must
# pass: any failing check fails the run.
#
# SCIM2_TESTER_EXPECTED_FILE may name a file of checks known to fail (for a
# branch under development); the run then fails when a check fails that the file
# does not list, and when a listed check passes, so such a file stays honest. The last line printed is always
#     scim2-tester: N passed, M failed (E expected)
#
# Usage: conformance/run-scim2-tester.sh
#
# Environment (all optional):
#   SCIM2_TESTER_BASE_URL   test an already running server at this SCIM base URL
#                           (e.g. http://127.0.0.1:8080/scim/v2) instead of
#                           building and starting one; needs SCIM2_TESTER_TOKEN.
#   SCIM2_TESTER_TOKEN      bearer token for SCIM2_TESTER_BASE_URL.
#   SCIM2_TESTER_EXPECTED_FILE  an expected-failures file (default: none — all must pass).
#   SCIM2_TESTER_VENV       virtualenv to use (default: $REPO/.venv-conformance).
#   SCIM2_TESTER_KEEP_WORKDIR=1  keep the temporary directory (server DB, logs).
#   SCIM2_TESTER_START_TIMEOUT   seconds to wait for /healthz (default 30).
#
# Full logs of the last run are copied to target/scim2-tester/.
set -euo pipefail

# Pinned: the checks, their names and their output format change between
# releases. Bump deliberately.
SCIM2_TESTER_VERSION=0.5.2
SCIM2_CLI_VERSION=0.6.0
# Their dependencies, pinned too so that a new scim2-models/scim2-client
# release cannot change what is checked behind our back.
CONSTRAINTS='annotated-types==0.8.0
anyio==4.16.0
click==8.5.1
colorama==0.4.6
dnspython==2.9.2
docutils==0.23
email-validator==2.4.0
h11==0.16.0
httpcore2==2.16.2
httpx2==2.16.2
idna==3.20
lark==1.3.1
pydanclick==0.5.1
pydantic==2.14.3
pydantic_core==2.50.4
Pygments==2.21.0
scim2-client==0.13.2
scim2-models==0.12.3
sphinx-click-rst-to-ansi-formatter==0.2.0
truststore==0.10.5
typing-inspection==0.4.5
typing_extensions==4.16.0'

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EXPECTED_FILE="${SCIM2_TESTER_EXPECTED_FILE:-}"
VENV="${SCIM2_TESTER_VENV:-$REPO/.venv-conformance}"
ARTIFACTS="$REPO/target/scim2-tester"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1

say() { printf '[scim2-tester] %s\n' "$*"; }
die() {
    printf '[scim2-tester] ERROR: %s\n' "$*"
    printf 'scim2-tester: 0 passed, 0 failed (0 expected)\n'
    exit 1
}

WORKDIR="$(mktemp -d "${TMPDIR:-/tmp}/custodian-scim2-tester.XXXXXX")"
if [[ -z "$EXPECTED_FILE" ]]; then
    # No known failures: an empty list, so every failing check is unexpected.
    EXPECTED_FILE="$WORKDIR/no-expected-failures.txt"
    : >"$EXPECTED_FILE"
fi
[[ -f "$EXPECTED_FILE" ]] || die "expected-failures file not found: $EXPECTED_FILE"
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
    for f in server.log scim2-test.log results.json; do
        [[ -f "$WORKDIR/$f" ]] && cp "$WORKDIR/$f" "$ARTIFACTS/$f" 2>/dev/null || true
    done
    if [[ "${SCIM2_TESTER_KEEP_WORKDIR:-0}" == 1 ]]; then
        echo "[scim2-tester] kept $WORKDIR" >&2
    else
        rm -rf "$WORKDIR"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
rm -f "$ARTIFACTS/server.log" "$ARTIFACTS/scim2-test.log" "$ARTIFACTS/results.json" 2>/dev/null || true

# ---------------------------------------------------------------------------
# 1. The checker, in a cached virtualenv.
# ---------------------------------------------------------------------------
printf '%s\n' "$CONSTRAINTS" >"$WORKDIR/constraints.txt"
PINS="scim2-tester==$SCIM2_TESTER_VERSION scim2-cli==$SCIM2_CLI_VERSION"
STAMP_WANTED="$(printf '%s\n%s\n' "$PINS" "$CONSTRAINTS" | sha256sum | cut -d' ' -f1)"
STAMP_FILE="$VENV/.custodian-conformance-stamp"

venv_ok() {
    [[ -x "$VENV/bin/python" && -x "$VENV/bin/scim2" && -f "$STAMP_FILE" ]] &&
        [[ "$(cat "$STAMP_FILE")" == "$STAMP_WANTED" ]] &&
        "$VENV/bin/python" -c 'import scim2_cli, scim2_tester' >/dev/null 2>&1
}

if venv_ok; then
    say "reusing $VENV ($PINS)"
else
    say "creating $VENV with $PINS"
    case "$VENV" in
        */.venv-conformance | "${SCIM2_TESTER_VENV:-/nonexistent}") rm -rf "$VENV" ;;
        *) die "refusing to remove unexpected venv path $VENV" ;;
    esac
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        say "python3 has no venv/ensurepip; installing python3-venv"
        apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv
    fi
    python3 -m venv "$VENV"
    # shellcheck disable=SC2086
    "$VENV/bin/pip" install -q -c "$WORKDIR/constraints.txt" $PINS
    printf '%s\n' "$STAMP_WANTED" >"$STAMP_FILE"
fi
"$VENV/bin/python" - "$SCIM2_TESTER_VERSION" "$SCIM2_CLI_VERSION" <<'PY'
import sys
from importlib.metadata import version
want = {"scim2-tester": sys.argv[1], "scim2-cli": sys.argv[2]}
got = {name: version(name) for name in want}
if got != want:
    sys.exit(f"[scim2-tester] ERROR: venv has {got}, wanted {want}")
PY

# ---------------------------------------------------------------------------
# 2. The server under test: built, started in the temp dir, token minted.
# ---------------------------------------------------------------------------
cd "$WORKDIR"

http_status() { # prints the HTTP status of a GET, or 000 when nothing answers
    python3 - "$1" <<'PY'
import sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("000")
PY
}

if [[ -n "${SCIM2_TESTER_BASE_URL:-}" ]]; then
    BASE_URL="${SCIM2_TESTER_BASE_URL%/}"
    TOKEN="${SCIM2_TESTER_TOKEN:?SCIM2_TESTER_TOKEN must be set with SCIM2_TESTER_BASE_URL}"
    say "testing the already running server at $BASE_URL"
else
    say "building custodian (cargo build --locked)"
    (cd "$REPO" && cargo build --locked) || die "cargo build --locked failed"
    TARGET_DIR="$(cd "$REPO" && cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
    BIN="$TARGET_DIR/debug/custodian"
    [[ -x "$BIN" ]] || die "binary not found after build: $BIN"

    PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
    say "starting $BIN serve --bind 127.0.0.1:$PORT (cwd $WORKDIR)"
    "$BIN" serve --bind "127.0.0.1:$PORT" >"$WORKDIR/server.log" 2>&1 </dev/null &
    SERVER_PID=$!

    up=0
    deadline=$((SECONDS + ${SCIM2_TESTER_START_TIMEOUT:-30}))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            break
        fi
        if [[ "$(http_status "http://127.0.0.1:$PORT/healthz")" == 200 ]]; then
            up=1
            break
        fi
        sleep 0.5
    done
    if [[ "$up" != 1 ]]; then
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            say "server did not answer 200 on /healthz within ${SCIM2_TESTER_START_TIMEOUT:-30} s; its log:"
        else
            wait "$SERVER_PID" && rc=0 || rc=$?
            SERVER_PID=""
            say "server exited (status $rc) before /healthz answered; its log:"
        fi
        sed 's/^/    server| /' "$WORKDIR/server.log" | tail -n 200
        die "custodian did not come up"
    fi
    say "server is up"

    if ! TOKEN_OUT="$("$BIN" token create --tenant conformance --create-tenant --scope scim --name scim2-tester </dev/null)"; then
        die "custodian token create failed"
    fi
    TOKEN="$(printf '%s\n' "$TOKEN_OUT" | awk 'NF { last = $0 } END { print last }' | tr -d '[:space:]')"
    BASE_URL="http://127.0.0.1:$PORT/scim/v2"
fi
[[ -n "$TOKEN" ]] || die "empty token (custodian token create printed nothing on stdout)"
# scim2-cli splits SCIM_CLI_HEADERS on ';'
[[ "$TOKEN" != *";"* ]] || die "token contains ';', which SCIM_CLI_HEADERS cannot carry"

# ---------------------------------------------------------------------------
# 3. Run `scim2 --url $BASE_URL test -v` and compare with the expected failures.
# ---------------------------------------------------------------------------
# The driver runs scim2-cli's own `scim2` entry point in-process, unchanged
# (same checks, same output, same exit status), and additionally records the
# structured CheckResult objects. The text output cannot be parsed reliably:
# it does not name the resource type of a check (User and Group checks print
# the same titles), one PATCH check prints one line per attribute under one
# title, and reasons may span several lines.
cat >"$WORKDIR/driver.py" <<'PY'
"""Run `scim2 test` in-process, record its results, compare with the expected failures."""

import argparse
import json
import re
import sys
import traceback
from collections import Counter

STATUS_OK = "SUCCESS"


# ---------------------------------------------------------------- run -----
def _install_detail_hooks():
    """Tag results whose title alone does not tell which object was checked.

    Best effort: when an internal of scim2-tester moves, the identifiers fall
    back to an ordinal suffix (#1, #2...) instead of failing.
    """
    try:
        from scim2_tester.checkers import resource_types as rt_mod

        orig_rt = rt_mod.query_resource_type_by_id

        def query_resource_type_by_id(context, resource_type, *args, **kwargs):
            results = orig_rt(context, resource_type, *args, **kwargs)
            for r in results:
                r._custodian_detail = resource_type.id or resource_type.name
            return results

        rt_mod.query_resource_type_by_id = query_resource_type_by_id
    except Exception as exc:  # pragma: no cover
        print(f"[scim2-tester] note: resource type hook not installed: {exc}", file=sys.stderr)

    try:
        from scim2_tester.checkers import resource_query_attributes as qa_mod

        orig_single = qa_mod._run_single_attribute_check

        def _run_single_attribute_check(*args, **kwargs):
            included = kwargs.get("included", args[4] if len(args) > 4 else None)
            result = orig_single(*args, **kwargs)
            result._custodian_detail = "attributes" if included is not None else "excludedAttributes"
            return result

        qa_mod._run_single_attribute_check = _run_single_attribute_check
    except Exception as exc:  # pragma: no cover
        print(f"[scim2-tester] note: attributes hook not installed: {exc}", file=sys.stderr)


def _detail(r):
    d = getattr(r, "_custodian_detail", None)
    if d:
        return str(d)
    if isinstance(r.data, dict) and isinstance(r.data.get("urn"), str):
        return r.data["urn"]  # PATCH add/remove/replace: one result per attribute path
    title = r.title or ""
    reason = r.reason or ""
    if title.endswith("_endpoint_methods"):
        m = re.match(r"(POST|PUT|PATCH|DELETE)\b", reason)
        if m:
            return m.group(1)
    if title == "access_schema_by_id":
        m = re.match(r"Successfully accessed schema: (\S+)", reason) or re.match(
            r"Failed to access schema (\S+): ", reason
        )
        if m:
            return m.group(1)
    if title == "resource_types_schema_validation":
        m = re.match(r"ResourceType '([^']*)'", reason)
        if m:
            return m.group(1)
    return None


def identifiers(results):
    ids = []
    for r in results:
        ident = r.title or "untitled"
        if r.resource_type:
            ident = f"{r.resource_type}/{ident}"
        d = _detail(r)
        if d:
            ident = f"{ident}[{d}]"
        ids.append(re.sub(r"\s+", "_", ident))
    totals = Counter(ids)
    seen = Counter()
    out = []
    for ident in ids:
        if totals[ident] > 1:
            seen[ident] += 1
            ident = f"{ident}#{seen[ident]}"
        out.append(ident)
    return out


def cmd_run(args):
    import scim2_cli

    cli_test = sys.modules["scim2_cli.test"]
    captured = {}
    orig_check_server = cli_test.check_server

    def check_server(client, *a, **kw):
        results = orig_check_server(client, *a, **kw)
        captured["results"] = results
        return results

    cli_test.check_server = check_server
    _install_detail_hooks()

    exit_code = 0
    try:
        scim2_cli.cli.main(
            args=["--url", args.url, "test", "-v"], prog_name="scim2", standalone_mode=True
        )
    except SystemExit as exc:
        code = exc.code
        exit_code = code if isinstance(code, int) else (0 if code is None else 1)
    except BaseException:
        traceback.print_exc()
        exit_code = 99
    sys.stdout.flush()

    results = captured.get("results")
    record = {"cli_exit_code": exit_code, "ran": results is not None, "results": []}
    if results is not None:
        for ident, r in zip(identifiers(results), results):
            record["results"].append(
                {
                    "id": ident,
                    "status": r.status.name,
                    "title": r.title,
                    "resource_type": r.resource_type,
                    "reason": None if r.reason is None else str(r.reason),
                }
            )
    with open(args.results, "w", encoding="utf-8") as fh:
        json.dump(record, fh, indent=1)
    return exit_code


# ------------------------------------------------------------ compare -----
def parse_expected(path):
    expected, errors = {}, []
    with open(path, encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            m = re.match(r"^(\S+)(?:\t+| -- )\s*(.*)$", line)
            if not m or not m.group(2).strip():
                errors.append(f"{path}:{lineno}: expected '<check id><TAB or ' -- '><reason>', got: {line}")
                continue
            ident, reason = m.group(1), m.group(2).strip()
            if ident in expected:
                errors.append(f"{path}:{lineno}: {ident} is listed twice (first on line {expected[ident][1]})")
                continue
            expected[ident] = (reason, lineno)
    return expected, errors


def one_line(text, limit=240):
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def cmd_compare(args):
    with open(args.results, encoding="utf-8") as fh:
        record = json.load(fh)
    expected, errors = parse_expected(args.expected)
    results = record["results"]
    bad = list(errors)
    rel = args.expected_display or args.expected

    def summary(passed, failed, exp):
        print(f"scim2-tester: {passed} passed, {failed} failed ({exp} expected)")

    if not record["ran"]:
        print()
        print(f"[scim2-tester] ERROR: `scim2 test` exited {record['cli_exit_code']} without running "
              "the checks (see its output above: typically the server's discovery endpoints "
              "/ServiceProviderConfig, /ResourceTypes or /Schemas failed, or auth was refused)")
        summary(0, 0, 0)
        return 1

    by_id = {r["id"]: r for r in results}
    failing = [r for r in results if r["status"] != STATUS_OK]
    passed = len(results) - len(failing)
    failing_ids = {r["id"] for r in failing}

    unexpected = [r for r in failing if r["id"] not in expected]
    still_expected = [r for r in failing if r["id"] in expected]
    now_passing = [i for i in expected if i in by_id and i not in failing_ids]
    not_run = [i for i in expected if i not in by_id]

    print()
    print(f"[scim2-tester] {len(results)} checks: {passed} passed, {len(failing)} failed "
          f"({len(still_expected)} of them listed in {rel})")
    counts = Counter(r["status"] for r in results)
    print("[scim2-tester] by status: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))

    if still_expected:
        print(f"\n[scim2-tester] expected failures, still failing ({len(still_expected)}):")
        for r in still_expected:
            print(f"  {r['id']}  -- {expected[r['id']][0]}")

    if unexpected:
        print(f"\n[scim2-tester] UNEXPECTED FAILURES ({len(unexpected)}):")
        for r in unexpected:
            print(f"  {r['status']:<8} {r['id']}\n           {one_line(r['reason'])}")
        print(f"\n[scim2-tester] fix the server, or (only for a known, tracked gap) add these lines to {rel}:")
        for r in unexpected:
            print(f"{r['id']}\t{r['status']}: {one_line(r['reason'], 160)}")
        bad.append(f"{len(unexpected)} unexpected failure(s)")

    if now_passing:
        print(f"\n[scim2-tester] LISTED AS EXPECTED FAILURES BUT NOW PASSING ({len(now_passing)}):")
        for i in now_passing:
            print(f"  {i}  (line {expected[i][1]}) now passes: remove it from the file")
        bad.append(f"{len(now_passing)} listed check(s) now pass: remove it from the file")

    if not_run:
        print(f"\n[scim2-tester] LISTED BUT NOT PERFORMED BY THIS RUN ({len(not_run)}):")
        for i in not_run:
            print(f"  {i}  (line {expected[i][1]}) was not run (renamed, or no longer applies): "
                  "remove it from the file")
        bad.append(f"{len(not_run)} listed check(s) not run: remove it from the file")

    if not any(r["resource_type"] for r in results):
        bad.append("no per-resource-type check ran (discovery announced no usable resource type)")

    all_ok = not failing
    if record["cli_exit_code"] != (0 if all_ok else 1):
        bad.append(f"`scim2 test` exited {record['cli_exit_code']}, inconsistent with its results")

    print()
    for msg in errors:
        print(f"[scim2-tester] ERROR: {msg}")
    for msg in bad[len(errors):]:
        print(f"[scim2-tester] FAILED: {msg}")
    if not bad:
        print("[scim2-tester] OK: the failing checks are exactly the expected ones")
    summary(passed, len(failing), len(still_expected))
    return 1 if bad else 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--url", required=True)
    r.add_argument("--results", required=True)
    c = sub.add_parser("compare")
    c.add_argument("--results", required=True)
    c.add_argument("--expected", required=True)
    c.add_argument("--expected-display")
    args = p.parse_args()
    sys.exit(cmd_run(args) if args.cmd == "run" else cmd_compare(args))


if __name__ == "__main__":
    main()
PY

say "running: scim2 --url $BASE_URL test -v   (scim2-tester $SCIM2_TESTER_VERSION, scim2-cli $SCIM2_CLI_VERSION)"
say "(lines longer than 1000 characters are cut here; the full output is in target/scim2-tester/scim2-test.log)"
set +e
SCIM_CLI_HEADERS="Authorization: Bearer $TOKEN" \
    "$VENV/bin/python" "$WORKDIR/driver.py" run --url "$BASE_URL" --results "$WORKDIR/results.json" 2>&1 |
    tee "$WORKDIR/scim2-test.log" | cut -c1-1000
CLI_RC=${PIPESTATUS[0]}
set -e
say "scim2 test exited $CLI_RC (0 only when every check is SUCCESS)"
[[ -f "$WORKDIR/results.json" ]] || die "the driver recorded no results"

EXPECTED_DISPLAY="$EXPECTED_FILE"
case "$EXPECTED_FILE" in "$REPO"/*) EXPECTED_DISPLAY="${EXPECTED_FILE#"$REPO"/}" ;; esac
set +e
"$VENV/bin/python" "$WORKDIR/driver.py" compare --results "$WORKDIR/results.json" \
    --expected "$EXPECTED_FILE" --expected-display "$EXPECTED_DISPLAY" >"$WORKDIR/compare.out" 2>&1
RC=$?
set -e
if [[ "$RC" != 0 && -n "$SERVER_PID" ]]; then
    say "last lines of the server log (full log: target/scim2-tester/server.log):"
    tail -n 40 "$WORKDIR/server.log" | sed 's/^/    server| /'
fi
cat "$WORKDIR/compare.out" # ends with the summary line
exit "$RC"
