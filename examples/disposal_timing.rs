//! Measures one disposal of an owner of N items, on SQLite or PostgreSQL.
//!
//!     cargo run --release --example disposal_timing -- sqlite:///tmp/t.db 100000
//!     cargo run --release --example disposal_timing -- postgres://postgres@127.0.0.1/test 100000
//!
//! Seeds a fresh tenant (set-based inserts), then times `execute` in one write
//! transaction, the way SCIM DELETE runs it. Prints the time before each executor
//! step and the receipt counts on stderr, and one JSON line
//! (`{"backend":…,"items":…,"seconds":…}`) on stdout.

use custodian::deprovision::disposal::{self, DisposeInput};
use custodian::deprovision::policy::Policy;
use custodian::deprovision::tombstone::TombstoneKeys;
use custodian::store::Db;
// The tests' raw-SQL helper (the store's SQL builder is private to it).
#[allow(dead_code)]
#[path = "../tests/common/sql.rs"]
mod sql;
use sql::{Sql, execute_sql};
use std::time::Instant;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let url = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| "sqlite:///tmp/custodian-disposal-timing.db".into());
    let n: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let db = Db::open(&url, 2, true).map_err(|e| e.to_string())?;
    let now = custodian::store::time::now();
    let tenant = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let t = db
        .write(|c| custodian::store::tokens::ensure_tenant(c, &tenant, &now))
        .map_err(|e| e.to_string())?;
    let (heir, person) = (
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::new_v4().to_string(),
    );
    let seed = Instant::now();
    db.write(|c| {
        for (id, name, manager) in [(&heir, "heir", None), (&person, "owner", Some(&heir))] {
            let mut s = Sql::default();
            s.push("INSERT INTO users (id, tenant_id, state, user_name, user_name_key, active, manager_id, data, created_at, updated_at, version) VALUES (")
                .bind_text(id.clone())
                .push(", ")
                .bind_text(t.id.clone())
                .push(&format!(", 'active', '{name}@bench', '{name}@bench', TRUE, "));
            match manager {
                Some(m) => s.bind_text(m.clone()),
                None => s.push("NULL"),
            };
            s.push(", '{}', ").bind_text(now.clone()).push(", ").bind_text(now.clone()).push(", 1)");
            execute_sql(c, &s)?;
        }
        let ids: Vec<usize> = (0..n).collect();
        for chunk in ids.chunks(1000) {
            let mut s = Sql::default();
            s.push("INSERT INTO content_items (tenant_id, kind, item_id, owner_id, personal_root, created_at, updated_at) VALUES ");
            for (k, i) in chunk.iter().enumerate() {
                if k > 0 {
                    s.push(", ");
                }
                let kind = ["recording", "presentation", "folder", "draft"][i % 4];
                s.push("(").bind_text(t.id.clone()).push(&format!(", '{kind}', 'i{i}', ")).bind_text(person.clone());
                s.push(", FALSE, ").bind_text(now.clone()).push(", ").bind_text(now.clone()).push(")");
            }
            execute_sql(c, &s)?;
        }
        Ok::<_, custodian::store::StoreError>(())
    })
    .map_err(|e| e.to_string())?;
    eprintln!("seeded {n} items in {:.2}s", seed.elapsed().as_secs_f64());
    let mut policy = Policy::default();
    policy.kinds.insert(
        "draft".into(),
        custodian::deprovision::policy::KindAction::Delete,
    );
    let keys = TombstoneKeys::from_spec(&"ab".repeat(32))?;
    let start = Instant::now();
    // The executor's step hook doubles as a profiler: time between steps.
    let last = std::cell::Cell::new(Instant::now());
    let steps = std::cell::RefCell::new(Vec::<(String, f64)>::new());
    let hook = |step: &str| {
        let now = Instant::now();
        steps
            .borrow_mut()
            .push((step.to_string(), (now - last.get()).as_secs_f64()));
        last.set(now);
        Ok(())
    };
    // As SCIM DELETE runs it: a transaction of its own (`Db::write_alone`).
    let receipt = db
        .write_alone(|c| {
            // Callers hold the tenant's counter row (`execute` counts the disposal).
            custodian::events::lock_tenant(c, &t.id)?;
            disposal::execute(
                c,
                &DisposeInput {
                    tenant_id: &t.id,
                    person: &person,
                    caller: None,
                    actor: "bench",
                    cause: custodian::domain::Cause::Delete,
                    policy: &policy,
                    keys: &keys,
                    now: &now,
                    disposal_id: None,
                    person_row: None,
                    prepared: None,
                    hook: &hook,
                },
            )
        })
        .map_err(|e| e.to_string())?;
    let secs = start.elapsed().as_secs_f64();
    steps
        .borrow_mut()
        .push(("commit".into(), last.get().elapsed().as_secs_f64()));
    // Each figure is the time spent before reaching that step (the first is the plan).
    for (step, t) in steps.borrow().iter() {
        eprintln!("  until {step:<10} {t:.3}s");
    }
    eprintln!(
        "disposed {n} items in {secs:.3}s: {}",
        serde_json::to_string(&receipt.counts).unwrap_or_default()
    );
    // One machine-readable line on stdout, for benchmark scripts.
    println!(
        "{{\"backend\":\"{}\",\"items\":{n},\"seconds\":{secs:.3}}}",
        if url.starts_with("postgres") {
            "postgres"
        } else {
            "sqlite"
        }
    );
    Ok(())
}
