//! Unit tests of `filter`.

use super::*;

fn p(s: &str) -> Filter {
    match parse(s) {
        Ok(f) => f,
        Err(e) => panic!("{s}: {e:?}"),
    }
}
fn path(name: &str) -> AttrPath {
    AttrPath {
        urn: None,
        name: name.into(),
        sub: None,
    }
}

#[test]
fn okta_and_entra_matching_filters() {
    assert_eq!(
        p(r#"userName eq "jane.doe@example.com""#),
        Filter::Compare(
            path("userName"),
            CompareOp::Eq,
            CompValue::Str("jane.doe@example.com".into())
        )
    );
    // Entra tutorial: unquoted value.
    assert_eq!(
        p("externalId eq jyoung"),
        Filter::Compare(
            path("externalId"),
            CompareOp::Eq,
            CompValue::Str("jyoung".into())
        )
    );
    // Entra: value path with a trailing sub-attribute comparison.
    let f = p(r#"emails[type eq "work"].value eq "a@b.c""#);
    match f {
        Filter::ValuePath(a, inner) => {
            assert_eq!(a.name, "emails");
            assert!(matches!(*inner, Filter::And(_, _)));
        }
        other => panic!("unexpected {other:?}"),
    }
    // Entra's manager reference check.
    assert!(matches!(
        p(r#"id eq "1" and manager eq "2""#),
        Filter::And(_, _)
    ));
    // Entra's group membership check.
    assert!(matches!(
        p(r#"id eq "g" and members[value eq "u"]"#),
        Filter::And(_, _)
    ));
    assert!(matches!(
        p(r#"displayName eq "Grp-x""#),
        Filter::Compare(..)
    ));
}

#[test]
fn keywords_and_attribute_names_are_case_insensitive_and_not_needs_no_space() {
    assert!(matches!(
        p(r#"USERNAME EQ "x" AND title PR"#),
        Filter::And(_, _)
    ));
    assert!(matches!(p("not(title pr)"), Filter::Not(_)));
    assert!(matches!(p("not (title pr)"), Filter::Not(_)));
}

#[test]
fn precedence_and_grouping() {
    // and binds tighter than or.
    match p("a pr or b pr and c pr") {
        Filter::Or(_, r) => assert!(matches!(*r, Filter::And(_, _))),
        other => panic!("{other:?}"),
    }
    match p("(a pr or b pr) and c pr") {
        Filter::And(l, _) => assert!(matches!(*l, Filter::Or(_, _))),
        other => panic!("{other:?}"),
    }
}

#[test]
fn urn_qualified_paths_and_literals() {
    match p(r#"urn:ietf:params:scim:schemas:core:2.0:User:name.familyName co "O'Malley""#) {
        Filter::Compare(a, CompareOp::Co, _) => {
            assert_eq!(
                a.urn.as_deref(),
                Some("urn:ietf:params:scim:schemas:core:2.0:User")
            );
            assert_eq!(a.name, "name");
            assert_eq!(a.sub.as_deref(), Some("familyName"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        p("active eq true"),
        Filter::Compare(_, _, CompValue::Bool(true))
    ));
    assert!(matches!(
        p("active eq False"),
        Filter::Compare(_, _, CompValue::Bool(false))
    ));
    assert!(matches!(
        p("manager eq null"),
        Filter::Compare(_, _, CompValue::Null)
    ));
    assert!(matches!(
        p("meta.version eq 3"),
        Filter::Compare(_, _, CompValue::Number(_))
    ));
    match p(r#"displayName eq "J\u00fcrgen \"Jay\"""#) {
        Filter::Compare(_, _, CompValue::Str(s)) => assert_eq!(s, "Jürgen \"Jay\""),
        other => panic!("{other:?}"),
    }
}

#[test]
fn errors_are_precise() {
    let cases = [
        ("userName garbage", "not an operator"),
        ("userName eq", "expected a value"),
        (r#"userName eq "x"#, "unterminated string"),
        (r#"userName eq "x" and"#, "expected an attribute name"),
        (r#"(userName eq "x""#, "expected ')'"),
        (r#"emails[type eq "work""#, "expected ']'"),
        (r#"userName eq "x" foo"#, "unexpected 'foo'"),
        ("", "empty"),
        ("a.b.c pr", "more than one sub-attribute"),
        // Found by the filter_parse fuzz target: NUL in an unquoted value
        // (and anywhere else outside a string literal) is refused like one inside.
        (
            "externalId eq a\0b",
            "unquoted text at position 14 contains a NUL",
        ),
        ("userName\0 pr", "NUL"),
        (
            r#"userName eq "a\u0000b""#,
            "string literal at position 12 contains a NUL",
        ),
    ];
    for (input, needle) in cases {
        match parse(input) {
            Err(e) => {
                assert_eq!(
                    e.scim_type,
                    Some(super::super::error::ScimType::InvalidFilter)
                );
                assert!(e.detail.contains(needle), "{input}: {}", e.detail);
            }
            Ok(f) => panic!("{input} parsed as {f:?}"),
        }
    }
}

#[test]
fn limits() {
    let deep = format!("{}a pr{}", "(".repeat(40), ")".repeat(40));
    assert!(parse(&deep).is_err_and(|e| e.detail.contains("depth")));
    let many = vec!["a pr"; 300].join(" or ");
    assert!(parse(&many).is_err_and(|e| e.detail.contains("terms")));
    assert!(parse(&"x".repeat(5000)).is_err());
}

#[test]
fn evaluates_against_elements() {
    let email = serde_json::json!({"value": "A@B.c", "type": "work", "primary": true});
    let exact = |_: &str| false;
    assert!(matches(&p(r#"type eq "WORK""#), &email, &exact));
    assert!(matches(&p(r#"value co "@b""#), &email, &exact));
    assert!(matches(&p("primary eq true"), &email, &exact));
    assert!(!matches(&p(r#"type eq "home""#), &email, &exact));
    assert!(matches(&p(r#"not (type eq "home")"#), &email, &exact));
    let case_exact = |n: &str| n == "value";
    assert!(!matches(&p(r#"value eq "a@b.c""#), &email, &case_exact));
    assert!(matches(&p(r#"primary eq "True""#), &email, &exact));
    assert!(!matches(&p(r#"primary eq "false""#), &email, &exact));
}
