#!/usr/bin/env node
// Custodian's SSO gate in a login callback: Node 18+, built-in fetch only.
//
// Call checkLogin in your SSO callback after the IdP has authenticated the
// person and *before* you create a session or a just-in-time account:
//
//   const d = await checkLogin(GATE_URL, GATE_TOKEN, { email: ["jdoe@example.edu"],
//     ssoIssuer: "https://idp.example.edu", ssoSubject: "2482…" });
//   d.action === "login"          → log in as your account for d.userId
//   d.action === "create_account" → create the account (JIT), then log in
//   otherwise                     → refuse the login (d.reason says why)
//
// Fail-closed by default: a timeout, a refused connection, or any answer that
// is not a decision refuses the login. failOpen: true turns that into
// "login_unchecked" (your own account lookup decides) — only if a Custodian
// outage must never stop logins and you accept that a leaver may sign in.
//
// As a script (the token comes from $CUSTODIAN_GATE_TOKEN, never argv):
//   node gate_client.mjs --url https://scim.example.edu --email jdoe@example.edu \
//     --issuer https://idp.example.edu --subject 248289761001
// prints one JSON line: {"action": …, "reason": …, "userId": …}.

import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";

// A login waits for this at most (the whole exchange, body included).
export const DEFAULT_TIMEOUT_MS = 2000;

export async function checkLogin(baseUrl, token, {
  userName, email = [], externalId, ssoIssuer, ssoSubject,
  allowJitAccounts = true, failOpen = false, timeoutMs = DEFAULT_TIMEOUT_MS,
} = {}) {
  const body = { email };
  if (userName) body.userName = userName;
  if (externalId) body.externalId = externalId;
  if (ssoIssuer && ssoSubject) {
    body.sso = { issuer: ssoIssuer, subject: ssoSubject };
    // Links this SSO subject to the person on an allowed login, so it is
    // denied too once they are disposed.
    body.register = true;
  }
  let answer;
  try {
    const res = await fetch(baseUrl.replace(/\/+$/, "") + "/gate/v1/check", {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    // 401, 403, 429, 5xx: no decision was made.
    if (res.status !== 200) return unavailable(failOpen);
    answer = await res.json();
  } catch {
    return unavailable(failOpen); // refused, reset, timed out, not JSON
  }
  const { decision, reason, userId = null } = answer ?? {};
  if (decision === "allow" && userId) return { action: "login", reason, userId };
  if (decision === "allow_jit") {
    // Custodian does not know this person and its policy allows JIT: create
    // them only if this platform provisions just in time at all.
    return allowJitAccounts
      ? { action: "create_account", reason, userId: null }
      : { action: "refuse", reason: "jit_disabled", userId: null };
  }
  if (decision === "deny") return { action: "refuse", reason, userId: null };
  return unavailable(failOpen); // a decision this client does not know
}

function unavailable(failOpen) {
  return { action: failOpen ? "login_unchecked" : "refuse", reason: "gate_unavailable", userId: null };
}

async function main() {
  const { values: a } = parseArgs({
    options: {
      url: { type: "string" },
      "user-name": { type: "string" },
      email: { type: "string", multiple: true, default: [] },
      "external-id": { type: "string" },
      issuer: { type: "string" },
      subject: { type: "string" },
      "no-jit": { type: "boolean", default: false },
      "fail-open": { type: "boolean", default: false },
      timeout: { type: "string", default: String(DEFAULT_TIMEOUT_MS / 1000) },
    },
  });
  if (!a.url) {
    console.error("usage: gate_client.mjs --url URL [--email E]… [--issuer I --subject S]");
    process.exit(2);
  }
  const d = await checkLogin(a.url, process.env.CUSTODIAN_GATE_TOKEN ?? "", {
    userName: a["user-name"], email: a.email, externalId: a["external-id"],
    ssoIssuer: a.issuer, ssoSubject: a.subject, allowJitAccounts: !a["no-jit"],
    failOpen: a["fail-open"], timeoutMs: Math.round(Number(a.timeout) * 1000),
  });
  console.log(JSON.stringify(d));
  process.exit(d.action === "login" || d.action === "create_account" ? 0 : 1);
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) await main();
