//! Storage: diesel over SQLite or PostgreSQL. Every function takes the tenant id
//! and scopes its queries by it.

pub mod audit;
pub mod console;
pub mod db;
pub mod deployment;
pub mod disposals;
pub mod error;
pub mod filter_sql;
pub mod gauges;
pub mod groups;
pub mod identities;
pub mod journal_queue;
pub mod ledger;
pub mod maintain;
pub mod migrate;
pub mod notify;
pub mod outbox;
pub mod page;
pub mod pool;
pub mod queue;
pub mod reads;
pub mod replicas;
pub mod retention;
/// The tables: named only here (`.ci/check-layers`; the compiler enforces it).
pub(in crate::store) mod schema;
pub mod seed;
pub mod snapshot;
/// Hand-built SQL and its executors; `Sql` and `Bind` leave only as values.
pub(in crate::store) mod sql;
pub mod time;
pub mod tokens;
pub mod tombstones;
pub mod tx;
pub mod users;
pub mod vocab;
pub mod webhook_cursors;
pub mod webhooks;
pub mod writer;

pub use db::Db;
pub use error::StoreError;
pub use pool::{AnyConnection, Backend};
pub use queue::set_write_queue_nice;

/// A new row id: a UUIDv7, so new keys land at the end of their primary-key
/// index (a random key dirtied a random page per index per write).
///
/// RFC 9562 §6.2, method 3: the 12 bits after the millisecond hold its
/// fraction (244 ns steps), so ids stay in creation order within a
/// millisecond too (random bits there split index pages mid-way, which
/// slows creates), and the other 62 bits are random. Not uuid's default v7
/// context: that orders ids with one process-wide counter, whose steps
/// would tell one tenant how many ids were minted for others in between.
pub fn new_id() -> uuid::Uuid {
    use rand::RngCore;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let millis = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
    let fraction = u64::from(now.subsec_nanos() % 1_000_000) * 4096 / 1_000_000;
    let mut bytes = [0u8; 10];
    rand::thread_rng().fill_bytes(&mut bytes);
    // The builder keeps the low 4 bits of bytes[0] and all of bytes[1] as
    // `rand_a` (the version takes the high 4).
    let [.., high, low] = fraction.to_be_bytes();
    bytes[0] = high & 0x0f;
    bytes[1] = low;
    uuid::Builder::from_unix_timestamp_millis(millis, &bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_v7_in_creation_order_and_random() {
        let ids: Vec<uuid::Uuid> = (0..2_000).map(|_| super::new_id()).collect();
        assert!(ids.iter().all(|u| u.get_version_num() == 7));
        // The time prefix (milliseconds, then the 12-bit fraction) never goes
        // back; ids within one 244 ns step are ordered by their random bits.
        let prefix = |u: &uuid::Uuid| {
            let b = u.as_bytes();
            (b[..6].to_vec(), b[6] & 0x0f, b[7])
        };
        assert!(ids.windows(2).all(|w| prefix(&w[0]) <= prefix(&w[1])));
        assert!(ids.first().map(prefix) < ids.last().map(prefix));
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
    }
}
