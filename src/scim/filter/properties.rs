//! Unit tests of `filter`.

use super::*;
use proptest::prelude::*;

fn attr() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("userName".to_string()),
        Just("emails.value".to_string()),
        Just("urn:ietf:params:scim:schemas:core:2.0:User:name.familyName".to_string()),
        "[a-zA-Z][a-zA-Z0-9]{0,8}",
    ]
}

fn leaf() -> impl Strategy<Value = String> {
    let op = prop_oneof![
        Just("eq"),
        Just("NE"),
        Just("co"),
        Just("sw"),
        Just("ew"),
        Just("gt"),
        Just("ge"),
        Just("lt"),
        Just("le")
    ];
    let value = prop_oneof![
        any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
        Just("true".to_string()),
        Just("null".to_string()),
        (-1000i64..1000).prop_map(|n| n.to_string()),
    ];
    prop_oneof![
        (attr(), op, value).prop_map(|(a, o, v)| format!("{a} {o} {v}")),
        attr().prop_map(|a| format!("{a} pr")),
    ]
}

fn filter() -> impl Strategy<Value = String> {
    leaf().prop_recursive(4, 32, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} and {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} or {b})")),
            inner.clone().prop_map(|a| format!("not ({a})")),
            inner.prop_map(|a| format!("emails[{a}]")),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// Arbitrary input never panics; it parses or gets a precise invalidFilter.
    #[test]
    fn arbitrary_text_never_panics(s in ".{0,200}") {
        match parse(&s) {
            Ok(_) => {}
            Err(e) => prop_assert_eq!(e.scim_type, Some(crate::scim::error::ScimType::InvalidFilter)),
        }
        let _ = crate::scim::patch::PatchPath::parse(&s);
    }

    /// Well-formed filters from the RFC grammar always parse.
    #[test]
    fn grammar_filters_parse(f in filter()) {
        prop_assert!(parse(&f).is_ok(), "{}", f);
    }
}
