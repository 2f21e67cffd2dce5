//! The hash-indexed add, filtered add and removal against the scans they
//! replaced (`same_element` per element), on small values that collide often.

use super::*;
use proptest::prelude::*;
use serde_json::json;

fn element() -> impl Strategy<Value = Value> {
    let value = prop_oneof![
        Just(json!("a")),
        Just(json!("b")),
        Just(json!(1)),
        Just(json!(1.0))
    ];
    let ty = prop_oneof![Just(None), Just(Some("work")), Just(Some("home"))];
    (
        proptest::option::of(value),
        ty,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(v, t, primary, display)| {
            let mut m = Map::new();
            if display {
                m.insert("display".into(), json!("d"));
            }
            if let Some(t) = t {
                m.insert("type".into(), json!(t));
            }
            if let Some(v) = v {
                m.insert("value".into(), v);
            }
            if primary {
                m.insert("primary".into(), json!(true));
            }
            Value::Object(m)
        })
}

fn scan_add(items: &mut Vec<Value>, new_items: Vec<Value>) {
    for n in new_items {
        if is_primary(&n) {
            items.iter_mut().for_each(clear_primary);
        }
        if let Some(pos) = items.iter().position(|i| same_element(i, &n)) {
            items[pos] = n;
        } else {
            items.push(n);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn indexed_operations_equal_the_scans(
        items in proptest::collection::vec(element(), 0..12),
        // Both sides of SCAN_BELOW: small operations scan, large ones index.
        new_items in proptest::collection::vec(element(), 0..40),
    ) {
        let mut want = items.clone();
        scan_add(&mut want, new_items.clone());
        let mut got = items.clone();
        prop_assert!(add_values(&mut got, new_items.clone(), None).is_ok());
        prop_assert_eq!(&got, &want);

        let mut want = items.clone();
        for n in new_items.clone() {
            if !want.iter().any(|i| same_element(i, &n)) {
                want.push(n);
            }
        }
        let mut got = items.clone();
        prop_assert!(add_missing(&mut got, new_items.clone(), None).is_ok());
        prop_assert_eq!(&got, &want);

        let mut want = items.clone();
        want.retain(|item| !new_items.iter().any(|r| same_element(item, r)));
        let removals = Removals::new(&new_items);
        let mut got = items.clone();
        got.retain(|item| !removals.matches(item));
        prop_assert_eq!(got, want);
    }

    #[test]
    fn canonical_text_is_equal_exactly_when_values_are(a in element(), b in element()) {
        // Key order differs, equality does not.
        let reversed: Value = match &b {
            Value::Object(o) => Value::Object(o.iter().rev().map(|(k, v)| (k.clone(), v.clone())).collect()),
            other => other.clone(),
        };
        prop_assert_eq!(canonical(&a) == canonical(&b), a == b);
        prop_assert_eq!(canonical(&reversed), canonical(&b));
    }
}

#[test]
fn negative_zero_is_zero() {
    assert_eq!(canonical(&json!(-0.0)), canonical(&json!(0.0)));
    assert_ne!(canonical(&json!(0)), canonical(&json!(0.0)));
    assert!(json!(-0.0) == json!(0.0));
}
