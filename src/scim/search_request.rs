//! A `SearchRequest` body (`POST …/.search`, RFC 7644 §3.4.3) read straight
//! from its bytes. A projection array is refused at its 257th entry, where
//! the parse stops: a megabyte of attribute names costs the few kilobytes
//! before the cap, not a `Value` of 90,000 strings built only to be refused.
//! Members the request does not define are skipped without being built.

use super::error::ScimError;
use super::list::{self, ListParams, Raw};
use super::resource::{MAX_PROJECTION_ENTRIES, Projection};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::cell::RefCell;
use std::fmt;

/// Parses and validates a SearchRequest body.
pub fn from_bytes(body: &[u8]) -> Result<ListParams, ScimError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ScimError::invalid_syntax(
            "the request body is empty; a JSON object is required",
        ));
    }
    // Why a member was refused: a semantic refusal stops the parse through
    // serde's error path, which can only carry a string.
    let refusal = RefCell::new(None);
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = Request { refusal: &refusal }
        .deserialize(&mut de)
        .and_then(|fields| de.end().map(|()| fields));
    match parsed {
        Ok(f) => list::build(Raw {
            filter: f.filter.as_deref(),
            start: f.start,
            cursor: f.cursor.as_deref(),
            count: f.count,
            sort_by: f.sort_by.as_deref(),
            sort_order: f.sort_order.as_deref(),
            attributes: f.attributes.as_deref(),
            excluded: f.excluded.as_deref(),
        }),
        Err(e) => Err(match refusal.into_inner() {
            Some(refused) => refused,
            None if body.trim_ascii_start().first() != Some(&b'{') => {
                ScimError::invalid_syntax("a SearchRequest must be a JSON object")
            }
            None => ScimError::invalid_syntax(format!("the request body is not valid JSON: {e}")),
        }),
    }
}

#[derive(Default)]
struct Fields {
    filter: Option<String>,
    sort_by: Option<String>,
    sort_order: Option<String>,
    cursor: Option<String>,
    start: Option<i64>,
    count: Option<i64>,
    attributes: Option<String>,
    excluded: Option<String>,
}

type Refusal<'a> = &'a RefCell<Option<ScimError>>;

/// Records `e` and stops the parse.
fn refuse<E: de::Error>(refusal: Refusal<'_>, e: ScimError) -> E {
    *refusal.borrow_mut() = Some(e);
    E::custom("refused")
}

fn no_nul<E: de::Error>(refusal: Refusal<'_>, s: &str) -> Result<(), E> {
    if s.contains('\0') {
        return Err(refuse(
            refusal,
            ScimError::invalid_value(
                "the request body contains a NUL character (\\u0000), which no attribute may hold",
            ),
        ));
    }
    Ok(())
}

struct Request<'r> {
    refusal: Refusal<'r>,
}

impl<'de> DeserializeSeed<'de> for Request<'_> {
    type Value = Fields;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Fields, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Request<'_> {
    type Value = Fields;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a SearchRequest object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
        let r = self.refusal;
        let mut f = Fields::default();
        // Member names match case-insensitively (RFC 7643 §2.1).
        while let Some(key) = map.next_key::<String>()? {
            let text = |name: &'static str| Text {
                name,
                refusal: r,
                cap: None,
            };
            let projection = |name: &'static str| Text {
                name,
                refusal: r,
                cap: Some(MAX_PROJECTION_ENTRIES),
            };
            let int = |name: &'static str| Int { name, refusal: r };
            match key.to_ascii_lowercase().as_str() {
                "filter" => f.filter = map.next_value_seed(text("filter"))?,
                "sortby" => f.sort_by = map.next_value_seed(text("sortBy"))?,
                "sortorder" => f.sort_order = map.next_value_seed(text("sortOrder"))?,
                "cursor" => f.cursor = map.next_value_seed(text("cursor"))?,
                "startindex" => f.start = map.next_value_seed(int("startIndex"))?,
                "count" => f.count = map.next_value_seed(int("count"))?,
                "attributes" => f.attributes = map.next_value_seed(projection("attributes"))?,
                "excludedattributes" => {
                    f.excluded = map.next_value_seed(projection("excludedAttributes"))?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(f)
    }
}

/// A string member, or a list of strings joined by commas; `null` is absent.
/// With a `cap` (a projection list), the list stops at the entry past it.
struct Text<'r> {
    name: &'static str,
    refusal: Refusal<'r>,
    cap: Option<usize>,
}

impl Text<'_> {
    fn wrong<E: de::Error>(&self, got: &str) -> E {
        refuse(
            self.refusal,
            ScimError::invalid_value(format!(
                "'{}' must be a string or a list, got {got}",
                self.name
            )),
        )
    }
}

impl<'de> DeserializeSeed<'de> for Text<'_> {
    type Value = Option<String>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<String>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Text<'_> {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string or a list of strings")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<String>, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Option<String>, E> {
        no_nul(self.refusal, s)?;
        Ok(Some(s.to_string()))
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Option<String>, E> {
        Err(self.wrong(&b.to_string()))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Option<String>, E> {
        Err(self.wrong(&n.to_string()))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Option<String>, E> {
        Err(self.wrong(&n.to_string()))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Option<String>, E> {
        Err(self.wrong(&n.to_string()))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Option<String>, A::Error> {
        Err(self.wrong("an object"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<String>, A::Error> {
        let mut joined = String::new();
        // Strings naming at least one entry: each is at least one entry, so
        // one past the cap is over it, whatever the rest would have held.
        let mut naming = 0usize;
        // Non-strings in the list name nothing and are skipped.
        while let Some(item) = seq.next_element::<Option<StrItem>>()? {
            let Some(StrItem(Some(s))) = item else {
                continue;
            };
            no_nul(self.refusal, &s)?;
            if !joined.is_empty() {
                joined.push(',');
            }
            joined.push_str(&s);
            if s.split(',').any(|p| !p.trim().is_empty()) {
                naming += 1;
            }
            if let Some(cap) = self.cap
                && naming > cap
            {
                // The projection parser's own refusal, word for word.
                let e = Projection::parse(
                    (self.name == "attributes").then_some(joined.as_str()),
                    (self.name != "attributes").then_some(joined.as_str()),
                )
                .err()
                .unwrap_or_else(|| {
                    ScimError::invalid_value(format!(
                        "'{}' lists more than {cap} entries; at most {cap} are allowed",
                        self.name
                    ))
                });
                return Err(refuse(self.refusal, e));
            }
        }
        Ok(Some(joined))
    }
}

/// One list element: a string, or anything else (skipped, not built).
struct StrItem(Option<String>);

impl<'de> de::Deserialize<'de> for StrItem {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<StrItem, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrItem;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<StrItem, E> {
                Ok(StrItem(Some(s.to_string())))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<StrItem, E> {
                Ok(StrItem(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<StrItem, E> {
                Ok(StrItem(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<StrItem, E> {
                Ok(StrItem(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<StrItem, E> {
                Ok(StrItem(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<StrItem, E> {
                Ok(StrItem(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrItem, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(StrItem(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StrItem, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(StrItem(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// An integer member, or a string holding one; `null` is absent.
struct Int<'r> {
    name: &'static str,
    refusal: Refusal<'r>,
}

impl Int<'_> {
    fn wrong<E: de::Error>(&self, got: Option<&str>) -> E {
        let detail = match got {
            Some(got) => format!("'{}' must be an integer, got {got}", self.name),
            None => format!("'{}' must be an integer", self.name),
        };
        refuse(self.refusal, ScimError::invalid_value(detail))
    }
}

impl<'de> DeserializeSeed<'de> for Int<'_> {
    type Value = Option<i64>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Option<i64>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Int<'_> {
    type Value = Option<i64>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an integer")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<i64>, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Option<i64>, E> {
        Ok(Some(n))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Option<i64>, E> {
        i64::try_from(n).map(Some).map_err(|_| self.wrong(None))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Option<i64>, E> {
        Err(self.wrong(None))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Option<i64>, E> {
        list::parse_int(self.name, s)
            .map(Some)
            .map_err(|e| refuse(self.refusal, e))
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Option<i64>, E> {
        Err(self.wrong(Some(&b.to_string())))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, _: A) -> Result<Option<i64>, A::Error> {
        Err(self.wrong(Some("a list")))
    }
    fn visit_map<A: MapAccess<'de>>(self, _: A) -> Result<Option<i64>, A::Error> {
        Err(self.wrong(Some("an object")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scim::list::{Paging, SEARCH_URN};
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<ListParams, ScimError> {
        from_bytes(v.to_string().as_bytes())
    }

    #[test]
    fn members_case_insensitively_with_strings_lists_and_nulls() {
        let p = parse(
            json!({"schemas": [SEARCH_URN], "FILTER": "userName sw \"a\"",
            "startIndex": 2, "Count": "10", "attributes": ["userName", "emails"],
            "sortBy": null, "unknown": {"deep": [1, 2, {"x": "y"}]}}),
        );
        assert!(p.is_ok_and(|p| p.paging == Paging::Index(2)
            && p.count == 10
            && p.filter.is_some()
            && p.projection.entries() == (2, 0)));
        let p = parse(json!({"excludedAttributes": "emails, name.givenName", "count": null}));
        assert!(p.is_ok_and(|p| p.projection.entries() == (0, 2) && p.count == 100));
    }

    #[test]
    fn projection_arrays_stop_at_the_cap() {
        let names = |n: usize| (0..n).map(|i| json!(format!("x{i}"))).collect::<Vec<_>>();
        let over = parse(json!({"attributes": names(90_000)}));
        assert!(
            over.is_err_and(|e| e.status == 400
                && e.detail == "'attributes' lists more than 256 entries; at most 256 are allowed"),
            "an array over the cap is refused with the projection parser's words"
        );
        // Blank strings and non-strings name nothing.
        let mut mixed = names(256);
        mixed.extend((0..100).map(|_| json!(" , ")));
        mixed.extend((0..100).map(|i| json!({"n": i})));
        let ok = parse(json!({"excludedAttributes": mixed}));
        assert_eq!(ok.map(|p| p.projection.entries()).ok(), Some((0, 256)));
        let ok = parse(json!({"attributes": names(256)}));
        assert_eq!(ok.map(|p| p.projection.entries()).ok(), Some((256, 0)));
        // Whatever follows the 257th name is never read: not even its syntax.
        let mut body = json!({"excludedAttributes": names(257)}).to_string();
        body.truncate(body.len() - 2);
        body.push_str(", {{{ not json");
        assert!(
            from_bytes(body.as_bytes()).is_err_and(|e| e.detail.contains("more than 256 entries"))
        );
    }

    #[test]
    fn wrong_types_bad_json_and_nul_are_precise_400s() {
        let cases = [
            (
                json!({"count": true}),
                "'count' must be an integer, got true",
            ),
            (
                json!({"startIndex": 1.5}),
                "'startIndex' must be an integer",
            ),
            (
                json!({"count": [1]}),
                "'count' must be an integer, got a list",
            ),
            (json!({"count": "abc"}), "'count' must be an integer"),
            (
                json!({"filter": 7}),
                "'filter' must be a string or a list, got 7",
            ),
            (
                json!({"sortBy": {"a": 1}}),
                "'sortBy' must be a string or a list, got an object",
            ),
            (json!({"filter": "userName eq \"a\u{0}\""}), "NUL character"),
            (json!({"attributes": ["a\u{0}"]}), "NUL character"),
            (json!(["filter"]), "a SearchRequest must be a JSON object"),
        ];
        for (body, detail) in cases {
            let e = parse(body.clone()).err();
            assert!(
                e.as_ref()
                    .is_some_and(|e| e.status == 400 && e.detail.contains(detail)),
                "{body}: {e:?}"
            );
        }
        for (body, detail) in [
            ("", "the request body is empty"),
            ("  \n", "the request body is empty"),
            ("{\"filter\": ", "the request body is not valid JSON"),
            ("{} trailing", "the request body is not valid JSON"),
            ("\"x\"", "a SearchRequest must be a JSON object"),
        ] {
            let e = from_bytes(body.as_bytes()).err();
            assert!(
                e.as_ref()
                    .is_some_and(|e| e.status == 400 && e.detail.contains(detail)),
                "{body:?}: {e:?}"
            );
        }
        let syntax = from_bytes(b"{\"filter\": ").err();
        assert!(
            syntax
                .is_some_and(|e| e.scim_type == Some(crate::scim::error::ScimType::InvalidSyntax))
        );
    }

    /// A member value: strings, lists, numbers and the wrong types.
    fn member_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(json!(null)),
            any::<bool>().prop_map(|b| json!(b)),
            any::<i64>().prop_map(|n| json!(n)),
            Just(json!(1.5)),
            Just(json!(u64::MAX)),
            Just(json!("userName sw \"a\"")),
            Just(json!("emails, name.givenName")),
            Just(json!("descending")),
            Just(json!("12")),
            "[a-zA-Z0-9 ,.\u{0}]{0,12}".prop_map(|s| json!(s)),
        ];
        leaf.prop_recursive(2, 300, 300, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..300).prop_map(serde_json::Value::from),
                proptest::collection::vec(("[a-z]{1,3}", inner), 0..3)
                    .prop_map(|kv| json!(kv.into_iter().collect::<serde_json::Map<_, _>>())),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 300, ..Default::default() })]

        /// Read as it streams, a body means what it means read whole into a
        /// `Value` first (`fuzzing::search_request` checks the two agree).
        #[test]
        fn streaming_agrees_with_reading_the_whole_body(
            members in proptest::collection::vec((
                proptest::sample::select(vec!["filter", "Filter", "sortBy", "sortOrder",
                    "cursor", "startIndex", "count", "COUNT", "attributes",
                    "excludedAttributes", "schemas", "other"]),
                member_value(),
            ), 0..6)
        ) {
            let body = json!(members.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<serde_json::Map<_, _>>());
            crate::fuzzing::search_request(body.to_string().as_bytes());
        }
    }
}
