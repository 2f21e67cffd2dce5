//! RFC 7644 §3.7 Bulk, the pure part: the request envelope and its operations,
//! `bulkId` references, the execution plan (dependency order and circular
//! references) and the BulkResponse. No I/O: `provisioning::bulk` runs the plan.
//!
//! Error keywords: a request or operation whose structure does not conform to
//! the BulkRequest schema (a missing or mistyped `method`, `path`, `bulkId`,
//! `data`, `version`) is `invalidSyntax`, as RFC 7644 Table 9 lists for Bulk; a
//! value that is present but not allowed is `invalidValue`; a malformed `path` is
//! `invalidPath`. A reference to an operation that failed, and a circular
//! reference that cannot be resolved, are 409 (§3.7.1), without a `scimType`:
//! the RFC defines its keywords for 400 responses only and names none for these.

use super::error::ScimError;
use super::patch;
use super::resource::get_ci;
use serde_json::{Map, Value, json};
use std::collections::{BTreeSet, HashMap, HashSet};

pub const BULK_REQUEST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
pub const BULK_RESPONSE_URN: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
/// A string value `bulkId:<id>` refers to the resource a POST of the same request
/// creates (§3.7.2).
pub const REF_PREFIX: &str = "bulkId:";

/// The advertised and enforced limits (§3.7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_operations: usize,
    pub max_payload_size: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Users,
    Groups,
}

impl Endpoint {
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Users => "/Users",
            Endpoint::Groups => "/Groups",
        }
    }
}

/// The resource a PUT, PATCH or DELETE acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Id(String),
    /// `/Groups/bulkId:qwerty`: the resource a POST of this request creates.
    BulkRef(String),
}

/// A valid operation.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkOperation {
    pub method: Method,
    pub endpoint: Endpoint,
    /// None for a POST.
    pub target: Option<Target>,
    pub bulk_id: Option<String>,
    pub version: Option<String>,
    /// The resource (POST, PUT) or PatchOp message (PATCH); None for DELETE.
    pub data: Option<Value>,
}

/// What the response echoes of an operation, valid or not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Echo {
    pub method: Option<String>,
    pub bulk_id: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ParsedOp {
    pub echo: Echo,
    pub op: Result<BulkOperation, ScimError>,
}

#[derive(Debug, Clone)]
pub struct BulkRequest {
    pub fail_on_errors: Option<usize>,
    pub operations: Vec<ParsedOp>,
}

/// Parses a BulkRequest. A malformed envelope is an error for the whole request
/// (400; 413 beyond `max_operations`); a malformed operation only fails itself.
pub fn parse_request(body: &Value, max_operations: usize) -> Result<BulkRequest, ScimError> {
    let obj = body
        .as_object()
        .ok_or_else(|| ScimError::invalid_syntax("a BulkRequest must be a JSON object"))?;
    match get_ci(obj, "schemas") {
        None | Some(Value::Null) => {}
        Some(Value::Array(s))
            if s.iter().any(|u| {
                u.as_str()
                    .is_some_and(|u| u.eq_ignore_ascii_case(BULK_REQUEST_URN))
            }) => {}
        Some(_) => {
            return Err(ScimError::invalid_syntax(format!(
                "'schemas' must contain {BULK_REQUEST_URN}"
            )));
        }
    }
    let ops = match get_ci(obj, "Operations") {
        None | Some(Value::Null) => {
            return Err(ScimError::invalid_syntax(
                "a BulkRequest needs an 'Operations' array",
            ));
        }
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(ScimError::invalid_syntax(
                "'Operations' must be an array of operations",
            ));
        }
    };
    if ops.len() > max_operations {
        return Err(ScimError::new(
            413,
            None,
            format!(
                "the bulk request has {} operations, more than maxOperations ({max_operations})",
                ops.len()
            ),
        ));
    }
    let fail_on_errors = match get_ci(obj, "failOnErrors") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64().filter(|n| *n >= 1) {
            Some(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            None => {
                return Err(ScimError::invalid_value(format!(
                    "'failOnErrors' must be a positive integer, got {v}"
                )));
            }
        },
    };
    Ok(BulkRequest {
        fail_on_errors,
        operations: ops.iter().map(parse_operation).collect(),
    })
}

fn parse_operation(v: &Value) -> ParsedOp {
    let Some(obj) = v.as_object() else {
        return ParsedOp {
            echo: Echo::default(),
            op: Err(ScimError::invalid_syntax(
                "an operation must be a JSON object",
            )),
        };
    };
    let echo = Echo {
        method: get_ci(obj, "method")
            .and_then(Value::as_str)
            .map(str::to_string),
        bulk_id: get_ci(obj, "bulkId")
            .and_then(Value::as_str)
            .map(str::to_string),
    };
    let op = operation(obj);
    let echo = Echo {
        method: match &op {
            Ok(o) => Some(o.method.as_str().to_string()),
            Err(_) => echo.method,
        },
        ..echo
    };
    ParsedOp { echo, op }
}

const METHODS: &str = "POST, PUT, PATCH or DELETE";

fn operation(obj: &Map<String, Value>) -> Result<BulkOperation, ScimError> {
    let method = match get_ci(obj, "method") {
        None | Some(Value::Null) => {
            return Err(ScimError::invalid_syntax(format!(
                "'method' is required: {METHODS}"
            )));
        }
        Some(Value::String(m)) => match m.to_ascii_uppercase().as_str() {
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            _ => {
                return Err(ScimError::invalid_value(format!(
                    "'method' must be {METHODS}, got '{m}'"
                )));
            }
        },
        Some(other) => {
            return Err(ScimError::invalid_syntax(format!(
                "'method' must be a string ({METHODS}), got {other}"
            )));
        }
    };
    let (endpoint, target) = match get_ci(obj, "path") {
        None | Some(Value::Null) => {
            return Err(ScimError::invalid_syntax(if method == Method::Post {
                "'path' is required: /Users or /Groups for a POST"
            } else {
                "'path' is required: /Users/{id} or /Groups/{id}"
            }));
        }
        Some(Value::String(p)) => parse_path(method, p)?,
        Some(other) => {
            return Err(ScimError::invalid_syntax(format!(
                "'path' must be a string, got {other}"
            )));
        }
    };
    let bulk_id = match get_ci(obj, "bulkId") {
        None | Some(Value::Null) => None,
        Some(Value::String(b)) if b.is_empty() => {
            return Err(ScimError::invalid_value("'bulkId' must not be empty"));
        }
        Some(Value::String(b)) => Some(b.clone()),
        Some(other) => {
            return Err(ScimError::invalid_syntax(format!(
                "'bulkId' must be a string, got {other}"
            )));
        }
    };
    if method == Method::Post && bulk_id.is_none() {
        return Err(ScimError::invalid_syntax(
            "'bulkId' is required for a POST operation",
        ));
    }
    let version = match get_ci(obj, "version") {
        None | Some(Value::Null) => None,
        Some(Value::String(v)) => Some(v.clone()),
        Some(other) => {
            return Err(ScimError::invalid_syntax(format!(
                "'version' must be a string (an ETag such as W/\"3\"), got {other}"
            )));
        }
    };
    let data = if method == Method::Delete {
        None
    } else {
        match get_ci(obj, "data") {
            None | Some(Value::Null) => {
                return Err(ScimError::invalid_syntax(format!(
                    "'data' is required for a {} operation",
                    method.as_str()
                )));
            }
            Some(d @ Value::Object(_)) => Some(d.clone()),
            Some(other) => {
                return Err(ScimError::invalid_syntax(format!(
                    "'data' must be a JSON object, got {}",
                    json_type(other)
                )));
            }
        }
    };
    if method == Method::Patch
        && let Some(d) = &data
    {
        patch::parse_request(d).map_err(|e| ScimError {
            detail: format!("'data' is not a valid PatchOp message: {}", e.detail),
            ..e
        })?;
    }
    Ok(BulkOperation {
        method,
        endpoint,
        target,
        bulk_id,
        version,
        data,
    })
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `/Users`, `/Groups` for a POST; `/Users/{id}`, `/Groups/{id}` (or
/// `/Groups/bulkId:x`) otherwise. A trailing `/` is ignored, as on the wire.
fn parse_path(method: Method, raw: &str) -> Result<(Endpoint, Option<Target>), ScimError> {
    let bad = |why: &str| ScimError::invalid_path(format!("invalid 'path' '{raw}': {why}"));
    let Some(rest) = raw.strip_prefix('/') else {
        return Err(bad(
            "it must start with '/' (a path relative to the SCIM base, such as /Users)",
        ));
    };
    if raw.contains(['?', '#']) {
        return Err(bad("a bulk operation's path carries no query or fragment"));
    }
    let rest = rest.trim_end_matches('/');
    let mut segs = rest.split('/');
    let endpoint = match segs.next().unwrap_or_default() {
        "Users" => Endpoint::Users,
        "Groups" => Endpoint::Groups,
        _ => return Err(bad("it must name /Users or /Groups")),
    };
    let id = segs.next();
    if segs.next().is_some() {
        return Err(bad("it has too many segments"));
    }
    match (method, id) {
        (Method::Post, None) => Ok((endpoint, None)),
        (Method::Post, Some(_)) => Err(bad(
            "a POST's path is a resource type endpoint, /Users or /Groups",
        )),
        (m, None) => Err(ScimError::invalid_path(format!(
            "invalid 'path' '{raw}': a {}'s path names one resource, as {}/{{id}}",
            m.as_str(),
            endpoint.path()
        ))),
        (_, Some(id)) if id.contains('\0') => Err(bad("the id contains a NUL character")),
        (_, Some(id)) => match id.strip_prefix(REF_PREFIX) {
            Some("") => Err(bad("'bulkId:' must be followed by a bulkId")),
            Some(b) => Ok((endpoint, Some(Target::BulkRef(b.to_string())))),
            None => Ok((endpoint, Some(Target::Id(id.to_string())))),
        },
    }
}

/// Where an operation holds a reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Site {
    /// Inside `members[k]` of a group POST: that member can be added after the
    /// group exists, which is how a cycle through groups is broken.
    Member(usize),
    /// Anywhere else (the path, a manager, any other string).
    Other,
}

/// Every `bulkId:<id>` string value inside `v`, in document order.
fn collect_refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => {
            if let Some(b) = s.strip_prefix(REF_PREFIX) {
                out.push(b);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        Value::Object(o) => o.values().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}

/// The key of a group's `members` in `data`, when it is an array.
fn members_key(data: &Map<String, Value>) -> Option<&str> {
    data.iter()
        .find(|(k, v)| k.eq_ignore_ascii_case("members") && v.is_array())
        .map(|(k, _)| k.as_str())
}

impl BulkOperation {
    fn sites(&self) -> Vec<(String, Site)> {
        let mut out = Vec::new();
        if let Some(Target::BulkRef(b)) = &self.target {
            out.push((b.clone(), Site::Other));
        }
        let Some(Value::Object(data)) = &self.data else {
            return out;
        };
        let members = (self.method == Method::Post && self.endpoint == Endpoint::Groups)
            .then(|| members_key(data))
            .flatten();
        for (k, v) in data {
            let mut refs = Vec::new();
            if Some(k.as_str()) == members {
                for (i, m) in v.as_array().into_iter().flatten().enumerate() {
                    collect_refs(m, &mut refs);
                    out.extend(refs.drain(..).map(|b| (b.to_string(), Site::Member(i))));
                }
            } else {
                collect_refs(v, &mut refs);
                out.extend(refs.into_iter().map(|b| (b.to_string(), Site::Other)));
            }
        }
        out
    }

    /// The bulkIds this operation refers to (in its path or data), each once.
    pub fn references(&self) -> Vec<String> {
        let mut seen = Vec::new();
        for (b, _) in self.sites() {
            if !seen.contains(&b) {
                seen.push(b);
            }
        }
        seen
    }

    /// A group POST's data without the `members` elements at `deferred`, and
    /// those elements (to be added once the groups they name exist).
    pub fn split_members(&self, deferred: &[usize]) -> (Value, Vec<Value>) {
        let Some(Value::Object(data)) = &self.data else {
            return (self.data.clone().unwrap_or(Value::Null), vec![]);
        };
        let mut base = data.clone();
        let mut later = Vec::new();
        if let Some(key) = members_key(data).map(str::to_string)
            && let Some(Value::Array(members)) = base.get_mut(&key)
        {
            let all = std::mem::take(members);
            for (i, m) in all.into_iter().enumerate() {
                if deferred.contains(&i) {
                    later.push(m);
                } else {
                    members.push(m);
                }
            }
        }
        (Value::Object(base), later)
    }
}

/// Replaces every `bulkId:<id>` string value with what `resolve` gives; the
/// first bulkId it cannot resolve is the error.
pub fn substitute(v: &Value, resolve: &dyn Fn(&str) -> Option<String>) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) => match s.strip_prefix(REF_PREFIX) {
            Some(b) => Value::String(resolve(b).ok_or_else(|| b.to_string())?),
            None => v.clone(),
        },
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| substitute(x, resolve))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| Ok((k.clone(), substitute(x, resolve)?)))
                .collect::<Result<_, String>>()?,
        ),
        _ => v.clone(),
    })
}

/// One step of the execution plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Run the operation; each bulkId it references must have been created.
    Run(usize),
    /// The operation fails without running.
    Fail(usize, ScimError),
    /// Group POSTs that reference each other through their members: create each
    /// (in this order) without those members, then add them.
    Cycle(Vec<CycleMember>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleMember {
    pub op: usize,
    /// Indices into the POST's `members` that are added after creation.
    pub deferred: Vec<usize>,
    /// The other operations of the cycle this one references: if one of them
    /// fails, this one cannot be completed either.
    pub partners: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// bulkId → the one operation defining it.
    defs: HashMap<String, usize>,
}

impl Plan {
    /// The operation whose POST defines `bulk_id`.
    pub fn definer(&self, bulk_id: &str) -> Option<usize> {
        self.defs.get(bulk_id).copied()
    }
}

pub fn op_label(i: usize, echo: &Echo) -> String {
    match &echo.bulk_id {
        Some(b) => format!("Operations[{i}] (bulkId '{b}')"),
        None => format!("Operations[{i}]"),
    }
}

/// Orders the operations: request order, except that a POST runs before the
/// first operation that references it (§3.7: the client's intent and the same
/// stateful result as in-order processing). Operations that cannot run (invalid,
/// unknown or ambiguous reference, unresolvable cycle) become `Fail` steps at the
/// place they would have run.
pub fn plan(ops: &[ParsedOp]) -> Plan {
    let n = ops.len();
    // Every POST carrying a bulkId defines it, valid or not: a reference to an
    // invalid POST then fails as "that operation failed", not "unknown".
    let mut all_defs: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, p) in ops.iter().enumerate() {
        let is_post = match &p.op {
            Ok(o) => o.method == Method::Post,
            Err(_) => p
                .echo
                .method
                .as_deref()
                .is_some_and(|m| m.eq_ignore_ascii_case("POST")),
        };
        if is_post && let Some(b) = p.echo.bulk_id.as_deref().filter(|b| !b.is_empty()) {
            all_defs.entry(b.to_string()).or_default().push(i);
        }
    }
    let list = |idx: &[usize]| {
        idx.iter()
            .map(|i| format!("Operations[{i}]"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut static_err: Vec<Option<ScimError>> = vec![None; n];
    let mut adj: Vec<Vec<(usize, Site)>> = vec![vec![]; n];
    for (i, p) in ops.iter().enumerate() {
        let op = match &p.op {
            Ok(op) => op,
            Err(e) => {
                static_err[i] = Some(e.clone());
                continue;
            }
        };
        if op.method == Method::Post
            && let Some(b) = &op.bulk_id
            && let Some(d) = all_defs.get(b).filter(|d| d.len() > 1)
        {
            static_err[i] = Some(ScimError::invalid_value(format!(
                "'bulkId' '{b}' is not unique in this request: {} use it",
                list(d)
            )));
            continue;
        }
        for (b, site) in op.sites() {
            match all_defs.get(&b).map(Vec::as_slice) {
                None | Some([]) => {
                    static_err[i] = Some(ScimError::invalid_value(format!(
                        "'{REF_PREFIX}{b}' refers to no POST operation of this request (no operation has bulkId '{b}')"
                    )));
                    break;
                }
                Some([j]) => {
                    if !adj[i].contains(&(*j, site)) {
                        adj[i].push((*j, site));
                    }
                }
                Some(many) => {
                    static_err[i] = Some(ScimError::invalid_value(format!(
                        "'{REF_PREFIX}{b}' is ambiguous: {} all have bulkId '{b}'",
                        list(many)
                    )));
                    break;
                }
            }
        }
        if static_err[i].is_some() {
            adj[i].clear();
        }
    }
    let targets: Vec<Vec<usize>> = adj
        .iter()
        .map(|edges| {
            let mut t: Vec<usize> = Vec::new();
            for (j, _) in edges {
                if !t.contains(j) {
                    t.push(*j);
                }
            }
            t
        })
        .collect();
    let comp = strongly_connected(&targets);
    let ncomp = comp.iter().map(|c| c + 1).max().unwrap_or(0);
    let mut members: Vec<Vec<usize>> = vec![vec![]; ncomp];
    for (i, c) in comp.iter().enumerate() {
        members[*c].push(i);
    }
    // Dependencies of each component, in the order its operations name them.
    let mut deps: Vec<Vec<usize>> = vec![vec![]; ncomp];
    for i in 0..n {
        for j in &targets[i] {
            let (ci, cj) = (comp[i], comp[*j]);
            if ci != cj && !deps[ci].contains(&cj) {
                deps[ci].push(cj);
            }
        }
    }
    // Depth-first over the (acyclic) component graph, roots in request order,
    // emitting each component after its dependencies.
    let mut seen = vec![false; ncomp];
    let mut order = Vec::with_capacity(ncomp);
    for &root in &comp {
        if seen[root] {
            continue;
        }
        seen[root] = true;
        let mut stack = vec![(root, 0usize)];
        while let Some((c, next)) = stack.last().copied() {
            if let Some(d) = deps[c].get(next).copied() {
                if let Some(top) = stack.last_mut() {
                    top.1 += 1;
                }
                if !seen[d] {
                    seen[d] = true;
                    stack.push((d, 0));
                }
            } else {
                stack.pop();
                order.push(c);
            }
        }
    }
    let mut steps = Vec::with_capacity(n);
    for c in order {
        let m = &members[c];
        let cyclic = m.len() > 1 || m.iter().any(|i| targets[*i].contains(i));
        if !cyclic {
            for i in m {
                steps.push(match &static_err[*i] {
                    Some(e) => Step::Fail(*i, e.clone()),
                    None => Step::Run(*i),
                });
            }
            continue;
        }
        match resolve_cycle(ops, m, &adj) {
            Some(cycle) => steps.push(Step::Cycle(cycle)),
            None => {
                let labels = m
                    .iter()
                    .map(|i| op_label(*i, &ops[*i].echo))
                    .collect::<Vec<_>>()
                    .join(", ");
                let detail = if m.len() == 1 {
                    format!(
                        "circular bulkId reference: {labels} refers to itself, and only a group's members can refer to the group being created"
                    )
                } else {
                    format!(
                        "circular bulkId reference among {labels} cannot be resolved: a cycle can be broken only through group members (each group is created first, its members are added afterwards)"
                    )
                };
                for i in m {
                    steps.push(Step::Fail(*i, ScimError::new(409, None, detail.clone())));
                }
            }
        }
    }
    let defs = all_defs
        .into_iter()
        .filter_map(|(b, d)| match d.as_slice() {
            [one] => Some((b, *one)),
            _ => None,
        })
        .collect();
    Plan { steps, defs }
}

/// A cycle is resolvable when every operation in it is a group POST and the
/// references outside `members` leave no cycle: then each group is created
/// without the members that refer into the cycle, in an order where its other
/// references already exist, and those members are added afterwards.
fn resolve_cycle(
    ops: &[ParsedOp],
    cycle: &[usize],
    adj: &[Vec<(usize, Site)>],
) -> Option<Vec<CycleMember>> {
    let group_post = |i: usize| {
        ops[i]
            .op
            .as_ref()
            .is_ok_and(|o| o.method == Method::Post && o.endpoint == Endpoint::Groups)
    };
    if !cycle.iter().all(|i| group_post(*i)) {
        return None;
    }
    let inside: HashSet<usize> = cycle.iter().copied().collect();
    // Kahn over the references outside `members`: `waiting[i]` counts the
    // operations `i` needs first, `unblocks[j]` those that need `j`.
    let mut waiting: HashMap<usize, usize> = HashMap::new();
    let mut unblocks: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut members: HashMap<usize, CycleMember> = HashMap::new();
    for i in cycle {
        let mut m = CycleMember {
            op: *i,
            deferred: Vec::new(),
            partners: Vec::new(),
        };
        let mut hard: Vec<usize> = Vec::new();
        for (j, site) in &adj[*i] {
            if !inside.contains(j) {
                continue;
            }
            if !m.partners.contains(j) {
                m.partners.push(*j);
            }
            match site {
                Site::Member(k) => {
                    if !m.deferred.contains(k) {
                        m.deferred.push(*k);
                    }
                }
                Site::Other => {
                    if !hard.contains(j) {
                        hard.push(*j);
                    }
                }
            }
        }
        m.deferred.sort_unstable();
        waiting.insert(*i, hard.len());
        for j in hard {
            unblocks.entry(j).or_default().push(*i);
        }
        members.insert(*i, m);
    }
    let mut ready: BTreeSet<usize> = waiting
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(i, _)| *i)
        .collect();
    let mut out = Vec::with_capacity(cycle.len());
    while let Some(i) = ready.pop_first() {
        for k in unblocks.get(&i).into_iter().flatten() {
            if let Some(n) = waiting.get_mut(k) {
                *n -= 1;
                if *n == 0 {
                    ready.insert(*k);
                }
            }
        }
        out.extend(members.remove(&i));
    }
    // Operations left over wait on each other outside `members`: unresolvable.
    members.is_empty().then_some(out)
}

/// Tarjan's strongly connected components, without recursion (a long chain of
/// references must not exhaust the stack). Returns each node's component.
fn strongly_connected(adj: &[Vec<usize>]) -> Vec<usize> {
    const UNSEEN: usize = usize::MAX;
    let n = adj.len();
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut comp = vec![UNSEEN; n];
    let mut stack = Vec::new();
    let mut next_index = 0;
    let mut ncomp = 0;
    for root in 0..n {
        if index[root] != UNSEEN {
            continue;
        }
        let mut call = vec![(root, 0usize)];
        index[root] = next_index;
        low[root] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some((v, e)) = call.last().copied() {
            if let Some(w) = adj[v].get(e).copied() {
                if let Some(top) = call.last_mut() {
                    top.1 += 1;
                }
                if index[w] == UNSEEN {
                    index[w] = next_index;
                    low[w] = next_index;
                    next_index += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    call.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
            } else {
                call.pop();
                if let Some((u, _)) = call.last().copied() {
                    low[u] = low[u].min(low[v]);
                }
                if low[v] == index[v] {
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        comp[w] = ncomp;
                        if w == v {
                            break;
                        }
                    }
                    ncomp += 1;
                }
            }
        }
    }
    comp
}

/// The result of one processed operation.
#[derive(Debug, Clone, PartialEq)]
pub struct OpResult {
    pub status: u16,
    pub version: Option<String>,
    pub location: Option<String>,
    pub error: Option<ScimError>,
}

/// The BulkResponse: one entry per processed operation, in request order.
/// `status` is the HTTP status as a string, as in RFC 7644 §3.7.3's examples.
pub fn response(ops: &[ParsedOp], results: &[Option<OpResult>]) -> Value {
    let entries: Vec<Value> = ops
        .iter()
        .zip(results)
        .filter_map(|(p, r)| r.as_ref().map(|r| (p, r)))
        .map(|(p, r)| {
            let mut o = Map::new();
            if let Some(m) = &p.echo.method {
                o.insert("method".into(), Value::String(m.clone()));
            }
            if let Some(b) = &p.echo.bulk_id {
                o.insert("bulkId".into(), Value::String(b.clone()));
            }
            if let Some(v) = &r.version {
                o.insert("version".into(), Value::String(v.clone()));
            }
            if let Some(l) = &r.location {
                o.insert("location".into(), Value::String(l.clone()));
            }
            o.insert("status".into(), Value::String(r.status.to_string()));
            if let Some(e) = &r.error {
                o.insert("response".into(), e.to_json());
            }
            Value::Object(o)
        })
        .collect();
    json!({"schemas": [BULK_RESPONSE_URN], "Operations": entries})
}

#[cfg(test)]
mod tests;
