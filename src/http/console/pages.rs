//! The console's pages (GET): each reads its tenant's rows on a blocking
//! thread, in one bounded query or a few, and renders them.

use super::views::{self, csrf, person_link, person_name};
use super::{Console, PAGE, SIGNIN_COOKIE, error_page, html, session, set_cookie, take_flash};
use crate::deprovision::commands::content as content_cmd;
use crate::domain::{DisposalState, UserState};
use crate::http::error::ApiError;
use crate::http::{AppState, blocking};
use crate::scim::error::ScimError;
use crate::store::ledger::ItemQuery;
use crate::store::reads::console as reads;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};

/// The session, or the answer that replaces the page.
macro_rules! signed_in {
    ($req:expr, $state:expr) => {
        match session(&$req, &$state).await {
            Ok(c) => c,
            Err(r) => return r,
        }
    };
}

/// A page for a signed-in session, with the flash message of the last POST.
fn render(
    req: &HttpRequest,
    state: &AppState,
    c: &Console,
    title: &str,
    h1: &str,
    body: Markup,
) -> HttpResponse {
    let (flash, clear) = take_flash(req, state);
    let mut r = html(
        StatusCode::OK,
        views::page(title, h1, Some(c), flash.as_deref(), body),
    );
    if let Some(v) = clear {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// A query string's value.
fn param(req: &HttpRequest, name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(req.query_string()).unwrap_or_default();
    pairs
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty() && v.len() <= 1024)
}

pub(super) async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(views::STYLESHEET)
}

pub(super) async fn typeahead_script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(views::TYPEAHEAD_JS)
}

/// How many people a type-ahead answer names at most.
const SUGGESTIONS: i64 = 10;

/// `GET /console/people/suggest?q=`: the visible people of the session's
/// tenant whose userName starts with `q`, as JSON `[{"id", "userName"}]`, at
/// most [`SUGGESTIONS`], by userName (a range on the userName index).
pub(super) async fn suggest(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Suggestion {
        id: String,
        user_name: String,
    }
    let c = signed_in!(req, state);
    let q = param(&req, "q").unwrap_or_default();
    let q = q.trim();
    if q.is_empty() {
        return HttpResponse::Ok().json(Vec::<Suggestion>::new());
    }
    let folded = crate::scim::fold::fold(q);
    let st = state.clone();
    let tenant = c.caller.tenant_id.clone();
    let found = blocking(move || {
        Ok(st
            .db
            .read(|cn| reads::people_by_prefix(cn, &tenant, &folded, None, SUGGESTIONS))?)
    })
    .await;
    match found {
        Ok(rows) => HttpResponse::Ok().json(
            rows.into_iter()
                .map(|p| Suggestion {
                    id: p.id,
                    user_name: p.user_name,
                })
                .collect::<Vec<_>>(),
        ),
        Err(e) => error_page(&e, Some(&c)),
    }
}

pub(super) async fn not_found(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let _ = state;
    let e: ApiError = ScimError::not_found(format!("no console page at {}", req.path())).into();
    error_page(&e, None)
}

pub(super) async fn signin_form(state: web::Data<AppState>) -> HttpResponse {
    let token = super::random_hex();
    let mut r = html(StatusCode::OK, signin_page(&token, None));
    if let Ok(v) = HeaderValue::from_str(&set_cookie(&state, SIGNIN_COOKIE, &token, Some(600))) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// The sign-in page; `error` in `role="alert"`.
pub(super) fn signin_page(csrf_token: &str, error: Option<&str>) -> Markup {
    views::page(
        "Sign in",
        "Sign in",
        None,
        None,
        html! {
            @if let Some(e) = error { p role="alert" { (e) } }
            p { "Paste an admin token (an auditor token opens a read-only console). It is sent once; the console then uses a session." }
            form method="post" action="/console/signin" {
                input type="hidden" name="csrf" value=(csrf_token);
                label for="token" { "Admin token" }
                input id="token" name="token" type="password" autocomplete="off" required;
                p { button type="submit" { "Sign in" } }
            }
        },
    )
}

pub(super) async fn overview(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let c = signed_in!(req, state);
    let st = state.clone();
    let tenant = c.caller.tenant_id.clone();
    let policy = state.svc.deprov.policy(&c.caller.tenant_name);
    let read = blocking(move || {
        Ok(st.db.read(|cn| {
            let scheduled = reads::disposals_in(cn, &tenant, DisposalState::Scheduled, PAGE + 1)?;
            let held = reads::disposals_in(cn, &tenant, DisposalState::Held, PAGE + 1)?;
            let done = reads::disposals_in(cn, &tenant, DisposalState::Done, 10)?;
            let brake = reads::brake_tripped_at(cn, &tenant)?;
            let paused: Vec<String> = crate::store::reads::webhooks::endpoints(cn, &tenant)?
                .into_iter()
                .filter(|e| e.paused)
                .map(|e| e.endpoint)
                .collect();
            let (orphans, _) = crate::store::ledger::list_items(
                cn,
                &tenant,
                &ItemQuery {
                    owner: None,
                    kind: None,
                    orphaned: true,
                    offset: 0,
                    limit: 0,
                },
            )?;
            Ok::<_, crate::store::StoreError>((scheduled, held, done, brake, paused, orphans))
        })?)
    })
    .await;
    let (scheduled, held, done, brake, paused, orphans) = match read {
        Ok(v) => v,
        Err(e) => return error_page(&e, Some(&c)),
    };
    let body = html! {
        section aria-labelledby="suspended" {
            h2 id="suspended" { "Suspended people and their disposal dates" }
            @if scheduled.is_empty() { p { "Nobody is suspended." } } @else {
                table {
                    thead { tr { th scope="col" { "Person" } th scope="col" { "Disposal due" } } }
                    tbody { @for d in scheduled.iter().take(PAGE as usize) {
                        tr { th scope="row" { (person_link(&d.user_id, &d.user_name, d.user_state)) } td { (d.due_at) } }
                    } }
                }
                @if scheduled.len() as i64 > PAGE { p.more { a href="/console/people" { "More people" } } }
            }
            p.small { "Grace period: " (policy.grace_period_seconds / 86_400) " day(s)." }
        }
        section aria-labelledby="held" {
            h2 id="held" { "Held disposals" }
            @if held.is_empty() { p { "No disposal is held." } } @else {
                ul { @for d in held.iter().take(PAGE as usize) {
                    li { (person_link(&d.user_id, &d.user_name, d.user_state)) }
                } }
            }
            p { a href="/console/disposals" { "Held disposals" } @if held.len() as i64 > PAGE { " (more)" } }
        }
        section aria-labelledby="brake" {
            h2 id="brake" { "Brake" }
            p {
                "The brake is "
                @match &brake {
                    Some(at) => { strong data-testid="brake" { "tripped" } " (since " (at) ")." }
                    None => { strong data-testid="brake" { "ok" } "." }
                }
                " " a href="/console/disposals" { "Disposals" }
            }
        }
        section aria-labelledby="webhooks" {
            h2 id="webhooks" { "Paused webhook endpoints" }
            @if paused.is_empty() { p { "None paused." } } @else {
                ul { @for e in &paused { li { (views::shown_url(e)) } } }
            }
            p { a href="/console/webhooks" { "Webhooks" } }
        }
        section aria-labelledby="orphans" {
            h2 id="orphans" { "Orphaned content" }
            p { strong data-testid="orphans" { (orphans) } " orphaned item(s). " a href="/console/orphans" { "Orphans" } }
        }
        section aria-labelledby="recent" {
            h2 id="recent" { "Recent disposals" }
            @if done.is_empty() { p { "No disposal has run yet." } } @else {
                table {
                    thead { tr { th scope="col" { "Person" } th scope="col" { "Completed" } } }
                    tbody { @for d in &done {
                        tr { th scope="row" { (person_link(&d.user_id, &d.user_name, d.user_state)) } td { (d.completed_at.as_deref().unwrap_or("")) } }
                    } }
                }
            }
            p { a href="/console/audit?action=disposal.done" { "All disposals in the audit log" } }
        }
    };
    render(&req, &state, &c, "Overview", "Overview", body)
}

pub(super) async fn people(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let c = signed_in!(req, state);
    let q = param(&req, "q").unwrap_or_default();
    let after = param(&req, "after");
    let st = state.clone();
    let tenant = c.caller.tenant_id.clone();
    let (q2, after2) = (q.clone(), after.clone());
    let found = blocking(move || {
        let folded = crate::scim::fold::fold(&q2);
        Ok(st.db.read(|cn| {
            let by_prefix =
                reads::people_by_prefix(cn, &tenant, &folded, after2.as_deref(), PAGE + 1)?;
            // Exact matches (email, externalId, id) lead the first page.
            let mut exact = vec![];
            if after2.is_none() && !q2.is_empty() {
                if let Some(p) = reads::person(cn, &tenant, &q2)? {
                    exact.push(p);
                }
                exact.extend(reads::people_by_identifier(
                    cn, &tenant, &q2, &folded, PAGE,
                )?);
            }
            Ok::<_, crate::store::StoreError>((exact, by_prefix))
        })?)
    })
    .await;
    let (exact, by_prefix) = match found {
        Ok(r) => r,
        Err(e) => return error_page(&e, Some(&c)),
    };
    // The next page follows the prefix range by key.
    let next = (by_prefix.len() as i64 > PAGE)
        .then(|| {
            by_prefix
                .get(PAGE as usize - 1)
                .map(|r| r.user_name_key.clone())
        })
        .flatten();
    let mut rows = exact;
    for p in by_prefix.into_iter().take(PAGE as usize) {
        if !rows.iter().any(|r| r.id == p.id) {
            rows.push(p);
        }
    }
    let body = html! {
        form method="get" action="/console/people" role="search" {
            label for="q" { "Search people" }
            input id="q" name="q" type="search" value=(q);
            " " button type="submit" { "Search" }
            p.small { "By the start of a userName, or an exact email, externalId or id." }
        }
        table {
            caption { "People" }
            thead { tr { th scope="col" { "userName" } th scope="col" { "State" } th scope="col" { "Legal hold" } } }
            tbody {
                @for p in &rows {
                    tr {
                        th scope="row" { (person_link(&p.id, &p.user_name, p.state)) }
                        td { (p.state.as_str()) }
                        td { @if p.legal_hold { "on" } @else { "off" } }
                    }
                }
                @if rows.is_empty() { tr { td colspan="3" { "Nobody matches." } } }
            }
        }
        @if let Some(n) = next {
            p.more { a href={ "/console/people?q=" (urlencode(&q)) "&after=" (urlencode(&n)) } { "Next page" } }
        }
    };
    render(&req, &state, &c, "People", "People", body)
}

fn urlencode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A person and their disposal plan (`plan_now`: the plan to show).
pub(super) struct PersonView {
    pub person: reads::PersonRow,
    pub owned: Vec<(String, i64)>,
    pub sso: Vec<(String, String)>,
    pub plan: Option<crate::deprovision::disposal::Plan>,
    pub target_name: Option<String>,
    pub open_disposal: Option<crate::store::reads::disposals::DisposalRow>,
}

/// Reads what the person page shows; `None` when the tenant has no such person.
pub(super) async fn load_person(
    state: &web::Data<AppState>,
    c: &Console,
    id: &str,
) -> Result<Option<PersonView>, ApiError> {
    let st = state.clone();
    let actor = c.caller.clone();
    let id = id.to_string();
    blocking(move || {
        let tenant = actor.tenant_id.clone();
        let found = st.db.read(|cn| {
            let Some(person) = reads::person(cn, &tenant, &id)? else {
                return Ok::<_, crate::store::StoreError>(None);
            };
            let owned = reads::owned_by_kind(cn, &tenant, &id)?;
            let sso = crate::store::ledger::sso_of(cn, &tenant, &id)?;
            let open = match crate::store::disposals::open_for(cn, &tenant, &id)? {
                Some(d) => crate::store::reads::disposals::find(cn, &tenant, &d)?,
                None => None,
            };
            Ok(Some((person, owned, sso, open)))
        })?;
        let Some((person, owned, sso, open_disposal)) = found else {
            return Ok(None);
        };
        let visible = matches!(person.state, UserState::Active | UserState::Suspended);
        let plan = if visible {
            Some(st.svc.deprov.preview_summary(&st.svc.db, &actor, &id)?)
        } else {
            None
        };
        let target_name = match plan.as_ref().and_then(|p| p.target.as_ref()) {
            Some(t) => st
                .db
                .read(|cn| reads::names_of(cn, &tenant, std::slice::from_ref(&t.user_id)))?
                .into_iter()
                .next()
                .map(|(_, n, s)| person_name(&n, s)),
            None => None,
        };
        Ok(Some(PersonView {
            person,
            owned,
            sso,
            plan,
            target_name,
            open_disposal,
        }))
    })
    .await
}

pub(super) async fn person(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> HttpResponse {
    let c = signed_in!(req, state);
    let id = id.into_inner();
    match load_person(&state, &c, &id).await {
        Ok(Some(v)) => {
            let name = person_name(&v.person.user_name, v.person.state);
            let body = person_body(&c, &v, None);
            render(&req, &state, &c, &name, &name, body)
        }
        Ok(None) => error_page(
            &ScimError::not_found(format!("no person with id {id}")).into(),
            Some(&c),
        ),
        Err(e) => error_page(&e, Some(&c)),
    }
}

/// The person page's body; `alert` first when given (a refused dispose).
pub(super) fn person_body(c: &Console, v: &PersonView, alert: Option<&str>) -> Markup {
    let p = &v.person;
    let disposed = matches!(p.state, UserState::Disposed | UserState::Stub);
    html! {
        @if let Some(a) = alert { p role="alert" { (a) } }
        dl {
            dt { "State" } dd data-testid="state" { (p.state.as_str()) }
            dt { "Id" } dd { code { (p.id) } }
            dt { "Created" } dd { (p.created_at) }
            dt { "Updated" } dd { (p.updated_at) }
            @if !disposed {
                @if let Some(s) = &p.suspended_at { dt { "Suspended" } dd { (s) } }
                dt { "Legal hold" } dd data-testid="legal-hold" { @if p.legal_hold { "on" } @else { "off" } }
            }
            @if let Some(d) = &v.open_disposal {
                dt { "Disposal" } dd { (d.state.as_str()) ", due " (d.due_at) }
            }
        }
        @if !disposed {
            section aria-labelledby="owned" {
                h2 id="owned" { "Owned items" }
                table {
                    thead { tr { th scope="col" { "Kind" } th scope="col" { "Items" } } }
                    tbody {
                        @for (kind, n) in &v.owned { tr { th scope="row" { (kind) } td { (n) } } }
                        @if v.owned.is_empty() { tr { td colspan="2" { "None." } } }
                    }
                }
            }
            section aria-labelledby="sso" {
                h2 id="sso" { "SSO subjects" }
                @if v.sso.is_empty() { p { "None." } } @else {
                    table {
                        thead { tr { th scope="col" { "Issuer" } th scope="col" { "Subject" } } }
                        tbody { @for (iss, sub) in &v.sso { tr { td { (iss) } td { (sub) } } } }
                    }
                }
            }
            @if let Some(plan) = &v.plan {
                section aria-labelledby="plan" {
                    h2 id="plan" { "Disposal plan" }
                    (views::plan(plan, v.target_name.as_deref()))
                    @if c.admin {
                        form method="post" action={ "/console/people/" (p.id) "/dispose" } {
                            (csrf(c))
                            input type="hidden" name="plan_hash" value=(plan.hash);
                            button.danger type="submit" { "Dispose now" }
                        }
                    }
                }
            }
            @if c.admin && p.state != UserState::Disposed {
                section aria-labelledby="hold" {
                    h2 id="hold" { "Legal hold" }
                    form method="post" action={ "/console/people/" (p.id) "/legal-hold" } {
                        (csrf(c))
                        @if p.legal_hold {
                            input type="hidden" name="on" value="false";
                            button type="submit" { "Lift legal hold" }
                        } @else {
                            input type="hidden" name="on" value="true";
                            button type="submit" { "Place legal hold" }
                        }
                    }
                }
            }
        } @else {
            p { "This person was disposed: only the stub remains." }
        }
        p { a href={ "/console/audit?person=" (p.id) } { "Audit rows for this person" } }
    }
}

pub(super) async fn disposals(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let c = signed_in!(req, state);
    let st = state.clone();
    let actor = c.caller.clone();
    let read = blocking(move || {
        let tenant = actor.tenant_id.clone();
        let (held, brake) = st.db.read(|cn| {
            Ok::<_, crate::store::StoreError>((
                reads::disposals_in(cn, &tenant, DisposalState::Held, PAGE + 1)?,
                reads::brake_tripped_at(cn, &tenant)?,
            ))
        })?;
        // Each held disposal's plan summary (bounded: one page).
        let plans = held
            .iter()
            .take(PAGE as usize)
            .map(|d| {
                st.svc
                    .deprov
                    .preview_held_summary(&st.svc.db, &actor, &d.id)
                    .map(|p| views::plan_summary(&p))
                    .unwrap_or_else(|_| "no plan (the person is no longer visible)".into())
            })
            .collect::<Vec<_>>();
        Ok((held, brake, plans))
    })
    .await;
    let (held, brake, plans) = match read {
        Ok(v) => v,
        Err(e) => return error_page(&e, Some(&c)),
    };
    let body = html! {
        section aria-labelledby="brake-h" {
            h2 id="brake-h" { "Brake" }
            p {
                "State: "
                @match &brake {
                    Some(at) => { strong data-testid="brake" { "tripped" } " since " (at) }
                    None => { strong data-testid="brake" { "ok" } }
                }
            }
            @if c.admin {
                form method="post" action="/console/disposals" {
                    (csrf(&c))
                    button type="submit" name="action" value="reset_brake" { "Reset brake" }
                }
            }
        }
        section aria-labelledby="held-h" {
            h2 id="held-h" { "Held disposals" }
            form method="post" action="/console/disposals" {
                @if c.admin { (csrf(&c)) }
                table {
                    thead { tr {
                        @if c.admin { th scope="col" { "Select" } }
                        th scope="col" { "Person" } th scope="col" { "Due" } th scope="col" { "Plan" } th scope="col" { "Plan hash" }
                    } }
                    tbody {
                        @for (d, plan) in held.iter().take(PAGE as usize).zip(plans.iter()) {
                            tr {
                                @if c.admin {
                                    td { input type="checkbox" name="id" value=(d.id) aria-label={ "Select the disposal of " (person_name(&d.user_name, d.user_state)) }; }
                                }
                                th scope="row" { (person_link(&d.user_id, &d.user_name, d.user_state)) }
                                td { (d.due_at) }
                                td { (plan) }
                                td { code { (d.plan_hash.as_deref().unwrap_or("")) } }
                            }
                        }
                        @if held.is_empty() { tr { td colspan="5" { "No disposal is held." } } }
                    }
                }
                @if c.admin && !held.is_empty() {
                    button type="submit" name="action" value="release" { "Release selected" }
                }
            }
            @if held.len() as i64 > PAGE { p.small { "More are held: release these first." } }
        }
    };
    render(&req, &state, &c, "Disposals", "Disposals", body)
}

pub(super) async fn orphans(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let c = signed_in!(req, state);
    let kind = param(&req, "kind");
    let start = param(&req, "start")
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(0)
        .clamp(0, 1_000_000);
    let st = state.clone();
    let tenant = c.caller.tenant_id.clone();
    let k = kind.clone();
    let read = blocking(move || {
        let q = ItemQuery {
            owner: None,
            kind: k,
            orphaned: true,
            offset: start,
            limit: PAGE,
        };
        let list = content_cmd::list_items(&st.db, &tenant, &q)?;
        let kinds = st.db.read(|cn| reads::orphan_kinds(cn, &tenant))?;
        Ok((list, kinds))
    })
    .await;
    let (list, kinds) = match read {
        Ok(v) => v,
        Err(e) => return error_page(&e, Some(&c)),
    };
    let body = html! {
        form method="get" action="/console/orphans" {
            label for="kind" { "Kind" }
            select id="kind" name="kind" {
                option value="" { "All kinds" }
                @for k in &kinds {
                    option value=(k) selected[kind.as_deref() == Some(k.as_str())] { (k) }
                }
            }
            " " button type="submit" { "Filter" }
        }
        p { (list.total_results) " orphaned item(s)." }
        table {
            caption { "Orphaned items" }
            thead { tr {
                th scope="col" { "Kind" } th scope="col" { "Id" } th scope="col" { "Title" }
                @if c.admin { th scope="col" { "Reassign" } }
            } }
            tbody {
                @for it in &list.resources {
                    tr {
                        th scope="row" { (it.kind) }
                        td { code { (it.id) } }
                        td { (it.title.as_deref().unwrap_or("")) }
                        @if c.admin {
                            td {
                                form method="post" action="/console/orphans/reassign" {
                                    (csrf(&c))
                                    input type="hidden" name="kind" value=(it.kind);
                                    input type="hidden" name="id" value=(it.id);
                                    @if let Some(k) = &kind { input type="hidden" name="filter" value=(k); }
                                    input name="owner" aria-label={ "New owner for " (it.kind) " " (it.id) } placeholder="userName or id" list="people-suggest" data-suggest autocomplete="off" required;
                                    " " button type="submit" { "Reassign" }
                                }
                            }
                        }
                    }
                }
                @if list.resources.is_empty() { tr { td colspan="4" { "No orphaned items." } } }
            }
        }
        @if c.admin { datalist id="people-suggest" {} }
        @if start + PAGE < list.total_results {
            p.more { a href={ "/console/orphans?start=" (start + PAGE) @if let Some(k) = &kind { "&kind=" (urlencode(k)) } } { "Next page" } }
        }
    };
    render(&req, &state, &c, "Orphans", "Orphaned content", body)
}

pub(super) async fn tombstones(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let c = signed_in!(req, state);
    match tombstones_body(&state, &c, None).await {
        Ok(body) => render(&req, &state, &c, "Tombstones", "Tombstones", body),
        Err(e) => error_page(&e, Some(&c)),
    }
}

/// The tombstones page: the check form, a check's answer (matching
/// tombstone ids; the identifier itself is never sent back), the list.
pub(super) async fn tombstones_body(
    state: &web::Data<AppState>,
    c: &Console,
    answer: Option<&[String]>,
) -> Result<Markup, ApiError> {
    let st = state.clone();
    let tenant = c.caller.tenant_id.clone();
    let rows = blocking(move || {
        Ok(st.db.read(|cn| {
            crate::store::reads::tombstones::page(
                cn,
                &tenant,
                crate::store::reads::Page {
                    offset: 0,
                    limit: 50,
                },
            )
        })?)
    })
    .await?;
    Ok(html! {
        section aria-labelledby="check" {
            h2 id="check" { "Is this identifier tombstoned?" }
            form method="post" action="/console/tombstones/check" autocomplete="off" {
                (csrf(c))
                label for="kind" { "Identifier type" }
                select id="kind" name="kind" {
                    option value="userName" { "userName" }
                    option value="email" { "email" }
                    option value="externalId" { "externalId" }
                    option value="sso" { "SSO subject (issuer, a space, subject)" }
                }
                label for="identifier" { "Identifier" }
                input id="identifier" name="identifier" autocomplete="off" required;
                p { button type="submit" { "Check" } }
            }
            p.small { "The identifier is hashed with the tombstone key; it is not stored, logged or put in a URL." }
            @if let Some(ids) = answer {
                @if ids.is_empty() {
                    p role="status" data-testid="tombstone-result" { "Not tombstoned" }
                } @else {
                    p role="status" data-testid="tombstone-result" { "Tombstoned" }
                    p { "Held by tombstone(s): " @for id in ids { code { (id) } " " } }
                    @if c.admin {
                        form method="post" action="/console/tombstones/lift" {
                            (csrf(c))
                            @for id in ids { input type="hidden" name="tombstone" value=(id); }
                            label for="reason" { "Reason" }
                            textarea id="reason" name="reason" required maxlength="500" {}
                            p { button.danger type="submit" { "Lift tombstone" } }
                        }
                    }
                }
            }
        }
        section aria-labelledby="list" {
            h2 id="list" { "Tombstones" }
            table {
                thead { tr { th scope="col" { "Id" } th scope="col" { "Created" } th scope="col" { "Lifted" } th scope="col" { "Identifier types" } } }
                tbody {
                    @for t in &rows {
                        tr {
                            th scope="row" { code { (t.id) } }
                            td { (t.created_at) }
                            td { (t.lifted_at.as_deref().unwrap_or("live")) }
                            td { (t.identifier_types.join(", ")) }
                        }
                    }
                    @if rows.is_empty() { tr { td colspan="4" { "No tombstones." } } }
                }
            }
        }
    })
}

pub(super) async fn webhooks(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let c = signed_in!(req, state);
    let configured = state
        .svc
        .deprov
        .policy(&c.caller.tenant_name)
        .webhook_urls();
    let st = state.clone();
    let tenant = c.caller.tenant_id.clone();
    let rows = match blocking(move || {
        Ok(st
            .db
            .read(|cn| crate::store::reads::webhooks::endpoints(cn, &tenant))?)
    })
    .await
    {
        Ok(r) => r,
        Err(e) => return error_page(&e, Some(&c)),
    };
    let any_paused = rows.iter().any(|r| r.paused);
    let body = html! {
        table {
            caption { "Webhook endpoints" }
            thead { tr {
                th scope="col" { "Endpoint" } th scope="col" { "State" } th scope="col" { "Last delivered event" }
                th scope="col" { "Last error" } th scope="col" { "Next attempt" }
                @if c.admin { th scope="col" { "Action" } }
            } }
            tbody {
                @for url in configured.iter().filter(|u| !rows.iter().any(|r| &r.endpoint == *u)) {
                    tr { th scope="row" { (views::shown_url(url)) } td { "not started" } td { "none" } td { "none" } td { "" } @if c.admin { td {} } }
                }
                @for r in &rows {
                    tr {
                        th scope="row" { (views::shown_url(&r.endpoint)) @if !configured.contains(&r.endpoint) { " (no longer configured)" } }
                        td { @if r.paused { "paused" } @else if r.failed_attempts > 0 { "retrying" } @else { "delivering" } }
                        td { (r.last_delivered_seq) }
                        td {
                            @if let (Some(e), Some(at)) = (&r.last_error, &r.last_error_at) { (e) " at " (at) } @else { "none" }
                            @if r.failed_attempts > 0 { br; (r.failed_attempts) " failed attempt(s) in a row" }
                        }
                        td { (r.next_attempt_at) }
                        @if c.admin {
                            td { @if r.paused {
                                form method="post" action="/console/webhooks/resume" {
                                    (csrf(&c))
                                    button type="submit" { "Resume" }
                                }
                            } }
                        }
                    }
                }
                @if rows.is_empty() && configured.is_empty() { tr { td colspan="6" { "No webhook endpoints are configured." } } }
            }
        }
        @if any_paused { p.small { "Resume un-pauses every paused endpoint of the tenant; delivery continues where it stopped." } }
    };
    render(&req, &state, &c, "Webhooks", "Webhooks", body)
}

pub(super) async fn audit(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let c = signed_in!(req, state);
    let person = param(&req, "person");
    let action = param(&req, "action");
    let from = param(&req, "from");
    let to = param(&req, "to");
    let after = param(&req, "after").and_then(|a| {
        a.split_once('|')
            .map(|(t, i)| (t.to_string(), i.to_string()))
    });
    // A date (2026-12-01) or an instant; anything else is ignored with a note.
    let instant = |s: &Option<String>| -> Result<Option<String>, ()> {
        match s.as_deref() {
            None => Ok(None),
            Some(v) => crate::store::time::normalize(v)
                .or_else(|| crate::store::time::normalize(&format!("{v}T00:00:00Z")))
                .map(Some)
                .ok_or(()),
        }
    };
    let (f, t) = match (instant(&from), instant(&to)) {
        (Ok(f), Ok(t)) => (f, t),
        _ => {
            let e: ApiError = ScimError::invalid_value(
                "'from' and 'to' must be dates (2026-12-01) or RFC 3339 instants",
            )
            .into();
            return error_page(&e, Some(&c));
        }
    };
    let filter = reads::AuditFilter {
        subject: person.clone(),
        action: action.clone(),
        from: f,
        to: t,
        after,
    };
    let st = state.clone();
    let tenant = c.caller.tenant_id.clone();
    let mut rows = match blocking(move || {
        Ok(st
            .db
            .read(|cn| reads::audit(cn, &tenant, &filter, PAGE + 1))?)
    })
    .await
    {
        Ok(r) => r,
        Err(e) => return error_page(&e, Some(&c)),
    };
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    let next = more
        .then(|| rows.last().map(|r| format!("{}|{}", r.at, r.id)))
        .flatten();
    let mut base = String::new();
    for (k, val) in [
        ("person", &person),
        ("action", &action),
        ("from", &from),
        ("to", &to),
    ] {
        if let Some(x) = val {
            base.push_str(&format!("{k}={}&", urlencode(x)));
        }
    }
    let body = html! {
        form method="get" action="/console/audit" {
            label for="person" { "Person (id)" }
            input id="person" name="person" value=(v(&person));
            label for="action" { "Action (e.g. disposal.done)" }
            input id="action" name="action" value=(v(&action));
            label for="from" { "From (date or instant)" }
            input id="from" name="from" value=(v(&from));
            label for="to" { "To (date or instant, exclusive)" }
            input id="to" name="to" value=(v(&to));
            p { button type="submit" { "Filter" } }
        }
        table {
            caption { "Audit log, oldest first" }
            thead { tr { th scope="col" { "At" } th scope="col" { "Actor" } th scope="col" { "Action" } th scope="col" { "Subject" } th scope="col" { "Detail" } } }
            tbody {
                @for r in &rows {
                    tr {
                        th scope="row" { (r.at) }
                        td { (r.actor) }
                        td { (r.action) }
                        td { (r.subject_type) " " @if r.subject_type == "user" { a href={ "/console/people/" (r.subject_id) } { code { (r.subject_id) } } } @else { code { (r.subject_id) } } }
                        td { code { (r.detail.as_deref().unwrap_or("")) } }
                    }
                }
                @if rows.is_empty() { tr { td colspan="5" { "No audit rows match." } } }
            }
        }
        @if let Some(n) = next {
            p.more { a href={ "/console/audit?" (base) "after=" (urlencode(&n)) } { "Next page" } }
        }
    };
    render(&req, &state, &c, "Audit", "Audit log", body)
}

pub(super) async fn policy(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let c = signed_in!(req, state);
    let set = state.svc.deprov.policies();
    let name = &c.caller.tenant_name;
    let own = set.tenants.contains_key(name);
    let p = set.for_tenant(name);
    let prefix = if own {
        format!("{name}:")
    } else {
        "default:".to_string()
    };
    let warnings: Vec<&String> = set
        .warnings
        .iter()
        .filter(|w| w.starts_with(&prefix))
        .collect();
    // Webhook URLs may carry a receiver's credential: shown redacted.
    let mut shown = serde_json::to_value(p).unwrap_or_default();
    views::redact_urls(&mut shown);
    let json = serde_json::to_string_pretty(&shown).unwrap_or_default();
    let body = html! {
        p { "Digest: " code data-testid="policy-digest" { (p.digest()) } }
        p { @if own { "This tenant has its own policy." } @else { "This tenant uses the default policy." } }
        section aria-labelledby="warnings" {
            h2 id="warnings" { "Warnings (policy check)" }
            @if warnings.is_empty() { p { "None." } } @else {
                ul data-testid="policy-warnings" { @for w in &warnings { li { (w) } } }
            }
        }
        section aria-labelledby="effective" {
            h2 id="effective" { "Effective policy" }
            pre { code { (json) } }
        }
    };
    render(&req, &state, &c, "Policy", "Policy", body)
}
