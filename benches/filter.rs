//! SCIM filters: parsing alone, and parse + resolve + SQL translation on both
//! dialects (`store::filter_sql::translate` resolves every path against the
//! schema and types every literal before it writes SQL).
//!
//!     cargo bench --locked --bench filter
//!
//! Names: `filter/parse/<case>` and `filter/sql/<sqlite|postgres>/<case>`.

// Setup checks every case parses and translates before it is measured; a
// failure there is a broken benchmark, so it panics with the case's name.
#![allow(clippy::expect_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use custodian::scim::filter;
use custodian::store::Backend;
use custodian::store::filter_sql::{self, GROUPS, Target, USERS};
use std::hint::black_box;
use std::time::Duration;

struct Case {
    name: &'static str,
    target: &'static Target,
    filter: &'static str,
}

/// The filters identity providers send, and one that exercises the rest of
/// the grammar (and/or/not, a value path, an enterprise URN attribute, a
/// dateTime compared as an instant).
const CASES: &[Case] = &[
    // Okta and Entra: "does this user exist?"
    Case {
        name: "userName_eq",
        target: &USERS,
        filter: r#"userName eq "ada.lovelace@example.edu""#,
    },
    // Entra's default matching attribute (objectId → externalId).
    Case {
        name: "externalId_eq",
        target: &USERS,
        filter: r#"externalId eq "5f1c2b9e-8d4a-4c1b-9a57-2f3e6d7c8b90""#,
    },
    // Entra's email matching filter.
    Case {
        name: "emails_work_value",
        target: &USERS,
        filter: r#"emails[type eq "work"].value eq "ada.lovelace@example.edu""#,
    },
    // Okta's group push membership check.
    Case {
        name: "members_value",
        target: &GROUPS,
        filter: r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#,
    },
    Case {
        name: "complex",
        target: &USERS,
        filter: concat!(
            r#"(userName sw "ada" or emails[type eq "work" and value co "@example.edu"])"#,
            r#" and not (active eq false)"#,
            r#" and urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "Engineering""#,
            r#" and meta.lastModified gt "2024-01-01T00:00:00Z""#,
        ),
    },
];

const DIALECTS: &[(&str, Backend)] =
    &[("sqlite", Backend::Sqlite), ("postgres", Backend::Postgres)];

fn check_cases() {
    for case in CASES {
        let parsed = filter::parse(case.filter)
            .unwrap_or_else(|e| panic!("{}: does not parse: {}", case.name, e.detail));
        for (dialect, backend) in DIALECTS {
            let sql = filter_sql::translate(case.target, *backend, "tenant", &parsed)
                .unwrap_or_else(|e| {
                    panic!("{}: no {dialect} translation: {}", case.name, e.detail)
                });
            assert!(!sql.text().is_empty(), "{}: empty SQL", case.name);
        }
    }
}

fn benches(c: &mut Criterion) {
    check_cases();
    let mut g = c.benchmark_group("filter");
    for case in CASES {
        g.bench_function(format!("parse/{}", case.name), |b| {
            b.iter(|| filter::parse(black_box(case.filter)))
        });
    }
    for (dialect, backend) in DIALECTS {
        for case in CASES {
            g.bench_function(format!("sql/{dialect}/{}", case.name), |b| {
                b.iter(|| {
                    let f = filter::parse(black_box(case.filter)).expect("checked in setup");
                    filter_sql::translate(case.target, *backend, "tenant", &f)
                })
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = filter_benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .without_plots();
    targets = benches
}
criterion_main!(filter_benches);
