//! The console's HTML: one layout, one function per page part. maud escapes
//! every value; nothing here is `PreEscaped` but the doctype.

use super::Console;
use crate::deprovision::disposal::Plan;
use crate::domain::UserState;
use maud::{DOCTYPE, Markup, html};

/// The type-ahead script (`static/typeahead.js`).
pub const TYPEAHEAD_JS: &str = include_str!("static/typeahead.js");

/// A webhook URL as the console shows it: a password, user name or query
/// string in it (a receiver's credential, often) is replaced by `redacted`,
/// so an auditor's screen or a screenshot does not carry it.
pub fn shown_url(raw: &str) -> String {
    let Ok(mut u) = url::Url::parse(raw) else {
        return raw.to_string();
    };
    let had_user = !u.username().is_empty() || u.password().is_some();
    let _ = u.set_password(None);
    let _ = u.set_username(if had_user { "redacted" } else { "" });
    if u.query().is_some() {
        u.set_query(Some("redacted"));
    }
    u.set_fragment(None);
    u.to_string()
}

/// Every http(s) URL string in `v` through [`shown_url`].
pub fn redact_urls(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::String(s) if s.starts_with("http://") || s.starts_with("https://") => {
            *s = shown_url(s);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(redact_urls),
        serde_json::Value::Object(o) => o.values_mut().for_each(redact_urls),
        _ => {}
    }
}

/// The navigation: (text, path).
const NAV: &[(&str, &str)] = &[
    ("Overview", "/console"),
    ("People", "/console/people"),
    ("Disposals", "/console/disposals"),
    ("Orphans", "/console/orphans"),
    ("Tombstones", "/console/tombstones"),
    ("Webhooks", "/console/webhooks"),
    ("Audit", "/console/audit"),
    ("Policy", "/console/policy"),
];

/// A whole page: `<title>` "<page> — Custodian console", the navigation
/// (signed in), one `<main>` with the page's `<h1>`, the flash message.
pub fn page(
    title: &str,
    h1: &str,
    signed_in: Option<&Console>,
    flash: Option<&str>,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — Custodian console" }
                link rel="stylesheet" href="/console/static/console.css";
                script src="/console/static/typeahead.js" defer {}
            }
            body {
                header {
                    p.brand { "Custodian console" }
                    @if let Some(c) = signed_in {
                        nav aria-label="Console" {
                            ul {
                                @for (text, href) in NAV {
                                    li { a href=(href) { (text) } }
                                }
                            }
                        }
                        div.who {
                            span { "Tenant " strong { (c.caller.tenant_name) } }
                            @if !c.admin { " " span.badge { "read-only (auditor)" } }
                            form method="post" action="/console/signout" {
                                (csrf(c))
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main {
                    h1 { (h1) }
                    @if let Some(f) = flash {
                        p role="status" { (f) }
                    }
                    (body)
                }
            }
        }
    }
}

/// The hidden CSRF field of every form.
pub fn csrf(c: &Console) -> Markup {
    html! { input type="hidden" name="csrf" value=(c.csrf); }
}

/// An error page: the message in `role="alert"`.
pub fn error(title: &str, detail: &str, signed_in: Option<&Console>) -> Markup {
    page(
        title,
        title,
        signed_in,
        None,
        html! { p role="alert" { (detail) } },
    )
}

/// The text of a flash code a POST left (codes only: no PII in cookies).
pub fn flash_text(code: &str) -> Option<String> {
    let (name, n) = match code.split_once('-') {
        Some((name, n)) => (name, n.parse::<u64>().ok()),
        None => (code, None),
    };
    let n = n.unwrap_or(0);
    Some(match name {
        "hold_placed" => "Legal hold placed.".into(),
        "hold_lifted" => "Legal hold lifted.".into(),
        "disposed" => "Disposed: the person is now a Deleted User stub.".into(),
        "held_brake" => "The disposal is held: the tenant's brake is tripped.".into(),
        "held_legal" => "The disposal is held: the person is under legal hold.".into(),
        "released" => format!("Released {n} held disposal(s)."),
        "releasefail" => {
            format!("Released some; {n} could not be released (see the audit log and each person).")
        }
        "none" => "Nothing was selected.".into(),
        "brake_reset" => "The brake was reset: disposals run again.".into(),
        "reassigned" => format!("Reassigned {n} item(s)."),
        "lifted" => format!("Lifted {n} tombstone(s)."),
        "resumed" => format!("Resumed {n} webhook endpoint(s)."),
        _ => return None,
    })
}

/// What to call a person: their userName, or "Deleted User" once disposed.
pub fn person_name(user_name: &str, state: UserState) -> String {
    match state {
        UserState::Disposed | UserState::Stub => "Deleted User".into(),
        _ => user_name.to_string(),
    }
}

/// A link to a person's page, named as `person_name`.
pub fn person_link(id: &str, user_name: &str, state: UserState) -> Markup {
    html! { a href={ "/console/people/" (id) } { (person_name(user_name, state)) } }
}

/// A plan: target, and per kind and per user-data category what happens and
/// how many; its hash in `data-testid="plan-hash"`.
pub fn plan(p: &Plan, target_name: Option<&str>) -> Markup {
    html! {
        p { "Plan hash: " code data-testid="plan-hash" { (p.hash) } }
        p {
            "Transfers go to: "
            @match (&p.target, target_name) {
                (Some(t), Some(name)) => { a href={ "/console/people/" (t.user_id) } { (name) } " (" (t.link) ")" }
                (Some(t), None) => { (t.user_id) " (" (t.link) ")" }
                (None, _) => { "nobody (no link of the target chain matches: transferred items are orphaned)" }
            }
        }
        table data-testid="plan" {
            caption { "What a disposal would do" }
            thead { tr { th scope="col" { "What" } th scope="col" { "Action" } th scope="col" { "Count" } } }
            tbody {
                @for (kind, actions) in &p.summary {
                    @for (action, n) in actions {
                        tr { th scope="row" { (kind) } td { (action.as_str()) } td { (n) } }
                    }
                }
                @for (category, (action, n)) in &p.user_data {
                    tr { th scope="row" { "user data: " (category) } td { (action.as_str()) } td { (n) } }
                }
                @if p.summary.is_empty() && p.user_data.is_empty() {
                    tr { td colspan="3" { "Nothing owned: only the person is disposed and tombstoned." } }
                }
            }
        }
        p.small { "Policy digest: " code { (p.policy_digest) } }
    }
}

/// A one-line summary of a plan (the disposals page).
pub fn plan_summary(p: &Plan) -> String {
    let mut parts: Vec<String> = vec![];
    for (kind, actions) in &p.summary {
        for (action, n) in actions {
            parts.push(format!("{n} {kind} {}", action.as_str()));
        }
    }
    for (category, (action, n)) in &p.user_data {
        parts.push(format!("{n} {category} {}", action.as_str()));
    }
    if parts.is_empty() {
        "nothing owned".into()
    } else {
        parts.join(", ")
    }
}

pub const STYLESHEET: &str = r#"
:root { --fg: #1b1f24; --muted: #555; --accent: #0b5cad; --bg: #fff; --line: #d0d7de; --warn: #8a2b00; }
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; flex-wrap: wrap; align-items: center; gap: 1rem; padding: .5rem 1rem; border-bottom: 1px solid var(--line); background: #f6f8fa; }
.brand { font-weight: 700; margin: 0; }
nav ul { display: flex; flex-wrap: wrap; gap: .75rem; list-style: none; margin: 0; padding: 0; }
nav a { color: var(--accent); }
.who { margin-left: auto; display: flex; gap: .75rem; align-items: center; }
.who form { margin: 0; }
.badge { background: #fff3cd; border: 1px solid #e0c36a; padding: 0 .4rem; border-radius: 3px; font-size: .85rem; }
main { padding: 1rem; max-width: 72rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; width: 100%; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
th, td { border: 1px solid var(--line); padding: .3rem .5rem; text-align: left; vertical-align: top; }
thead th { background: #f6f8fa; }
form.inline { display: inline; }
label { display: block; font-weight: 600; margin-top: .5rem; }
input, select, textarea, button { font: inherit; }
input, select, textarea { padding: .3rem; border: 1px solid #8c959f; border-radius: 3px; }
button { padding: .3rem .8rem; border: 1px solid var(--accent); background: var(--accent); color: #fff; border-radius: 3px; cursor: pointer; }
button.danger { background: var(--warn); border-color: var(--warn); }
a:focus, button:focus, input:focus, select:focus, textarea:focus, summary:focus { outline: 3px solid #f5a623; outline-offset: 2px; }
[role=status] { background: #e6f4ea; border: 1px solid #9ccc9c; padding: .5rem; }
[role=alert] { background: #fdecea; border: 1px solid #e0a0a0; padding: .5rem; }
code { font-family: ui-monospace, monospace; font-size: .9rem; word-break: break-all; }
pre { background: #f6f8fa; padding: .5rem; overflow: auto; }
.small { font-size: .85rem; color: var(--muted); }
.more { font-weight: 600; }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_urls_hide_credentials_and_queries() {
        assert_eq!(
            shown_url("https://user:secret@hooks.example:8443/in?token=abc#x"),
            "https://redacted@hooks.example:8443/in?redacted"
        );
        assert_eq!(
            shown_url("https://hooks.example/in"),
            "https://hooks.example/in"
        );
        assert_eq!(shown_url("not a url"), "not a url");
        let mut v =
            serde_json::json!({"webhooks": [{"url": "http://a:b@h/p?k=v", "secret_env": "HOOK"}]});
        redact_urls(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"webhooks": [{"url": "http://redacted@h/p?redacted", "secret_env": "HOOK"}]})
        );
    }
}
