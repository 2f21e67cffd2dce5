//! The gate's answers: a plain check, or a check that registers the SSO
//! subject it presented.

use crate::deprovision::gate::{self, GateAnswer, GateRequest};
use crate::deprovision::service::Deprov;
use crate::domain::{Actor, GateDecision};
use crate::service_error::ServiceError;
use crate::store::audit;
use crate::store::{Db, StoreError, ledger, users};

/// Decides without writing. On a `Db::idle_sqlite` handle this answers
/// `StoreError::WouldWait` rather than wait for a connection.
pub fn check(
    dp: &Deprov,
    db: &Db,
    who: &Actor,
    req: &GateRequest,
) -> Result<GateAnswer, StoreError> {
    let policy = dp.policy(&who.tenant_name);
    db.read(|c| gate::check(c, &dp.keys, &policy, &who.tenant_id, req))
}

/// `check`, or with `register` set, decide and link the SSO subject in one
/// transaction under the user's lock, so a disposal committing in between
/// cannot leave a subject on a stub.
pub fn answer(
    dp: &Deprov,
    db: &Db,
    who: &Actor,
    req: &GateRequest,
) -> Result<GateAnswer, ServiceError> {
    if !req.register {
        return Ok(check(dp, db, who, req)?);
    }
    let policy = dp.policy(&who.tenant_name);
    let now = dp.now();
    let tenant = &who.tenant_id;
    db.write(|c| {
        let first = gate::check(c, &dp.keys, &policy, tenant, req)?;
        let (Some(uid), Some(sso), GateDecision::Allow) =
            (first.user_id.clone(), req.sso.clone(), first.decision)
        else {
            return Ok(first);
        };
        users::lock(c, tenant, &uid)?;
        let answer = gate::check(c, &dp.keys, &policy, tenant, req)?;
        let still_allowed = answer.decision == GateDecision::Allow
            && answer.user_id.as_deref() == Some(uid.as_str());
        let issuer = sso.issuer.trim().trim_end_matches('/');
        if still_allowed && ledger::add_sso(c, tenant, &uid, issuer, &sso.subject, &now)? {
            audit::write(
                c,
                tenant,
                &now,
                &who.actor,
                "sso.registered",
                "user",
                &uid,
                None,
            )?;
        }
        Ok(answer)
    })
}
