//! The disposal journal's records: what a disposal, a held DELETE's
//! tombstone, a lift or an identifier release changed, kept outside the
//! database so a restored backup cannot silently bring a disposed person
//! back. No PII: ids, the tenant, tombstone HMACs, plan hashes and times.

use super::Cause;
use serde::{Deserialize, Serialize};

/// One tombstone as written: its id and keyed hashes (never the identifiers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournaledTombstone {
    pub id: String,
    pub had_external_id: bool,
    pub created_at: String,
    pub hashes: Vec<JournaledHash>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournaledHash {
    pub id_type: String,
    pub hash: String,
    pub norm_version: i32,
}

/// A change the database must not lose to a restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum JournalRecord {
    /// A disposal completed (any cause, including a released hold).
    Disposed {
        tenant_id: String,
        /// The tenant's name (not personal data): a restored database that
        /// predates the tenant gets it back with this id.
        tenant_name: String,
        user_id: String,
        disposal_id: String,
        cause: Cause,
        plan_hash: String,
        tombstones: Vec<JournaledTombstone>,
        at: String,
    },
    /// A held DELETE tombstoned the person; their disposal waits.
    Tombstoned {
        tenant_id: String,
        tenant_name: String,
        user_id: String,
        disposal_id: String,
        tombstones: Vec<JournaledTombstone>,
        at: String,
    },
    /// Tombstones lifted (an admin, or a rehire/relink on SCIM POST).
    Lifted {
        tenant_id: String,
        tombstone_ids: Vec<String>,
        at: String,
    },
    /// One identifier hash released from a tombstone (it is someone else's now).
    Released {
        tenant_id: String,
        tombstone_id: String,
        hash: String,
        at: String,
    },
}

impl JournalRecord {
    pub fn tenant_id(&self) -> &str {
        match self {
            JournalRecord::Disposed { tenant_id, .. }
            | JournalRecord::Tombstoned { tenant_id, .. }
            | JournalRecord::Lifted { tenant_id, .. }
            | JournalRecord::Released { tenant_id, .. } => tenant_id,
        }
    }
}

/// A record with its place in the journal: `seq` grows by one per line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub seq: u64,
    #[serde(flatten)]
    pub record: JournalRecord,
}
