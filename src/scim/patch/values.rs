//! The multi-valued engine: adding, de-duplicating and removing elements by
//! hashing them the way `same_element` compares them (n log m, not n·m).

use super::*;

pub(super) fn is_cleared(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Object(o) => o.values().all(is_cleared),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

pub(super) fn is_primary(v: &Value) -> bool {
    v.get("primary") == Some(&Value::Bool(true))
}

pub(super) fn clear_primary(v: &mut Value) {
    if let Some(o) = v.as_object_mut() {
        o.remove("primary");
    }
}

/// A multi-valued `add`: each new value replaces the first element that is
/// the same (`same_element`) or is appended; a new primary value clears the
/// others' `primary`. `cap`: the attribute's name when it is held to
/// `MAX_MULTI_VALUES`.
/// Below this many new values an operation scans instead of indexing: building
/// the index costs a canonical string per *existing* element, so a PATCH of
/// 1,000 one-value operations on a 999-value attribute would build it 1,000
/// times (0.4–1.4 s inside the writer); a scan compares without allocating.
pub(super) const SCAN_BELOW: usize = 16;

pub(super) fn add_values(
    items: &mut Vec<Value>,
    new_items: Vec<Value>,
    cap: Option<&str>,
) -> Result<(), ScimError> {
    if new_items.len() < SCAN_BELOW {
        for n in new_items {
            if is_primary(&n) {
                items.iter_mut().for_each(clear_primary);
            }
            match items.iter().position(|i| same_element(i, &n)) {
                Some(pos) => items[pos] = n,
                None => {
                    items.push(n);
                    check_cap(items, cap)?;
                }
            }
        }
        return Ok(());
    }
    let mut index = ElementIndex::new(items);
    for n in new_items {
        if is_primary(&n) {
            // At most one new value is primary (normalize_attr), so this
            // runs at most once per operation.
            items.iter_mut().for_each(clear_primary);
            index = ElementIndex::new(items);
        }
        if let Some(pos) = index.find(&n) {
            index.replace(pos, &items[pos], &n);
            items[pos] = n;
        } else {
            index.insert(items.len(), &n);
            items.push(n);
            check_cap(items, cap)?;
        }
    }
    Ok(())
}

/// A filtered `add` of whole values: appends each new value no element is
/// the same as (existing elements are left as they are).
pub(super) fn add_missing(
    items: &mut Vec<Value>,
    new_items: Vec<Value>,
    cap: Option<&str>,
) -> Result<(), ScimError> {
    if new_items.len() < SCAN_BELOW {
        for n in new_items {
            if !items.iter().any(|i| same_element(i, &n)) {
                items.push(n);
                check_cap(items, cap)?;
            }
        }
        return Ok(());
    }
    let mut index = ElementIndex::new(items);
    for n in new_items {
        if index.find(&n).is_none() {
            index.insert(items.len(), &n);
            items.push(n);
            check_cap(items, cap)?;
        }
    }
    Ok(())
}

/// Refused as the result is built, before any more work is done on it.
pub(super) fn check_cap(items: &[Value], cap: Option<&str>) -> Result<(), ScimError> {
    match cap {
        Some(name) if items.len() > MAX_MULTI_VALUES => Err(too_many_values(name)),
        _ => Ok(()),
    }
}

/// Two elements of a multi-valued attribute are the same when their `value`s
/// match (or, without `value`, when they are equal). The index and removal
/// sets below apply this rule by hashing; small operations scan with it.
pub(super) fn same_element(a: &Value, b: &Value) -> bool {
    match (a.get("value"), b.get("value")) {
        (Some(x), Some(y)) => x == y && (a.get("type") == b.get("type") || b.get("type").is_none()),
        _ => a == b,
    }
}

/// A JSON value as text that is equal exactly when the values are equal
/// (`Value`'s `==` ignores object key order, which `preserve_order` keeps).
pub(super) fn canonical(v: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(o) => {
                let mut keys: Vec<&String> = o.keys().collect();
                keys.sort_unstable();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    if let Some(x) = o.get(k) {
                        write(x, out);
                    }
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(x, out);
                }
                out.push(']');
            }
            // -0.0 == 0.0 as numbers, but not as text.
            Value::Number(n) if n.as_f64() == Some(0.0) && n.is_f64() => out.push_str("0.0"),
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(v, &mut out);
    out
}

/// `value` and `type` as one key (canonical text cannot hold a raw NUL).
pub(super) fn value_type_key(value: &str, ty: &Value) -> String {
    format!("{value}\u{0}{}", canonical(ty))
}

/// The positions of a multi-valued attribute's elements, keyed the way
/// `same_element` compares them, so finding the element a new value replaces
/// is a lookup rather than a scan (an add of n values to m is n log m, not n·m).
/// Each key keeps its positions ordered: the first match wins, as a scan's would.
#[derive(Default)]
pub(super) struct ElementIndex {
    /// Elements with a `value`, by that value.
    by_value: HashMap<String, BTreeSet<usize>>,
    /// Elements with a `value` and a `type`, by both.
    by_value_type: HashMap<String, BTreeSet<usize>>,
    /// Elements without a `value`, by the whole element.
    whole: HashMap<String, BTreeSet<usize>>,
}

impl ElementIndex {
    pub(super) fn new(items: &[Value]) -> ElementIndex {
        let mut index = ElementIndex::default();
        for (i, item) in items.iter().enumerate() {
            index.insert(i, item);
        }
        index
    }

    /// The keys `element` is filed under: (map, key) pairs.
    pub(super) fn keys(element: &Value) -> Vec<(u8, String)> {
        match element.get("value") {
            Some(v) => {
                let value = canonical(v);
                let mut keys = Vec::with_capacity(2);
                if let Some(t) = element.get("type") {
                    keys.push((1, value_type_key(&value, t)));
                }
                keys.push((0, value));
                keys
            }
            None => vec![(2, canonical(element))],
        }
    }

    pub(super) fn map(&mut self, which: u8) -> &mut HashMap<String, BTreeSet<usize>> {
        match which {
            0 => &mut self.by_value,
            1 => &mut self.by_value_type,
            _ => &mut self.whole,
        }
    }

    pub(super) fn insert(&mut self, pos: usize, element: &Value) {
        for (which, key) in Self::keys(element) {
            self.map(which).entry(key).or_default().insert(pos);
        }
    }

    pub(super) fn remove(&mut self, pos: usize, element: &Value) {
        for (which, key) in Self::keys(element) {
            let map = self.map(which);
            if let Some(set) = map.get_mut(&key) {
                set.remove(&pos);
                if set.is_empty() {
                    map.remove(&key);
                }
            }
        }
    }

    pub(super) fn replace(&mut self, pos: usize, old: &Value, new: &Value) {
        self.remove(pos, old);
        self.insert(pos, new);
    }

    /// The first element `same_element(element, new)` holds for.
    pub(super) fn find(&self, new: &Value) -> Option<usize> {
        let first = |map: &HashMap<String, BTreeSet<usize>>, key: &str| {
            map.get(key).and_then(|s| s.first().copied())
        };
        match new.get("value") {
            Some(v) => {
                let value = canonical(v);
                match new.get("type") {
                    // A typed value matches only an element of that type…
                    Some(t) => first(&self.by_value_type, &value_type_key(&value, t)),
                    // …an untyped one, any element with that value.
                    None => first(&self.by_value, &value),
                }
            }
            None => first(&self.whole, &canonical(new)),
        }
    }
}

/// A `remove` value list as hash sets: whether `same_element(item, r)` holds
/// for some `r` of the list is a lookup per item.
pub(super) struct Removals {
    /// Values listed without a type: they remove every element with that value.
    untyped: HashSet<String>,
    /// Values listed with a type: they remove elements of that value and type.
    typed: HashSet<String>,
    /// Elements listed without a value: they remove equal elements.
    whole: HashSet<String>,
}

impl Removals {
    pub(super) fn new(list: &[Value]) -> Removals {
        let mut r = Removals {
            untyped: HashSet::new(),
            typed: HashSet::new(),
            whole: HashSet::new(),
        };
        for item in list {
            match (item.get("value"), item.get("type")) {
                (Some(v), Some(t)) => {
                    r.typed.insert(value_type_key(&canonical(v), t));
                }
                (Some(v), None) => {
                    r.untyped.insert(canonical(v));
                }
                (None, _) => {
                    r.whole.insert(canonical(item));
                }
            }
        }
        r
    }

    pub(super) fn matches(&self, item: &Value) -> bool {
        match item.get("value") {
            Some(v) => {
                let value = canonical(v);
                self.untyped.contains(&value)
                    || item
                        .get("type")
                        .is_some_and(|t| self.typed.contains(&value_type_key(&value, t)))
            }
            None => self.whole.contains(&canonical(item)),
        }
    }
}

pub(super) fn set_sub(obj: &mut Value, sub: &str, v: Option<Value>) {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    if let Some(o) = obj.as_object_mut() {
        let existing = o.keys().find(|k| k.eq_ignore_ascii_case(sub)).cloned();
        if let Some(k) = existing {
            o.remove(&k);
        }
        if let Some(v) = v {
            o.insert(sub.to_string(), v);
        }
    }
}
