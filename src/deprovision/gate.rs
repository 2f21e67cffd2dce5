//! The SSO gate: on every login, is this identity allowed? All identifiers are
//! looked up among users and tombstones in one statement; no cache of answers,
//! so a suspension or a disposal on any replica is seen at once.

use super::evidence::{self, Evidence};
use super::policy::{GateUnknown, Policy};
use super::tombstone::{IdType, TombstoneKeys};
use crate::domain::{GateDecision, GateReason, UserState};
use crate::scim::fold::fold;
use crate::store::{AnyConnection, StoreError, identities};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The identifiers of one sign-in (at least one); `register: true` also
/// records the SSO subject of an allowed user.
#[derive(Debug, Clone, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GateRequest {
    #[serde(rename = "userName")]
    pub user_name: Option<String>,
    /// One address or a list (at most 20).
    #[serde(default, deserialize_with = "one_or_many")]
    #[schema(schema_with = one_or_many_schema)]
    pub email: Vec<String>,
    #[serde(rename = "externalId")]
    pub external_id: Option<String>,
    pub sso: Option<SsoSubject>,
    #[serde(default)]
    pub register: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq, utoipa::ToSchema)]
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

/// `one_or_many`'s OpenAPI schema: a string, a list of at most 20, or null.
fn one_or_many_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Schema, Type};
    Schema::OneOf(
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::String))
            .item(
                ArrayBuilder::new()
                    .items(ObjectBuilder::new().schema_type(Type::String))
                    .max_items(Some(20)),
            )
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .description(Some("One address or a list (at most 20)."))
            .build(),
    )
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

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct GateAnswer {
    pub decision: GateDecision,
    pub reason: GateReason,
    #[serde(rename = "userId", skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Identifier types that matched; never values.
    pub matched: Vec<&'static str>,
}

/// Every user and tombstone the identifiers name (one statement).
fn lookup(
    c: &mut AnyConnection,
    keys: &TombstoneKeys,
    tenant: &str,
    req: &GateRequest,
    ids: &[(IdType, String)],
) -> Result<Vec<identities::Hit>, StoreError> {
    let l = identities::Lookup {
        user_name_key: req
            .user_name
            .as_deref()
            .filter(|v| !v.trim().is_empty())
            .map(fold),
        external_id: req.external_id.as_deref().and_then(evidence::external_id),
        email_keys: ids
            .iter()
            .filter(|(t, _)| *t == IdType::Email)
            .map(|(_, v)| fold(v))
            .collect(),
        sso: req
            .sso
            .as_ref()
            .map(|s| (s.issuer.trim().trim_end_matches('/'), s.subject.as_str())),
        hashes: ids
            .iter()
            .flat_map(|(t, v)| keys.all_hashes(tenant, *t, v))
            .collect(),
    };
    identities::named_by(c, tenant, &l)
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
    let mut users: BTreeMap<String, (UserState, Vec<&'static str>)> = BTreeMap::new();
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
        decision: GateDecision::Deny,
        reason,
        user_id,
        matched,
    };
    if let Some((id, _)) = users
        .iter()
        .find(|(_, (state, _))| *state == UserState::Suspended)
    {
        return Ok(deny(GateReason::Suspended, Some(id.clone()), matched));
    }
    if tombstoned {
        return Ok(deny(GateReason::Deprovisioned, None, matched));
    }
    if disagrees {
        return Ok(deny(GateReason::Conflict, None, matched));
    }
    match users.len() {
        0 => Ok(match policy.gate_unknown {
            GateUnknown::AllowJit => GateAnswer {
                decision: GateDecision::AllowJit,
                reason: GateReason::Unknown,
                user_id: None,
                matched,
            },
            GateUnknown::Deny => deny(GateReason::Unknown, None, matched),
        }),
        1 => {
            let id = users.keys().next().cloned();
            Ok(GateAnswer {
                decision: GateDecision::Allow,
                reason: GateReason::Active,
                user_id: id,
                matched,
            })
        }
        _ => Ok(deny(GateReason::Conflict, None, matched)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer's JSON keeps the words it had as strings.
    #[test]
    fn answer_json_is_the_words() {
        let a = GateAnswer {
            decision: GateDecision::AllowJit,
            reason: GateReason::Unknown,
            user_id: None,
            matched: vec!["email"],
        };
        assert_eq!(
            serde_json::to_string(&a).expect("serialises"),
            r#"{"decision":"allow_jit","reason":"unknown","matched":["email"]}"#
        );
        let d = GateAnswer {
            decision: GateDecision::Deny,
            reason: GateReason::Deprovisioned,
            user_id: Some("u1".into()),
            matched: vec![],
        };
        assert_eq!(
            serde_json::to_string(&d).expect("serialises"),
            r#"{"decision":"deny","reason":"deprovisioned","userId":"u1","matched":[]}"#
        );
    }
}
