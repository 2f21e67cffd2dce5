//! The deprovisioning policy: a TOML file with a `[default]` table and
//! `[tenants.NAME]` overrides. Tables (`kinds`, `user_data`, `brake`, `tombstone`,
//! `gate`, `personal_folder`) merge key by key; arrays (`targets`, `webhooks`) and
//! scalars replace. Errors name the file, line and key.

use serde::Deserialize;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use toml::Spanned;

/// What happens to content items of one kind when their owner is disposed.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum KindAction {
    Transfer,
    Orphan,
    Delete,
    Keep,
}

/// What happens to a category of user data (favorites, analytics, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DataAction {
    Delete,
    Anonymize,
    Keep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FolderAction {
    /// Move the personal root, with its subtree, under the tenant's Archive folder.
    Archive,
    /// Treat the personal root like any other folder.
    Transfer,
}

/// A kind's configured action as a receipt line's action (a transfer
/// without a target is decided by the planner, not here).
impl From<KindAction> for crate::domain::ItemAction {
    fn from(a: KindAction) -> Self {
        match a {
            KindAction::Transfer => Self::Transfer,
            KindAction::Orphan => Self::Orphan,
            KindAction::Delete => Self::Delete,
            KindAction::Keep => Self::Keep,
        }
    }
}

impl From<DataAction> for crate::domain::ItemAction {
    fn from(a: DataAction) -> Self {
        match a {
            DataAction::Delete => Self::Delete,
            DataAction::Anonymize => Self::Anonymize,
            DataAction::Keep => Self::Keep,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnScimCreate {
    New,
    Relink,
    Reject,
}

/// What a POST does when its userName is held by a suspended account that the
/// identity evidence says is a *different* person (a recycled name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnReuse {
    /// 409 `uniqueness` until the previous holder is disposed.
    Reject,
    /// Dispose the previous holder now (counted by the brake), then create.
    DisposePrevious,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GateUnknown {
    AllowJit,
    Deny,
}

/// One link of the target chain, resolved at plan time; first match wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub enum Target {
    Manager,
    Custodian,
    Caller,
    User(String),
}

impl From<Target> for String {
    fn from(t: Target) -> String {
        match t {
            Target::Manager => "manager".into(),
            Target::Custodian => "custodian".into(),
            Target::Caller => "caller".into(),
            Target::User(u) => format!("user:{u}"),
        }
    }
}

impl Target {
    fn parse(s: &str) -> Result<Target, String> {
        match s {
            "manager" => Ok(Target::Manager),
            "custodian" => Ok(Target::Custodian),
            "caller" => Ok(Target::Caller),
            other => match other.strip_prefix("user:") {
                Some(u) if !u.trim().is_empty() => Ok(Target::User(u.trim().to_string())),
                _ => Err(format!(
                    "unknown target '{other}' (expected manager, custodian, caller or user:<userName>)"
                )),
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PersonalFolder {
    pub action: FolderAction,
    pub label: String,
}

/// A webhook endpoint: its URL, the variable holding its `whsec_` secret, the
/// previous secret's variable while receivers rotate (both sign), and the
/// signature scheme (Standard Webhooks unless `signature = "custodian"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Webhook {
    pub url: String,
    pub secret_env: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_env: Option<String>,
    pub signature: crate::events::signing::Scheme,
}

/// The effective policy of one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Policy {
    pub grace_period_seconds: u64,
    /// The target chain: `manager`, `custodian`, `caller` or `user:<userName>`.
    #[schema(value_type = Vec<String>)]
    pub targets: Vec<Target>,
    pub custodian: Option<String>,
    pub personal_folder: PersonalFolder,
    pub kinds: BTreeMap<String, KindAction>,
    pub user_data: BTreeMap<String, DataAction>,
    pub max_disposals_per_hour: u32,
    pub on_scim_create: OnScimCreate,
    pub on_reuse: OnReuse,
    pub gate_unknown: GateUnknown,
    pub webhooks: Vec<Webhook>,
    pub forward_new_content: bool,
}

impl Default for Policy {
    /// The built-in policy (DESIGN "Built-in policy").
    fn default() -> Self {
        Policy {
            grace_period_seconds: 30 * 86_400,
            targets: vec![Target::Manager, Target::Custodian],
            custodian: None,
            personal_folder: PersonalFolder {
                action: FolderAction::Archive,
                label: "(archived {date})".into(),
            },
            kinds: BTreeMap::new(),
            user_data: BTreeMap::new(),
            max_disposals_per_hour: 500,
            on_scim_create: OnScimCreate::New,
            on_reuse: OnReuse::Reject,
            gate_unknown: GateUnknown::AllowJit,
            webhooks: vec![],
            forward_new_content: false,
        }
    }
}

impl Policy {
    /// The URLs of the tenant's configured webhook endpoints.
    pub fn webhook_urls(&self) -> std::collections::BTreeSet<String> {
        self.webhooks.iter().map(|h| h.url.clone()).collect()
    }

    /// A kind the policy does not list is transferred, never deleted.
    pub fn kind_action(&self, kind: &str) -> KindAction {
        self.kinds
            .get(kind)
            .copied()
            .unwrap_or(KindAction::Transfer)
    }
    /// An unlisted category is anonymised.
    pub fn data_action(&self, category: &str) -> DataAction {
        self.user_data
            .get(category)
            .copied()
            .unwrap_or(DataAction::Anonymize)
    }
    /// SHA-256 of the canonical JSON form: part of every plan hash.
    pub fn digest(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        hex::encode(Sha256::digest(json.as_bytes()))
    }
}

/// A policy file: the default and every tenant's effective policy.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    pub default: Policy,
    pub tenants: BTreeMap<String, Policy>,
    pub warnings: Vec<String>,
}

impl PolicySet {
    pub fn for_tenant(&self, tenant: &str) -> &Policy {
        self.tenants.get(tenant).unwrap_or(&self.default)
    }

    /// SHA-256 over every effective policy (the default's digest and each
    /// tenant's name and digest, in name order): two replicas enforce the same
    /// policies exactly when their set digests are equal. Warnings are not
    /// part of it.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        h.update(b"default ");
        h.update(self.default.digest().as_bytes());
        for (name, p) in &self.tenants {
            h.update(b"\ntenant ");
            h.update(name.as_bytes());
            h.update(b" ");
            h.update(p.digest().as_bytes());
        }
        hex::encode(h.finalize())
    }
}

// ---- the file's shape: every key optional, unknown keys rejected -------------

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawFile {
    default: Option<RawPolicy>,
    #[serde(default)]
    tenants: BTreeMap<String, RawPolicy>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    grace_period: Option<Spanned<String>>,
    targets: Option<Vec<Spanned<String>>>,
    custodian: Option<String>,
    personal_folder: Option<RawFolder>,
    kinds: Option<BTreeMap<String, KindAction>>,
    user_data: Option<BTreeMap<String, DataAction>>,
    brake: Option<RawBrake>,
    tombstone: Option<RawTombstone>,
    identity: Option<RawIdentity>,
    gate: Option<RawGate>,
    webhooks: Option<Vec<RawWebhook>>,
    forward_new_content: Option<bool>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawFolder {
    action: Option<FolderAction>,
    label: Option<String>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawBrake {
    max_disposals_per_hour: Option<u32>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawTombstone {
    on_scim_create: Option<OnScimCreate>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    on_reuse: Option<OnReuse>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
struct RawGate {
    unknown: Option<GateUnknown>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: Spanned<String>,
    secret_env: String,
    previous_secret_env: Option<String>,
    #[serde(default)]
    signature: crate::events::signing::Scheme,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{file}:{line}: {message}")]
pub struct PolicyError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Parses `30d`, `12h`, `45m`, `90s`, `0` into seconds.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(0);
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration like 30d, 12h, 45m, 90s or 0"))?;
    let mult = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => {
            return Err(format!(
                "'{s}' is not a duration like 30d, 12h, 45m, 90s or 0"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("'{s}' is too long"))
}

fn apply(
    base: &Policy,
    raw: &RawPolicy,
    text: &str,
    file: &str,
    key: &str,
) -> Result<Policy, PolicyError> {
    let err = |span: std::ops::Range<usize>, what: &str, message: String| PolicyError {
        file: file.to_string(),
        line: line_of(text, span.start),
        message: format!("{key}.{what}: {message}"),
    };
    let mut p = base.clone();
    if let Some(g) = &raw.grace_period {
        p.grace_period_seconds =
            parse_duration(g.get_ref()).map_err(|m| err(g.span(), "grace_period", m))?;
    }
    if let Some(ts) = &raw.targets {
        p.targets = ts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                Target::parse(t.get_ref()).map_err(|m| err(t.span(), &format!("targets[{i}]"), m))
            })
            .collect::<Result<_, _>>()?;
    }
    if raw.custodian.is_some() {
        p.custodian = raw.custodian.clone();
    }
    if let Some(f) = &raw.personal_folder {
        if let Some(a) = f.action {
            p.personal_folder.action = a;
        }
        if let Some(l) = &f.label {
            p.personal_folder.label = l.clone();
        }
    }
    if let Some(k) = &raw.kinds {
        p.kinds.extend(k.clone());
    }
    if let Some(u) = &raw.user_data {
        p.user_data.extend(u.clone());
    }
    if let Some(b) = raw.brake.as_ref().and_then(|b| b.max_disposals_per_hour) {
        p.max_disposals_per_hour = b;
    }
    if let Some(t) = raw.tombstone.as_ref().and_then(|t| t.on_scim_create) {
        p.on_scim_create = t;
    }
    if let Some(o) = raw.identity.as_ref().and_then(|i| i.on_reuse) {
        p.on_reuse = o;
    }
    if let Some(g) = raw.gate.as_ref().and_then(|g| g.unknown) {
        p.gate_unknown = g;
    }
    if let Some(ws) = &raw.webhooks {
        p.webhooks = ws
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let url = w.url.get_ref();
                if url.starts_with("https://") || url.starts_with("http://") {
                    Ok(Webhook {
                        url: url.clone(),
                        secret_env: w.secret_env.clone(),
                        previous_secret_env: w.previous_secret_env.clone(),
                        signature: w.signature,
                    })
                } else {
                    Err(err(
                        w.url.span(),
                        &format!("webhooks[{i}].url"),
                        format!("'{url}' is not an http(s) URL"),
                    ))
                }
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(f) = raw.forward_new_content {
        p.forward_new_content = f;
    }
    Ok(p)
}

/// Parses a policy file's text. `file` is used in error messages only.
pub fn parse(text: &str, file: &str) -> Result<PolicySet, PolicyError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
        let key = e
            .span()
            .map(|s| text[s].trim().to_string())
            .unwrap_or_default();
        let message = if e.message().contains("unknown field") {
            format!("unknown key '{key}': {}", e.message())
        } else {
            e.message().to_string()
        };
        PolicyError {
            file: file.to_string(),
            line,
            message,
        }
    })?;
    let default = match &raw.default {
        Some(d) => apply(&Policy::default(), d, text, file, "default")?,
        None => Policy::default(),
    };
    let mut tenants = BTreeMap::new();
    for (name, t) in &raw.tenants {
        tenants.insert(
            name.clone(),
            apply(&default, t, text, file, &format!("tenants.{name}"))?,
        );
    }
    let mut warnings = Vec::new();
    for (name, p) in
        std::iter::once(("default", &default)).chain(tenants.iter().map(|(n, p)| (n.as_str(), p)))
    {
        if p.grace_period_seconds < 3_600 {
            warnings.push(format!(
                "{name}: grace_period under one hour; IdP group-rule churn deactivates and reactivates people within minutes"
            ));
        }
        if p.targets.contains(&Target::Custodian) && p.custodian.is_none() {
            warnings.push(format!("{name}: targets include 'custodian' but no custodian is set; that link never matches"));
        }
        if p.user_data.is_empty() {
            warnings.push(format!(
                "{name}: no user_data categories listed; every category is anonymized"
            ));
        }
    }
    if default.custodian.is_some() && !raw.tenants.is_empty() {
        warnings
            .push("default: the custodian user must exist in every tenant that inherits it".into());
    }
    Ok(PolicySet {
        default,
        tenants,
        warnings,
    })
}

pub fn load(path: &std::path::Path) -> Result<PolicySet, PolicyError> {
    let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
        file: path.display().to_string(),
        line: 0,
        message: format!("cannot read: {e}"),
    })?;
    parse(&text, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_set_digest_changes_with_any_tenants_policy_and_only_then() {
        let a = "[default]\ngrace_period = \"1d\"\n[tenants.x]\ngrace_period = \"2d\"\n";
        let same = "# a comment\n[default]\ngrace_period = \"24h\"\n\n[tenants.x]\ngrace_period = \"48h\"\n";
        let other = "[default]\ngrace_period = \"1d\"\n[tenants.x]\ngrace_period = \"3d\"\n";
        let d = |t: &str| parse(t, "p.toml").map(|s| s.digest()).unwrap_or_default();
        assert_eq!(d(a).len(), 64);
        assert_eq!(
            d(a),
            d(same),
            "the same effective policies, written otherwise"
        );
        assert_ne!(d(a), d(other), "one tenant's policy changed");
        assert_ne!(d(a), PolicySet::default().digest());
    }

    #[test]
    fn policy_actions_map_to_the_item_action_of_the_same_word() {
        use crate::domain::ItemAction;
        for k in [
            KindAction::Transfer,
            KindAction::Orphan,
            KindAction::Delete,
            KindAction::Keep,
        ] {
            let word = serde_json::to_value(k).expect("serialises");
            assert_eq!(word, ItemAction::from(k).as_str(), "{k:?}");
        }
        for d in [DataAction::Delete, DataAction::Anonymize, DataAction::Keep] {
            let word = serde_json::to_value(d).expect("serialises");
            assert_eq!(word, ItemAction::from(d).as_str(), "{d:?}");
        }
    }

    const FULL: &str = r#"
[default]
grace_period = "30d"
targets = ["manager", "custodian"]
custodian = "archive-admin@example.edu"
personal_folder = { action = "archive", label = "(from {displayName})" }
kinds = { recording = "transfer", presentation = "transfer", schedule = "orphan", draft = "delete" }
user_data = { favorite = "delete", like = "delete", saved_search = "delete", analytics = "anonymize" }
brake = { max_disposals_per_hour = 50 }
tombstone = { on_scim_create = "relink" }
webhooks = [{ url = "https://platform.example.edu/hooks/custodian", secret_env = "PLATFORM_HOOK_SECRET" }]

[tenants.medschool]
grace_period = "1h"
targets = ["user:records-office@med.example.edu"]
kinds = { draft = "keep" }
"#;

    #[test]
    fn design_example_parses_and_tenants_merge() {
        let set = parse(FULL, "p.toml").expect("parses");
        let d = &set.default;
        assert_eq!(d.grace_period_seconds, 30 * 86_400);
        assert_eq!(d.kind_action("schedule"), KindAction::Orphan);
        assert_eq!(d.kind_action("unlisted"), KindAction::Transfer);
        assert_eq!(d.data_action("analytics"), DataAction::Anonymize);
        assert_eq!(d.data_action("viewing_history"), DataAction::Anonymize);
        assert_eq!(d.on_scim_create, OnScimCreate::Relink);
        let m = set.for_tenant("medschool");
        assert_eq!(m.grace_period_seconds, 3_600);
        assert_eq!(
            m.targets,
            vec![Target::User("records-office@med.example.edu".into())]
        );
        // Tables merge key by key: draft overridden, schedule inherited.
        assert_eq!(m.kind_action("draft"), KindAction::Keep);
        assert_eq!(m.kind_action("schedule"), KindAction::Orphan);
        assert_eq!(m.max_disposals_per_hour, 50);
        assert_eq!(m.webhooks.len(), 1);
        assert_eq!(set.for_tenant("other"), d);
        assert_ne!(d.digest(), m.digest());
    }

    /// Standard Webhooks unless an endpoint opts into the older header; a
    /// rotation names the previous secret's variable; an unknown scheme is refused.
    #[test]
    fn webhook_signature_scheme_and_rotation() {
        use crate::events::signing::Scheme;
        let set = parse(
            "[default]\nwebhooks = [\n  { url = \"https://a.example/h\", secret_env = \"A\" },\n  \
             { url = \"https://b.example/h\", secret_env = \"B2\", previous_secret_env = \"B1\", signature = \"custodian\" },\n]\n",
            "p.toml",
        )
        .expect("parses");
        let w = &set.default.webhooks;
        assert_eq!(
            (w[0].signature, w[0].previous_secret_env.as_deref()),
            (Scheme::Standard, None)
        );
        assert_eq!(
            (w[1].signature, w[1].previous_secret_env.as_deref()),
            (Scheme::Custodian, Some("B1"))
        );
        let e = parse(
            "[default]\nwebhooks = [{ url = \"https://a.example/h\", secret_env = \"A\", signature = \"hmac\" }]\n",
            "p.toml",
        )
        .expect_err("unknown scheme");
        assert!(e.message.contains("hmac"), "{e}");
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let cases = [
            (
                "[default]\ngrace_period = \"soon\"\n",
                2,
                "default.grace_period",
            ),
            (
                "[default]\n\ntargets = [\"manager\", \"boss\"]\n",
                3,
                "targets[1]: unknown target 'boss'",
            ),
            ("[default]\nkinds = { draft = \"shred\" }\n", 2, "shred"),
            ("[default]\ngrace = \"1d\"\n", 2, "unknown key 'grace'"),
            (
                "[tenants.x]\nwebhooks = [{ url = \"ftp://x\", secret_env = \"S\" }]\n",
                2,
                "tenants.x.webhooks[0].url",
            ),
        ];
        for (text, line, needle) in cases {
            let e = parse(text, "p.toml").expect_err(text);
            assert_eq!((e.file.as_str(), e.line), ("p.toml", line), "{text}: {e}");
            assert!(e.to_string().contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn builtin_policy_and_warnings() {
        let set = parse("", "p.toml").expect("empty file is the built-in policy");
        assert_eq!(set.default, Policy::default());
        assert_eq!(
            set.default.targets,
            vec![Target::Manager, Target::Custodian]
        );
        assert!(
            set.warnings
                .iter()
                .any(|w| w.contains("no custodian is set"))
        );
        let set = parse("[default]\ngrace_period = \"10m\"\n", "p.toml").expect("parses");
        assert!(set.warnings.iter().any(|w| w.contains("under one hour")));
    }

    #[test]
    fn identity_on_reuse_defaults_to_reject_and_merges_per_tenant() {
        let set = parse(
            "[default]\nidentity = { on_reuse = \"dispose_previous\" }\n[tenants.strict]\nidentity = { on_reuse = \"reject\" }\n",
            "p.toml",
        )
        .expect("parses");
        assert_eq!(Policy::default().on_reuse, OnReuse::Reject);
        assert_eq!(set.default.on_reuse, OnReuse::DisposePrevious);
        assert_eq!(set.for_tenant("strict").on_reuse, OnReuse::Reject);
        assert_eq!(set.for_tenant("other").on_reuse, OnReuse::DisposePrevious);
        assert_ne!(set.default.digest(), Policy::default().digest());
        let e = parse("[default]\nidentity = { on_reuse = \"merge\" }\n", "p.toml")
            .expect_err("an unknown mode");
        assert_eq!(e.line, 2, "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0"), Ok(0));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("45m"), Ok(2_700));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        assert!(
            parse_duration("1w").is_err()
                && parse_duration("d").is_err()
                && parse_duration("").is_err()
        );
    }
}
