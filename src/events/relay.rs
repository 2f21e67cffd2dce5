//! Webhook delivery. One relay per (tenant, endpoint) holds a lease, so events
//! reach each endpoint in `seq` order, at least once; progress lives in the
//! database, so delivery survives restarts and moves between replicas. Failures
//! back off exponentially; after `MAX_ATTEMPTS` the endpoint is paused (the
//! events feed stays the source of truth).

use crate::deprovision::service::Deprov;
use crate::store::schema::{outbox, tenants, webhook_cursors};
use crate::store::{Db, StoreError, time};
use diesel::prelude::*;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

pub const MAX_ATTEMPTS: i32 = 10;
const BATCH: i64 = 50;
const LEASE: i64 = 60;

/// Reads a webhook secret by the environment variable name the policy gives.
pub type SecretLookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

pub struct Relay {
    owner: String,
    agent: ureq::Agent,
    /// Reads a secret by the environment variable name the policy gives.
    secret: SecretLookup,
}

/// `t=<unix>,v1=<hex HMAC-SHA256(secret, t + "." + body)>`.
pub fn signature(secret: &str, t: i64, body: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn backoff(attempts: i32) -> chrono::Duration {
    chrono::Duration::seconds(
        2_i64
            .saturating_pow(u32::try_from(attempts.clamp(0, 12)).unwrap_or(12))
            .min(3_600),
    )
}

impl Relay {
    pub fn new(secret: SecretLookup) -> Relay {
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(10))
            .redirects(0)
            .build();
        Relay {
            owner: uuid::Uuid::new_v4().to_string(),
            agent,
            secret,
        }
    }

    /// One pass over every tenant's endpoints; returns events delivered.
    pub fn run_once(&self, db: &Db, deprov: &Deprov) -> Result<usize, StoreError> {
        let policies = deprov.policies();
        let all: Vec<(String, String)> = db.read(|c| {
            Ok::<_, StoreError>(
                tenants::table
                    .select((tenants::id, tenants::name))
                    .load(c)?,
            )
        })?;
        let mut delivered = 0;
        for (tenant_id, name) in all {
            let policy = policies.for_tenant(&name);
            for hook in &policy.webhooks {
                let Some(secret) = (self.secret)(&hook.secret_env) else {
                    tracing::error!(tenant = %name, secret_env = %hook.secret_env, "webhook secret variable is not set; endpoint skipped");
                    continue;
                };
                delivered += self.endpoint(db, deprov, &tenant_id, &name, &hook.url, &secret)?;
            }
        }
        Ok(delivered)
    }

    fn endpoint(
        &self,
        db: &Db,
        deprov: &Deprov,
        tenant: &str,
        tenant_name: &str,
        url: &str,
        secret: &str,
    ) -> Result<usize, StoreError> {
        let now = deprov.clock.now();
        let now_s = time::format(now);
        let until = time::format(now + chrono::Duration::seconds(LEASE));
        // Claim the lease (creating the cursor on first sight).
        let claimed = db.write(|c| -> Result<Option<i64>, StoreError> {
            // Two replicas may see a new endpoint at once: the insert is idempotent.
            let mut ins = crate::store::db::Sql::default();
            ins.push("INSERT INTO webhook_cursors (tenant_id, endpoint, last_seq, attempts, next_attempt_at, paused) VALUES (")
                .bind_text(tenant)
                .push(", ")
                .bind_text(url)
                .push(", 0, 0, ")
                .bind_text(now_s.clone())
                .push(", FALSE) ON CONFLICT DO NOTHING");
            crate::store::db::execute_sql(c, &ins)?;
            let n = diesel::update(
                webhook_cursors::table
                    .filter(webhook_cursors::tenant_id.eq(tenant))
                    .filter(webhook_cursors::endpoint.eq(url))
                    .filter(webhook_cursors::paused.eq(false))
                    .filter(webhook_cursors::next_attempt_at.le(&now_s))
                    .filter(
                        webhook_cursors::lease_until
                            .is_null()
                            .or(webhook_cursors::lease_until.lt(&now_s))
                            .or(webhook_cursors::lease_owner.eq(&self.owner)),
                    ),
            )
            .set((
                webhook_cursors::lease_owner.eq(&self.owner),
                webhook_cursors::lease_until.eq(&until),
            ))
            .execute(c)?;
            if n == 0 {
                return Ok(None);
            }
            Ok(Some(
                webhook_cursors::table
                    .filter(webhook_cursors::tenant_id.eq(tenant))
                    .filter(webhook_cursors::endpoint.eq(url))
                    .select(webhook_cursors::last_seq)
                    .first(c)?,
            ))
        })?;
        let Some(mut last) = claimed else {
            return Ok(0);
        };
        let events = db.read(|c| crate::events::feed(c, tenant, tenant_name, last, BATCH))?;
        let mut delivered = 0;
        for e in events {
            let body = e.to_string();
            let seq = e["seq"].as_i64().unwrap_or(last);
            let id = e["id"].as_str().unwrap_or_default().to_string();
            let sig = signature(secret, deprov.clock.now().timestamp(), &body);
            let sent = self
                .agent
                .post(url)
                .set("Content-Type", "application/json")
                .set("Custodian-Event-Id", &id)
                .set("Custodian-Signature", &sig)
                .send_string(&body);
            match sent {
                Ok(r) if (200..300).contains(&r.status()) => {
                    last = seq;
                    delivered += 1;
                    // Advance only while still holding the lease (and extend it), so a
                    // replica that lost the lease can never move the cursor back.
                    let until = time::format(deprov.clock.now() + chrono::Duration::seconds(LEASE));
                    let held = db.write(|c| {
                        diesel::update(
                            webhook_cursors::table
                                .filter(webhook_cursors::tenant_id.eq(tenant))
                                .filter(webhook_cursors::endpoint.eq(url))
                                .filter(webhook_cursors::lease_owner.eq(&self.owner)),
                        )
                        .set((
                            webhook_cursors::last_seq.eq(last),
                            webhook_cursors::attempts.eq(0),
                            webhook_cursors::lease_until.eq(&until),
                        ))
                        .execute(c)
                        .map_err(StoreError::from)
                    })?;
                    if held == 0 {
                        tracing::warn!(
                            tenant,
                            "webhook lease lost mid-batch; another relay continues"
                        );
                        return Ok(delivered);
                    }
                }
                failed => {
                    let why = match failed {
                        Ok(r) => format!("HTTP {}", r.status()),
                        Err(ureq::Error::Status(code, _)) => format!("HTTP {code}"),
                        Err(e) => format!("transport: {}", e.kind()),
                    };
                    self.fail(db, deprov, tenant, url, &why)?;
                    break;
                }
            }
        }
        // Release the lease.
        db.write(|c| {
            diesel::update(
                webhook_cursors::table
                    .filter(webhook_cursors::tenant_id.eq(tenant))
                    .filter(webhook_cursors::endpoint.eq(url))
                    .filter(webhook_cursors::lease_owner.eq(&self.owner)),
            )
            .set((
                webhook_cursors::lease_owner.eq(None::<String>),
                webhook_cursors::lease_until.eq(None::<String>),
            ))
            .execute(c)
            .map_err(StoreError::from)
        })?;
        Ok(delivered)
    }

    fn fail(
        &self,
        db: &Db,
        deprov: &Deprov,
        tenant: &str,
        url: &str,
        why: &str,
    ) -> Result<(), StoreError> {
        let now = deprov.clock.now();
        db.write(|c| {
            let attempts: i32 = webhook_cursors::table
                .filter(webhook_cursors::tenant_id.eq(tenant))
                .filter(webhook_cursors::endpoint.eq(url))
                .select(webhook_cursors::attempts)
                .first(c)?;
            let attempts = attempts + 1;
            let paused = attempts >= MAX_ATTEMPTS;
            diesel::update(
                webhook_cursors::table
                    .filter(webhook_cursors::tenant_id.eq(tenant))
                    .filter(webhook_cursors::endpoint.eq(url)),
            )
            .set((
                webhook_cursors::attempts.eq(attempts),
                webhook_cursors::next_attempt_at.eq(time::format(now + backoff(attempts))),
                webhook_cursors::paused.eq(paused),
            ))
            .execute(c)?;
            if paused {
                tracing::error!(
                    tenant,
                    attempts,
                    reason = why,
                    "webhook endpoint paused after repeated failures"
                );
                crate::events::emit(
                    c,
                    tenant,
                    "webhook.paused",
                    None,
                    serde_json::json!({"attempts": attempts}),
                    &time::format(now),
                )?;
            } else {
                tracing::warn!(
                    tenant,
                    attempts,
                    reason = why,
                    "webhook delivery failed; will retry"
                );
            }
            Ok(())
        })
    }
}

/// Highest event seq written for a tenant (for tests and status).
pub fn last_seq(db: &Db, tenant: &str) -> Result<i64, StoreError> {
    db.read(|c| {
        Ok(outbox::table
            .filter(outbox::tenant_id.eq(tenant))
            .select(diesel::dsl::max(outbox::seq))
            .first::<Option<i64>>(c)?
            .unwrap_or(0))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_format_and_backoff() {
        let s = signature("secret", 1_700_000_000, "{}");
        assert!(s.starts_with("t=1700000000,v1=") && s.len() == "t=1700000000,v1=".len() + 64);
        assert_ne!(s, signature("other", 1_700_000_000, "{}"));
        assert_eq!(backoff(1), chrono::Duration::seconds(2));
        assert_eq!(backoff(20), chrono::Duration::seconds(3_600));
    }
}
