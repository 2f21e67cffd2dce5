//! Custodian's SSO gate in a login callback: Rust, with `ureq` (blocking; call
//! it from a blocking thread in an async server) and `serde_json`.
//!
//! Call [`check_login`] in your SSO callback after the IdP has authenticated
//! the person and *before* you create a session or a just-in-time account:
//! `Action::Login` → log in as your account for `user_id`; `CreateAccount` →
//! create it (JIT), then log in; `Refuse` → refuse the login (`reason` says why).
//!
//! Fail-closed by default: a timeout, a refused connection, or any answer that
//! is not a decision refuses the login. `fail_open` turns that into
//! `LoginUnchecked` (your own account lookup decides) — only if a Custodian
//! outage must never stop logins and you accept that a leaver may sign in.

use serde_json::{Value, json};
use std::time::Duration;

/// A login waits for this at most (connect to last byte): the gate answers
/// in milliseconds, so a slow answer means trouble, and the person is waiting.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Login,
    CreateAccount,
    Refuse,
    LoginUnchecked,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Login => "login",
            Action::CreateAccount => "create_account",
            Action::Refuse => "refuse",
            Action::LoginUnchecked => "login_unchecked",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub action: Action,
    /// The gate's reason, `jit_disabled` or `gate_unavailable`.
    pub reason: String,
    pub user_id: Option<String>,
}

/// Who is signing in: whatever the IdP asserted.
#[derive(Debug, Default, Clone)]
pub struct Login<'a> {
    pub user_name: Option<&'a str>,
    pub emails: Vec<&'a str>,
    pub external_id: Option<&'a str>,
    /// (issuer, subject) of the SSO assertion.
    pub sso: Option<(&'a str, &'a str)>,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Create an account when the gate answers `allow_jit`.
    pub allow_jit_accounts: bool,
    /// Gate unavailable: `LoginUnchecked` instead of `Refuse`.
    pub fail_open: bool,
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            allow_jit_accounts: true,
            fail_open: false,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

pub fn check_login(base_url: &str, token: &str, who: &Login<'_>, opts: &Options) -> Decision {
    let mut body = json!({ "email": who.emails });
    if let Some(u) = who.user_name {
        body["userName"] = json!(u);
    }
    if let Some(x) = who.external_id {
        body["externalId"] = json!(x);
    }
    if let Some((issuer, subject)) = who.sso {
        body["sso"] = json!({ "issuer": issuer, "subject": subject });
        // Links this SSO subject to the person on an allowed login, so it is
        // denied too once they are disposed.
        body["register"] = json!(true);
    }
    let agent = ureq::AgentBuilder::new().timeout(opts.timeout).build();
    let url = format!("{}/gate/v1/check", base_url.trim_end_matches('/'));
    // 401, 403, 429 and 5xx are errors too (`ureq::Error::Status`): no
    // decision was made, like a refused connection or a timeout.
    let text = agent
        .post(&url)
        .set("Authorization", &format!("Bearer {token}"))
        .set("Content-Type", "application/json")
        .send_string(&body.to_string())
        .map_err(|_| ())
        .and_then(|r| r.into_string().map_err(|_| ()));
    let Some(answer) = text
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
    else {
        return unavailable(opts);
    };
    let reason = answer["reason"].as_str().unwrap_or_default().to_string();
    match (answer["decision"].as_str(), answer["userId"].as_str()) {
        (Some("allow"), Some(id)) => Decision {
            action: Action::Login,
            reason,
            user_id: Some(id.to_string()),
        },
        // Custodian does not know this person and its policy allows JIT:
        // create them only if this platform provisions just in time at all.
        (Some("allow_jit"), _) if opts.allow_jit_accounts => Decision {
            action: Action::CreateAccount,
            reason,
            user_id: None,
        },
        (Some("allow_jit"), _) => Decision {
            action: Action::Refuse,
            reason: "jit_disabled".into(),
            user_id: None,
        },
        (Some("deny"), _) => Decision {
            action: Action::Refuse,
            reason,
            user_id: None,
        },
        _ => unavailable(opts),
    }
}

fn unavailable(opts: &Options) -> Decision {
    Decision {
        action: if opts.fail_open {
            Action::LoginUnchecked
        } else {
            Action::Refuse
        },
        reason: "gate_unavailable".into(),
        user_id: None,
    }
}
