//! Runs a BulkRequest (RFC 7644 §3.7) through the same provisioning functions
//! as the single-resource endpoints. Each operation is its own transaction: a
//! failed one leaves nothing behind and the others stay committed. The order,
//! the references and the cycles are decided by `scim::bulk::plan`.

use super::{PatchOutcome, Rendered, ServiceError, Services, groups, users};
use crate::domain::Actor;
use crate::scim::bulk::{
    self, BulkOperation, BulkRequest, CycleMember, Endpoint, Method, OpResult, Plan, Step, Target,
    op_label,
};
use crate::scim::error::ScimError;
use crate::scim::patch;
use crate::scim::resource::Projection;
use serde_json::{Value, json};

/// The outcome of one processed operation. A failure's status is decided by
/// the HTTP layer, which maps every `ServiceError` to a SCIM error.
#[derive(Debug)]
pub struct Outcome {
    /// The success status (201, 200, 204); unused when `error` is set.
    pub status: u16,
    pub version: Option<String>,
    pub location: Option<String>,
    pub error: Option<ServiceError>,
}

impl Outcome {
    fn failed(error: impl Into<ServiceError>, location: Option<String>) -> Outcome {
        Outcome {
            status: 0,
            version: None,
            location,
            error: Some(error.into()),
        }
    }

    pub fn ok(&self) -> bool {
        self.error.is_none()
    }

    /// ", with status 409" when the failure is a SCIM error (store errors are
    /// mapped, and logged, by the HTTP layer).
    fn failure_status(&self) -> String {
        match &self.error {
            Some(ServiceError::Scim(e)) => format!(" with status {}", e.status),
            _ => String::new(),
        }
    }

    /// The protocol-level result, given how errors map to SCIM errors.
    pub fn into_result(self, map: impl Fn(ServiceError) -> ScimError) -> OpResult {
        let error = self.error.map(map);
        OpResult {
            status: error.as_ref().map_or(self.status, |e| e.status),
            version: self.version,
            location: self.location,
            error,
        }
    }
}

/// Runs the request; `None` marks an operation not processed because
/// `failOnErrors` stopped the request first.
pub fn run(svc: &Services, caller: &Actor, req: &BulkRequest, base: &str) -> Vec<Option<Outcome>> {
    let plan = bulk::plan(&req.operations);
    let mut run = Run {
        svc,
        caller,
        req,
        plan: &plan,
        base,
        outcomes: req.operations.iter().map(|_| None).collect(),
        ids: req.operations.iter().map(|_| None).collect(),
        errors: 0,
    };
    for step in &plan.steps {
        match step {
            Step::Fail(i, e) => {
                let location = run.location_of(*i);
                run.record(*i, Outcome::failed(e.clone(), location));
            }
            Step::Run(i) => run.run_one(*i),
            Step::Cycle(members) => run.run_cycle(members),
        }
        if req.fail_on_errors.is_some_and(|limit| run.errors >= limit) {
            break;
        }
    }
    run.outcomes
}

struct Run<'a> {
    svc: &'a Services,
    caller: &'a Actor,
    req: &'a BulkRequest,
    plan: &'a Plan,
    base: &'a str,
    outcomes: Vec<Option<Outcome>>,
    /// The id each successful POST created.
    ids: Vec<Option<String>>,
    errors: usize,
}

/// Only `id` (and what is always returned) is rendered: the response carries
/// the location and version, never the resource, and no member list is loaded.
fn projection() -> Projection {
    Projection::parse(Some("id"), None).unwrap_or_default()
}

impl Run<'_> {
    fn op(&self, i: usize) -> Option<&BulkOperation> {
        self.req.operations.get(i).and_then(|p| p.op.as_ref().ok())
    }

    /// "Operations[3] (bulkId 'x')", for details naming another operation.
    fn label(&self, i: usize) -> String {
        self.req
            .operations
            .get(i)
            .map_or_else(|| format!("Operations[{i}]"), |p| op_label(i, &p.echo))
    }

    fn record(&mut self, i: usize, o: Outcome) {
        if !o.ok() {
            self.errors += 1;
        }
        if let Some(slot) = self.outcomes.get_mut(i) {
            *slot = Some(o);
        }
    }

    /// The id `bulk_id` stands for, when its POST succeeded.
    fn resolve(&self, bulk_id: &str) -> Option<String> {
        self.plan
            .definer(bulk_id)
            .and_then(|j| self.ids.get(j).cloned().flatten())
    }

    /// Why `bulk_id` cannot be resolved (its POST failed or did not run).
    fn unresolved(&self, bulk_id: &str) -> ScimError {
        let Some(j) = self.plan.definer(bulk_id) else {
            return ScimError::invalid_value(format!(
                "'{}{bulk_id}' refers to no POST operation of this request",
                bulk::REF_PREFIX
            ));
        };
        let label = self.label(j);
        let failed = self.outcomes.get(j).and_then(|o| o.as_ref());
        ScimError::new(
            409,
            None,
            match failed {
                Some(o) => format!(
                    "'{}{bulk_id}' cannot be resolved: {label} failed{}, so this operation was not performed",
                    bulk::REF_PREFIX,
                    o.failure_status()
                ),
                None => format!(
                    "'{}{bulk_id}' cannot be resolved: {label} has not created it",
                    bulk::REF_PREFIX
                ),
            },
        )
    }

    /// The resource a non-POST operation acts on, once its reference resolves.
    fn target_id(&self, op: &BulkOperation) -> Option<String> {
        match &op.target {
            Some(Target::Id(id)) => Some(id.clone()),
            Some(Target::BulkRef(b)) => self.resolve(b),
            None => None,
        }
    }

    /// Every non-POST result carries its resource's location (§3.7.3), when
    /// the path could be read and its reference resolved.
    fn location_of(&self, i: usize) -> Option<String> {
        let op = self.op(i)?;
        let id = self.target_id(op)?;
        Some(format!("{}{}/{id}", self.base, op.endpoint.path()))
    }

    fn substituted(&self, v: &Value) -> Result<Value, ScimError> {
        bulk::substitute(v, &|b| self.resolve(b)).map_err(|b| self.unresolved(&b))
    }

    fn run_one(&mut self, i: usize) {
        let Some(op) = self.op(i) else {
            return;
        };
        let outcome = match self.execute(op) {
            Ok((o, id)) => {
                if let Some(slot) = self.ids.get_mut(i) {
                    *slot = id;
                }
                o
            }
            Err(e) => Outcome::failed(e, self.location_of(i)),
        };
        self.record(i, outcome);
    }

    /// Runs one operation; returns its outcome and, for a POST, the new id.
    fn execute(&self, op: &BulkOperation) -> Result<(Outcome, Option<String>), ServiceError> {
        let (svc, c, base, p) = (self.svc, self.caller, self.base, &projection());
        let data = op
            .data
            .as_ref()
            .map(|d| self.substituted(d))
            .transpose()?
            .unwrap_or(Value::Null);
        let if_match = op.version.as_deref();
        let id = match &op.target {
            Some(Target::BulkRef(b)) => Some(self.resolve(b).ok_or_else(|| self.unresolved(b))?),
            Some(Target::Id(id)) => Some(id.clone()),
            None => None,
        };
        let (method, endpoint) = (op.method, op.endpoint);
        let done = |status: u16, r: Rendered| Outcome {
            status,
            version: Some(r.etag),
            location: Some(r.location),
            error: None,
        };
        let Some(id) = id else {
            // A POST (the parser guarantees a target for every other method).
            let r = match endpoint {
                Endpoint::Users => users::create(svc, c, &data, p, base)?,
                Endpoint::Groups => groups::create(svc, c, &data, p, base)?,
            };
            let new_id = created_id(&r);
            return Ok((done(201, r), new_id));
        };
        let outcome = match (method, endpoint) {
            (Method::Put, Endpoint::Users) => {
                done(200, users::replace(svc, c, &id, &data, if_match, p, base)?)
            }
            (Method::Put, Endpoint::Groups) => {
                done(200, groups::replace(svc, c, &id, &data, if_match, p, base)?)
            }
            (Method::Patch, _) => {
                let ops = patch::parse_request(&data)?;
                match endpoint {
                    Endpoint::Users => {
                        done(200, users::patch(svc, c, &id, &ops, if_match, p, base)?)
                    }
                    Endpoint::Groups => {
                        match groups::patch(svc, c, &id, &ops, if_match, p, base)? {
                            PatchOutcome::Resource(r) => done(200, r),
                            PatchOutcome::NoContent => Outcome {
                                status: 204,
                                version: None,
                                location: Some(format!("{base}/Groups/{id}")),
                                error: None,
                            },
                        }
                    }
                }
            }
            (Method::Delete, Endpoint::Users) => {
                users::delete(svc, c, &id, if_match, base)?;
                deleted(base, endpoint, &id)
            }
            (Method::Delete, Endpoint::Groups) => {
                groups::delete(svc, c, &id, if_match, base)?;
                deleted(base, endpoint, &id)
            }
            (Method::Post, _) => {
                return Err(
                    ScimError::invalid_path("a POST's path is a resource type endpoint").into(),
                );
            }
        };
        Ok((outcome, None))
    }

    /// A cycle of group POSTs: create each without the members that refer into
    /// the cycle, then add those members. A group whose partner failed cannot
    /// be completed: it is deleted again and fails with 409, so nothing of a
    /// failed operation remains.
    fn run_cycle(&mut self, members: &[CycleMember]) {
        let p = projection();
        for m in members {
            let Some(op) = self.op(m.op) else { continue };
            let (data, _) = op.split_members(&m.deferred);
            let outcome = self
                .substituted(&data)
                .map_err(ServiceError::from)
                .and_then(|d| groups::create(self.svc, self.caller, &d, &p, self.base));
            match outcome {
                Ok(r) => {
                    if let Some(slot) = self.ids.get_mut(m.op) {
                        *slot = created_id(&r);
                    }
                    self.set(
                        m.op,
                        Outcome {
                            status: 201,
                            version: Some(r.etag),
                            location: Some(r.location),
                            error: None,
                        },
                    );
                }
                Err(e) => self.set(m.op, Outcome::failed(e, None)),
            }
        }
        for m in members {
            let Some(op) = self.op(m.op) else { continue };
            let Some(id) = self.ids.get(m.op).cloned().flatten() else {
                continue;
            };
            if m.deferred.is_empty() || m.partners.iter().any(|j| !self.succeeded(*j)) {
                continue;
            }
            let (_, later) = op.split_members(&m.deferred);
            let added = self
                .substituted(
                    &json!({"Operations": [{"op": "add", "path": "members", "value": later}]}),
                )
                .map_err(ServiceError::from)
                .and_then(|body| Ok(patch::parse_request(&body)?))
                .and_then(|ops| {
                    groups::patch(self.svc, self.caller, &id, &ops, None, &p, self.base)
                });
            match added {
                Ok(PatchOutcome::Resource(r)) => {
                    if let Some(Some(o)) = self.outcomes.get_mut(m.op) {
                        o.version = Some(r.etag);
                    }
                }
                Ok(PatchOutcome::NoContent) => {}
                Err(e) => self.undo(m.op, &id, Outcome::failed(e, None)),
            }
        }
        // A group whose partner failed (or was undone) cannot hold its members.
        loop {
            let broken = members.iter().find_map(|m| {
                let id = self.ids.get(m.op).cloned().flatten()?;
                let partner = m.partners.iter().copied().find(|j| !self.succeeded(*j))?;
                Some((m.op, id, partner))
            });
            let Some((i, id, partner)) = broken else {
                break;
            };
            let label = self.label(partner);
            let status = self
                .outcomes
                .get(partner)
                .and_then(|o| o.as_ref())
                .map(Outcome::failure_status)
                .unwrap_or_default();
            let e = ScimError::new(
                409,
                None,
                format!(
                    "circular bulkId reference with {label} could not be resolved: that operation failed{status}, so this group was not created"
                ),
            );
            self.undo(i, &id, Outcome::failed(e, None));
        }
        for m in members {
            match self.ids.get(m.op).cloned().flatten() {
                // Adding a partner's members bumped this group's version too:
                // report the version the cycle leaves.
                Some(id) => {
                    if let Ok(r) = groups::get(self.svc, self.caller, &id, &p, self.base)
                        && let Some(Some(o)) = self.outcomes.get_mut(m.op)
                    {
                        o.version = Some(r.etag);
                    }
                }
                None => self.errors += 1,
            }
        }
    }

    fn succeeded(&self, i: usize) -> bool {
        self.outcomes
            .get(i)
            .is_some_and(|o| o.as_ref().is_some_and(Outcome::ok))
    }

    /// Records without counting (a cycle counts its errors once, at the end).
    fn set(&mut self, i: usize, o: Outcome) {
        if let Some(slot) = self.outcomes.get_mut(i) {
            *slot = Some(o);
        }
    }

    /// Deletes a group the cycle created and records why it failed.
    fn undo(&mut self, i: usize, id: &str, failure: Outcome) {
        if let Some(slot) = self.ids.get_mut(i) {
            *slot = None;
        }
        let outcome = match groups::delete(self.svc, self.caller, id, None, self.base) {
            Ok(()) => failure,
            Err(e) => {
                // Never the error's detail: it can echo request values. A group
                // delete refuses only in SCIM terms; anything else is internal.
                let status = match &e {
                    ServiceError::Scim(s) => s.status,
                    _ => 500,
                };
                tracing::error!(group_id = %id, status, "bulk: could not delete the group of an unresolved cycle");
                Outcome::failed(e, Some(format!("{}/Groups/{id}", self.base)))
            }
        };
        self.set(i, outcome);
    }
}

fn created_id(r: &Rendered) -> Option<String> {
    r.body
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| r.location.rsplit('/').next().map(str::to_string))
}

fn deleted(base: &str, endpoint: Endpoint, id: &str) -> Outcome {
    Outcome {
        status: 204,
        version: None,
        location: Some(format!("{base}{}/{id}", endpoint.path())),
        error: None,
    }
}
