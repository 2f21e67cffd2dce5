//! Scenario runner.

use super::*;

pub(crate) fn parse_expect_status(value: Option<&Value>) -> Result<Vec<u16>, String> {
    let as_status = |v: &Value| {
        v.as_u64()
            .and_then(|n| u16::try_from(n).ok())
            .filter(|n| (100..600).contains(n))
            .ok_or_else(|| format!("invalid status {v} in expect_status"))
    };
    match value {
        None => Err("missing expect_status".to_string()),
        Some(Value::Array(items)) if !items.is_empty() => items.iter().map(as_status).collect(),
        Some(v @ Value::Number(_)) => Ok(vec![as_status(v)?]),
        Some(other) => Err(format!(
            "expect_status must be an integer or a non-empty list, got {other}"
        )),
    }
}

pub(crate) fn body_excerpt(body: &[u8]) -> String {
    if body.is_empty() {
        return "<empty>".to_string();
    }
    let text = String::from_utf8_lossy(body);
    truncate_chars(&text, BODY_EXCERPT_BYTES)
}

pub(crate) struct PreparedRequest {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) bytes: Vec<u8>,
}

pub(crate) fn prepare_request(
    step: &Map<String, Value>,
    defaults: Option<&Map<String, Value>>,
    server: &ServerTarget,
    vars: &Vars,
) -> Result<PreparedRequest, String> {
    let method = step
        .get("method")
        .and_then(Value::as_str)
        .ok_or("step has no string `method`")?
        .to_string();
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!("invalid method {method:?}"));
    }
    let path_template = step
        .get("path")
        .and_then(Value::as_str)
        .ok_or("step has no string `path`")?;
    let path = expand_str(path_template, vars).map_err(|e| format!("path: {e}"))?;
    if !path.starts_with('/') {
        return Err(format!("path {path:?} does not start with '/'"));
    }
    let query = if let Some(raw) = step.get("raw_query") {
        let raw = raw.as_str().ok_or("raw_query must be a string")?;
        Some(expand_str(raw, vars).map_err(|e| format!("raw_query: {e}"))?)
    } else if let Some(query) = step.get("query") {
        let encoding = match step.get("query_encoding") {
            None => QueryEncoding::Pct20,
            Some(v) => QueryEncoding::parse(v.as_str().ok_or("query_encoding must be a string")?)?,
        };
        let items = query
            .as_array()
            .ok_or("query must be a list of [name, value] pairs")?;
        let mut pairs = Vec::with_capacity(items.len());
        for item in items {
            let (Some(name), Some(value), 2) = (
                item.get(0),
                item.get(1),
                item.as_array().map_or(0, Vec::len),
            ) else {
                return Err(format!("query item {item} is not a [name, value] pair"));
            };
            let text = |v: &Value| match v {
                Value::String(s) => expand_str(s, vars),
                other => Ok(other.to_string()),
            };
            pairs.push((
                text(name).map_err(|e| format!("query: {e}"))?,
                text(value).map_err(|e| format!("query: {e}"))?,
            ));
        }
        (!pairs.is_empty()).then(|| encode_query(&pairs, encoding))
    } else {
        None
    };
    let mut target = format!("{}{path}", server.base_path);
    // `idp_shape: aadOptscim062020`: the Entra tenant URL carries the compliance
    // flag, so every request of that job has it in its query string.
    let flagged = step.get("idp_shape").and_then(Value::as_str) == Some("aadOptscim062020");
    let query = match (query, flagged) {
        (Some(q), true) => Some(format!("aadOptscim062020&{q}")),
        (None, true) => Some("aadOptscim062020".to_string()),
        (q, false) => q,
    };
    if let Some(query) = query {
        target.push('?');
        target.push_str(&query);
    }
    if target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(format!(
            "request target {target:?} contains whitespace/control characters and cannot be sent"
        ));
    }
    let body: Option<Vec<u8>> = match (step.get("body"), step.get("body_raw")) {
        (Some(_), Some(_)) => return Err("step has both `body` and `body_raw`".to_string()),
        (Some(body), None) => {
            let expanded = expand_value(body, vars).map_err(|e| format!("body: {e}"))?;
            Some(serde_json::to_vec(&expanded).map_err(|e| format!("serializing body: {e}"))?)
        }
        (None, Some(raw)) => {
            let raw = raw.as_str().ok_or("body_raw must be a string")?;
            Some(expand_str_lenient(raw, vars)?.into_bytes())
        }
        (None, None) => None,
    };
    let overlay = match step.get("headers") {
        None => None,
        Some(Value::Object(map)) => Some(map),
        Some(other) => return Err(format!("headers must be an object, got {other}")),
    };
    let headers = effective_headers(defaults, overlay, body.is_some(), vars)?;
    let bytes = build_request(
        &method,
        &target,
        &server.authority,
        &headers,
        body.as_deref(),
    );
    Ok(PreparedRequest {
        method,
        target,
        bytes,
    })
}

#[derive(Default)]
pub(crate) struct ScenarioReport {
    pub(crate) id: String,
    pub(crate) steps_total: usize,
    pub(crate) steps_passed: usize,
    pub(crate) max_latency_ms: f64,
    /// Largest `max_ms` bound that applied to any step of the scenario.
    pub(crate) budget_ms: Option<u64>,
    pub(crate) steps_over_budget: usize,
    pub(crate) failures: Vec<String>,
}

pub(crate) struct StepContext<'a> {
    pub(crate) scenario: &'a str,
    pub(crate) index: usize,
    pub(crate) total: usize,
    pub(crate) step: &'a Map<String, Value>,
}

impl StepContext<'_> {
    pub(crate) fn header(&self, request: &str) -> String {
        let name = self
            .step
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("<unnamed>");
        let mut tags = String::new();
        if let Some(role) = self.step.get("role").and_then(Value::as_str) {
            let _ = write!(tags, " (role={role})");
        }
        if let Some(shape) = self.step.get("idp_shape").and_then(Value::as_str) {
            let _ = write!(tags, " (idp_shape={shape})");
        }
        format!(
            "[{}] step {}/{} {name:?}{tags}\n    request: {request}",
            self.scenario, self.index, self.total
        )
    }
}

pub(crate) async fn run_scenario(
    scenario: &Value,
    server: &ServerTarget,
    tenant_token: &str,
) -> ScenarioReport {
    let id = scenario_id(scenario);
    let mut report = ScenarioReport {
        id: id.clone(),
        ..ScenarioReport::default()
    };
    let static_problems = validate_scenario(scenario);
    if !static_problems.is_empty() {
        report.failures.push(format!(
            "[{id}] scenario is malformed for this runner (not executed):\n    - {}",
            static_problems.join("\n    - ")
        ));
        return report;
    }
    let empty = Map::new();
    let object = scenario.as_object().unwrap_or(&empty);
    let mut vars = match object.get("generate").and_then(Value::as_object) {
        Some(spec) => match generate_vars(spec) {
            Ok(vars) => vars,
            Err(e) => {
                report.failures.push(format!("[{id}] generate: {e}"));
                return report;
            }
        },
        None => Vars::new(),
    };
    vars.insert(
        "auth".to_string(),
        Value::String(format!("Bearer {tenant_token}")),
    );
    let defaults = object.get("default_headers").and_then(Value::as_object);
    let scenario_budget = object.get("max_ms").and_then(Value::as_u64);
    let steps: &[Value] = object
        .get("steps")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    report.steps_total = steps.len();

    for (index, step_value) in steps.iter().enumerate() {
        let Some(step) = step_value.as_object() else {
            report
                .failures
                .push(format!("[{id}] step {}: not an object", index + 1));
            continue;
        };
        let ctx = StepContext {
            scenario: &id,
            index: index + 1,
            total: steps.len(),
            step,
        };
        let prepared = match prepare_request(step, defaults, server, &vars) {
            Ok(p) => p,
            Err(e) => {
                report.failures.push(format!(
                    "{}\n    - request not sent: {e}",
                    ctx.header("<not built>")
                ));
                continue;
            }
        };
        let request_line = format!("{} {}", prepared.method, prepared.target);
        let (response, elapsed) =
            match send(&server.authority, prepared.bytes, &prepared.method).await {
                Ok(r) => r,
                Err(e) => {
                    report.failures.push(format!(
                        "{}\n    - transport error: {e}",
                        ctx.header(&request_line)
                    ));
                    continue;
                }
            };
        let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
        report.max_latency_ms = report.max_latency_ms.max(elapsed_ms);
        if let Some(budget) = step
            .get("max_ms")
            .and_then(Value::as_u64)
            .or(scenario_budget)
        {
            report.budget_ms = Some(report.budget_ms.map_or(budget, |b| b.max(budget)));
            if elapsed_ms > budget as f64 {
                report.steps_over_budget += 1;
                println!(
                    "latency note (not asserted): [{id}] step {} {request_line} took {elapsed_ms:.1} ms > max_ms {budget}",
                    index + 1
                );
            }
        }

        let reasons = check_step(step, &response, &mut vars);
        if reasons.is_empty() {
            report.steps_passed += 1;
        } else {
            let mut message = ctx.header(&request_line);
            for reason in &reasons {
                let _ = write!(message, "\n    - {reason}");
            }
            let _ = write!(
                message,
                "\n    response {} ({} bytes, {elapsed_ms:.1} ms): {}",
                response.status,
                response.body.len(),
                body_excerpt(&response.body)
            );
            report.failures.push(message);
        }
    }
    report
}

/// Evaluates a step's expectations and captures. Returns every failure reason.
pub(crate) fn check_step(
    step: &Map<String, Value>,
    response: &RawResponse,
    vars: &mut Vars,
) -> Vec<String> {
    let mut reasons = Vec::new();
    let expected_status = match parse_expect_status(step.get("expect_status")) {
        Ok(s) => s,
        Err(e) => return vec![e],
    };
    if !expected_status.contains(&response.status) {
        let wanted = expected_status
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(" or ");
        reasons.push(format!(
            "status: expected {wanted}, got {}",
            response.status
        ));
        // Body/header expectations and captures are meaningless for an unexpected status.
        return reasons;
    }

    let parsed: Result<Value, String> = if response.body.is_empty() {
        Err("response body is empty".to_string())
    } else {
        serde_json::from_slice(&response.body)
            .map_err(|e| format!("response body is not valid JSON: {e}"))
    };

    // Captures run once the status expectation passed, before the JSON checks (so an expectation
    // could use a value captured by the same step).
    if let Some(capture) = step.get("capture").and_then(Value::as_object) {
        for (var, path) in capture {
            let Some(path) = path.as_str() else {
                reasons.push(format!(
                    "capture `{var}`: path must be a string, got {path}"
                ));
                continue;
            };
            let path = match expand_str(path, vars) {
                Ok(p) => p,
                Err(e) => {
                    reasons.push(format!("capture `{var}`: {e}"));
                    continue;
                }
            };
            match &parsed {
                Err(e) => reasons.push(format!("capture `{var}` from `{path}`: {e}")),
                Ok(body) => match resolve_path(body, &path) {
                    Ok(value) => {
                        vars.insert(var.clone(), value.clone());
                    }
                    Err(e) => reasons.push(format!("capture `{var}`: {e}")),
                },
            }
        }
    }

    let mut subset_checks = Vec::new();
    if let Some(expected) = step.get("expect_json_subset") {
        subset_checks.push(("expect_json_subset", expected));
    }
    if response.status == 200
        && let Some(expected) = step.get("expect_json_subset_if_200")
    {
        subset_checks.push(("expect_json_subset_if_200", expected));
    }
    for (label, expected) in subset_checks {
        match &parsed {
            Err(e) => reasons.push(format!("{label}: {e}")),
            Ok(body) => {
                for mismatch in match_subset(expected, body, vars) {
                    reasons.push(format!("{label} {mismatch}"));
                }
            }
        }
    }

    if step.get("expect_body_empty").and_then(Value::as_bool) == Some(true)
        && !response.body.is_empty()
    {
        reasons.push(format!(
            "expect_body_empty: body has {} bytes (Content-Type: {})",
            response.body.len(),
            response.header("content-type").unwrap_or("<none>")
        ));
    }

    if let Some(expected) = step.get("expect_headers_subset") {
        match expected.as_object() {
            Some(map) => {
                for mismatch in match_headers(map, &response.headers, vars) {
                    reasons.push(format!("expect_headers_subset: {mismatch}"));
                }
            }
            None => reasons.push("expect_headers_subset must be an object".to_string()),
        }
    }
    reasons
}

pub(crate) fn summary_table(label: &str, reports: &[ScenarioReport]) -> String {
    let width = reports.iter().map(|r| r.id.len()).max().unwrap_or(8).max(8);
    let mut out = format!(
        "\nIdP replay conformance ({label}):\n{:<width$}  {:>7}  {:<6}  {:>11}  {:>8}\n",
        "scenario", "steps", "result", "max lat ms", "max_ms"
    );
    for r in reports {
        let budget = match r.budget_ms {
            Some(b) if r.steps_over_budget > 0 => format!("{b} ({} over)", r.steps_over_budget),
            Some(b) => b.to_string(),
            None => "-".to_string(),
        };
        let _ = writeln!(
            out,
            "{:<width$}  {:>7}  {:<6}  {:>11.1}  {:>8}",
            r.id,
            format!("{}/{}", r.steps_passed, r.steps_total),
            if r.failures.is_empty() {
                "PASS"
            } else {
                "FAIL"
            },
            r.max_latency_ms,
            budget
        );
    }
    let passed = reports.iter().filter(|r| r.failures.is_empty()).count();
    let _ = writeln!(out, "{passed}/{} scenarios passed", reports.len());
    out
}

pub(crate) async fn replay_all(backend: common::Backend, label: &str) {
    let scenarios = match load_corpus() {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    assert!(
        scenarios.len() >= MIN_SCENARIOS,
        "{CORPUS_PATH} holds {} scenarios; at least {MIN_SCENARIOS} are required",
        scenarios.len()
    );
    let mut seen = HashSet::new();
    for scenario in &scenarios {
        let id = scenario_id(scenario);
        assert!(
            seen.insert(id.clone()),
            "duplicate scenario id `{id}` in {CORPUS_PATH}"
        );
    }

    let app = common::spawn_app(backend).await;
    let server = match parse_base_url(&app.scim_url) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let mut reports = Vec::with_capacity(scenarios.len());
    for scenario in &scenarios {
        // Isolation: a fresh, empty tenant per scenario.
        let token = app.new_tenant_token().await;
        reports.push(run_scenario(scenario, &server, &token).await);
    }

    let table = summary_table(label, &reports);
    println!("{table}");
    let failures: Vec<&String> = reports.iter().flat_map(|r| r.failures.iter()).collect();
    for failure in &failures {
        println!("FAILED {failure}\n");
    }
    assert!(
        failures.is_empty(),
        "{} conformance step failure(s) on {label}:\n\n{}\n{table}",
        failures.len(),
        failures
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub(crate) async fn replay_all_scenarios_sqlite() {
    replay_all(common::Backend::Sqlite, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub(crate) async fn replay_all_scenarios_postgres() {
    if common::pg_url().is_none() {
        eprintln!(
            "replay_all_scenarios_postgres: CUSTODIAN_TEST_PG_URL is not set; skipping the Postgres replay"
        );
        return;
    }
    replay_all(common::Backend::Postgres, "postgres").await;
}
