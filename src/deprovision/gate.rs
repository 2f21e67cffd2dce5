//! The SSO gate: on every login, is this identity allowed? Each identifier is
//! looked up among users, then tombstones; no cache, so a suspension or a
//! disposal on any replica is seen at once.

use super::policy::{GateUnknown, Policy};
use super::tombstone::{IdType, TombstoneKeys};
use super::tombstones;
use crate::scim::fold::fold;
use crate::store::db::{AnyConnection, Sql, load_sql};
use crate::store::{StoreError, ledger};
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

#[derive(diesel::QueryableByName)]
struct Hit {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    state: String,
}

fn users_where(
    c: &mut AnyConnection,
    tenant: &str,
    cond: &str,
    value: String,
) -> Result<Vec<Hit>, StoreError> {
    let mut s = Sql::default();
    s.push("SELECT u.id, u.state FROM users u WHERE u.tenant_id = ")
        .bind_text(tenant);
    s.push(&format!(
        " AND u.state IN ('active', 'suspended') AND {cond} = "
    ))
    .bind_text(value);
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
    // user id → (state, matched types)
    let mut users: BTreeMap<String, (String, Vec<&'static str>)> = BTreeMap::new();
    let mut matched: Vec<&'static str> = Vec::new();
    for (t, v) in &ids {
        let hits = match t {
            IdType::UserName => users_where(c, tenant, "u.user_name_key", fold(v))?,
            IdType::ExternalId => users_where(c, tenant, "u.external_id", v.trim().to_string())?,
            IdType::Email => {
                let mut s = Sql::default();
                s.push("SELECT DISTINCT u.id, u.state FROM users u JOIN user_emails e ON e.user_id = u.id WHERE u.tenant_id = ")
                    .bind_text(tenant);
                s.push(" AND u.state IN ('active', 'suspended') AND e.value_key = ")
                    .bind_text(fold(v));
                load_sql::<Hit>(c, &s)?
            }
            IdType::Sso => match &req.sso {
                Some(s) => match ledger::sso_owner(
                    c,
                    tenant,
                    s.issuer.trim().trim_end_matches('/'),
                    &s.subject,
                )? {
                    Some(uid) => users_where(c, tenant, "u.id", uid)?,
                    None => vec![],
                },
                None => vec![],
            },
        };
        for h in hits {
            let e = users.entry(h.id).or_insert((h.state, vec![]));
            if !e.1.contains(&t.as_str()) {
                e.1.push(t.as_str());
            }
            if !matched.contains(&t.as_str()) {
                matched.push(t.as_str());
            }
        }
    }
    let tombs = tombstones::matching(c, keys, tenant, &ids)?;
    for m in &tombs {
        let t = match m.id_type.as_str() {
            "userName" => "userName",
            "externalId" => "externalId",
            "email" => "email",
            _ => "sso",
        };
        if !matched.contains(&t) {
            matched.push(t);
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
    if !tombs.is_empty() {
        return Ok(deny("deprovisioned", None, matched));
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
