//! The SSO gate: on every login, is this identity allowed? All identifiers are
//! looked up among users and tombstones in one statement; no cache of answers,
//! so a suspension or a disposal on any replica is seen at once.

use super::evidence::{self, Evidence};
use super::policy::{GateUnknown, Policy};
use super::tombstone::{IdType, TombstoneKeys};
use crate::scim::fold::fold;
use crate::store::StoreError;
use crate::store::db::{AnyConnection, Sql, load_sql};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct GateRequest {
    #[serde(rename = "userName")]
    pub user_name: Option<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub email: Vec<String>,
    #[serde(rename = "externalId")]
    pub external_id: Option<String>,
    pub sso: Option<SsoSubject>,
    #[serde(default)]
    pub register: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SsoSubject {
    pub issuer: String,
    pub subject: String,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => vec![],
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
    })
}

impl GateRequest {
    pub fn identifiers(&self) -> Vec<(IdType, String)> {
        let mut ids = Vec::new();
        if let Some(u) = self.user_name.as_deref().filter(|s| !s.trim().is_empty()) {
            ids.push((IdType::UserName, u.to_string()));
        }
        if let Some(x) = self.external_id.as_deref().filter(|s| !s.trim().is_empty()) {
            ids.push((IdType::ExternalId, x.to_string()));
        }
        ids.extend(
            self.email
                .iter()
                .filter(|e| !e.trim().is_empty())
                .map(|e| (IdType::Email, e.clone())),
        );
        if let Some(s) = &self.sso {
            ids.push((
                IdType::Sso,
                super::tombstone::sso_value(&s.issuer, &s.subject),
            ));
        }
        ids
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GateAnswer {
    /// allow | allow_jit | deny
    pub decision: &'static str,
    /// active | unknown | suspended | deprovisioned | conflict
    pub reason: &'static str,
    #[serde(rename = "userId", skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Identifier types that matched; never values.
    pub matched: Vec<&'static str>,
}

/// One row of the gate's lookup: a live user an identifier names, or a live
/// tombstone hash (`user_id` and `state` empty).
#[derive(diesel::QueryableByName)]
struct Hit {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id_type: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    user_id: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    state: Option<String>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    external_id: Option<String>,
}

/// Every user and tombstone the identifiers name, in one statement: a login
/// check is one round trip and, once its shape has been seen, one cached
/// prepared statement.
fn lookup(
    c: &mut AnyConnection,
    keys: &TombstoneKeys,
    tenant: &str,
    req: &GateRequest,
    ids: &[(IdType, String)],
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
        s.push(" AND u.state IN ('active', 'suspended') AND ");
    };
    if let Some(v) = &req.user_name.as_deref().filter(|v| !v.trim().is_empty()) {
        branch(&mut s, "userName");
        s.push("u.user_name_key = ").bind_text(fold(v)).push(") x");
    }
    if let Some(v) = req.external_id.as_deref().and_then(evidence::external_id) {
        branch(&mut s, "externalId");
        s.push("u.external_id = ").bind_text(v).push(") x");
    }
    let emails: Vec<&(IdType, String)> = ids.iter().filter(|(t, _)| *t == IdType::Email).collect();
    if !emails.is_empty() {
        branch(&mut s, "email");
        s.push("u.id IN (SELECT e.user_id FROM user_emails e WHERE e.tenant_id = ")
            .bind_text(tenant);
        let keys: Vec<String> = emails.iter().map(|(_, v)| fold(v)).collect();
        s.push(" AND e.value_key IN ").bind_list(&keys).push(")) x");
    }
    if let Some(sso) = &req.sso {
        branch(&mut s, "sso");
        s.push("u.id IN (SELECT o.user_id FROM sso_subjects o WHERE o.tenant_id = ")
            .bind_text(tenant);
        s.push(" AND o.issuer = ")
            .bind_text(sso.issuer.trim().trim_end_matches('/'));
        s.push(" AND o.subject = ").bind_text(sso.subject.as_str());
        s.push(")) x");
    }
    let hashes: Vec<String> = ids
        .iter()
        .flat_map(|(t, v)| keys.all_hashes(tenant, *t, v))
        .collect();
    if !hashes.is_empty() {
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
            .bind_list(&hashes);
    }
    if s.text.is_empty() {
        return Ok(vec![]);
    }
    load_sql::<Hit>(c, &s)
}

/// Decides. `policy` gives `gate.unknown`.
pub fn check(
    c: &mut AnyConnection,
    keys: &TombstoneKeys,
    policy: &Policy,
    tenant: &str,
    req: &GateRequest,
) -> Result<GateAnswer, StoreError> {
    let ids = req.identifiers();
    let presented_external_id = req.external_id.as_deref().and_then(evidence::external_id);
    // user id → (state, matched types)
    let mut users: BTreeMap<String, (String, Vec<&'static str>)> = BTreeMap::new();
    // A matched user whose externalId differs from the one presented is
    // another person (identity evidence): the identifiers do not agree.
    let mut disagrees = false;
    let mut matched: Vec<&'static str> = Vec::new();
    let mut tombstoned = false;
    for hit in lookup(c, keys, tenant, req, &ids)? {
        let t = match hit.id_type.as_str() {
            "userName" => "userName",
            "externalId" => "externalId",
            "email" => "email",
            _ => "sso",
        };
        if !matched.contains(&t) {
            matched.push(t);
        }
        match (hit.user_id, hit.state) {
            (Some(id), Some(state)) => {
                if evidence::live(hit.external_id.as_deref(), presented_external_id, true)
                    == Evidence::Disagrees
                {
                    disagrees = true;
                }
                let e = users.entry(id).or_insert((state, vec![]));
                if !e.1.contains(&t) {
                    e.1.push(t);
                }
            }
            _ => tombstoned = true,
        }
    }
    let deny = |reason, user_id: Option<String>, matched: Vec<&'static str>| GateAnswer {
        decision: "deny",
        reason,
        user_id,
        matched,
    };
    if let Some((id, _)) = users.iter().find(|(_, (state, _))| state == "suspended") {
        return Ok(deny("suspended", Some(id.clone()), matched));
    }
    if tombstoned {
        return Ok(deny("deprovisioned", None, matched));
    }
    if disagrees {
        return Ok(deny("conflict", None, matched));
    }
    match users.len() {
        0 => Ok(match policy.gate_unknown {
            GateUnknown::AllowJit => GateAnswer {
                decision: "allow_jit",
                reason: "unknown",
                user_id: None,
                matched,
            },
            GateUnknown::Deny => deny("unknown", None, matched),
        }),
        1 => {
            let id = users.keys().next().cloned();
            Ok(GateAnswer {
                decision: "allow",
                reason: "active",
                user_id: id,
                matched,
            })
        }
        _ => Ok(deny("conflict", None, matched)),
    }
}
