//! SQLite: a disposed person's identifiers leave the database file *and* the
//! write-ahead log soon after a SCIM DELETE, without the DELETE waiting for
//! (or holding the writer during) the checkpoint that truncates the log.

use crate::body;
use crate::common::{Backend, spawn_app};
use diesel::RunQueryDsl;
use reqwest::Method;
use serde_json::json;
use std::time::{Duration, Instant};

#[derive(diesel::QueryableByName)]
struct SecureDelete {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    secure_delete: i32,
}

/// The needles (case-insensitively) found in the raw bytes of the database
/// file and its `-wal` (the `-shm` holds only the log's index).
fn found_in_files(path: &str, needles: &[&str]) -> Vec<String> {
    let mut hay = std::fs::read(path).expect("read database file");
    if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
        hay.extend(wal);
    }
    hay.make_ascii_lowercase();
    needles
        .iter()
        .filter(|n| {
            let n = n.to_ascii_lowercase();
            hay.windows(n.len()).any(|w| w == n.as_bytes())
        })
        .map(|n| n.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_disposed_identifiers_leave_the_file_and_the_wal() {
    let app = spawn_app(Backend::Sqlite).await;
    let path = app
        .db_url
        .strip_prefix("sqlite://")
        .expect("a SQLite test app")
        .to_string();
    // Freed cells and pages are zeroed, not merely unlinked.
    let on = app
        .db
        .read(|c| {
            diesel::sql_query("PRAGMA secure_delete")
                .get_result::<SecureDelete>(c)
                .map_err(custodian::store::StoreError::from)
        })
        .expect("pragma");
    assert_eq!(on.secure_delete, 1, "secure_delete must be on");

    // Neighbours share the leaver's pages, so the pages are rewritten, not dropped.
    for i in 0..20 {
        crate::create_user(&app, &format!("neighbour{i}@wal.example")).await;
    }
    let needles = [
        "Wilhelmina.Quarrington@wal.example",
        "wq-private-7731@home.example",
        "Wilhelmina",
        "Quarrington",
    ];
    let (s, v) = body(
        app.req(Method::POST, "/Users")
            .json(&json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": needles[0],
                "name": {"givenName": needles[2], "familyName": needles[3]},
                "emails": [
                    {"primary": true, "type": "work", "value": needles[0]},
                    {"type": "home", "value": needles[1]}
                ],
                "active": true
            }))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().expect("id").to_string();
    // Committed: in the log (and perhaps the file) before the DELETE.
    assert_eq!(found_in_files(&path, &needles), needles.to_vec());

    let r = app
        .req(Method::DELETE, &format!("/Users/{id}"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 204);
    // The disposal committed before the 204.
    let r = app
        .req(Method::GET, &format!("/Users/{id}"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 404);

    // A failure guard, not a timing: the checkpoint runs in the background and
    // must have truncated the log within 10 s.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut left = found_in_files(&path, &needles);
    while !left.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = found_in_files(&path, &needles);
    }
    assert!(
        left.is_empty(),
        "still in the database file or WAL 10 s after the DELETE: {left:?}"
    );
    // The neighbours are intact.
    let (s, v) = body(
        app.req(
            Method::GET,
            "/Users?filter=userName%20eq%20%22neighbour7@wal.example%22",
        )
        .send()
        .await
        .expect("send"),
    )
    .await;
    assert_eq!((s, v["totalResults"].as_i64()), (200, Some(1)), "{v}");
}
