//! Request bodies shaped like the ones Okta and Entra send (see
//! conformance/idp-replay.json), and the naming scheme of generated people.

use bytes::Bytes;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::json;

const GIVEN: [&str; 12] = [
    "Ada", "Grace", "Linus", "Margaret", "Tim", "Barbara", "Ken", "Frances", "Dennis", "Radia",
    "Edsger", "Søren",
];
const FAMILY: [&str; 12] = [
    "Lovelace",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Berners-Lee",
    "Liskov",
    "Thompson",
    "Allen",
    "Ritchie",
    "Perlman",
    "Dijkstra",
    "Kierkegaard",
];
const DEPARTMENTS: [&str; 5] = ["Engineering", "Sales", "Research", "Finance", "Support"];

/// One generated person of a CRUD run. Even indexes are Okta-provisioned, odd
/// ones Entra-provisioned (different externalId and email conventions).
#[derive(Debug, Clone)]
pub struct Person {
    pub user_name: String,
    pub external_id: String,
    pub work_email: String,
    pub given: &'static str,
    pub family: &'static str,
    pub okta: bool,
}

pub fn person(run: &str, i: usize) -> Person {
    let given = GIVEN[i % GIVEN.len()];
    let family = FAMILY[(i / GIVEN.len()) % FAMILY.len()];
    let okta = i.is_multiple_of(2);
    let slug = format!("{}.{}", ascii(given), ascii(family));
    let user_name = format!("{slug}.{run}{i}@load.example.edu");
    if okta {
        Person {
            external_id: format!("00u{run}{i:08}"),
            work_email: user_name.clone(),
            user_name,
            given,
            family,
            okta,
        }
    } else {
        Person {
            external_id: format!("{:08x}-{}-4000-8000-{:012x}", i, &run[..4], i * 7919),
            // Entra's mail is often not the UPN.
            work_email: format!("{slug}{i}.{run}@mail.load.example.edu"),
            user_name,
            given,
            family,
            okta,
        }
    }
}

fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                'o'
            }
        })
        .collect()
}

/// POST /Users body in the provisioning client's own shape.
pub fn create_body(p: &Person, i: usize) -> Bytes {
    let v = if p.okta {
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": p.user_name,
            "name": {"givenName": p.given, "familyName": p.family},
            "emails": [{"primary": true, "value": p.work_email, "type": "work"}],
            "displayName": format!("{} {}", p.given, p.family),
            "locale": "en-US",
            "externalId": p.external_id,
            "groups": [],
            "password": format!("pw-{i:06}-x9"),
            "active": true
        })
    } else {
        json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
            ],
            "externalId": p.external_id,
            "userName": p.user_name,
            "active": true,
            "displayName": format!("{} {}", p.given, p.family),
            "title": "Analyst",
            "emails": [{"primary": true, "type": "work", "value": p.work_email}],
            "meta": {"resourceType": "User"},
            "name": {"formatted": format!("{} {}", p.given, p.family), "familyName": p.family, "givenName": p.given},
            "phoneNumbers": [{"type": "work", "value": format!("+1 555 01{:02}", i % 100)}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": format!("{}", 100_000 + i),
                "department": DEPARTMENTS[i % DEPARTMENTS.len()]
            }
        })
    };
    Bytes::from(v.to_string())
}

/// Entra's deactivation: capitalised op and the boolean as a string.
pub fn patch_active_entra(active: bool) -> Bytes {
    let v = if active { "True" } else { "False" };
    Bytes::from(
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Replace", "path": "active", "value": v}]
        })
        .to_string(),
    )
}

/// Okta's deactivation: a path-less replace with a map.
pub fn patch_active_okta(active: bool) -> Bytes {
    Bytes::from(
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "value": {"active": active}}]
        })
        .to_string(),
    )
}

pub fn patch_member(add: bool, member_id: &str) -> Bytes {
    let op = if add {
        json!({"op": "add", "path": "members", "value": [{"value": member_id}]})
    } else {
        json!({"op": "remove", "path": format!("members[value eq \"{member_id}\"]")})
    };
    Bytes::from(
        json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [op]})
            .to_string(),
    )
}

/// The scale dataset's people (written by `seed`, looked up by `scale`).
pub fn scale_user_name(i: usize) -> String {
    format!("user{i}@scale.example.edu")
}
pub fn scale_external_id(i: usize) -> String {
    format!("scale-ext-{i}")
}
pub fn scale_work_email(i: usize) -> String {
    format!("user{i}@work.scale.example.edu")
}
pub fn scale_owner(k: usize) -> String {
    format!("owner-{k}@scale.example.edu")
}
pub const SCALE_HEIR: &str = "heir@scale.example.edu";
pub const SCALE_GROUP: &str = "Scale group";

/// Query-string encoding: everything but unreserved characters.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

pub fn enc(s: &str) -> String {
    utf8_percent_encode(s, QUERY).to_string()
}

pub fn filter_eq(attr: &str, value: &str) -> String {
    enc(&format!("{attr} eq \"{value}\""))
}
