//! Unit tests of `patch`.

use super::*;
use crate::scim::resource::normalize;
use crate::scim::schema::{ENTERPRISE_URN, GROUP_TYPE, USER_TYPE};
use serde_json::json;

fn user() -> Doc {
    match normalize(
        &USER_TYPE,
        &json!({
            "userName": "jdoe@contoso.example", "active": true, "displayName": "J Doe",
            "name": {"givenName": "Seed", "familyName": "User"},
            "emails": [{"primary": true, "type": "work", "value": "jdoe@contoso.example"}],
            "preferredLanguage": "en"
        }),
    ) {
        Ok(d) => d,
        Err(e) => panic!("{e:?}"),
    }
}

fn patch(doc: &Doc, body: Value) -> Result<Doc, ScimError> {
    let ops = parse_request(&body)?;
    apply(
        &PatchContext {
            rt: &USER_TYPE,
            id: "uid",
            limits: Limits::default(),
        },
        doc,
        &ops,
    )
}

fn ok(doc: &Doc, ops: Value) -> Doc {
    match patch(doc, json!({"schemas": [PATCH_URN], "Operations": ops})) {
        Ok(d) => d,
        Err(e) => panic!("{e:?}"),
    }
}

#[test]
fn okta_deactivate_value_map_and_entra_string_booleans() {
    let d = ok(
        &user(),
        json!([{"op": "replace", "value": {"active": false}}]),
    );
    assert_eq!(d["active"], false);
    let d = ok(
        &d,
        json!([{"op": "Replace", "path": "active", "value": "True"}]),
    );
    assert_eq!(d["active"], true);
    let d = ok(
        &d,
        json!([{"op": "REPLACE", "path": "active", "value": "false"}]),
    );
    assert_eq!(d["active"], false);
}

#[test]
fn entra_legacy_multi_replace() {
    let d = ok(
        &user(),
        json!([
            {"op": "Replace", "path": "displayName", "value": "Pvlo"},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "TestBcwqnm@test.example.com"},
            {"op": "Replace", "path": "name.givenName", "value": "Gtfd"},
            {"op": "Replace", "path": "name.familyName", "value": "Pkqf"},
            {"op": "Replace", "path": "externalId", "value": "Eqpj"},
            {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "Eqpj"}
        ]),
    );
    assert_eq!(d["displayName"], "Pvlo");
    assert_eq!(
        d["emails"],
        json!([{"value": "TestBcwqnm@test.example.com", "type": "work", "primary": true}])
    );
    assert_eq!(
        d["name"],
        json!({"familyName": "Pkqf", "givenName": "Gtfd"})
    );
    assert_eq!(d["externalId"], "Eqpj");
    assert_eq!(d[ENTERPRISE_URN]["employeeNumber"], "Eqpj");
}

#[test]
fn entra_flagged_value_map_with_dotted_and_urn_keys() {
    let d = ok(
        &user(),
        json!([
            {"op": "replace", "path": "emails[type eq \"work\"].value", "value": "new@test.example.com"},
            {"op": "replace", "value": {"displayName": "Bjfe", "name.givenName": "Kkom", "name.familyName": "Unua",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq"}}
        ]),
    );
    assert_eq!(d["displayName"], "Bjfe");
    assert_eq!(d["name"]["givenName"], "Kkom");
    assert!(!d.contains_key("name.givenName"));
    assert_eq!(d[ENTERPRISE_URN]["employeeNumber"], "Aklq");
    assert_eq!(d["emails"].as_array().map(Vec::len), Some(1));
}

#[test]
fn add_on_filtered_path_upserts_a_typed_element() {
    let d = ok(
        &user(),
        json!([
            {"op": "Add", "path": "phoneNumbers[type eq \"mobile\"].value", "value": "+1 555"},
            {"op": "Add", "path": "emails[type eq \"work\"].value", "value": "second@x.example"},
            {"op": "add", "path": "addresses[type eq \"work\"].streetAddress", "value": "1 Main St"}
        ]),
    );
    assert_eq!(
        d["phoneNumbers"],
        json!([{"value": "+1 555", "type": "mobile"}])
    );
    // Upsert overwrote the existing work email; no second work email.
    assert_eq!(d["emails"].as_array().map(Vec::len), Some(1));
    assert_eq!(d["emails"][0]["value"], "second@x.example");
    assert_eq!(d["addresses"][0]["streetAddress"], "1 Main St");
}

#[test]
fn filtered_add_carries_type_and_replace_by_value_needs_a_target() {
    let d = ok(
        &user(),
        json!([{"op": "add", "path": "phoneNumbers[type eq \"work\"]", "value": {"value": "+1 555 0101"}}]),
    );
    assert_eq!(
        d["phoneNumbers"],
        json!([{"value": "+1 555 0101", "type": "work"}])
    );
    let e = patch(
        &user(),
        json!({"Operations": [{"op": "replace", "path": "emails[value eq \"zz@x\"].type", "value": "home"}]}),
    );
    assert!(e.is_err_and(|e| e.scim_type == Some(crate::scim::error::ScimType::NoTarget)));
}

#[test]
fn manager_in_three_shapes_and_removal() {
    let m = |v: Value| {
        ok(
            &user(),
            json!([{"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": v}]),
        )
    };
    for shape in [
        json!({"value": "m1"}),
        json!("m1"),
        json!([{"$ref": null, "value": "m1"}]),
    ] {
        assert_eq!(
            m(shape.clone())[ENTERPRISE_URN]["manager"]["value"],
            "m1",
            "{shape}"
        );
    }
    let d = m(json!("m1"));
    for clear in [json!({"value": ""}), json!("")] {
        let c = ok(
            &d,
            json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": clear}]),
        );
        assert!(
            c.get(ENTERPRISE_URN)
                .and_then(|e| e.get("manager"))
                .is_none()
        );
    }
    // Entra's legacy tutorial path names the extension attribute without its URN.
    let legacy = ok(
        &user(),
        json!([{"op": "Add", "path": "manager", "value": [{"$ref": null, "value": "m2"}]}]),
    );
    assert_eq!(legacy[ENTERPRISE_URN]["manager"]["value"], "m2");
}

#[test]
fn whole_extension_by_urn_path() {
    let d = ok(
        &user(),
        json!([{"op": "add", "path": ENTERPRISE_URN, "value": {"schemas": [ENTERPRISE_URN], "employeeNumber": "7", "manager": {"value": "m"}}}]),
    );
    assert_eq!(
        d[ENTERPRISE_URN],
        json!({"employeeNumber": "7", "manager": {"value": "m"}})
    );
    assert!(
        !d.keys()
            .any(|k| k == "urn:ietf:params:scim:schemas:extension:enterprise:2.0")
    );
    let d = ok(
        &d,
        json!([{"op": "replace", "path": ENTERPRISE_URN, "value": {"employeeNumber": "8"}}]),
    );
    assert_eq!(d[ENTERPRISE_URN]["employeeNumber"], "8");
    let d = ok(&d, json!([{"op": "remove", "path": ENTERPRISE_URN}]));
    assert!(d.get(ENTERPRISE_URN).is_none());
}

#[test]
fn validator_ordered_ops_on_same_attribute_and_remove() {
    let d = ok(
        &user(),
        json!([
            {"op": "add", "path": "displayName", "value": "NewDisplayName"},
            {"op": "replace", "path": "title", "value": "NewTitle"},
            {"op": "remove", "path": "preferredLanguage"}
        ]),
    );
    assert_eq!(d["title"], "NewTitle");
    assert!(!d.contains_key("preferredLanguage"));
    let d = ok(
        &d,
        json!([
            {"op": "remove", "path": "displayName"},
            {"op": "add", "path": "displayName", "value": "Intermediate"},
            {"op": "replace", "path": "displayName", "value": "FinalDisplay"}
        ]),
    );
    assert_eq!(d["displayName"], "FinalDisplay");
    let d = ok(
        &d,
        json!([{"op": "replace", "value": {"userName": "new@contoso.example"}}]),
    );
    assert_eq!(d["userName"], "new@contoso.example");
}

#[test]
fn roles_stringified_json_and_primary_exclusivity() {
    let d = ok(
        &user(),
        json!([{"op": "Add", "path": "roles", "value": [{"value": "{\"id\":\"06b0\",\"value\":\"25\",\"displayName\":\"Role1234\"}"}]}]),
    );
    assert_eq!(d["roles"][0]["value"], "25");
    let d = ok(
        &d,
        json!([{"op": "add", "path": "emails", "value": [{"value": "p@x.example", "type": "home", "primary": true}]}]),
    );
    let primaries: Vec<_> = d["emails"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["primary"] == true)
        .collect();
    assert_eq!(primaries.len(), 1);
    assert_eq!(primaries[0]["value"], "p@x.example");
}

#[test]
fn errors_have_the_right_scim_type_and_name_the_operation() {
    use crate::scim::error::ScimType::*;
    let cases = [
        (json!([{"op": "remove"}]), NoTarget),
        (
            json!([{"op": "update", "path": "title", "value": "x"}]),
            InvalidSyntax,
        ),
        (
            json!([{"op": "add", "path": "nope", "value": "x"}]),
            InvalidPath,
        ),
        (
            json!([{"op": "add", "path": "emails[type eq", "value": "x"}]),
            InvalidPath,
        ),
        (
            json!([{"op": "replace", "path": "groups", "value": []}]),
            Mutability,
        ),
        (
            json!([{"op": "replace", "value": {"id": "other"}}]),
            Mutability,
        ),
        (
            json!([{"op": "replace", "path": "active", "value": "perhaps"}]),
            InvalidValue,
        ),
        (
            json!([{"op": "replace", "path": "emails[type eq \"home\"]", "value": {"value": "x"}}]),
            NoTarget,
        ),
        (json!([{"op": "add", "path": "title"}]), InvalidValue),
        (
            json!([{"op": "replace", "path": "userName", "value": ""}]),
            InvalidValue,
        ),
    ];
    for (ops, want) in cases {
        match patch(&user(), json!({"schemas": [PATCH_URN], "Operations": ops})) {
            Err(e) => assert_eq!(e.scim_type, Some(want), "{ops}: {}", e.detail),
            Ok(d) => panic!("{ops} accepted: {d:?}"),
        }
    }
    let e = patch(
        &user(),
        json!({"Operations": [{"op": "add", "path": "title", "value": "ok"}, {"op": "add", "path": "bogus", "value": 1}]}),
    );
    assert!(e.is_err_and(|e| e.detail.starts_with("Operations[1] (path 'bogus')")));
    assert!(patch(&user(), json!({"schemas": ["urn:wrong"], "Operations": []})).is_err());
    assert!(patch(&user(), json!({"schemas": [PATCH_URN]})).is_err());
}

#[test]
fn id_equal_to_own_id_is_ignored_in_group_rename() {
    let g = match normalize(&GROUP_TYPE, &json!({"displayName": "Old"})) {
        Ok(g) => g,
        Err(e) => panic!("{e:?}"),
    };
    let ops = match parse_request(
        &json!({"Operations": [{"op": "replace", "value": {"id": "gid", "displayName": "New"}}]}),
    ) {
        Ok(o) => o,
        Err(e) => panic!("{e:?}"),
    };
    let out = apply(
        &PatchContext {
            rt: &GROUP_TYPE,
            id: "gid",
            limits: Limits::default(),
        },
        &g,
        &ops,
    );
    assert!(out.is_ok_and(|d| d["displayName"] == "New"));
}

fn emails(n: usize, prefix: &str) -> Vec<Value> {
    (0..n)
        .map(|i| json!(format!("{prefix}{i}@x.example")))
        .collect()
}

fn refused(doc: &Doc, ops: Value, needles: &[&str]) {
    match patch(doc, json!({"Operations": ops})) {
        Err(e) => {
            assert_eq!(
                e.scim_type,
                Some(crate::scim::error::ScimType::InvalidValue),
                "{}",
                e.detail
            );
            for n in needles {
                assert!(e.detail.contains(n), "{} lacks {n}", e.detail);
            }
        }
        Ok(d) => panic!("{ops} accepted: {} emails", d["emails"]),
    }
}

#[test]
fn multi_valued_cap_on_add_replace_filtered_add_and_pathless_keys() {
    // user() has one email: 999 more fit.
    let full = ok(
        &user(),
        json!([{"op": "add", "path": "emails", "value": emails(999, "a")}]),
    );
    assert_eq!(full["emails"].as_array().map(Vec::len), Some(1000));
    // The issue's attack, refused by the operation's own value list.
    refused(
        &user(),
        json!([{"op": "add", "path": "emails", "value": emails(16_000, "b")}]),
        &["'emails'", "1000"],
    );
    // Within the cap alone, over it once merged.
    refused(
        &user(),
        json!([{"op": "add", "path": "emails", "value": emails(1000, "c")}]),
        &["'emails'", "1000"],
    );
    refused(
        &user(),
        json!([{"op": "add", "value": {" EMAILS ": emails(1000, "d")}}]),
        &["'emails'", "1000"],
    );
    refused(
        &full,
        json!([{"op": "add", "path": "emails[type eq \"home\"]", "value": {"value": "one@more.example"}}]),
        &["emails", "1000"],
    );
    refused(
        &user(),
        json!([{"op": "replace", "path": "roles", "value": emails(1001, "r")}]),
        &["'roles'", "1000"],
    );
    refused(
        &user(),
        json!([{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:Custom:2.0:User:tags", "value": emails(1001, "t")}]),
        &["tags", "1000"],
    );
    // Duplicates do not count: adding what is there changes nothing.
    let again = ok(
        &full,
        json!([{"op": "add", "path": "emails", "value": emails(999, "a")}]),
    );
    assert_eq!(again, full);
}

#[test]
fn group_members_have_no_value_cap() {
    let g = match normalize(&GROUP_TYPE, &json!({"displayName": "G"})) {
        Ok(g) => g,
        Err(e) => panic!("{e:?}"),
    };
    let ids: Vec<Value> = (0..5000).map(|i| json!(format!("m{i}"))).collect();
    let ops = match parse_request(&json!({"Operations": [
        {"op": "add", "value": {" members": ids}},
        {"op": "remove", "path": "members", "value": [{"value": "m0"}, {"value": "m4999"}]}
    ]})) {
        Ok(o) => o,
        Err(e) => panic!("{e:?}"),
    };
    let ctx = PatchContext {
        rt: &GROUP_TYPE,
        id: "gid",
        limits: Limits::default(),
    };
    let out = apply(&ctx, &g, &ops);
    assert!(
        out.is_ok_and(|d| d["members"].as_array().map(Vec::len) == Some(4998)
            && d["members"][0]["value"] == "m1")
    );
}

#[test]
fn result_above_max_resource_bytes_is_refused_members_not_counted() {
    let limits = Limits {
        max_resource_bytes: 2048,
        ..Limits::default()
    };
    let apply_to = |rt: &'static ResourceType, doc: &Doc, ops: Value| {
        let ops = parse_request(&json!({"Operations": ops}))?;
        apply(
            &PatchContext {
                rt,
                id: "x",
                limits,
            },
            doc,
            &ops,
        )
    };
    let e = apply_to(
        &USER_TYPE,
        &user(),
        json!([{"op": "add", "path": "urn:ietf:params:scim:schemas:extension:Custom:2.0:User:blob", "value": "x".repeat(2048)}]),
    );
    assert!(e.is_err_and(
        |e| e.scim_type == Some(crate::scim::error::ScimType::InvalidValue)
            && e.detail.contains("2048")
            && e.detail.contains("max_resource_bytes")
    ),);
    let g = match normalize(&GROUP_TYPE, &json!({"displayName": "G"})) {
        Ok(g) => g,
        Err(e) => panic!("{e:?}"),
    };
    let ids: Vec<Value> = (0..500).map(|i| json!(format!("member-{i:04}"))).collect();
    let d = apply_to(
        &GROUP_TYPE,
        &g,
        json!([{"op": "add", "path": "members", "value": ids}]),
    );
    assert!(d.is_ok_and(|d| d["members"].as_array().map(Vec::len) == Some(500)));
}

/// Entra's path-less maps: a key means what the same text means as a path,
/// after the same trimming and case rules.
#[test]
fn pathless_keys_are_trimmed_and_case_folded_like_paths() {
    let by_path = ok(
        &user(),
        json!([
            {"op": "add", "path": "emails", "value": [{"value": "k@x.example", "type": "home"}]},
            {"op": "replace", "path": "name.givenName", "value": "K"},
            {"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "D"}
        ]),
    );
    for (emails, given, dept) in [
        (
            " emails",
            "name.givenName ",
            " urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
        ),
        (
            "EMAILS",
            " NAME.GIVENNAME",
            "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:DEPARTMENT\t",
        ),
        (
            "Emails ",
            "name.givenname",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:Department",
        ),
    ] {
        let d = ok(
            &user(),
            json!([
                {"op": "add", "value": {emails: [{"value": "k@x.example", "type": "home"}]}},
                {"op": "replace", "value": {given: "K", dept: "D"}}
            ]),
        );
        assert_eq!(d, by_path, "{emails:?} {given:?} {dept:?}");
    }
    // `" id "` equal to the resource's own id is ignored, like `id`.
    let d = ok(
        &user(),
        json!([{"op": "replace", "value": {" id ": "uid", " META": {}, "displayName": "X"}}]),
    );
    assert_eq!(d["displayName"], "X");
    // An unknown extension's URN with spaces around it: as without them.
    let custom = "urn:ietf:params:scim:schemas:extension:Custom:2.0:User";
    for value in [json!({"tag": "t"}), json!("v")] {
        for key in [format!(" {custom} "), format!("{custom}:tag\t")] {
            let plain = key.trim().to_string();
            assert_eq!(
                ok(
                    &user(),
                    json!([{"op": "add", "value": {key.clone(): value.clone()}}])
                ),
                ok(
                    &user(),
                    json!([{"op": "add", "value": {plain: value.clone()}}])
                ),
                "{key:?}"
            );
        }
    }
    for key in [
        " members",
        "Members ",
        "MEMBERS",
        "\turn:ietf:params:scim:schemas:core:2.0:Group:members",
    ] {
        let p = pathless_path(key);
        assert!(
            p.as_ref()
                .is_ok_and(|p| p.attr.name.eq_ignore_ascii_case("members") && p.attr.sub.is_none()),
            "{key:?}: {p:?}"
        );
    }
}

#[test]
fn path_parsing() {
    let p = PatchPath::parse(
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    );
    assert!(p.is_ok_and(|p| p.attr.name == "manager" && p.attr.sub.as_deref() == Some("value")));
    let p = PatchPath::parse(r#"members[value eq "2819c223"]"#);
    assert!(p.is_ok_and(|p| p.filter.is_some() && p.sub_after_filter.is_none()));
    let p = PatchPath::parse(r#"addresses[type eq "work"].streetAddress"#);
    assert!(p.is_ok_and(|p| p.sub_after_filter.as_deref() == Some("streetAddress")));
    for bad in ["", "name.familyName.x", "emails[type eq \"w\"]x", "emails]"] {
        assert!(PatchPath::parse(bad).is_err(), "{bad}");
    }
}
