//! PostgreSQL `LISTEN`/`NOTIFY` for token revocations: the revoking
//! transaction notifies (`tokens::revoke`), and each replica holds one
//! dedicated connection listening (`RevocationListener`), so a replica may
//! cache a token's liveness (`auth::revocation`).

use super::error::StoreError;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

/// The channel a revocation is announced on; the payload is the token id.
pub(super) const REVOKED_CHANNEL: &str = "custodian_token_revoked";

/// A connection listening on `REVOKED_CHANNEL`, and another that pings it.
pub struct RevocationListener {
    listening: PgConnection,
    pinging: PgConnection,
}

/// `url` with `application_name` set as a startup parameter: a pooler
/// (PgBouncer) keeps it per client, where a `SET` would stay on the server
/// connection it lent.
fn named(url: &str, name: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}application_name={}", name.replace(' ', "%20"))
}

impl RevocationListener {
    /// Connects to `url` (a PostgreSQL URL) twice and starts listening on
    /// one: every revocation committed after this returns is delivered to
    /// `poll`. Both are named (`custodian revocations`, `custodian
    /// revocation pings`), so operators and the fault tests can tell them
    /// apart.
    pub fn connect(url: &str) -> Result<RevocationListener, StoreError> {
        let connect = |name: &str| {
            PgConnection::establish(&named(url, name)).map_err(|e| StoreError::Pool(e.to_string()))
        };
        let mut listening = connect("custodian revocations")?;
        listening.batch_execute(&format!("LISTEN {REVOKED_CHANNEL}"))?;
        let pinging = connect("custodian revocation pings")?;
        Ok(RevocationListener { listening, pinging })
    }

    /// The payloads announced since the last call (revoked token ids and
    /// pings), without waiting (libpq reads what has arrived); an error when
    /// the connection is gone.
    pub fn poll(&mut self) -> Result<Vec<String>, StoreError> {
        let mut ids = Vec::new();
        // Bounded: libpq holds only what has arrived.
        for n in self.listening.notifications_iter() {
            let n = n?;
            if n.channel == REVOKED_CHANNEL {
                ids.push(n.payload);
            }
        }
        Ok(ids)
    }

    /// Announces `payload` on the channel from the other connection, as a
    /// revocation is announced from another session. A listener that hears
    /// it has proved its subscription end to end, not only its connection,
    /// and has heard every revocation committed before the ping. Sent from
    /// the listening session itself, a ping would prove nothing behind a
    /// transaction-mode pooler: there the `LISTEN` stays on the server
    /// connection that ran it, which the pooler lends to anyone; a ping sent
    /// through that same server connection is delivered to the sender at
    /// once, while other sessions' notifications reach it when it is idle
    /// in the pooler and are dropped.
    pub fn ping(&mut self, payload: &str) -> Result<(), StoreError> {
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<diesel::sql_types::Text, _>(REVOKED_CHANNEL)
            .bind::<diesel::sql_types::Text, _>(payload)
            .execute(&mut self.pinging)?;
        // Behind a pooler this connection may be lent the listening server
        // connection, whose notifications then queue here: drop them
        // (bounded: what has arrived).
        for n in self.pinging.notifications_iter() {
            n?;
        }
        Ok(())
    }
}
