//! The person's reports: repointed at the stub when the person is scrubbed,
//! locked first on PostgreSQL, counted when sizing a disposal.

use crate::store::{AnyConnection, Backend, StoreError, audit, ledger, users};

/// Whether disposing `person` touches at most `limit` rows besides the
/// person's own few (items owned, shares granted to them, shares on their
/// items, other people's items in their folders, user data, group memberships,
/// reports repointed): a disposal that small is bounded like any request and
/// may share a write group; a larger one runs alone. Each count stops at
/// `limit + 1`, so this costs the same for an owner of a million items.
pub fn is_small(
    c: &mut AnyConnection,
    tenant: &str,
    person: &str,
    limit: usize,
) -> Result<bool, StoreError> {
    let Some(seen) = ledger::disposal_rows_up_to(c, tenant, person, limit)? else {
        return Ok(false);
    };
    let keys = match users::alias_keys(c, tenant, person) {
        Ok(keys) => keys,
        // No such person: nothing to dispose; the caller answers the 404.
        Err(StoreError::NotFound) => return Ok(true),
        Err(e) => return Err(e),
    };
    let reports = users::reports_up_to(c, tenant, person, &keys, limit - seen)?;
    Ok(seen + reports <= limit)
}

/// PostgreSQL: locks the person's reports (in id order) before the tenant
/// counter, keeping one lock order with PATCHes that suspend a report.
pub fn lock_reports(c: &mut AnyConnection, tenant: &str, person: &str) -> Result<(), StoreError> {
    if crate::store::db::backend_of(c) != Backend::Postgres {
        return Ok(());
    }
    let keys = users::alias_keys(c, tenant, person)?;
    for id in users::report_ids(c, tenant, person, &keys)? {
        users::lock(c, tenant, &id)?;
    }
    Ok(())
}

/// Reports whose `manager.value` names the person by userName, externalId or
/// email (Okta sends its own identifiers there) would keep that identifier after
/// the scrub: point them at the stub's id instead. `keys`: the person's
/// folded aliases (`users::alias_keys`).
pub(super) fn repoint(
    c: &mut AnyConnection,
    tenant: &str,
    person: &str,
    keys: &[String],
    now: &str,
) -> Result<(), StoreError> {
    let reports = users::reports(c, tenant, person, keys)?;
    repoint_rows(c, tenant, person, &reports, now)
}

/// `repoint` of reports already read (and, on PostgreSQL, locked).
pub(super) fn repoint_rows(
    c: &mut AnyConnection,
    tenant: &str,
    person: &str,
    reports: &[users::Report],
    now: &str,
) -> Result<(), StoreError> {
    for report in reports {
        // An unreadable document is not replaced: the disposal fails and says whose.
        let mut doc: serde_json::Value = serde_json::from_str(&report.data).map_err(|e| {
            tracing::error!(user_id = %report.id, error = %e, "a report's stored document is not valid JSON; the disposal is rolled back");
            StoreError::Corrupt(format!("user {}: stored document is not valid JSON: {e}", report.id))
        })?;
        if let Some(m) = doc
            .get_mut(crate::scim::schema::ENTERPRISE_URN)
            .and_then(|e| e.get_mut("manager"))
            .and_then(serde_json::Value::as_object_mut)
        {
            m.insert(
                "value".into(),
                serde_json::Value::String(person.to_string()),
            );
        }
        let data = doc.to_string();
        let search = crate::scim::search_doc::of_user_json(&doc);
        users::set_manager(
            c,
            tenant,
            &users::DocUpdate {
                id: &report.id,
                data: &data,
                search: search.as_deref(),
                version: report.version,
            },
            person,
            &crate::scim::fold::fold(person),
            now,
        )?;
        audit::write(
            c,
            tenant,
            now,
            "disposal",
            "user.manager_repointed",
            "user",
            &report.id,
            None,
        )?;
    }
    Ok(())
}
