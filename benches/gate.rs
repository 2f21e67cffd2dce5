//! The SSO gate decision (`POST /gate/v1/check` without `register`): one read
//! connection, `deprovision::gate::check`, against a real SQLite database in a
//! temp dir, seeded through the provisioning service the SCIM handlers use.
//!
//!     cargo bench --locked --bench gate
//!
//! Each check names a userName and a work email, as a login does. Names:
//! `gate/active` (allow), `gate/suspended` (deny: the IdP sent active=false),
//! `gate/disposed` (deny: SCIM DELETE disposed the person; found by tombstone),
//! `gate/unknown` (no user, no tombstone: the policy's `gate.unknown`).

// Setup failures (temp dir, database, seeding) are a broken benchmark: panic.
#![allow(clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use custodian::clock::SystemClock;
use custodian::deprovision::gate::{self, GateRequest};
use custodian::deprovision::policy::PolicySet;
use custodian::deprovision::service::Deprov;
use custodian::deprovision::setup;
use custodian::deprovision::tombstone::TombstoneKeys;
use custodian::domain::Actor;
use custodian::provisioning::{Services, users};
use custodian::scim::patch;
use custodian::store::{Db, StoreError};
use serde_json::json;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

const TOMBSTONE_KEY: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const BASE: &str = "http://127.0.0.1:8080";
/// Other people in the tenant, so lookups run against populated indexes.
const POPULATION: usize = 500;

fn create(svc: &Services, caller: &Actor, user_name: &str, external_id: &str) -> String {
    let body = json!({
        "userName": user_name,
        "externalId": external_id,
        "active": true,
        "name": {"givenName": "Bench", "familyName": user_name},
        "emails": [{"value": user_name, "type": "work", "primary": true}]
    });
    let r = users::create(svc, caller, &body, &Default::default(), BASE).expect("create user");
    r.body["id"].as_str().expect("id").to_string()
}

fn request(user_name: &str) -> GateRequest {
    GateRequest {
        user_name: Some(user_name.to_string()),
        email: vec![user_name.to_uppercase()],
        ..GateRequest::default()
    }
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("custodian.db").display());
    let db = Db::open(&url, 2, true).expect("open database");
    let keys = TombstoneKeys::from_spec(TOMBSTONE_KEY).expect("tombstone key");
    setup::check_key(&db, &keys).expect("key check");
    let deprov = Arc::new(Deprov::new(
        PolicySet::default(),
        keys,
        Arc::new(SystemClock),
    ));
    let svc = Services {
        db: db.clone(),
        deprov: Arc::clone(&deprov),
        limits: Default::default(),
    };
    let now = custodian::store::time::now();
    let tenant = db
        .write(|c| custodian::store::tokens::ensure_tenant(c, "acme", &now))
        .expect("tenant");
    let caller = Actor {
        tenant_id: tenant.id.clone(),
        tenant_name: tenant.name.clone(),
        actor: "bench".into(),
        acts_as: None,
        caller_user_id: None,
    };

    for i in 0..POPULATION {
        create(
            &svc,
            &caller,
            &format!("person{i:04}@example.edu"),
            &format!("ext-{i:04}"),
        );
    }
    let active = create(&svc, &caller, "ada@example.edu", "ext-ada");
    // Okta deactivation: PATCH active=false suspends.
    let suspended = create(&svc, &caller, "grace@example.edu", "ext-grace");
    let ops = patch::parse_request(&json!({
        "schemas": [patch::PATCH_URN],
        "Operations": [{"op": "replace", "value": {"active": false}}]
    }))
    .expect("PATCH parses");
    users::patch(
        &svc,
        &caller,
        &suspended,
        &ops,
        None,
        &Default::default(),
        BASE,
    )
    .expect("suspend");
    // SCIM DELETE disposes at once under the default policy: tombstone, scrub.
    let disposed = create(&svc, &caller, "alan@example.edu", "ext-alan");
    users::delete(&svc, &caller, &disposed, None, BASE).expect("dispose");

    let policy = deprov.policy(&caller.tenant_name);
    let check = |req: &GateRequest| {
        db.read(|c| gate::check(c, &deprov.keys, &policy, &caller.tenant_id, req))
    };
    // (name, who logs in, expected (decision, reason))
    let cases = [
        ("active", "ada@example.edu", ("allow", "active")),
        ("suspended", "grace@example.edu", ("deny", "suspended")),
        ("disposed", "alan@example.edu", ("deny", "deprovisioned")),
        ("unknown", "nobody@example.edu", ("allow_jit", "unknown")),
    ]
    .map(|(name, who, expected)| (name, request(who), expected));
    for (name, req, expected) in &cases {
        let a = check(req).expect("gate check");
        assert_eq!(
            (a.decision.as_str(), a.reason.as_str()),
            *expected,
            "gate/{name}"
        );
    }
    assert_eq!(
        check(&cases[0].1).expect("gate check").user_id.as_deref(),
        Some(active.as_str())
    );

    let mut g = c.benchmark_group("gate");
    for (name, req, ..) in &cases {
        g.bench_function(*name, |b| {
            b.iter(|| -> Result<gate::GateAnswer, StoreError> { check(black_box(req)) })
        });
    }
    g.finish();
    drop(svc);
    drop(deprov);
    drop(db);
    drop(dir);
}

criterion_group! {
    name = gate_benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .without_plots();
    targets = benches
}
criterion_main!(gate_benches);
