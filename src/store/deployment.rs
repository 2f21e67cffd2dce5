//! Deployment-wide rows: the check values of the keys a database was written
//! with, and the disposal journal's last checked entry (`journal_checked`).

use super::db::AnyConnection;
use super::error::StoreError;
use super::schema::deployment_keys;
use diesel::prelude::*;

/// The check value stored for key `name`, if any.
pub fn check_value(c: &mut AnyConnection, name: &str) -> Result<Option<String>, StoreError> {
    Ok(deployment_keys::table
        .filter(deployment_keys::name.eq(name))
        .select(deployment_keys::check_value)
        .first(c)
        .optional()?)
}

/// Stores `value` under `name` unless a value is stored there already (by a
/// replica starting at the same time: its insert wins, and this one waits
/// for it to commit and leaves it).
pub fn insert_check_value(
    c: &mut AnyConnection,
    name: &str,
    value: &str,
    now: &str,
) -> Result<(), StoreError> {
    let row = (
        deployment_keys::name.eq(name),
        deployment_keys::check_value.eq(value),
        deployment_keys::created_at.eq(now),
    );
    // `ON CONFLICT` has no form for the MultiConnection wrapper.
    crate::per_backend!(c, c => diesel::insert_into(deployment_keys::table)
        .values(row)
        .on_conflict_do_nothing()
        .execute(c))?;
    Ok(())
}

/// Sets the value stored under `name` (replacing any).
pub fn set_value(
    c: &mut AnyConnection,
    name: &str,
    value: &str,
    now: &str,
) -> Result<(), StoreError> {
    diesel::delete(deployment_keys::table.filter(deployment_keys::name.eq(name))).execute(c)?;
    insert_check_value(c, name, value, now)
}
