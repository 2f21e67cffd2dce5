//! Resuming paused webhook endpoints.

use crate::deprovision::service::Deprov;
use crate::domain::Actor;
use crate::service_error::ServiceError;
use crate::store::Db;
use crate::store::audit;

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
