//! Unit tests of `patch`.

use super::*;
use crate::scim::resource::normalize;
use crate::scim::schema::USER_TYPE;
use proptest::prelude::*;

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i32>().prop_map(Value::from),
        "[a-zA-Z0-9 .:@\\[\\]\"]{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("userName".to_string()),
                    Just("emails".to_string()),
                    Just("name".to_string()),
                    Just("value".to_string()),
                    Just("active".to_string()),
                    "[a-z]{1,6}"
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Any JSON body and any PATCH operation: an error or a valid document, never a panic,
    /// and a document that survives a second normalisation unchanged.
    #[test]
    fn normalise_and_patch_never_panic(body in json(), op in json(), path in proptest::option::of("[a-zA-Z.\\[\\] \"]{0,20}")) {
        if let Ok(doc) = normalize(&USER_TYPE, &body) {
            let again = normalize(&USER_TYPE, &Value::Object(doc.clone()));
            prop_assert_eq!(again.ok(), Some(doc.clone()));
            let mut o = serde_json::Map::new();
            o.insert("op".into(), Value::String("add".into()));
            if let Some(p) = path {
                o.insert("path".into(), Value::String(p));
            }
            o.insert("value".into(), op);
            let req = serde_json::json!({"Operations": [Value::Object(o)]});
            if let Ok(ops) = parse_request(&req) {
                let _ = apply(&PatchContext { rt: &USER_TYPE, id: "x", limits: Limits::default() }, &doc, &ops);
            }
        }
    }
}
