//! Unit tests of `bulk`.

use super::*;
use crate::scim::error::ScimType;

fn req(ops: Value) -> BulkRequest {
    match parse_request(
        &json!({"schemas": [BULK_REQUEST_URN], "Operations": ops}),
        100,
    ) {
        Ok(r) => r,
        Err(e) => panic!("{e:?}"),
    }
}

fn op_err(op: Value) -> ScimError {
    match req(json!([op])).operations.remove(0).op {
        Err(e) => e,
        Ok(o) => panic!("expected an error, got {o:?}"),
    }
}

fn user_post(bulk: &str, extra: Value) -> Value {
    let mut data = json!({"userName": format!("{bulk}@example.edu")});
    if let (Some(d), Value::Object(x)) = (data.as_object_mut(), extra) {
        d.extend(x);
    }
    json!({"method": "POST", "path": "/Users", "bulkId": bulk, "data": data})
}

fn group_post(bulk: &str, members: &[&str]) -> Value {
    let m: Vec<Value> = members.iter().map(|v| json!({"value": v})).collect();
    json!({"method": "POST", "path": "/Groups", "bulkId": bulk, "data": {"displayName": bulk, "members": m}})
}

#[test]
fn envelope_errors() {
    let cases = [
        (json!([]), 400, "a BulkRequest must be a JSON object"),
        (json!({}), 400, "a BulkRequest needs an 'Operations' array"),
        (
            json!({"Operations": {}}),
            400,
            "'Operations' must be an array of operations",
        ),
        (
            json!({"schemas": ["urn:x"], "Operations": []}),
            400,
            "'schemas' must contain urn:ietf:params:scim:api:messages:2.0:BulkRequest",
        ),
        (
            json!({"Operations": [], "failOnErrors": 0}),
            400,
            "'failOnErrors' must be a positive integer, got 0",
        ),
        (
            json!({"Operations": [], "failOnErrors": "1"}),
            400,
            "'failOnErrors' must be a positive integer, got \"1\"",
        ),
        (
            json!({"Operations": [{}, {}, {}]}),
            413,
            "the bulk request has 3 operations, more than maxOperations (2)",
        ),
    ];
    for (body, status, detail) in cases {
        match parse_request(&body, 2) {
            Err(e) => assert_eq!((e.status, e.detail.as_str()), (status, detail), "{body}"),
            Ok(_) => panic!("accepted {body}"),
        }
    }
    let r = parse_request(&json!({"operations": [], "FAILONERRORS": 2}), 2);
    assert!(r.is_ok_and(|r| r.fail_on_errors == Some(2) && r.operations.is_empty()));
}

#[test]
fn operation_errors_are_precise() {
    use ScimType::*;
    let cases = [
        (
            json!("x"),
            InvalidSyntax,
            "an operation must be a JSON object",
        ),
        (
            json!({"path": "/Users"}),
            InvalidSyntax,
            "'method' is required: POST, PUT, PATCH or DELETE",
        ),
        (
            json!({"method": "GET", "path": "/Users/1"}),
            InvalidValue,
            "'method' must be POST, PUT, PATCH or DELETE, got 'GET'",
        ),
        (
            json!({"method": 1, "path": "/Users/1"}),
            InvalidSyntax,
            "'method' must be a string (POST, PUT, PATCH or DELETE), got 1",
        ),
        (
            json!({"method": "POST", "bulkId": "a", "data": {}}),
            InvalidSyntax,
            "'path' is required: /Users or /Groups for a POST",
        ),
        (
            json!({"method": "DELETE"}),
            InvalidSyntax,
            "'path' is required: /Users/{id} or /Groups/{id}",
        ),
        (
            json!({"method": "DELETE", "path": 5}),
            InvalidSyntax,
            "'path' must be a string, got 5",
        ),
        (
            json!({"method": "DELETE", "path": "Users/1"}),
            InvalidPath,
            "invalid 'path' 'Users/1': it must start with '/' (a path relative to the SCIM base, such as /Users)",
        ),
        (
            json!({"method": "DELETE", "path": "/Things/1"}),
            InvalidPath,
            "invalid 'path' '/Things/1': it must name /Users or /Groups",
        ),
        (
            json!({"method": "DELETE", "path": "/Users/1/x"}),
            InvalidPath,
            "invalid 'path' '/Users/1/x': it has too many segments",
        ),
        (
            json!({"method": "DELETE", "path": "/Users/1?x=y"}),
            InvalidPath,
            "invalid 'path' '/Users/1?x=y': a bulk operation's path carries no query or fragment",
        ),
        (
            json!({"method": "PUT", "path": "/Groups", "data": {}}),
            InvalidPath,
            "invalid 'path' '/Groups': a PUT's path names one resource, as /Groups/{id}",
        ),
        (
            json!({"method": "POST", "path": "/Users/1", "bulkId": "a", "data": {}}),
            InvalidPath,
            "invalid 'path' '/Users/1': a POST's path is a resource type endpoint, /Users or /Groups",
        ),
        (
            json!({"method": "PATCH", "path": "/Users/bulkId:", "data": {}}),
            InvalidPath,
            "invalid 'path' '/Users/bulkId:': 'bulkId:' must be followed by a bulkId",
        ),
        (
            json!({"method": "POST", "path": "/Users", "data": {"userName": "x"}}),
            InvalidSyntax,
            "'bulkId' is required for a POST operation",
        ),
        (
            json!({"method": "POST", "path": "/Users", "bulkId": "", "data": {}}),
            InvalidValue,
            "'bulkId' must not be empty",
        ),
        (
            json!({"method": "POST", "path": "/Users", "bulkId": 7, "data": {}}),
            InvalidSyntax,
            "'bulkId' must be a string, got 7",
        ),
        (
            json!({"method": "POST", "path": "/Users", "bulkId": "a"}),
            InvalidSyntax,
            "'data' is required for a POST operation",
        ),
        (
            json!({"method": "PUT", "path": "/Users/1", "data": [1]}),
            InvalidSyntax,
            "'data' must be a JSON object, got an array",
        ),
        (
            json!({"method": "PUT", "path": "/Users/1", "version": 3, "data": {}}),
            InvalidSyntax,
            "'version' must be a string (an ETag such as W/\"3\"), got 3",
        ),
        (
            json!({"method": "PATCH", "path": "/Users/1", "data": {"Operations": [{"op": "nope"}]}}),
            InvalidSyntax,
            "'data' is not a valid PatchOp message: Operations[0].op 'nope' is not one of add, replace, remove",
        ),
    ];
    for (op, scim_type, detail) in cases {
        let e = op_err(op.clone());
        assert_eq!(
            (e.status, e.scim_type, e.detail.as_str()),
            (400, Some(scim_type), detail),
            "{op}"
        );
    }
}

#[test]
fn valid_operations_and_echo() {
    let r = req(json!([
        {"method": "post", "path": "/Users/", "bulkId": "u", "data": {"userName": "a"}},
        {"method": "DELETE", "path": "/Groups/bulkId:g", "version": "W/\"2\"", "data": 5},
        {"method": "BREW", "bulkId": "t", "path": "/Users/1"}
    ]));
    let ops: Vec<_> = r.operations.iter().map(|p| p.op.clone()).collect();
    assert_eq!(
        ops[0]
            .as_ref()
            .ok()
            .map(|o| (o.method, o.endpoint, o.target.clone())),
        Some((Method::Post, Endpoint::Users, None))
    );
    assert_eq!(
        ops[1]
            .as_ref()
            .ok()
            .map(|o| (o.target.clone(), o.version.clone(), o.data.clone())),
        Some((
            Some(Target::BulkRef("g".into())),
            Some("W/\"2\"".into()),
            None
        ))
    );
    // The response echoes the canonical method, or what was sent when invalid.
    assert_eq!(r.operations[0].echo.method.as_deref(), Some("POST"));
    assert_eq!(
        r.operations[2].echo,
        Echo {
            method: Some("BREW".into()),
            bulk_id: Some("t".into())
        }
    );
}

#[test]
fn references_in_path_and_anywhere_in_data() {
    let r = req(json!([
        {"method": "PATCH", "path": "/Groups/bulkId:g", "data": {"Operations": [
            {"op": "add", "path": "members", "value": [{"value": "bulkId:u1"}, {"value": "bulkId:g"}]}
        ]}},
        user_post("u2", json!({"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "bulkId:u1"}}, "nickName": "see bulkId:u9", "title": "bulkId:t"}))
    ]));
    let refs: Vec<Vec<String>> = r
        .operations
        .iter()
        .map(|p| p.op.as_ref().map(|o| o.references()).unwrap_or_default())
        .collect();
    assert_eq!(refs[0], vec!["g".to_string(), "u1".to_string()]);
    assert_eq!(refs[1], vec!["u1".to_string(), "t".to_string()]);
}

#[test]
fn substitute_replaces_whole_string_values_only() {
    let v = json!({"members": [{"value": "bulkId:a"}, {"value": "x-bulkId:a"}], "n": 1});
    let map = |b: &str| (b == "a").then(|| "ID-A".to_string());
    assert_eq!(
        substitute(&v, &map),
        Ok(json!({"members": [{"value": "ID-A"}, {"value": "x-bulkId:a"}], "n": 1}))
    );
    assert_eq!(substitute(&json!(["bulkId:zz"]), &map), Err("zz".into()));
}

fn steps(ops: Value) -> Vec<Step> {
    plan(&req(ops).operations).steps
}

fn order(steps: &[Step]) -> Vec<String> {
    steps
        .iter()
        .map(|s| match s {
            Step::Run(i) => format!("run {i}"),
            Step::Fail(i, e) => format!("fail {i} {}", e.status),
            Step::Cycle(m) => format!(
                "cycle {:?}",
                m.iter()
                    .map(|m| (m.op, m.deferred.clone()))
                    .collect::<Vec<_>>()
            ),
        })
        .collect()
}

#[test]
fn request_order_unless_a_forward_reference_needs_a_post_first() {
    let s = steps(json!([
        {"method": "DELETE", "path": "/Users/old"},
        group_post("g", &["bulkId:u1", "bulkId:u2"]),
        user_post("u1", json!({})),
        {"method": "PATCH", "path": "/Groups/bulkId:g", "data": {"Operations": [{"op": "add", "path": "members", "value": [{"value": "bulkId:u3"}]}]}},
        user_post("u2", json!({})),
        user_post("u3", json!({})),
    ]));
    assert_eq!(
        order(&s),
        ["run 0", "run 2", "run 4", "run 1", "run 5", "run 3"]
    );
}

#[test]
fn unknown_duplicate_and_ambiguous_bulk_ids() {
    let s = steps(json!([
        group_post("g", &["bulkId:nobody"]),
        user_post("dup", json!({})),
        user_post("dup", json!({})),
        {"method": "DELETE", "path": "/Users/bulkId:dup"},
        {"method": "POST", "path": "/Users", "bulkId": "bad"},
        {"method": "DELETE", "path": "/Users/bulkId:bad"},
    ]));
    let fails: Vec<(usize, u16, String)> = s
        .iter()
        .filter_map(|s| match s {
            Step::Fail(i, e) => Some((*i, e.status, e.detail.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        fails,
        vec![
            (
                0,
                400,
                "'bulkId:nobody' refers to no POST operation of this request (no operation has bulkId 'nobody')".into()
            ),
            (
                1,
                400,
                "'bulkId' 'dup' is not unique in this request: Operations[1], Operations[2] use it".into()
            ),
            (
                2,
                400,
                "'bulkId' 'dup' is not unique in this request: Operations[1], Operations[2] use it".into()
            ),
            (
                3,
                400,
                "'bulkId:dup' is ambiguous: Operations[1], Operations[2] all have bulkId 'dup'".into()
            ),
            (4, 400, "'data' is required for a POST operation".into()),
        ]
    );
    // A reference to an invalid POST is not "unknown": it runs after it, and
    // fails at run time because that operation failed.
    assert_eq!(order(&s)[5], "run 5");
    assert_eq!(
        plan(&req(json!([user_post("x", json!({}))])).operations).definer("x"),
        Some(0)
    );
}

#[test]
fn group_cycles_are_resolved_through_members() {
    // RFC 7644 §3.7.1's example, plus a third group and a user outside.
    let s = steps(json!([
        group_post("a", &["bulkId:b", "bulkId:u"]),
        group_post("b", &["bulkId:a"]),
        user_post("u", json!({})),
        group_post("c", &["bulkId:c"]),
    ]));
    assert_eq!(
        order(&s),
        ["run 2", "cycle [(0, [0]), (1, [0])]", "cycle [(3, [0])]"]
    );
    let Some(Step::Cycle(m)) = s.get(1) else {
        panic!("{s:?}")
    };
    assert_eq!(
        (m[0].partners.clone(), m[1].partners.clone()),
        (vec![1], vec![0])
    );
    // A group's non-member reference into the cycle decides the creation order.
    let s = steps(json!([
        group_post("a", &["bulkId:b"]),
        {"method": "POST", "path": "/Groups", "bulkId": "b", "data": {"displayName": "b", "externalId": "bulkId:a"}},
    ]));
    assert_eq!(order(&s), ["cycle [(0, [0]), (1, [])]"]);
}

#[test]
fn unresolvable_cycles_fail_with_409() {
    let s = steps(json!([
        user_post("u1", json!({"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "bulkId:u2"}}})),
        user_post("u2", json!({"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "bulkId:u1"}}})),
        user_post("me", json!({"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "bulkId:me"}}})),
        {"method": "POST", "path": "/Groups", "bulkId": "x", "data": {"displayName": "bulkId:y"}},
        {"method": "POST", "path": "/Groups", "bulkId": "y", "data": {"displayName": "bulkId:x"}},
        {"method": "DELETE", "path": "/Users/bulkId:u1"},
    ]));
    let fails: Vec<(usize, u16, Option<ScimType>, String)> = s
        .iter()
        .filter_map(|s| match s {
            Step::Fail(i, e) => Some((*i, e.status, e.scim_type, e.detail.clone())),
            _ => None,
        })
        .collect();
    let pair = "circular bulkId reference among Operations[0] (bulkId 'u1'), Operations[1] (bulkId 'u2') cannot be resolved: a cycle can be broken only through group members (each group is created first, its members are added afterwards)";
    assert_eq!(fails[0], (0, 409, None, pair.to_string()));
    assert_eq!(fails[1], (1, 409, None, pair.to_string()));
    assert_eq!(
        fails[2].3,
        "circular bulkId reference: Operations[2] (bulkId 'me') refers to itself, and only a group's members can refer to the group being created"
    );
    assert!(
        fails[3]
            .3
            .contains("Operations[3] (bulkId 'x'), Operations[4] (bulkId 'y')")
    );
    assert_eq!(fails.len(), 5);
    // The DELETE depending on the failed cycle still runs after it (and fails then).
    assert_eq!(order(&s).last().map(String::as_str), Some("run 5"));
}

#[test]
fn long_chains_do_not_recurse() {
    let n = 20_000;
    let ops: Vec<ParsedOp> = (0..n)
        .map(|i| ParsedOp {
            echo: Echo {
                method: Some("POST".into()),
                bulk_id: Some(format!("b{i}")),
            },
            op: Ok(BulkOperation {
                method: Method::Post,
                endpoint: Endpoint::Groups,
                target: None,
                bulk_id: Some(format!("b{i}")),
                version: None,
                data: Some(json!({"displayName": format!("g{i}"), "members": [{"value": format!("bulkId:b{}", (i + 1) % n)}]})),
            }),
        })
        .collect();
    let p = plan(&ops);
    // One big cycle, resolvable through members.
    assert!(matches!(p.steps.as_slice(), [Step::Cycle(m)] if m.len() == n));
}

#[test]
fn split_members_defers_listed_elements() {
    let r = req(json!([group_post("a", &["x", "bulkId:b", "y"])]));
    let Ok(op) = &r.operations[0].op else {
        panic!()
    };
    let (base, later) = op.split_members(&[1]);
    assert_eq!(base["members"], json!([{"value": "x"}, {"value": "y"}]));
    assert_eq!(later, vec![json!({"value": "bulkId:b"})]);
}

#[test]
fn response_shape() {
    let r = req(json!([
        user_post("u", json!({})),
        {"method": "DELETE", "path": "/Users/1"},
        {"method": "DELETE", "path": "/Users/2"},
    ]));
    let v = response(
        &r.operations,
        &[
            Some(OpResult {
                status: 201,
                version: Some("W/\"1\"".into()),
                location: Some("https://h/scim/v2/Users/9".into()),
                error: None,
            }),
            Some(OpResult {
                status: 404,
                version: None,
                location: Some("https://h/scim/v2/Users/1".into()),
                error: Some(ScimError::not_found("no user with id 1")),
            }),
            None,
        ],
    );
    assert_eq!(
        v,
        json!({"schemas": [BULK_RESPONSE_URN], "Operations": [
            {"method": "POST", "bulkId": "u", "version": "W/\"1\"", "location": "https://h/scim/v2/Users/9", "status": "201"},
            {"method": "DELETE", "location": "https://h/scim/v2/Users/1", "status": "404", "response": {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "404", "detail": "no user with id 1"}}
        ]})
    );
}
