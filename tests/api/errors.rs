use crate::common::{Backend, Options, spawn_app, spawn_app_with};
use crate::{body, create_user, patch_body};
use reqwest::Method;
use serde_json::json;

/// (method, path, raw body, JSON body, status, scimType, text the detail contains)
type Case = (
    Method,
    String,
    Option<&'static str>,
    Option<serde_json::Value>,
    u16,
    Option<&'static str>,
    &'static str,
);

async fn bad_input_gets_precise_scim_errors(b: Backend) {
    let app = spawn_app_with(
        b,
        Options {
            max_body_bytes: 4096,
            ..Default::default()
        },
    )
    .await;
    let id = create_user(&app, "err@example.edu").await;
    let cases: Vec<Case> = vec![
        (
            Method::POST,
            "/Users".into(),
            Some("{\"userName\": "),
            None,
            400,
            Some("invalidSyntax"),
            "not valid JSON",
        ),
        (
            Method::POST,
            "/Users".into(),
            None,
            Some(json!({"displayName": "no userName"})),
            400,
            Some("invalidValue"),
            "'userName' is required",
        ),
        (
            Method::POST,
            "/Users".into(),
            None,
            Some(json!({"userName": "x", "active": "perhaps"})),
            400,
            Some("invalidValue"),
            "boolean",
        ),
        (
            Method::POST,
            "/Users".into(),
            None,
            Some(json!(["not", "an", "object"])),
            400,
            Some("invalidSyntax"),
            "JSON object",
        ),
        (
            Method::GET,
            "/Users?filter=userName%20garbage".into(),
            None,
            None,
            400,
            Some("invalidFilter"),
            "not an operator",
        ),
        (
            Method::GET,
            "/Users?filter=bogusAttr%20eq%20%22x%22".into(),
            None,
            None,
            400,
            Some("invalidFilter"),
            "'bogusAttr' is not an attribute",
        ),
        (
            Method::GET,
            "/Users?filter=title%20eq%20true".into(),
            None,
            None,
            400,
            Some("invalidFilter"),
            "'title' is a string",
        ),
        (
            Method::GET,
            "/Users?sortBy=name".into(),
            None,
            None,
            400,
            Some("invalidValue"),
            "sorting by 'name'",
        ),
        (
            Method::GET,
            "/Users?cursor=bm9wZQ".into(),
            None,
            None,
            400,
            Some("invalidCursor"),
            "cursor is not valid",
        ),
        (
            Method::GET,
            "/Users?cursor=&count=5000".into(),
            None,
            None,
            400,
            Some("invalidCount"),
            "maximum page size",
        ),
        (
            Method::GET,
            "/Users?count=abc".into(),
            None,
            None,
            400,
            Some("invalidValue"),
            "'count'",
        ),
        (
            Method::PATCH,
            format!("/Users/{id}"),
            None,
            Some(patch_body(
                json!([{"op": "add", "path": "emails[type eq", "value": "x"}]),
            )),
            400,
            Some("invalidPath"),
            "Operations[0]",
        ),
        (
            Method::PATCH,
            format!("/Users/{id}"),
            None,
            Some(patch_body(json!([{"op": "remove"}]))),
            400,
            Some("noTarget"),
            "needs a 'path'",
        ),
        (
            Method::PATCH,
            format!("/Users/{id}"),
            None,
            Some(json!({"Operations": [{"op": "move", "path": "title"}]})),
            400,
            Some("invalidSyntax"),
            "'move'",
        ),
        (
            Method::GET,
            "/Users/does-not-exist".into(),
            None,
            None,
            404,
            None,
            "does-not-exist",
        ),
        (
            Method::GET,
            "/Nope".into(),
            None,
            None,
            404,
            None,
            "no such endpoint",
        ),
        (
            Method::POST,
            "/ServiceProviderConfig".into(),
            None,
            Some(json!({})),
            405,
            None,
            "not allowed",
        ),
        (
            Method::DELETE,
            "/Schemas".into(),
            None,
            None,
            405,
            None,
            "not allowed",
        ),
        (
            Method::GET,
            "/Me".into(),
            None,
            None,
            501,
            None,
            "/Me is not supported",
        ),
        (
            Method::POST,
            "/Users".into(),
            None,
            Some(json!({"userName": "big", "title": "x".repeat(5000)})),
            413,
            None,
            "exceeds the limit",
        ),
    ];
    for (method, path, raw, json_body, status, scim_type, needle) in cases {
        let mut r = app.req(method.clone(), &path);
        if let Some(raw) = raw {
            r = r.body(raw.to_string());
        } else if let Some(j) = json_body {
            r = r.json(&j);
        }
        let resp = r.send().await.expect("send");
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let (s, v) = body(resp).await;
        assert_eq!(s, status, "{method} {path}: {v}");
        assert!(
            ct.starts_with("application/scim+json"),
            "{method} {path}: {ct}"
        );
        assert_eq!(
            v["schemas"][0],
            "urn:ietf:params:scim:api:messages:2.0:Error"
        );
        assert_eq!(v["status"], status.to_string());
        assert_eq!(v["scimType"].as_str(), scim_type, "{method} {path}: {v}");
        assert!(
            v["detail"].as_str().is_some_and(|d| d.contains(needle)),
            "{method} {path}: {v}"
        );
    }
    // Unsupported media type.
    let (s, _) = body(
        app.client
            .post(app.url("/Users"))
            .bearer_auth(&app.token)
            .header("Content-Type", "text/plain")
            .body("{}")
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 415);
    // Nothing was written by any of the above.
    let (_, v) = body(
        app.req(Method::GET, "/Users?count=0")
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(v["totalResults"], 1);
}
crate::both_backends!(bad_input, super::bad_input_gets_precise_scim_errors);

async fn media_types(b: Backend) {
    let app = spawn_app(b).await;
    for ct in [
        "application/json",
        "application/scim+json; charset=utf-8",
        "application/scim+json",
    ] {
        let r = app
            .client
            .post(app.url("/Users"))
            .bearer_auth(&app.token)
            .header("Content-Type", ct)
            .body(json!({"userName": format!("{}@mt.example", ct.len())}).to_string())
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 201, "{ct}");
    }
    // GET and DELETE carrying a Content-Type and no body (Okta) are fine.
    let r = app
        .client
        .get(app.url("/Users"))
        .bearer_auth(&app.token)
        .header("Content-Type", "application/scim+json; charset=utf-8")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 200);
    // Discovery describes what is served.
    let (_, spc) = body(
        app.client
            .get(app.url("/ServiceProviderConfig"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(
        (
            spc["patch"]["supported"].as_bool(),
            spc["bulk"]["supported"].as_bool()
        ),
        (Some(true), Some(true))
    );
    // Sorting and both paging methods (RFC 9865) are advertised, truthfully.
    assert_eq!(spc["sort"]["supported"], true);
    assert_eq!(spc["filter"]["maxResults"], 1000);
    assert_eq!(
        spc["pagination"],
        serde_json::json!({"cursor": true, "index": true, "defaultPaginationMethod": "index", "defaultPageSize": 100, "maxPageSize": 1000})
    );
    let (_, rts) = body(
        app.client
            .get(app.url("/ResourceTypes/User"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(rts["endpoint"], "/Users");
    let (s, _) = body(
        app.client
            .get(app.url("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = body(
        app.client
            .get(app.url("/Schemas/urn:nope"))
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 404);
    // Trailing slash (Microsoft's Postman collection) and unknown query parameters (Entra's flag).
    let (s, _) = body(
        app.client
            .get(format!("{}/?aadOptscim062020", app.url("/Users")))
            .bearer_auth(&app.token)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(s, 200);
}
crate::both_backends!(media_and_discovery, super::media_types);
