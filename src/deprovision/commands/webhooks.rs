//! Resuming paused webhook endpoints; skipping a poison event.

use crate::deprovision::service::Deprov;
use crate::domain::Actor;
use crate::scim::error::ScimError;
use crate::service_error::ServiceError;
use crate::store::Db;
use crate::store::audit;
use crate::store::webhooks::Skip;

/// Un-pauses every paused endpoint of the tenant (delivery resumes where it
/// stopped) and audits it; returns how many were paused.
pub fn resume(dp: &Deprov, db: &Db, who: &Actor) -> Result<usize, ServiceError> {
    let now = dp.now();
    db.write(|c| {
        let n = crate::store::webhooks::resume_paused(c, &who.tenant_id, &now)?;
        audit::write(
            c,
            &who.tenant_id,
            &now,
            &who.actor,
            "webhooks.resumed",
            "tenant",
            &who.tenant_id,
            None,
        )?;
        Ok(n)
    })
}

/// Skips one poison event for one endpoint: only the event at the head of
/// that endpoint's queue (the one its failing delivery retries), so the events
/// behind it are delivered next, in order; the endpoint is due at once
/// (un-paused). Audited. A 404 for an endpoint the tenant's policy does not
/// name and that has no cursor; a 409 naming the head when `event_id` is not it.
pub fn skip(
    dp: &Deprov,
    db: &Db,
    who: &Actor,
    endpoint: &str,
    event_id: &str,
) -> Result<i64, ServiceError> {
    let configured = dp
        .policy(&who.tenant_name)
        .webhooks
        .iter()
        .any(|w| w.url == endpoint);
    let now = dp.now();
    db.write(|c| {
        let known = configured
            || crate::store::reads::webhooks::endpoints(c, &who.tenant_id)?
                .iter()
                .any(|e| e.endpoint == endpoint);
        if !known {
            return Err(ServiceError::Scim(ScimError::not_found(
                "no webhook endpoint with that URL for this tenant",
            )));
        }
        match crate::store::webhooks::skip_head(c, &who.tenant_id, endpoint, event_id, &now)? {
            Skip::Skipped { seq } => {
                audit::write(
                    c,
                    &who.tenant_id,
                    &now,
                    &who.actor,
                    "webhooks.event_skipped",
                    "event",
                    event_id,
                    // The opaque id (as in the metrics), not the URL: a
                    // receiver URL may carry a credential, and auditors
                    // read the audit log.
                    Some(
                        &serde_json::json!({
                            "endpoint": crate::metrics::endpoint_id(&who.tenant_id, endpoint),
                            "seq": seq,
                        })
                        .to_string(),
                    ),
                )?;
                Ok(seq)
            }
            Skip::NotHead { head } => Err(ServiceError::Conflict(match head {
                Some(h) => format!(
                    "{event_id} is not the next event for this endpoint ({h} is); only the head of an endpoint's queue can be skipped"
                ),
                None => format!(
                    "{event_id} is not waiting for this endpoint (nothing is, or it was just delivered)"
                ),
            })),
        }
    })
}
