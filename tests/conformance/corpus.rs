//! Corpus loading and static validation.

use super::*;

pub(crate) fn load_corpus() -> Result<Vec<Value>, String> {
    let text =
        std::fs::read_to_string(CORPUS_PATH).map_err(|e| format!("reading {CORPUS_PATH}: {e}"))?;
    let root: Value =
        serde_json::from_str(&text).map_err(|e| format!("parsing {CORPUS_PATH}: {e}"))?;
    let version = root.get("format_version").and_then(Value::as_u64);
    if version != Some(SUPPORTED_FORMAT_VERSION) {
        return Err(format!(
            "{CORPUS_PATH}: format_version {version:?} is not supported by this runner (expects {SUPPORTED_FORMAT_VERSION})"
        ));
    }
    match root.get("scenarios") {
        Some(Value::Array(scenarios)) => Ok(scenarios.clone()),
        other => Err(format!(
            "{CORPUS_PATH}: `scenarios` must be an array, got {}",
            describe(other)
        )),
    }
}

pub(crate) fn scenario_id(scenario: &Value) -> String {
    scenario
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("<scenario without id>")
        .to_string()
}

pub(crate) fn unknown_keys(object: &Map<String, Value>, known: &[&str]) -> Vec<String> {
    object
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .cloned()
        .collect()
}

/// Matcher-looking strings in an expectation that are not recognized matchers.
pub(crate) fn unknown_matchers(expectation: &Value, out: &mut Vec<String>) {
    match expectation {
        Value::String(s) if s.starts_with('$') => {
            let known = SCALAR_MATCHERS.contains(&s.as_str())
                || s.starts_with("$ne:")
                || s.starts_with("$contains:");
            if !known {
                out.push(s.clone());
            }
        }
        Value::Array(items) => items.iter().for_each(|item| unknown_matchers(item, out)),
        Value::Object(map) => map.values().for_each(|item| unknown_matchers(item, out)),
        _ => {}
    }
}

/// Checks a scenario without a server: known keys, generators, encodings, expectation shapes and
/// that every placeholder refers to a variable defined by then (`auth`, generated, or captured by
/// an earlier step; expectations may also use the same step's captures).
pub(crate) fn validate_scenario(scenario: &Value) -> Vec<String> {
    let id = scenario_id(scenario);
    let mut problems = Vec::new();
    let Some(object) = scenario.as_object() else {
        return vec![format!("[{id}] scenario is not an object")];
    };
    for key in unknown_keys(object, SCENARIO_KEYS) {
        problems.push(format!("[{id}] unknown scenario key `{key}`"));
    }
    let mut defined: HashSet<String> = HashSet::from(["auth".to_string()]);
    if let Some(generate) = object.get("generate") {
        match generate.as_object() {
            Some(map) => {
                for (name, generator) in map {
                    match generator.as_str() {
                        Some(g) if GENERATORS.contains(&g) => {}
                        _ => problems
                            .push(format!("[{id}] unknown generator {generator} for `{name}`")),
                    }
                    defined.insert(name.clone());
                }
            }
            None => problems.push(format!("[{id}] `generate` must be an object")),
        }
    }
    let mut referenced = Vec::new();
    placeholder_names(
        object.get("default_headers").unwrap_or(&Value::Null),
        &mut referenced,
    );
    for name in referenced {
        if !defined.contains(&name) {
            problems.push(format!(
                "[{id}] default_headers use undefined variable `{name}`"
            ));
        }
    }
    let Some(steps) = object.get("steps").and_then(Value::as_array) else {
        problems.push(format!("[{id}] `steps` must be an array"));
        return problems;
    };
    if steps.is_empty() {
        problems.push(format!("[{id}] has no steps"));
    }
    for (index, step) in steps.iter().enumerate() {
        let label = format!("[{id}] step {}", index + 1);
        let Some(step) = step.as_object() else {
            problems.push(format!("{label}: not an object"));
            continue;
        };
        for key in unknown_keys(step, STEP_KEYS) {
            problems.push(format!("{label}: unknown step key `{key}`"));
        }
        for required in ["name", "method", "path", "expect_status"] {
            if !step.contains_key(required) {
                problems.push(format!("{label}: missing `{required}`"));
            }
        }
        if let Err(e) = parse_expect_status(step.get("expect_status")) {
            problems.push(format!("{label}: {e}"));
        }
        if let Some(encoding) = step.get("query_encoding") {
            match encoding.as_str().map(QueryEncoding::parse) {
                Some(Ok(_)) => {}
                Some(Err(e)) => problems.push(format!("{label}: {e}")),
                None => problems.push(format!("{label}: query_encoding must be a string")),
            }
        }
        if step.contains_key("body") && step.contains_key("body_raw") {
            problems.push(format!("{label}: has both `body` and `body_raw`"));
        }
        let mut request_refs = Vec::new();
        for key in ["path", "query", "raw_query", "headers", "body", "body_raw"] {
            if let Some(v) = step.get(key) {
                placeholder_names(v, &mut request_refs);
            }
        }
        for name in request_refs {
            if !defined.contains(&name) {
                problems.push(format!("{label}: request uses undefined variable `{name}`"));
            }
        }
        if let Some(capture) = step.get("capture") {
            match capture.as_object() {
                Some(map) => defined.extend(map.keys().cloned()),
                None => problems.push(format!("{label}: `capture` must be an object")),
            }
        }
        let mut expectation_refs = Vec::new();
        for key in [
            "expect_json_subset",
            "expect_json_subset_if_200",
            "expect_headers_subset",
        ] {
            if let Some(v) = step.get(key) {
                placeholder_names(v, &mut expectation_refs);
                let mut unknown = Vec::new();
                unknown_matchers(v, &mut unknown);
                for m in unknown {
                    problems.push(format!(
                        "{label}: `{key}` uses unknown matcher string {m:?}"
                    ));
                }
            }
        }
        for name in expectation_refs {
            if !defined.contains(&name) {
                problems.push(format!(
                    "{label}: expectation uses undefined variable `{name}`"
                ));
            }
        }
    }
    problems
}
