//! Asks Custodian's gate whether a login may proceed (see `gate.rs`, the part
//! to copy into a platform). The token comes from $CUSTODIAN_GATE_TOKEN.
//!
//!     cargo run --example gate_client -- --url https://scim.example.edu \
//!         --email jdoe@example.edu --issuer https://idp.example.edu --subject 248289761001
//!
//! Prints one JSON line: {"action": …, "reason": …, "userId": …}; exits 0 for
//! login or create_account, 1 otherwise, 2 on bad arguments.

mod gate;

use gate::{Login, Options, check_login};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut url = None;
    let mut who = Login::default();
    let mut opts = Options::default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut it = args.iter().map(String::as_str);
    let (mut issuer, mut subject) = (None, None);
    while let Some(flag) = it.next() {
        match flag {
            "--no-jit" => opts.allow_jit_accounts = false,
            "--fail-open" => opts.fail_open = true,
            _ => {
                let Some(value) = it.next() else {
                    eprintln!("{flag} needs a value");
                    return ExitCode::from(2);
                };
                match flag {
                    "--url" => url = Some(value),
                    "--user-name" => who.user_name = Some(value),
                    "--email" => who.emails.push(value),
                    "--external-id" => who.external_id = Some(value),
                    "--issuer" => issuer = Some(value),
                    "--subject" => subject = Some(value),
                    "--timeout" => match value.parse::<f64>() {
                        Ok(s) if s > 0.0 => opts.timeout = std::time::Duration::from_secs_f64(s),
                        _ => {
                            eprintln!("--timeout takes seconds");
                            return ExitCode::from(2);
                        }
                    },
                    _ => {
                        eprintln!("unknown argument {flag}");
                        return ExitCode::from(2);
                    }
                }
            }
        }
    }
    let Some(url) = url else {
        eprintln!("usage: gate_client --url URL [--email E]… [--issuer I --subject S]");
        return ExitCode::from(2);
    };
    who.sso = issuer.zip(subject);
    let token = std::env::var("CUSTODIAN_GATE_TOKEN").unwrap_or_default();
    let d = check_login(url, &token, &who, &opts);
    println!(
        "{}",
        serde_json::json!({"action": d.action.as_str(), "reason": d.reason, "userId": d.user_id})
    );
    if matches!(d.action, gate::Action::Login | gate::Action::CreateAccount) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
