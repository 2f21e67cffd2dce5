//! Who may call each `/admin/v1` route: one row per method and route template.
//! The admin API's extractors (`http::auth::AdminCaller`, `AdminUpload`) admit
//! a token by its route's row, so a route missing here refuses every token: a
//! new route cannot be reached until it is classified, and
//! `tests/api/scopes.rs` holds every row to its own expectation over HTTP.

use crate::auth::Scope;
use actix_web::http::Method;

/// A route's class; each admits a fixed set of token scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Changes data: `admin` only.
    Admin,
    /// The platform's sync job writes the content ledger and user data:
    /// `admin`, `ledger`.
    LedgerWrite,
    /// Reads (changes nothing): `admin`, `auditor`.
    Read,
    /// Reads a platform receiver needs as well (a content item, a disposal's
    /// receipt, the events feed): `admin`, `auditor`, `ledger`.
    LedgerRead,
}

impl Access {
    pub fn scopes(self) -> &'static [Scope] {
        match self {
            Access::Admin => &[Scope::Admin],
            Access::LedgerWrite => &[Scope::Admin, Scope::Ledger],
            Access::Read => &[Scope::Admin, Scope::Auditor],
            Access::LedgerRead => &[Scope::Admin, Scope::Auditor, Scope::Ledger],
        }
    }
}

/// One admin route: its method, its template as actix matches it, its class.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
}

const fn r(method: &'static str, path: &'static str, access: Access) -> Route {
    Route {
        method,
        path,
        access,
    }
}

use Access::{Admin, LedgerRead, LedgerWrite, Read};

/// Every `/admin/v1` route, and `/metrics` on the main port (README "Scopes" says the same in prose).
pub const ROUTES: &[Route] = &[
    r("GET", "/admin/v1/content", Read),
    r("POST", "/admin/v1/content:reassign", Admin),
    r("POST", "/admin/v1/content:import", LedgerWrite),
    r("POST", "/admin/v1/user-data:import", LedgerWrite),
    r("PUT", "/admin/v1/content/{kind}/{id}", LedgerWrite),
    r("GET", "/admin/v1/content/{kind}/{id}", LedgerRead),
    r("DELETE", "/admin/v1/content/{kind}/{id}", LedgerWrite),
    r("GET", "/admin/v1/content/{kind}/{id}/history", Read),
    r("PUT", "/admin/v1/user-data/{category}/{id}", LedgerWrite),
    r("POST", "/admin/v1/users/{id}/transfer", Admin),
    r("GET", "/admin/v1/users/{id}/disposal-plan", Read),
    r("POST", "/admin/v1/users/{id}/dispose", Admin),
    r("PUT", "/admin/v1/users/{id}/sso-subjects", Admin),
    r("DELETE", "/admin/v1/users/{id}/sso-subjects", Admin),
    r("GET", "/admin/v1/disposals", Read),
    r("GET", "/admin/v1/disposals/{id}", LedgerRead),
    r("POST", "/admin/v1/disposals/{id}/release", Admin),
    r("POST", "/admin/v1/brake/reset", Admin),
    r("PUT", "/admin/v1/users/{id}/legal-hold", Admin),
    r("DELETE", "/admin/v1/users/{id}/legal-hold", Admin),
    r("GET", "/admin/v1/webhooks", Read),
    r("POST", "/admin/v1/webhooks:resume", Admin),
    r("POST", "/admin/v1/webhooks:skip", Admin),
    r("GET", "/admin/v1/events", LedgerRead),
    r("GET", "/admin/v1/tombstones", Read),
    r("POST", "/admin/v1/tombstones:lift", Admin),
    r("POST", "/admin/v1/tombstones:release", Admin),
    r("GET", "/admin/v1/policy", Read),
    r("GET", "/admin/v1/audit", Read),
    // The replica registry: deployment-wide, no tenant data (README "Running replicas").
    r("GET", "/admin/v1/replicas", Read),
    // Prometheus on the main port (`metrics_bind` serves it without a token).
    r("GET", "/metrics", Admin),
];

/// The class of the route a request matched (`HttpRequest::match_pattern`).
pub fn of(method: &Method, pattern: &str) -> Option<Access> {
    ROUTES
        .iter()
        .find(|r| r.path == pattern && r.method == method.as_str())
        .map(|r| r.access)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_route_is_classified_once_and_reads_are_gets() {
        for (i, a) in ROUTES.iter().enumerate() {
            assert!(
                !ROUTES[i + 1..]
                    .iter()
                    .any(|b| a.method == b.method && a.path == b.path),
                "{} {} is listed twice",
                a.method,
                a.path
            );
            // A class that admits the auditor changes nothing: a GET (no
            // lookup POST exists yet; one would be listed here by name).
            if a.access.scopes().contains(&Scope::Auditor) {
                assert_eq!(a.method, "GET", "{} is readable by auditors", a.path);
            }
        }
        assert_eq!(
            of(&Method::POST, "/admin/v1/tombstones:lift"),
            Some(Access::Admin)
        );
        assert_eq!(of(&Method::GET, "/admin/v1/tombstones:lift"), None);
    }

    /// Every route the server registers under `/admin/v1` has its row (the
    /// document, open to all, excepted): a route added to the route table
    /// without one would refuse every token.
    #[test]
    fn every_registered_admin_route_is_classified() {
        for (method, path) in crate::http::admin::routes() {
            if path.starts_with("/admin/v1") && path != "/admin/v1/openapi.json" {
                assert!(
                    of(&method, &path).is_some(),
                    "{method} {path} has no access row"
                );
            }
        }
        for r in ROUTES.iter().filter(|r| r.path.starts_with("/admin/v1")) {
            assert!(
                crate::http::admin::routes()
                    .iter()
                    .any(|(m, p)| m.as_str() == r.method && p == r.path),
                "{} {} is classified but not registered",
                r.method,
                r.path
            );
        }
    }

    /// Fail closed: a route nobody classified answers 403 before any token is
    /// looked at (no database, no state needed to refuse).
    #[actix_web::test]
    async fn a_route_missing_from_the_table_refuses_every_caller() {
        use crate::http::auth::AdminCaller;
        use actix_web::{App, test, web};
        let app = test::init_service(App::new().service(web::scope("/admin/v1").route(
            "/unlisted",
            web::get().to(|_: AdminCaller| async { "reached" }),
        )))
        .await;
        let req = test::TestRequest::get()
            .uri("/admin/v1/unlisted")
            .insert_header(("Authorization", "Bearer cust_0123456789abcdef_x"))
            .to_request();
        let r = test::call_service(&app, req).await;
        assert_eq!(r.status(), 403);
        let body = test::read_body(r).await;
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("missing from the access table"), "{text}");
    }
}
