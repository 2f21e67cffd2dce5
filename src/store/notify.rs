//! PostgreSQL `LISTEN`/`NOTIFY` for token revocations: the revoking
//! transaction notifies (`tokens::revoke`), and each replica holds one
//! dedicated connection listening (`RevocationListener`), so a replica may
//! cache a token's liveness (`auth::revocation`).

use super::error::StoreError;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

/// The channel a revocation is announced on; the payload is the token id.
pub(super) const REVOKED_CHANNEL: &str = "custodian_token_revoked";

/// A connection listening on `REVOKED_CHANNEL`.
pub struct RevocationListener(PgConnection);

impl RevocationListener {
    /// Connects to `url` (a PostgreSQL URL) and starts listening: every
    /// revocation committed after this returns is delivered to `poll`.
    pub fn connect(url: &str) -> Result<RevocationListener, StoreError> {
        let mut c = PgConnection::establish(url).map_err(|e| StoreError::Pool(e.to_string()))?;
        // Named, so operators (and the fault tests) can tell it apart.
        c.batch_execute(&format!(
            "SET application_name = 'custodian revocations'; LISTEN {REVOKED_CHANNEL}"
        ))?;
        Ok(RevocationListener(c))
    }

    /// The payloads announced since the last call (revoked token ids and
    /// pings), without waiting (libpq reads what has arrived); an error when
    /// the connection is gone.
    pub fn poll(&mut self) -> Result<Vec<String>, StoreError> {
        let mut ids = Vec::new();
        // Bounded: libpq holds only what has arrived.
        for n in self.0.notifications_iter() {
            let n = n?;
            if n.channel == REVOKED_CHANNEL {
                ids.push(n.payload);
            }
        }
        Ok(ids)
    }

    /// Announces `payload` on the channel, this listener included: a
    /// listener that hears its own ping has proved its subscription end to
    /// end (not only its connection: behind a transaction-mode pooler a
    /// `LISTEN` may land on a server connection that is not this one's),
    /// and has heard every revocation committed before the ping.
    pub fn ping(&mut self, payload: &str) -> Result<(), StoreError> {
        diesel::sql_query("SELECT pg_notify($1, $2)")
            .bind::<diesel::sql_types::Text, _>(REVOKED_CHANNEL)
            .bind::<diesel::sql_types::Text, _>(payload)
            .execute(&mut self.0)?;
        Ok(())
    }
}
