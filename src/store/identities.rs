//! Who a set of identifiers names: live users and live tombstone hashes, in
//! one statement (the SSO gate's lookup).

use super::db::{AnyConnection, Sql, load_sql};
use super::error::StoreError;

/// The identifiers to look up, already normalised by the caller.
#[derive(Debug, Default)]
pub struct Lookup<'a> {
    pub user_name_key: Option<String>,
    pub external_id: Option<&'a str>,
    pub email_keys: Vec<String>,
    /// (issuer, subject)
    pub sso: Option<(&'a str, &'a str)>,
    /// Tombstone hashes of every identifier, under every deployment key.
    pub hashes: Vec<String>,
}

/// A live user an identifier names, or a live tombstone hash (`user_id` and
/// `state` empty). `id_type`: userName | externalId | email | sso (for hashes,
/// the stored type).
#[derive(Debug, diesel::QueryableByName)]
pub struct Hit {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub id_type: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub user_id: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub state: Option<crate::domain::UserState>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub external_id: Option<String>,
}

/// Every visible user and live tombstone the identifiers name: one round
/// trip and, once its shape has been seen, one cached prepared statement.
pub fn named_by(
    c: &mut AnyConnection,
    tenant: &str,
    l: &Lookup<'_>,
) -> Result<Vec<Hit>, StoreError> {
    const LIVE: &str = "SELECT u.id, u.state, u.external_id FROM users u WHERE u.tenant_id = ";
    let mut s = Sql::default();
    let branch = |s: &mut Sql, id_type: &str| {
        if !s.text.is_empty() {
            s.push(" UNION ALL ");
        }
        s.push(&format!(
            "SELECT '{id_type}' AS id_type, x.id AS user_id, x.state AS state, x.external_id AS external_id FROM ("
        ));
        s.push(LIVE).bind_text(tenant);
        s.push(" AND ").push(super::vocab::VISIBLE_U).push(" AND ");
    };
    if let Some(v) = &l.user_name_key {
        branch(&mut s, "userName");
        s.push("u.user_name_key = ")
            .bind_text(v.clone())
            .push(") x");
    }
    if let Some(v) = l.external_id {
        branch(&mut s, "externalId");
        s.push("u.external_id = ").bind_text(v).push(") x");
    }
    if !l.email_keys.is_empty() {
        branch(&mut s, "email");
        s.push("u.id IN (SELECT e.user_id FROM user_emails e WHERE e.tenant_id = ")
            .bind_text(tenant);
        s.push(" AND e.value_key IN ")
            .bind_list(&l.email_keys)
            .push(")) x");
    }
    if let Some((issuer, subject)) = l.sso {
        branch(&mut s, "sso");
        s.push("u.id IN (SELECT o.user_id FROM sso_subjects o WHERE o.tenant_id = ")
            .bind_text(tenant);
        s.push(" AND o.issuer = ").bind_text(issuer);
        s.push(" AND o.subject = ").bind_text(subject);
        s.push(")) x");
    }
    if !l.hashes.is_empty() {
        if !s.text.is_empty() {
            s.push(" UNION ALL ");
        }
        s.push(
            "SELECT h.id_type AS id_type, CAST(NULL AS TEXT) AS user_id, CAST(NULL AS TEXT) AS state, CAST(NULL AS TEXT) AS external_id \
             FROM tombstone_hashes h JOIN tombstones t ON t.id = h.tombstone_id \
             WHERE h.tenant_id = ",
        )
        .bind_text(tenant);
        s.push(" AND t.lifted_at IS NULL AND h.hash IN ")
            .bind_list(&l.hashes);
    }
    if s.text.is_empty() {
        return Ok(vec![]);
    }
    load_sql::<Hit>(c, &s)
}
