//! Disposing now, from the admin API.

use crate::deprovision::service::{Deprov, Outcome};
use crate::domain::{Actor, Cause};
use crate::service_error::ServiceError;
use crate::store::Db;

/// Disposes `user_id` in one long write (`If-Match` gives `expected_hash`),
/// then asks for a WAL checkpoint: a disposal can write many rows.
pub fn dispose(
    dp: &Deprov,
    db: &Db,
    r: &Actor,
    user_id: &str,
    expected_hash: Option<&str>,
) -> Result<Outcome, ServiceError> {
    let outcome = db.write_long(|c| dp.dispose_in(c, r, user_id, Cause::Admin, expected_hash))?;
    db.checkpoint_soon();
    Ok(outcome)
}
