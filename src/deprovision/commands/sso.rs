//! A user's SSO subjects, registered and removed by an admin.

use crate::deprovision::service::Deprov;
use crate::domain::Actor;
use crate::scim::error::ScimError;
use crate::service_error::ServiceError;
use crate::store::audit;
use crate::store::{Db, ledger, users};

/// Issuers compare without surrounding space or a trailing slash.
fn issuer_key(issuer: &str) -> &str {
    issuer.trim().trim_end_matches('/')
}

pub fn register(
    dp: &Deprov,
    db: &Db,
    who: &Actor,
    user_id: &str,
    issuer: &str,
    subject: &str,
) -> Result<(), ServiceError> {
    if issuer.trim().is_empty() || subject.trim().is_empty() {
        return Err(ScimError::invalid_value("'issuer' and 'subject' must be non-empty").into());
    }
    db.write(|c| {
        // Under the user's lock: a disposal cannot commit in between and leave
        // a subject in the clear on a stub.
        users::lock(c, &who.tenant_id, user_id)?;
        if users::find(c, &who.tenant_id, user_id)?.is_none() {
            return Err(ScimError::not_found(format!("no user with id {user_id}")).into());
        }
        let now = dp.now();
        if !ledger::add_sso(
            c,
            &who.tenant_id,
            user_id,
            issuer_key(issuer),
            subject,
            &now,
        )? {
            return Err(
                ScimError::uniqueness("this SSO subject is registered to another user").into(),
            );
        }
        Ok(audit::write(
            c,
            &who.tenant_id,
            &now,
            &who.actor,
            "sso.registered",
            "user",
            user_id,
            None,
        )?)
    })
}

pub fn remove(
    db: &Db,
    who: &Actor,
    user_id: &str,
    issuer: &str,
    subject: &str,
) -> Result<(), ServiceError> {
    db.write(|c| {
        if !ledger::remove_sso(c, &who.tenant_id, user_id, issuer_key(issuer), subject)? {
            return Err(ScimError::not_found("no such SSO subject for this user").into());
        }
        Ok(())
    })
}
