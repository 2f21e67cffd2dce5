//! Helpers shared by the unit tests.

use super::super::*;

pub(super) fn must<T, E: std::fmt::Display>(result: Result<T, E>, context: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{context}: {e}"),
    }
}

pub(super) fn vars_of(value: Value) -> Vars {
    match value {
        Value::Object(map) => map.into_iter().collect(),
        other => panic!("vars_of needs an object, got {other}"),
    }
}

pub(super) fn assert_match(expected: Value, actual: Value, vars: &Vars) {
    let mismatches = match_subset(&expected, &actual, vars);
    assert!(
        mismatches.is_empty(),
        "expected {expected} to match {actual}, got mismatches: {mismatches:#?}"
    );
}

pub(super) fn assert_mismatch(
    expected: Value,
    actual: Value,
    vars: &Vars,
    location: &str,
) -> Vec<String> {
    let mismatches = match_subset(&expected, &actual, vars);
    assert!(
        mismatches.iter().any(|m| m.starts_with(location)),
        "expected a mismatch at `{location}` for {expected} vs {actual}, got {mismatches:#?}"
    );
    mismatches
}
