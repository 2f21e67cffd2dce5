//! The OpenAPI 3.1 document of the admin, ledger, events and gate APIs,
//! generated from the handlers' `#[utoipa::path]` annotations and the types
//! they take and send (`ToSchema`), plus `webhooks` from `events::payload`.
//! Served at `GET /admin/v1/openapi.json` and committed as
//! `docs/openapi.json` (`custodian openapi > docs/openapi.json`); a test holds
//! the two equal and every registered route to appear here.

use super::{audit, content, disposals, gate, replicas, sso, tombstones, webhooks};
use crate::events::payload::{self, Envelope, Subject};
use crate::http::import;
use actix_web::HttpResponse;
use serde_json::{Map, Value, json};
use std::sync::LazyLock;
use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

/// The bearer-token scopes, each its own security scheme. An admin
/// operation's `security` is its row of `access::ROUTES` (set by `Security`,
/// whatever its annotation says), so the document cannot drift from what the
/// server admits.
const SCOPES: &[(&str, &str)] = &[
    (
        "admin",
        "A token of scope `admin` (`custodian token create --scope admin`): every admin operation of its tenant.",
    ),
    (
        "ledger",
        "A token of scope `ledger`: what a content platform needs — writing the content ledger and user-data lines, reading content items, disposal receipts and the events feed.",
    ),
    (
        "auditor",
        "A token of scope `auditor`: read-only — every admin read (audit, disposals and receipts, plans, tombstones, policy, content, webhook state, events); nothing that changes data.",
    ),
    ("gate", "A token of scope `gate`: the sign-in check only."),
    (
        "scim",
        "A token of scope `scim`: the SCIM 2.0 API under `/scim/v2` (described by its own discovery endpoints, not here).",
    ),
];

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Custodian admin, ledger, events and gate API",
        description = "Custodian's own HTTP API beside SCIM 2.0: the content ledger, disposals and their receipts, tombstones, the events feed and webhooks, the audit log, and the sign-in gate. Every error answer is a SCIM error body (`application/scim+json`). Each tenant sees only its own data: the token names the tenant.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        serve,
        content::list,
        content::reassign,
        import::import_content,
        import::import_user_data,
        content::put,
        content::get,
        content::delete,
        content::history,
        content::put_user_data,
        content::transfer,
        disposals::plan,
        disposals::dispose,
        sso::put,
        sso::delete,
        disposals::list,
        disposals::release,
        disposals::reset_brake,
        disposals::set_legal_hold,
        disposals::lift_legal_hold,
        webhooks::state,
        webhooks::resume,
        webhooks::skip,
        webhooks::events,
        disposals::get,
        tombstones::list,
        tombstones::lift,
        tombstones::release,
        disposals::policy,
        audit::list,
        replicas::list,
        gate::check,
    ),
    components(schemas(
        crate::scim::error::ErrorBody,
        crate::deprovision::admin::UserDataLine,
        Envelope,
        Subject,
    )),
    modifiers(&Security, &Errors, &Payloads),
    tags(
        (name = "ledger", description = "The content ledger: who owns what (`ledger` or `admin` scope to write)"),
        (name = "disposals", description = "Disposal plans, disposals, receipts, the brake, legal holds, the policy"),
        (name = "tombstones", description = "Tombstones of disposed people (identifier types only)"),
        (name = "events", description = "The events feed and webhook delivery state"),
        (name = "audit", description = "The audit log"),
        (name = "gate", description = "The sign-in gate and SSO subjects"),
        (name = "meta", description = "This document"),
        (name = "replicas", description = "The replicas serving this database (the replica registry)"),
    ),
)]
struct ApiDoc;

/// The document, as served and committed (pretty JSON, a final newline).
pub fn document() -> &'static str {
    static DOC: LazyLock<String> = LazyLock::new(|| {
        let mut v = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null);
        if let Some(o) = v.as_object_mut() {
            o.insert("webhooks".into(), Value::Object(webhooks_doc()));
        }
        let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
        s.push('\n');
        s
    });
    &DOC
}

/// No token: the document describes the API and holds no tenant's data or
/// configuration (it is the committed `docs/openapi.json`), and client
/// generators and API fuzzers fetch it before they hold a token.
#[utoipa::path(
    get, path = "/admin/v1/openapi.json", operation_id = "getOpenApi", tag = "meta",
    summary = "This OpenAPI document",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)),
    security(()),
)]
pub(super) async fn serve() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document())
}

struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use actix_web::http::Method;
        use utoipa::openapi::security::SecurityRequirement;
        let components = doc.components.get_or_insert_with(Default::default);
        for (name, what) in SCOPES {
            components.add_security_scheme(
                *name,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(*what))
                        .build(),
                ),
            );
        }
        // Each admin operation admits the scopes of its access row: one
        // requirement per scope (any one of them suffices).
        for (path, item) in doc.paths.paths.iter_mut() {
            for (method, op) in [
                (Method::GET, &mut item.get),
                (Method::POST, &mut item.post),
                (Method::PUT, &mut item.put),
                (Method::DELETE, &mut item.delete),
            ] {
                if let (Some(op), Some(access)) = (op.as_mut(), super::access::of(&method, path)) {
                    op.security = Some(
                        access
                            .scopes()
                            .iter()
                            .map(|s| SecurityRequirement::new(s.as_str(), Vec::<String>::new()))
                            .collect(),
                    );
                }
            }
        }
    }
}

/// The error answers every operation may give (SCIM error bodies): 400 for a
/// malformed request, 401/403 for the token, 429 and 503 under load (with
/// `Retry-After`), and `default` for the operation's own refusals (404, 409,
/// 412, 413…).
struct Errors;

impl Modify for Errors {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder, header::Header};
        let error = |what: &str, retry: bool| {
            let mut b = ResponseBuilder::new().description(what).content(
                crate::http::error::SCIM_JSON,
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ScimError")))
                    .build(),
            );
            if retry {
                b = b.header(
                    "Retry-After",
                    Header::new(utoipa::openapi::schema::Object::with_type(
                        utoipa::openapi::schema::Type::Integer,
                    )),
                );
            }
            b.build()
        };
        let components = doc.components.get_or_insert_with(Default::default);
        for (name, what, retry) in [
            (
                "BadRequest",
                "The request is malformed (`scimType` says how)",
                false,
            ),
            (
                "Unauthorized",
                "No token, or an invalid or revoked one",
                false,
            ),
            (
                "Forbidden",
                "The token's scope does not allow this operation",
                false,
            ),
            (
                "TooManyRequests",
                "Too many requests in flight for this tenant, or too many failed authentications",
                true,
            ),
            (
                "Unavailable",
                "The database is busy or the request ran out of time; retry after the delay",
                true,
            ),
            (
                "Error",
                "A SCIM error: not found, conflict, precondition failed, payload too large, …",
                false,
            ),
        ] {
            components
                .responses
                .insert(name.into(), RefOr::T(error(what, retry)));
        }
        for item in doc.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                let open = op
                    .security
                    .as_ref()
                    .is_some_and(|s| serde_json::to_value(s).is_ok_and(|v| v == json!([{}])));
                let mut add = vec![("400", "BadRequest")];
                if !open {
                    add.extend([("401", "Unauthorized"), ("403", "Forbidden")]);
                }
                add.extend([
                    ("429", "TooManyRequests"),
                    ("503", "Unavailable"),
                    ("default", "Error"),
                ]);
                for (status, name) in add {
                    op.responses
                        .responses
                        .entry(status.into())
                        .or_insert_with(|| {
                            RefOr::Ref(Ref::new(format!("#/components/responses/{name}")))
                        });
                }
            }
        }
    }
}

/// Each event type's payload schema, referred to by `webhooks`.
struct Payloads;

impl Modify for Payloads {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        for (_, name, schema) in payload::schemas() {
            components.schemas.insert(name, schema);
        }
    }
}

/// OpenAPI 3.1 `webhooks`: one POST per event type, the envelope with that
/// type's `data`, signed as Standard Webhooks.
fn webhooks_doc() -> Map<String, Value> {
    let header = |name: &str, what: &str, example: &str| {
        json!({
            "name": name, "in": "header", "required": true, "description": what,
            "schema": {"type": "string"}, "example": example,
        })
    };
    let headers = json!([
        header(
            "webhook-id",
            "The event's id (the envelope's `id`): the same on every retry; de-duplicate on it.",
            "evt_0190f1c2a0b47d7e8f9a0b1c2d3e4f50"
        ),
        header(
            "webhook-timestamp",
            "Unix seconds when this attempt was signed; reject one too far from now.",
            "1767225600"
        ),
        header(
            "webhook-signature",
            "Space-separated `v1,<base64 HMAC-SHA256>` signatures of `{webhook-id}.{webhook-timestamp}.{body}` under the endpoint's `whsec_…` secret (several during a secret rotation). Verify with any Standard Webhooks library.",
            "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="
        ),
    ]);
    payload::schemas()
        .into_iter()
        .map(|(event, name, schema)| {
            let what = match &schema {
                utoipa::openapi::RefOr::T(utoipa::openapi::schema::Schema::Object(o)) => {
                    o.description.clone().unwrap_or_default()
                }
                _ => String::new(),
            };
            let op = json!({
                "post": {
                    "operationId": format!("webhook.{event}"),
                    "summary": format!("Event `{event}`"),
                    "description": what,
                    "tags": ["events"],
                    "parameters": headers,
                    "requestBody": {
                        "required": true,
                        "content": {"application/json": {"schema": {
                            "allOf": [
                                {"$ref": "#/components/schemas/Envelope"},
                                {
                                    "type": "object",
                                    "properties": {
                                        "type": {"const": event.as_str()},
                                        "data": {"$ref": format!("#/components/schemas/{name}")},
                                    },
                                },
                            ],
                        }}},
                    },
                    "responses": {
                        "2XX": {"description": "Delivered. Any other answer, or none within the delivery timeout, is retried with exponential backoff and jitter; after the retry window the endpoint is paused (see `GET /admin/v1/webhooks`)."},
                    },
                },
            });
            (event.as_str().to_string(), op)
        })
        .collect()
}
