//! The PATCH engine on a realistic user: the shapes Okta and Entra send.
//!
//!     cargo bench --locked --bench patch
//!
//! Names: `patch/<case>` applies already-parsed operations (`scim::patch::apply`,
//! including the re-normalisation of the result); `patch/request/<case>` is the
//! whole engine for one request body: JSON text → `parse_request` → `apply`.

// Setup checks every case's outcome before it is measured; a failure there is
// a broken benchmark, so it panics.
#![allow(clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use custodian::scim::patch::{self, Operation, PatchContext};
use custodian::scim::resource::{Doc, normalize};
use custodian::scim::schema::{ENTERPRISE_URN, USER_TYPE};
use serde_json::{Value, json};
use std::hint::black_box;
use std::time::Duration;

const USER_ID: &str = "2819c223-7f76-453a-919d-413861904646";

/// A user as Entra provisions one: core attributes, several emails, phones and
/// addresses, the enterprise extension with a manager.
fn user() -> Doc {
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE_URN],
        "externalId": "5f1c2b9e-8d4a-4c1b-9a57-2f3e6d7c8b90",
        "userName": "ada.lovelace@example.edu",
        "active": true,
        "displayName": "Ada Lovelace",
        "nickName": "Ada",
        "title": "Senior Analyst",
        "userType": "Employee",
        "preferredLanguage": "en-GB",
        "locale": "en-GB",
        "timezone": "Europe/London",
        "name": {
            "formatted": "Ms. Augusta Ada Lovelace",
            "familyName": "Lovelace",
            "givenName": "Augusta",
            "middleName": "Ada",
            "honorificPrefix": "Ms."
        },
        "emails": [
            {"value": "ada.lovelace@example.edu", "type": "work", "primary": true},
            {"value": "ada@home.example", "type": "home"}
        ],
        "phoneNumbers": [
            {"value": "+44 20 7946 0958", "type": "work"},
            {"value": "+44 7700 900123", "type": "mobile"}
        ],
        "addresses": [{
            "type": "work",
            "streetAddress": "1 Analytical Row",
            "locality": "London",
            "postalCode": "EC1A 1BB",
            "country": "GB",
            "primary": true
        }],
        ENTERPRISE_URN: {
            "employeeNumber": "701984",
            "costCenter": "4130",
            "organization": "Example University",
            "division": "Research",
            "department": "Computing",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}
        }
    });
    normalize(&USER_TYPE, &body).expect("the sample user is valid")
}

struct Case {
    name: &'static str,
    body: Value,
    check: fn(&Doc),
}

fn cases() -> Vec<Case> {
    vec![
        // Entra deactivation: capitalised op, the boolean as a string.
        Case {
            name: "entra_active_false",
            body: json!({
                "schemas": [patch::PATCH_URN],
                "Operations": [{"op": "Replace", "path": "active", "value": "False"}]
            }),
            check: |d| assert_eq!(d["active"], false),
        },
        // Okta deactivation: a path-less value map.
        Case {
            name: "okta_active_false",
            body: json!({
                "schemas": [patch::PATCH_URN],
                "Operations": [{"op": "replace", "value": {"active": false}}]
            }),
            check: |d| assert_eq!(d["active"], false),
        },
        // An Entra profile update: filtered-path upsert, then a path-less map
        // with dotted and URN-qualified keys, and a manager change.
        Case {
            name: "entra_profile_update",
            body: json!({
                "schemas": [patch::PATCH_URN],
                "Operations": [
                    {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "a.lovelace@example.edu"},
                    {"op": "Replace", "path": "title", "value": "Principal Analyst"},
                    {"op": "Replace", "value": {
                        "displayName": "Ada King",
                        "name.familyName": "King",
                        "name.formatted": "Augusta Ada King",
                        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Mathematics",
                        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "701985"
                    }},
                    {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
                     "value": [{"$ref": null, "value": "9c4e1a52-3d07-4b7e-8f3a-6a1b2c3d4e5f"}]},
                    {"op": "Replace", "path": "active", "value": "True"}
                ]
            }),
            check: |d| {
                assert_eq!(d["displayName"], "Ada King");
                assert_eq!(d["name"]["familyName"], "King");
                assert_eq!(d["emails"][0]["value"], "a.lovelace@example.edu");
                assert_eq!(d[ENTERPRISE_URN]["department"], "Mathematics");
                assert_eq!(
                    d[ENTERPRISE_URN]["manager"]["value"],
                    "9c4e1a52-3d07-4b7e-8f3a-6a1b2c3d4e5f"
                );
                assert_eq!(d["active"], true);
            },
        },
    ]
}

fn apply(doc: &Doc, ops: &[Operation]) -> Doc {
    let ctx = PatchContext {
        rt: &USER_TYPE,
        id: USER_ID,
    };
    patch::apply(&ctx, doc, ops).expect("checked in setup")
}

fn benches(c: &mut Criterion) {
    let doc = user();
    let mut g = c.benchmark_group("patch");
    for case in cases() {
        let ops = patch::parse_request(&case.body).expect("the sample PATCH parses");
        (case.check)(&apply(&doc, &ops));
        g.bench_function(case.name, |b| {
            b.iter(|| apply(black_box(&doc), black_box(&ops)))
        });
        let text = case.body.to_string();
        g.bench_function(format!("request/{}", case.name), |b| {
            b.iter(|| {
                let body: Value = serde_json::from_str(black_box(&text)).expect("valid JSON");
                let ops = patch::parse_request(&body).expect("checked in setup");
                apply(&doc, &ops)
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = patch_benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .without_plots();
    targets = benches
}
criterion_main!(patch_benches);
