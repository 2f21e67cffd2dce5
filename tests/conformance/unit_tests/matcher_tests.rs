//! Unit tests of the JSON subset matcher.

use super::super::*;
use super::support::*;

#[test]
fn matcher_present_and_absent() {
    let v = Vars::new();
    assert_match(
        serde_json::json!({"a": "$present"}),
        serde_json::json!({"a": 0}),
        &v,
    );
    assert_mismatch(
        serde_json::json!({"a": "$present"}),
        serde_json::json!({"a": null}),
        &v,
        "$.a",
    );
    assert_mismatch(
        serde_json::json!({"a": "$present"}),
        serde_json::json!({}),
        &v,
        "$.a",
    );
    assert_match(
        serde_json::json!({"a": "$absent"}),
        serde_json::json!({}),
        &v,
    );
    assert_match(
        serde_json::json!({"a": "$absent"}),
        serde_json::json!({"a": null}),
        &v,
    );
    assert_mismatch(
        serde_json::json!({"a": "$absent"}),
        serde_json::json!({"a": ""}),
        &v,
        "$.a",
    );
}

#[test]
fn matcher_type_checks() {
    let v = Vars::new();
    assert_match(
        serde_json::json!({"a": "$int"}),
        serde_json::json!({"a": 3}),
        &v,
    );
    assert_match(
        serde_json::json!({"a": "$int"}),
        serde_json::json!({"a": -3}),
        &v,
    );
    assert_mismatch(
        serde_json::json!({"a": "$int"}),
        serde_json::json!({"a": 3.5}),
        &v,
        "$.a",
    );
    assert_mismatch(
        serde_json::json!({"a": "$int"}),
        serde_json::json!({"a": "3"}),
        &v,
        "$.a",
    );
    assert_mismatch(
        serde_json::json!({"a": "$int"}),
        serde_json::json!({}),
        &v,
        "$.a",
    );
    assert_match(
        serde_json::json!({"a": "$number"}),
        serde_json::json!({"a": 3.5}),
        &v,
    );
    assert_match(
        serde_json::json!({"a": "$number"}),
        serde_json::json!({"a": 3}),
        &v,
    );
    assert_mismatch(
        serde_json::json!({"a": "$number"}),
        serde_json::json!({"a": "3"}),
        &v,
        "$.a",
    );
    assert_match(
        serde_json::json!({"a": "$string"}),
        serde_json::json!({"a": ""}),
        &v,
    );
    assert_mismatch(
        serde_json::json!({"a": "$string"}),
        serde_json::json!({"a": 1}),
        &v,
        "$.a",
    );
    assert_match(
        serde_json::json!({"a": "$array"}),
        serde_json::json!({"a": []}),
        &v,
    );
    assert_mismatch(
        serde_json::json!({"a": "$array"}),
        serde_json::json!({"a": {}}),
        &v,
        "$.a",
    );
}

#[test]
fn matcher_nonempty_empty_cleared() {
    let v = Vars::new();
    for ok in [
        serde_json::json!("x"),
        serde_json::json!([1]),
        serde_json::json!({"k": 1}),
    ] {
        assert_match(
            serde_json::json!({"a": "$nonempty"}),
            serde_json::json!({ "a": ok }),
            &v,
        );
    }
    for bad in [
        serde_json::json!(""),
        serde_json::json!([]),
        serde_json::json!({}),
        serde_json::json!(null),
        serde_json::json!(5),
    ] {
        assert_mismatch(
            serde_json::json!({"a": "$nonempty"}),
            serde_json::json!({ "a": bad }),
            &v,
            "$.a",
        );
    }
    assert_mismatch(
        serde_json::json!({"a": "$nonempty"}),
        serde_json::json!({}),
        &v,
        "$.a",
    );

    assert_match(
        serde_json::json!({"a": "$empty"}),
        serde_json::json!({}),
        &v,
    );
    for ok in [
        serde_json::json!(null),
        serde_json::json!([]),
        serde_json::json!({}),
        serde_json::json!(""),
    ] {
        assert_match(
            serde_json::json!({"a": "$empty"}),
            serde_json::json!({ "a": ok }),
            &v,
        );
    }
    assert_mismatch(
        serde_json::json!({"a": "$empty"}),
        serde_json::json!({"a": {"value": ""}}),
        &v,
        "$.a",
    );
    assert_mismatch(
        serde_json::json!({"a": "$empty"}),
        serde_json::json!({"a": "x"}),
        &v,
        "$.a",
    );

    assert_match(
        serde_json::json!({"m": "$cleared"}),
        serde_json::json!({}),
        &v,
    );
    for ok in [
        serde_json::json!(null),
        serde_json::json!({}),
        serde_json::json!(""),
        serde_json::json!({"value": ""}),
        serde_json::json!({"value": null, "displayName": "x"}),
    ] {
        assert_match(
            serde_json::json!({"m": "$cleared"}),
            serde_json::json!({ "m": ok }),
            &v,
        );
    }
    assert_mismatch(
        serde_json::json!({"m": "$cleared"}),
        serde_json::json!({"m": {"value": "abc"}}),
        &v,
        "$.m",
    );
}

#[test]
fn matcher_ne_and_contains_with_placeholders() {
    let v = vars_of(serde_json::json!({"old": "abc", "n": 3, "part": "scim"}));
    assert_match(
        serde_json::json!({"id": "$ne:{{old}}"}),
        serde_json::json!({"id": "xyz"}),
        &v,
    );
    assert_mismatch(
        serde_json::json!({"id": "$ne:{{old}}"}),
        serde_json::json!({"id": "abc"}),
        &v,
        "$.id",
    );
    assert_mismatch(
        serde_json::json!({"id": "$ne:{{old}}"}),
        serde_json::json!({}),
        &v,
        "$.id",
    );
    assert_mismatch(
        serde_json::json!({"c": "$ne:{{n}}"}),
        serde_json::json!({"c": 3}),
        &v,
        "$.c",
    );
    assert_mismatch(
        serde_json::json!({"c": "$ne:3"}),
        serde_json::json!({"c": 3}),
        &v,
        "$.c",
    );
    assert_match(
        serde_json::json!({"c": "$ne:3"}),
        serde_json::json!({"c": 4}),
        &v,
    );
    assert_match(
        serde_json::json!({"t": "$contains:application/{{part}}+json"}),
        serde_json::json!({"t": "application/scim+json; charset=utf-8"}),
        &v,
    );
    assert_mismatch(
        serde_json::json!({"t": "$contains:scim"}),
        serde_json::json!({"t": "application/json"}),
        &v,
        "$.t",
    );
    assert_mismatch(
        serde_json::json!({"t": "$contains:1"}),
        serde_json::json!({"t": 1}),
        &v,
        "$.t",
    );
    let errors = assert_mismatch(
        serde_json::json!({"id": "$ne:{{nope}}"}),
        serde_json::json!({"id": "x"}),
        &v,
        "$.id",
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("undefined variable `nope`")),
        "{errors:?}"
    );
}

#[test]
fn matcher_array_object_len_contains_excludes() {
    let v = vars_of(serde_json::json!({"uid": "u-1"}));
    let actual = serde_json::json!({"Resources": [
        {"id": "u-1", "userName": "a", "active": true},
        {"id": "u-2", "userName": "b", "active": false}
    ]});
    assert_match(
        serde_json::json!({"Resources": {"$len": 2}}),
        actual.clone(),
        &v,
    );
    assert_mismatch(
        serde_json::json!({"Resources": {"$len": 1}}),
        actual.clone(),
        &v,
        "$.Resources",
    );
    assert_match(
        serde_json::json!({"Resources": {"$contains": [{"userName": "b"}, {"id": "{{uid}}"}]}}),
        actual.clone(),
        &v,
    );
    let m = assert_mismatch(
        serde_json::json!({"Resources": {"$contains": [{"id": "{{uid}}", "active": false}]}}),
        actual.clone(),
        &v,
        "$.Resources",
    );
    assert!(
        m.iter()
            .any(|s| s.contains("candidate: $.Resources[0].active")),
        "{m:#?}"
    );
    assert_match(
        serde_json::json!({"Resources": {"$excludes": [{"id": "u-3"}, {"id": "u-1", "active": false}]}}),
        actual.clone(),
        &v,
    );
    assert_mismatch(
        serde_json::json!({"Resources": {"$excludes": [{"id": "u-2"}]}}),
        actual.clone(),
        &v,
        "$.Resources[1]",
    );
    assert_match(
        serde_json::json!({"Resources": {"$len": 2, "$contains": [{"id": "u-2"}], "$excludes": [{"id": "zzz"}]}}),
        actual.clone(),
        &v,
    );
    assert_match(
        serde_json::json!({"Resources": {"$len": 0}}),
        serde_json::json!({"Resources": []}),
        &v,
    );
    assert_mismatch(
        serde_json::json!({"Resources": {"$len": 0}}),
        serde_json::json!({}),
        &v,
        "$.Resources",
    );
    assert_mismatch(
        serde_json::json!({"Resources": {"$len": 0}}),
        serde_json::json!({"Resources": {}}),
        &v,
        "$.Resources",
    );
}

#[test]
fn matcher_nested_objects_extra_keys_and_exact_names() {
    let v = Vars::new();
    let actual = serde_json::json!({
        "name": {"givenName": "A", "familyName": "B", "middleName": "C"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m1", "displayName": "M"}},
        "extra": 1
    });
    assert_match(
        serde_json::json!({
            "name": {"givenName": "A"},
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m1"}}
        }),
        actual.clone(),
        &v,
    );
    assert_mismatch(
        serde_json::json!({"name": {"givenName": "X"}}),
        actual.clone(),
        &v,
        "$.name.givenName",
    );
    // attribute names compare exactly (no case folding)
    assert_mismatch(
        serde_json::json!({"Name": {"givenName": "A"}}),
        actual.clone(),
        &v,
        "$.Name",
    );
    assert_mismatch(
        serde_json::json!({"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m2"}}}),
        actual.clone(),
        &v,
        "$[\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\"].manager.value",
    );
    assert_mismatch(
        serde_json::json!({"name": "A"}),
        actual.clone(),
        &v,
        "$.name",
    );
    assert_mismatch(
        serde_json::json!({"extra": {"k": 1}}),
        actual,
        &v,
        "$.extra",
    );
    // literal scalars: numbers compare numerically, booleans exactly
    assert_match(
        serde_json::json!({"n": 1}),
        serde_json::json!({"n": 1.0}),
        &v,
    );
    assert_mismatch(
        serde_json::json!({"b": true}),
        serde_json::json!({"b": "true"}),
        &v,
        "$.b",
    );
    assert_match(serde_json::json!({"x": null}), serde_json::json!({}), &v);
    // an unknown $-string is compared literally and the message says so
    let m = assert_mismatch(
        serde_json::json!({"a": "$nonEmpty"}),
        serde_json::json!({"a": "x"}),
        &v,
        "$.a",
    );
    assert!(m.iter().any(|s| s.contains("not a known matcher")), "{m:?}");
    // `$ref` is an ordinary attribute name, not an array matcher
    assert_match(
        serde_json::json!({"members": [{"$ref": "r", "value": "1"}]}),
        serde_json::json!({"members": [{"value": "1", "$ref": "r", "display": "d"}]}),
        &v,
    );
}

#[test]
fn matcher_plain_arrays_are_order_insensitive_subsets() {
    let v = Vars::new();
    let actual = serde_json::json!({
        "schemas": ["urn:a", "urn:b"],
        "emails": [{"value": "x@y", "type": "home"}, {"value": "w@y", "type": "work", "primary": true}]
    });
    assert_match(
        serde_json::json!({"schemas": ["urn:b", "urn:a"]}),
        actual.clone(),
        &v,
    );
    assert_match(
        serde_json::json!({"schemas": ["urn:b"]}),
        actual.clone(),
        &v,
    );
    assert_match(serde_json::json!({"schemas": []}), actual.clone(), &v);
    assert_match(
        serde_json::json!({"emails": [{"type": "work", "primary": true}, {"type": "home"}]}),
        actual.clone(),
        &v,
    );
    assert_mismatch(
        serde_json::json!({"schemas": ["urn:c"]}),
        actual.clone(),
        &v,
        "$.schemas",
    );
    assert_mismatch(
        serde_json::json!({"emails": [{"type": "home", "primary": true}]}),
        actual.clone(),
        &v,
        "$.emails",
    );
    assert_mismatch(
        serde_json::json!({"emails": ["x"]}),
        serde_json::json!({"emails": "x"}),
        &v,
        "$.emails",
    );
    // matcher strings work as array elements too
    assert_match(serde_json::json!({"schemas": ["$string"]}), actual, &v);
}

#[test]
fn matcher_expands_placeholders_in_expectations() {
    let v = vars_of(
        serde_json::json!({"user": "Alice@X.example", "count": 2, "flag": false, "key": "displayName"}),
    );
    assert_match(
        serde_json::json!({"userName": "{{user}}", "lower": "{{lower:user}}", "upper": "{{upper:user}}", "total": "{{count}}", "active": "{{flag}}", "{{key}}": "n={{count}}"}),
        serde_json::json!({"userName": "Alice@X.example", "lower": "alice@x.example", "upper": "ALICE@X.EXAMPLE", "total": 2, "active": false, "displayName": "n=2"}),
        &v,
    );
    assert_mismatch(
        serde_json::json!({"total": "{{count}}"}),
        serde_json::json!({"total": "2"}),
        &v,
        "$.total",
    );
    assert_match(
        serde_json::json!({"r": {"$len": "{{count}}"}}),
        serde_json::json!({"r": [1, 2]}),
        &v,
    );
    let m = assert_mismatch(
        serde_json::json!({"a": "{{missing}}"}),
        serde_json::json!({"a": "x"}),
        &v,
        "$.a",
    );
    assert!(
        m.iter().any(|s| s.contains("undefined variable `missing`")),
        "{m:?}"
    );
}
