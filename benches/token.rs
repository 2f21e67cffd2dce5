//! Bearer-token verification against a real SQLite database in a temp dir.
//!
//!     cargo bench --locked --bench token
//!
//! - `token/verify_cached`: the hot path of every request: the token row read
//!   by primary key (so revocation is seen at once), SHA-256 of the secret, a
//!   cache hit.
//! - `token/verify_cold_argon2id`: the same with an empty cache (a fresh
//!   `Verifier` each time), so the argon2id verification runs: the first request
//!   of a token after a restart. Few samples: each costs tens of milliseconds.

// Setup failures (temp dir, database, token) are a broken benchmark: panic.
#![allow(clippy::expect_used)]

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use custodian::auth::{Scope, Verifier, create_token};
use custodian::store::Db;
use std::hint::black_box;
use std::time::Duration;

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("custodian.db").display());
    let db = Db::open(&url, 2, true).expect("open database");
    let token = create_token(&db, "acme", Scope::Scim, "okta", None)
        .expect("create token")
        .plaintext;
    // Other tenants' tokens, so the table is not a single row.
    for i in 0..20 {
        create_token(&db, &format!("tenant-{i}"), Scope::Scim, "entra", None)
            .expect("create token");
    }
    let allowed = [Scope::Scim];

    let verifier = Verifier::default();
    let p = verifier
        .verify(&db, &token, &allowed)
        .expect("the token verifies");
    assert_eq!(p.tenant_name, "acme");

    let mut g = c.benchmark_group("token");
    g.bench_function("verify_cached", |b| {
        b.iter(|| verifier.verify(&db, black_box(&token), &allowed))
    });
    g.finish();

    let mut g = c.benchmark_group("token");
    g.sample_size(10).sampling_mode(SamplingMode::Flat);
    g.bench_function("verify_cold_argon2id", |b| {
        b.iter(|| Verifier::default().verify(&db, black_box(&token), &allowed))
    });
    g.finish();
    drop(db);
    drop(dir);
}

criterion_group! {
    name = token_benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .without_plots();
    targets = benches
}
criterion_main!(token_benches);
