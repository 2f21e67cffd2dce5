#!/usr/bin/env python3
"""Custodian's SSO gate in a login callback: Python, standard library only.

Call `check_login` in your SSO callback after the IdP has authenticated the
person and *before* you create a session or a just-in-time account:

    decision = check_login(GATE_URL, GATE_TOKEN, email=["jdoe@example.edu"],
                           sso_issuer="https://idp.example.edu", sso_subject="2482…")
    if decision.action == "login":          log in as your account for decision.user_id
    elif decision.action == "create_account": create the account (JIT), then log in
    else:                                    refuse the login (decision.reason says why)

Fail-closed by default: a timeout, a refused connection, or any answer that is
not a decision refuses the login. `fail_open=True` turns that into
"login_unchecked" (your own account lookup decides) — only if a Custodian outage
must never stop logins and you accept that a leaver may sign in meanwhile.

Run as a script (the token comes from $CUSTODIAN_GATE_TOKEN, never argv):
    python3 gate_client.py --url https://scim.example.edu --email jdoe@example.edu \
        --issuer https://idp.example.edu --subject 248289761001
prints one JSON line: {"action": …, "userId": …, "reason": …}.
"""

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Optional, Sequence

# A login waits for this at most: the gate answers in milliseconds, so a slow
# answer means trouble, and the person is waiting.
DEFAULT_TIMEOUT_SECONDS = 2.0


@dataclass
class Decision:
    action: str  # "login" | "create_account" | "refuse" | "login_unchecked"
    reason: str  # the gate's reason, "jit_disabled" or "gate_unavailable"
    user_id: Optional[str] = None

    def as_json(self) -> str:
        return json.dumps({"action": self.action, "reason": self.reason, "userId": self.user_id})


def check_login(
    base_url: str,
    token: str,
    *,
    user_name: Optional[str] = None,
    email: Sequence[str] = (),
    external_id: Optional[str] = None,
    sso_issuer: Optional[str] = None,
    sso_subject: Optional[str] = None,
    allow_jit_accounts: bool = True,
    fail_open: bool = False,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> Decision:
    """Asks the gate whether this person may sign in; see the module docstring."""
    body = {"email": list(email)}
    if user_name:
        body["userName"] = user_name
    if external_id:
        body["externalId"] = external_id
    if sso_issuer and sso_subject:
        body["sso"] = {"issuer": sso_issuer, "subject": sso_subject}
        # Links this SSO subject to the person on an allowed login, so it is
        # denied too once they are disposed.
        body["register"] = True
    request = urllib.request.Request(
        base_url.rstrip("/") + "/gate/v1/check",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.load(response)
        decision = answer["decision"]
        reason = answer["reason"]
    except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError):
        # HTTPError (401, 403, 429, 5xx) is a URLError: no decision was made.
        return _unavailable(fail_open)
    if decision == "allow" and answer.get("userId"):
        return Decision("login", reason, answer["userId"])
    if decision == "allow_jit":
        # Custodian does not know this person and its policy allows JIT:
        # create them only if this platform provisions just in time at all.
        if allow_jit_accounts:
            return Decision("create_account", reason)
        return Decision("refuse", "jit_disabled")
    if decision == "deny":
        return Decision("refuse", reason)
    return _unavailable(fail_open)  # a decision this client does not know


def _unavailable(fail_open: bool) -> Decision:
    return Decision("login_unchecked" if fail_open else "refuse", "gate_unavailable")


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(description="Ask Custodian's gate whether a login may proceed.")
    p.add_argument("--url", required=True, help="Custodian's base URL")
    p.add_argument("--user-name")
    p.add_argument("--email", action="append", default=[])
    p.add_argument("--external-id")
    p.add_argument("--issuer")
    p.add_argument("--subject")
    p.add_argument("--no-jit", action="store_true", help="refuse people the gate allows JIT")
    p.add_argument("--fail-open", action="store_true", help="gate unavailable: login_unchecked")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS)
    a = p.parse_args(argv)
    token = os.environ.get("CUSTODIAN_GATE_TOKEN", "")
    d = check_login(
        a.url,
        token,
        user_name=a.user_name,
        email=a.email,
        external_id=a.external_id,
        sso_issuer=a.issuer,
        sso_subject=a.subject,
        allow_jit_accounts=not a.no_jit,
        fail_open=a.fail_open,
        timeout=a.timeout,
    )
    print(d.as_json())
    return 0 if d.action in ("login", "create_account") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
