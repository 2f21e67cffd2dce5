//! Unit tests of `resource`.

use super::*;
use crate::scim::schema::{GROUP_TYPE, USER_TYPE};
use serde_json::json;

fn proj(attributes: Option<&str>, excluded: Option<&str>) -> Projection {
    match Projection::parse(attributes, excluded) {
        Ok(p) => p,
        Err(e) => panic!("{e:?}"),
    }
}

fn norm(v: Value) -> Doc {
    match normalize(&USER_TYPE, &v) {
        Ok(d) => d,
        Err(e) => panic!("{e:?}"),
    }
}

#[test]
fn okta_create_drops_password_groups_meta_and_keeps_values() {
    let d = norm(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "Jane@Example.com", "name": {"givenName": "Jane", "familyName": "Doe"},
        "emails": [{"primary": true, "value": "Jane@Example.com", "type": "work"}],
        "displayName": "Jane Doe", "locale": "en-US", "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [], "password": "1mz050nq", "active": true, "id": "x", "meta": {"resourceType": "User"}
    }));
    assert_eq!(d["userName"], "Jane@Example.com");
    assert!(
        !d.contains_key("password")
            && !d.contains_key("groups")
            && !d.contains_key("id")
            && !d.contains_key("meta")
    );
    assert_eq!(d["externalId"], "00ujl29u0le5T6Aj10h7");
    let k = user_keys(&d);
    assert_eq!(k.user_name_key, "jane@example.com");
    assert_eq!(k.emails[0].value_key, "jane@example.com");
    assert_eq!(k.emails[0].kind.as_deref(), Some("work"));
    assert!(k.active);
}

#[test]
fn entra_odd_payloads_nulls_string_booleans_custom_extension() {
    let d = norm(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0User"],
        "userName": "u@contoso.example", "active": "True", "title": null, "addresses": null,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "701984", "manager": "mgr-id"},
        "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User": {"tag": "701984", "gone": null},
        "roles": [{"primary": "True", "display": "Admin", "value": "Admin", "type": "WindowsAzureActiveDirectoryRole"}],
        "Department": "ignored: unknown core attribute"
    }));
    assert_eq!(d["active"], true);
    assert!(!d.contains_key("title") && !d.contains_key("addresses"));
    assert_eq!(d[ENTERPRISE_URN]["manager"]["value"], "mgr-id");
    assert_eq!(
        d["urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User"],
        json!({"tag": "701984"})
    );
    assert_eq!(d["roles"][0]["primary"], true);
    assert_eq!(user_keys(&d).manager_id.as_deref(), Some("mgr-id"));
}

#[test]
fn attribute_names_are_case_insensitive_and_output_in_schema_case() {
    let d = norm(json!({"USERNAME": "a", "Emails": [{"Value": "a@b.c", "Primary": "true"}]}));
    assert_eq!(d["userName"], "a");
    assert_eq!(d["emails"][0]["value"], "a@b.c");
    assert_eq!(d["emails"][0]["primary"], true);
}

#[test]
fn rejects_missing_required_wrong_types_and_two_primaries() {
    let cases = [
        (json!({"displayName": "x"}), "'userName' is required"),
        (json!({"userName": ""}), "'userName' is required"),
        (
            json!({"userName": "a", "active": "maybe"}),
            "'active' must be a boolean",
        ),
        (json!({"userName": {"x": 1}}), "'userName' must be a string"),
        (
            json!({"userName": "a", "emails": [{"value": "a", "primary": true}, {"value": "b", "primary": true}]}),
            "primary",
        ),
        (
            json!({"userName": "a", "name": "flat"}),
            "'name' must be an object",
        ),
        (json!([1, 2]), "JSON object"),
    ];
    for (body, needle) in cases {
        match normalize(&USER_TYPE, &body) {
            Err(e) => assert!(e.detail.contains(needle), "{body}: {}", e.detail),
            Ok(d) => panic!("{body} accepted as {d:?}"),
        }
    }
}

#[test]
fn roles_given_as_stringified_json_are_unpacked() {
    let d = norm(
        json!({"userName": "a", "roles": [{"value": "{\"id\":\"06b0\",\"value\":\"25\",\"displayName\":\"Role1234\"}"}]}),
    );
    assert_eq!(d["roles"][0]["value"], "25");
    assert_eq!(d["roles"][0]["display"], "Role1234");
}

/// Found by the patch_apply fuzz target's idempotence invariant: a role
/// stringified twice, or under `Value`, was unpacked one level per
/// normalisation, so the next PATCH of any attribute rewrote it.
#[test]
fn stringified_roles_are_unpacked_completely_and_normalising_again_changes_nothing() {
    let twice = serde_json::to_string(&json!({
        "value": "{\"value\":\"25\",\"displayName\":\"Inner\"}",
        "displayName": "Outer"
    }))
    .unwrap_or_default();
    for body in [
        json!({"userName": "a", "roles": [{"value": twice}]}),
        json!({"userName": "a", "roles": [{"Value": "{\"value\":\"25\",\"displayName\":\"Outer\"}"}]}),
        json!({"userName": "a", "roles": ["{\"value\":\"25\",\"display\":\"Outer\"}"]}),
    ] {
        let d = norm(body.clone());
        assert_eq!(
            d["roles"],
            json!([{"value": "25", "display": "Outer"}]),
            "{body}"
        );
        assert_eq!(norm(Value::Object(d.clone())), d, "{body}");
    }
    // A `{…}` that is not a role object stays as sent.
    let d =
        norm(json!({"userName": "a", "roles": [{"value": "{not json"}, {"value": "{\"id\":1}"}]}));
    assert_eq!(
        d["roles"],
        json!([{"value": "{not json"}, {"value": "{\"id\":1}"}])
    );
    assert_eq!(norm(Value::Object(d.clone())), d);
}

fn refused(rt: &ResourceType, body: Value, limits: &Limits, needles: &[&str]) {
    match normalize_within(rt, &body, limits) {
        Err(e) => {
            assert_eq!(
                (e.status, e.scim_type),
                (400, Some(crate::scim::error::ScimType::InvalidValue)),
                "{}",
                e.detail
            );
            for n in needles {
                assert!(e.detail.contains(n), "{} lacks {n}", e.detail);
            }
        }
        Ok(_) => panic!("accepted"),
    }
}

#[test]
fn at_most_1000_values_per_multi_valued_attribute_members_excepted() {
    let values = |n: usize| -> Vec<Value> { (0..n).map(|i| json!(format!("v{i}"))).collect() };
    let d = norm(json!({"userName": "a", "emails": values(1000)}));
    assert_eq!(d["emails"].as_array().map(Vec::len), Some(1000));
    // Counted after duplicates are dropped.
    let mut twice = values(1000);
    twice.extend(values(1000));
    let d = norm(json!({"userName": "a", "entitlements": twice}));
    assert_eq!(d["entitlements"].as_array().map(Vec::len), Some(1000));
    let none = Limits::default();
    for attr in [
        "emails",
        "phoneNumbers",
        "ims",
        "photos",
        "addresses",
        "entitlements",
        "roles",
        "x509Certificates",
    ] {
        let body = if attr == "addresses" {
            json!({"userName": "a", attr: (0..1001).map(|i| json!({"streetAddress": format!("{i} Main St")})).collect::<Vec<_>>()})
        } else {
            json!({"userName": "a", attr: values(1001)})
        };
        refused(&USER_TYPE, body, &none, &[&format!("'{attr}'"), "1000"]);
    }
    // Arrays inside an unknown extension, however deep, are held to it too.
    let custom = "urn:ietf:params:scim:schemas:extension:Custom:2.0:User";
    refused(
        &USER_TYPE,
        json!({"userName": "a", custom: {"deep": {"list": values(1001)}}}),
        &none,
        &[custom, "deep:list", "1000"],
    );
    let d = norm(json!({"userName": "a", custom: {"list": values(1000)}}));
    assert_eq!(d[custom]["list"].as_array().map(Vec::len), Some(1000));
    // A group's members are not capped.
    let g = normalize(
        &GROUP_TYPE,
        &json!({"displayName": "G", "members": values(5000)}),
    );
    assert!(g.is_ok_and(|g| g["members"].as_array().map(Vec::len) == Some(5000)));
}

#[test]
fn stored_size_is_capped_unknown_extensions_included_members_excluded() {
    let small = Limits {
        max_resource_bytes: 1024,
        ..Limits::default()
    };
    let custom = "urn:ietf:params:scim:schemas:extension:Custom:2.0:User";
    refused(
        &USER_TYPE,
        json!({"userName": "a", custom: {"blob": "x".repeat(1024)}}),
        &small,
        &["1024", "max_resource_bytes"],
    );
    refused(
        &USER_TYPE,
        json!({"userName": "a", "displayName": "x".repeat(1024)}),
        &small,
        &["1024"],
    );
    let ok = normalize_within(
        &USER_TYPE,
        &json!({"userName": "a", "displayName": "x".repeat(900)}),
        &small,
    );
    assert!(ok.is_ok_and(|d| stored_size(&d) == Value::Object(d.clone()).to_string().len()));
    let members: Vec<Value> = (0..200).map(|i| json!(format!("member-{i:05}"))).collect();
    let g = normalize_within(
        &GROUP_TYPE,
        &json!({"displayName": "G", "members": members}),
        &small,
    );
    assert!(g.is_ok_and(|g| stored_size(&g) == json!({"displayName": "G"}).to_string().len()));
    assert_eq!(DEFAULT_MAX_RESOURCE_BYTES, 262_144);
    assert_eq!(Limits::default().max_resource_bytes, 262_144);
}

#[test]
fn at_most_256_projection_entries_in_each_list() {
    let list = |n: usize| {
        (0..n)
            .map(|i| format!("a{i}"))
            .collect::<Vec<_>>()
            .join(" , ")
    };
    assert_eq!(
        proj(Some(&list(256)), Some(&list(256))).entries(),
        (256, 256)
    );
    // Empty entries are not entries.
    assert_eq!(
        proj(Some(&format!(",,{},,", list(256))), None).entries(),
        (256, 0)
    );
    for (a, e, name) in [
        (Some(list(257)), None, "'attributes'"),
        (None, Some(list(257)), "'excludedAttributes'"),
    ] {
        match Projection::parse(a.as_deref(), e.as_deref()) {
            Err(e) => {
                assert_eq!(
                    (e.status, e.scim_type),
                    (400, Some(crate::scim::error::ScimType::InvalidValue))
                );
                assert!(
                    e.detail.contains(name) && e.detail.contains("256"),
                    "{}",
                    e.detail
                );
            }
            Ok(_) => panic!("257 entries accepted"),
        }
    }
}

/// The lookup structure answers as the entry-by-entry scan did: case, URN
/// qualification, duplicates and sub-attributes named more than once.
#[test]
fn projection_lookups_combine_entries() {
    let meta = Meta {
        resource_type: "User",
        created: "c".into(),
        last_modified: "m".into(),
        version: 1,
        location: "l".into(),
    };
    let d = norm(
        json!({"userName": "a", "name": {"givenName": "g", "familyName": "f", "middleName": "m"},
        "emails": [{"value": "a@b.c", "type": "work"}, {"value": "d@e.f"}]}),
    );
    let full = render(&USER_TYPE, "id1", &d, &meta);
    let p = proj(
        Some(
            "NAME.GIVENNAME, urn:ietf:params:scim:schemas:core:2.0:User:name.familyName,name.givenName,EMAILS.type",
        ),
        None,
    );
    let out = p.apply(&USER_TYPE, full.clone());
    assert_eq!(out["name"], json!({"givenName": "g", "familyName": "f"}));
    assert_eq!(out["emails"], json!([{"type": "work"}]));
    assert!(out.get("userName").is_none());
    // A whole attribute and one of its sub-attributes: the whole wins.
    let out = proj(Some("name.givenName,Name"), None).apply(&USER_TYPE, full.clone());
    assert_eq!(out["name"], d["name"]);
    // Another schema's URN does not qualify a core attribute.
    let out = proj(
        Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:name"),
        None,
    )
    .apply(&USER_TYPE, full.clone());
    assert!(out.get("name").is_none());
    let out = proj(None, Some("emails.value,EMAILS.VALUE,name.middleName")).apply(&USER_TYPE, full);
    assert_eq!(out["emails"], json!([{"type": "work"}]));
    assert_eq!(out["name"], json!({"givenName": "g", "familyName": "f"}));
    assert_eq!(out["userName"], "a");
}

#[test]
fn group_members_accept_bare_ids() {
    let d = match normalize(
        &GROUP_TYPE,
        &json!({"displayName": "G", "members": ["u1", {"value": "u2", "display": "x"}]}),
    ) {
        Ok(d) => d,
        Err(e) => panic!("{e:?}"),
    };
    assert_eq!(d["members"][0]["value"], "u1");
    assert_eq!(d["members"][1]["value"], "u2");
    assert_eq!(group_keys(&d).display_name_key, "g");
}

#[test]
fn projection_honours_returned_and_sub_attributes() {
    let meta = Meta {
        resource_type: "User",
        created: "c".into(),
        last_modified: "m".into(),
        version: 1,
        location: "l".into(),
    };
    let d = norm(
        json!({"userName": "a", "displayName": "A", "name": {"givenName": "g", "familyName": "f"},
        "emails": [{"value": "a@b.c", "type": "work"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "d", "employeeNumber": "1"}}),
    );
    let full = render(&USER_TYPE, "id1", &d, &meta);
    let only = proj(Some("userName,name.givenName,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"), None).apply(&USER_TYPE, full.clone());
    assert_eq!(only["id"], "id1");
    assert_eq!(only["userName"], "a");
    assert!(only.get("displayName").is_none() && only.get("meta").is_none());
    assert_eq!(only["name"], json!({"givenName": "g"}));
    assert_eq!(only[ENTERPRISE_URN], json!({"department": "d"}));
    let qualified = proj(None, Some("urn:ietf:params:scim:schemas:core:2.0:User:emails,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department")).apply(&USER_TYPE, full.clone());
    assert!(qualified.get("emails").is_none());
    assert_eq!(qualified[ENTERPRISE_URN], json!({"employeeNumber": "1"}));
    let both = proj(None, Some("name.givenName,name.familyName")).apply(&USER_TYPE, full.clone());
    assert!(
        both.get("name").is_none(),
        "an emptied complex attribute is dropped"
    );
    let excl = proj(None, Some("emails,name.familyName")).apply(&USER_TYPE, full);
    assert!(excl.get("emails").is_none());
    assert_eq!(excl["name"], json!({"givenName": "g"}));
    assert_eq!(excl["userName"], "a");
    let bracketed = proj(Some(r#"emails[type eq "work"]"#), None)
        .apply(&USER_TYPE, render(&USER_TYPE, "i", &d, &meta));
    assert!(bracketed.get("emails").is_some() && bracketed.get("userName").is_none());
    let p = proj(None, Some("members"));
    assert!(!p.wants(&GROUP_TYPE, "members"));
    let p = proj(
        None,
        Some("urn:ietf:params:scim:schemas:core:2.0:Group:members"),
    );
    assert!(!p.wants(&GROUP_TYPE, "members"));
    assert!(Projection::default().wants(&GROUP_TYPE, "members"));
}
