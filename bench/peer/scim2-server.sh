#!/usr/bin/env bash
# Peer server for the benchmark comparison: the Python reference SCIM server
# `scim2-server` from PyPI, pinned, in a private virtualenv, on loopback only.
#
#   scim2-server.sh install                 create/update the venv (idempotent, quiet)
#   scim2-server.sh start PORT [--cursor] [-- EXTRA_ARGS...]
#                                           start on 127.0.0.1:PORT in the background,
#                                           wait until it answers, print its PID
#   scim2-server.sh stop PID                stop a server started by `start`
#
# SCIM base URL: http://127.0.0.1:PORT/v2  (e.g. /v2/Users; /Users works too).
# No auth unless EXTRA_ARGS has `--bearer-token TOKEN`. In-memory storage only:
# every start begins empty. --cursor announces RFC 9865 cursor pagination
# (index paging stays the default). See NOTES.md beside this file.
#
# Environment:
#   SCIM2_PEER_VENV    venv path (default: <repo>/.venv-bench-peer)
#   SCIM2_PEER_PYTHON  interpreter used to create the venv (default: python3)
set -euo pipefail

PINNED_VERSION="0.8.3"
# The cursor extra only adds `cryptography`; always install it so --cursor works.
PINNED_REQ="scim2-server[cursor]==${PINNED_VERSION}"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "${SCRIPT_DIR}/../.." && pwd)"
VENV="${SCIM2_PEER_VENV:-${REPO_ROOT}/.venv-bench-peer}"
PYTHON="${SCIM2_PEER_PYTHON:-python3}"
RUN_DIR="${TMPDIR:-/tmp}"

die() { echo "scim2-server.sh: $*" >&2; exit 1; }

usage() {
    sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

installed_ok() {
    [[ -x "${VENV}/bin/python" && -x "${VENV}/bin/scim2-server" ]] || return 1
    "${VENV}/bin/python" - "${PINNED_VERSION}" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
assert version("scim2-server") == sys.argv[1]
import cryptography  # noqa: F401  (cursor extra)
import scim2_server.testserver.cli  # noqa: F401
EOF
}

cmd_install() {
    if installed_ok; then
        return 0
    fi
    if [[ ! -x "${VENV}/bin/python" ]]; then
        "${PYTHON}" -m venv "${VENV}" \
            || die "cannot create venv at ${VENV} (on Debian: apt-get install python3-venv)"
    fi
    "${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check \
        --no-input "${PINNED_REQ}" \
        || die "pip install ${PINNED_REQ} failed"
    installed_ok || die "install finished but scim2-server ${PINNED_VERSION} is not importable"
}

# Exit 0 when something answers HTTP at the SCIM discovery endpoint.
probe() {
    local port="$1"
    "${VENV}/bin/python" - "${port}" <<'EOF' >/dev/null 2>&1
import sys, urllib.request, urllib.error
url = f"http://127.0.0.1:{sys.argv[1]}/v2/ServiceProviderConfig"
try:
    urllib.request.urlopen(url, timeout=1).read()
except urllib.error.HTTPError:
    pass  # 401 with --bearer-token still means it is up
EOF
}

cmd_start() {
    [[ $# -ge 1 ]] || usage
    local port="$1"; shift
    [[ "${port}" =~ ^[0-9]+$ ]] && (( port > 0 && port < 65536 )) || die "bad port: ${port}"
    local cursor=0
    local extra=()
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --cursor) cursor=1; shift ;;
            --) shift; extra+=("$@"); break ;;
            *) extra+=("$1"); shift ;;
        esac
    done

    installed_ok || die "not installed: run '$0 install' first"
    if probe "${port}"; then
        die "something already answers on 127.0.0.1:${port}"
    fi

    local log="${RUN_DIR}/scim2-server-peer-${port}.log"
    local args=(--hostname 127.0.0.1 --port "${port}")
    if (( cursor )); then
        local spc="${RUN_DIR}/scim2-server-peer-${port}-spc.json"
        "${VENV}/bin/python" - "${spc}" <<'EOF'
import json, sys
from scim2_server.utils import load_default_service_provider_config
config = load_default_service_provider_config().model_dump()
config["pagination"] = {
    "cursor": True, "index": True, "defaultPaginationMethod": "index",
    "maxPageSize": 1000, "cursorTimeout": 3600,
}
with open(sys.argv[1], "w") as f:
    json.dump(config, f)
EOF
        args+=(--service-provider-config "${spc}")
    fi
    args+=("${extra[@]+"${extra[@]}"}")

    : >"${log}"
    # Detach fully: no stdin, stdout/stderr to the log, so $(...) callers return.
    nohup "${VENV}/bin/scim2-server" "${args[@]}" </dev/null >>"${log}" 2>&1 &
    local pid=$!

    local i
    for (( i = 0; i < 150; i++ )); do   # 150 x 0.2 s = 30 s max
        if ! kill -0 "${pid}" 2>/dev/null; then
            cat "${log}" >&2
            die "server exited during startup (log: ${log})"
        fi
        if probe "${port}"; then
            echo "${pid}"
            echo "scim2-server ${PINNED_VERSION} pid ${pid} on http://127.0.0.1:${port}/v2 (log: ${log})" >&2
            return 0
        fi
        sleep 0.2
    done
    kill "${pid}" 2>/dev/null || true
    die "server did not answer within 30 s (log: ${log})"
}

cmd_stop() {
    [[ $# -eq 1 && "$1" =~ ^[0-9]+$ ]] || usage
    local pid="$1"
    if ! kill -0 "${pid}" 2>/dev/null; then
        echo "scim2-server.sh: pid ${pid} not running" >&2
        return 0
    fi
    # Refuse to signal a process that is not a scim2-server.
    if [[ -r "/proc/${pid}/cmdline" ]] && ! tr '\0' ' ' <"/proc/${pid}/cmdline" | grep -q 'scim2-server'; then
        die "pid ${pid} is not a scim2-server process"
    fi
    # SIGINT first: the CLI handles KeyboardInterrupt (and writes --dump-resources).
    local sig i
    for sig in INT TERM KILL; do
        kill -s "${sig}" "${pid}" 2>/dev/null || return 0
        for (( i = 0; i < 25; i++ )); do   # 5 s per signal
            kill -0 "${pid}" 2>/dev/null || return 0
            sleep 0.2
        done
    done
    die "pid ${pid} did not stop"
}

[[ $# -ge 1 ]] || usage
sub="$1"; shift
case "${sub}" in
    install) cmd_install "$@" ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    -h|--help|help) usage ;;
    *) usage ;;
esac
