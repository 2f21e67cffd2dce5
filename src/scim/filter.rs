//! The SCIM filter grammar (RFC 7644 §3.4.2.2), with the leniencies real IdPs need:
//! unquoted string values (`externalId eq jyoung`, Entra's tutorial form), a value
//! path followed by a sub-attribute comparison (`emails[type eq "work"].value eq "x"`,
//! Entra's matching filter), `not(` without a space, and case-insensitive keywords.
//!
//! Parsing is pure; `matches` evaluates a filter against a JSON element (used for
//! PATCH value-path selection). Translation to SQL lives in `store::filter_sql`.

use super::error::ScimError;
use serde_json::Value;
use std::fmt;

/// Bounds that keep a hostile filter from costing much.
pub const MAX_FILTER_LEN: usize = 4096;
pub const MAX_DEPTH: usize = 32;
pub const MAX_TERMS: usize = 256;

#[derive(Debug, Clone, PartialEq)]
pub struct AttrPath {
    /// Schema URN prefix, when the path was qualified (`urn:...:User:userName`).
    pub urn: Option<String>,
    pub name: String,
    pub sub: Option<String>,
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(u) = &self.urn {
            write!(f, "{u}:")?;
        }
        write!(f, "{}", self.name)?;
        if let Some(s) = &self.sub {
            write!(f, ".{s}")?;
        }
        Ok(())
    }
}

impl AttrPath {
    /// Parses `[urn:]name[.sub]`. The URN is everything before the last ':'.
    pub fn parse(raw: &str) -> Result<AttrPath, String> {
        let (urn, rest) = match raw.rfind(':') {
            Some(i) => (Some(raw[..i].to_string()), &raw[i + 1..]),
            None => (None, raw),
        };
        if let Some(u) = &urn
            && !u.to_ascii_lowercase().starts_with("urn:")
        {
            return Err(format!("'{raw}' is not an attribute path"));
        }
        let mut parts = rest.split('.');
        let name = parts.next().unwrap_or_default();
        let sub = parts.next();
        if parts.next().is_some() {
            return Err(format!("'{raw}' has more than one sub-attribute level"));
        }
        if !is_attr_name(name) || sub.is_some_and(|s| !is_attr_name(s)) {
            return Err(format!("'{raw}' is not a valid attribute path"));
        }
        Ok(AttrPath {
            urn,
            name: name.to_string(),
            sub: sub.map(str::to_string),
        })
    }
}

fn is_attr_name(s: &str) -> bool {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '$' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

impl CompareOp {
    fn parse(word: &str) -> Option<CompareOp> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "co" => CompareOp::Co,
            "sw" => CompareOp::Sw,
            "ew" => CompareOp::Ew,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Str(String),
}

impl CompValue {
    pub fn as_text(&self) -> Option<String> {
        match self {
            CompValue::Str(s) => Some(s.clone()),
            CompValue::Number(n) => Some(n.to_string()),
            CompValue::Bool(b) => Some(b.to_string()),
            CompValue::Null => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    Present(AttrPath),
    Compare(AttrPath, CompareOp, CompValue),
    /// `attr[filter]`: some element of the multi-valued `attr` matches `filter`,
    /// whose paths are relative to the element.
    ValuePath(AttrPath, Box<Filter>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Word(w) => write!(f, "'{w}'"),
            Tok::Str(s) => write!(f, "string \"{s}\""),
            Tok::LParen => write!(f, "'('"),
            Tok::RParen => write!(f, "')'"),
            Tok::LBracket => write!(f, "'['"),
            Tok::RBracket => write!(f, "']'"),
        }
    }
}

fn tokenize(input: &str) -> Result<Vec<(Tok, usize)>, String> {
    let mut toks = Vec::new();
    let chars: Vec<(usize, char)> = input.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (pos, c) = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                toks.push((Tok::LParen, pos));
                i += 1;
            }
            ')' => {
                toks.push((Tok::RParen, pos));
                i += 1;
            }
            '[' => {
                toks.push((Tok::LBracket, pos));
                i += 1;
            }
            ']' => {
                toks.push((Tok::RBracket, pos));
                i += 1;
            }
            '"' => {
                // A JSON string literal: find its end honouring escapes, then let
                // serde_json decode the escapes exactly as JSON defines them.
                let mut j = i + 1;
                let mut escaped = false;
                while j < chars.len() {
                    let ch = chars[j].1;
                    if escaped {
                        escaped = false;
                    } else if ch == '\\' {
                        escaped = true;
                    } else if ch == '"' {
                        break;
                    }
                    j += 1;
                }
                if j >= chars.len() {
                    return Err(format!("unterminated string starting at position {pos}"));
                }
                let end = chars[j].0 + 1;
                let lit = &input[pos..end];
                let s: String = serde_json::from_str(lit)
                    .map_err(|_| format!("invalid string literal at position {pos}"))?;
                if s.contains('\0') {
                    return Err(format!(
                        "string literal at position {pos} contains a NUL character"
                    ));
                }
                toks.push((Tok::Str(s), pos));
                i = j + 1;
            }
            _ => {
                let mut j = i;
                while j < chars.len() {
                    let ch = chars[j].1;
                    if ch.is_whitespace() || matches!(ch, '(' | ')' | '[' | ']' | '"') {
                        break;
                    }
                    j += 1;
                }
                let end = if j < chars.len() {
                    chars[j].0
                } else {
                    input.len()
                };
                let word = &input[pos..end];
                // As for string literals: no attribute holds NUL, and PostgreSQL
                // cannot compare it (an unquoted `externalId eq a%00b` was a 500).
                if word.contains('\0') {
                    return Err(format!(
                        "unquoted text at position {pos} contains a NUL character"
                    ));
                }
                toks.push((Tok::Word(word.to_string()), pos));
                i = j;
            }
        }
    }
    Ok(toks)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    depth: usize,
    terms: usize,
    len: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }
    fn at(&self) -> usize {
        self.toks.get(self.pos).map(|t| t.1).unwrap_or(self.len)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|t| t.0.clone());
        self.pos += 1;
        t
    }
    fn peek_keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }
    fn describe_next(&self) -> String {
        match self.peek() {
            Some(t) => format!("{t} at position {}", self.at()),
            None => "end of filter".into(),
        }
    }

    fn enter(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!(
                "filter nesting exceeds the maximum depth of {MAX_DEPTH}"
            ));
        }
        Ok(())
    }

    fn parse_or(&mut self) -> Result<Filter, String> {
        let mut left = self.parse_and()?;
        while self.peek_keyword("or") {
            self.pos += 1;
            let right = self.parse_and()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_and(&mut self) -> Result<Filter, String> {
        let mut left = self.parse_unary()?;
        while self.peek_keyword("and") {
            self.pos += 1;
            let right = self.parse_unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn parse_unary(&mut self) -> Result<Filter, String> {
        if self.peek_keyword("not") && matches!(self.toks.get(self.pos + 1), Some((Tok::LParen, _)))
        {
            self.pos += 1;
            let inner = self.parse_group()?;
            return Ok(Filter::Not(Box::new(inner)));
        }
        if matches!(self.peek(), Some(Tok::LParen)) {
            return self.parse_group();
        }
        self.parse_attr_expr()
    }

    fn parse_group(&mut self) -> Result<Filter, String> {
        self.enter()?;
        self.pos += 1; // '('
        let inner = self.parse_or()?;
        match self.next() {
            Some(Tok::RParen) => {}
            _ => {
                self.pos -= 1;
                return Err(format!("expected ')' but found {}", self.describe_next()));
            }
        }
        self.depth -= 1;
        Ok(inner)
    }

    fn parse_attr_expr(&mut self) -> Result<Filter, String> {
        let at = self.at();
        let word = match self.next() {
            Some(Tok::Word(w)) => w,
            Some(t) => {
                return Err(format!(
                    "expected an attribute name but found {t} at position {at}"
                ));
            }
            None => return Err("expected an attribute name but the filter ended".into()),
        };
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(format!("filter has more than {MAX_TERMS} terms"));
        }
        if matches!(self.peek(), Some(Tok::LBracket)) {
            let attr = AttrPath::parse(&word)?;
            if attr.sub.is_some() {
                return Err(format!(
                    "'{word}' cannot be followed by '[': value filters apply to an attribute, not a sub-attribute"
                ));
            }
            self.enter()?;
            self.pos += 1;
            let inner = self.parse_or()?;
            match self.next() {
                Some(Tok::RBracket) => {}
                _ => {
                    self.pos -= 1;
                    return Err(format!("expected ']' but found {}", self.describe_next()));
                }
            }
            self.depth -= 1;
            // Extension used by Entra: `emails[type eq "work"].value eq "x"`.
            if let Some(Tok::Word(w)) = self.peek().cloned()
                && let Some(sub) = w.strip_prefix('.')
            {
                self.pos += 1;
                if !is_attr_name(sub) {
                    return Err(format!("'{w}' is not a valid sub-attribute after ']'"));
                }
                let sub_path = AttrPath {
                    urn: None,
                    name: sub.to_string(),
                    sub: None,
                };
                let cmp = self.parse_comparison(sub_path)?;
                return Ok(Filter::ValuePath(
                    attr,
                    Box::new(Filter::And(Box::new(inner), Box::new(cmp))),
                ));
            }
            return Ok(Filter::ValuePath(attr, Box::new(inner)));
        }
        let path = AttrPath::parse(&word)?;
        self.parse_comparison(path)
    }

    fn parse_comparison(&mut self, path: AttrPath) -> Result<Filter, String> {
        let at = self.at();
        let op_word = match self.next() {
            Some(Tok::Word(w)) => w,
            Some(t) => {
                return Err(format!(
                    "expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after '{path}' but found {t} at position {at}"
                ));
            }
            None => {
                return Err(format!(
                    "expected an operator after '{path}' but the filter ended"
                ));
            }
        };
        if op_word.eq_ignore_ascii_case("pr") {
            return Ok(Filter::Present(path));
        }
        let op = CompareOp::parse(&op_word).ok_or_else(|| {
            format!("'{op_word}' at position {at} is not an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr)")
        })?;
        let at = self.at();
        let value = match self.next() {
            Some(Tok::Str(s)) => CompValue::Str(s),
            Some(Tok::Word(w)) => word_value(&w),
            Some(t) => {
                return Err(format!(
                    "expected a value after '{path} {}' but found {t} at position {at}",
                    op.as_str()
                ));
            }
            None => {
                return Err(format!(
                    "expected a value after '{path} {}' but the filter ended",
                    op.as_str()
                ));
            }
        };
        Ok(Filter::Compare(path, op, value))
    }
}

/// An unquoted value: a JSON literal, a number, or (leniently) a bare string.
fn word_value(w: &str) -> CompValue {
    match w.to_ascii_lowercase().as_str() {
        "true" => return CompValue::Bool(true),
        "false" => return CompValue::Bool(false),
        "null" => return CompValue::Null,
        _ => {}
    }
    if let Ok(Value::Number(n)) = serde_json::from_str::<Value>(w) {
        return CompValue::Number(n);
    }
    CompValue::Str(w.to_string())
}

pub fn parse(input: &str) -> Result<Filter, ScimError> {
    if input.len() > MAX_FILTER_LEN {
        return Err(ScimError::invalid_filter(format!(
            "filter is longer than {MAX_FILTER_LEN} characters"
        )));
    }
    let wrap = |e: String| ScimError::invalid_filter(format!("invalid filter: {e}"));
    let toks = tokenize(input).map_err(wrap)?;
    if toks.is_empty() {
        return Err(ScimError::invalid_filter("filter is empty"));
    }
    let mut p = Parser {
        toks,
        pos: 0,
        depth: 0,
        terms: 0,
        len: input.len(),
    };
    let f = p.parse_or().map_err(wrap)?;
    if p.pos < p.toks.len() {
        return Err(wrap(format!(
            "unexpected {} (expected 'and', 'or' or the end of the filter)",
            p.describe_next()
        )));
    }
    Ok(f)
}

/// Evaluates a filter against one JSON object (an element of a multi-valued
/// attribute, for PATCH value paths). Attribute names are case-insensitive;
/// string comparison is case-insensitive except for `value`-like identifiers
/// flagged `case_exact` by the caller.
pub fn matches(filter: &Filter, obj: &Value, case_exact: &dyn Fn(&str) -> bool) -> bool {
    match filter {
        Filter::And(a, b) => matches(a, obj, case_exact) && matches(b, obj, case_exact),
        Filter::Or(a, b) => matches(a, obj, case_exact) || matches(b, obj, case_exact),
        Filter::Not(a) => !matches(a, obj, case_exact),
        Filter::Present(p) => lookup(obj, p).is_some_and(|v| !is_empty(v)),
        Filter::Compare(p, op, v) => {
            let exact = case_exact(&p.name);
            match lookup(obj, p) {
                Some(Value::Array(items)) => items.iter().any(|i| compare(i, *op, v, exact)),
                Some(actual) => compare(actual, *op, v, exact),
                None => matches!(
                    (op, v),
                    (
                        CompareOp::Ne,
                        CompValue::Str(_) | CompValue::Bool(_) | CompValue::Number(_)
                    )
                ),
            }
        }
        Filter::ValuePath(p, inner) => match lookup(obj, p) {
            Some(Value::Array(items)) => items.iter().any(|i| matches(inner, i, case_exact)),
            Some(v @ Value::Object(_)) => matches(inner, v, case_exact),
            _ => false,
        },
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn get_ci<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    obj.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

fn lookup<'a>(obj: &'a Value, p: &AttrPath) -> Option<&'a Value> {
    let v = get_ci(obj, &p.name)?;
    match &p.sub {
        Some(sub) => get_ci(v, sub),
        None => Some(v),
    }
}

fn compare(actual: &Value, op: CompareOp, expected: &CompValue, case_exact: bool) -> bool {
    use std::cmp::Ordering;
    let ord: Option<Ordering> = match (actual, expected) {
        (Value::String(a), CompValue::Str(e)) => {
            let (a, e) = if case_exact {
                (a.clone(), e.clone())
            } else {
                (super::fold::fold(a), super::fold::fold(e))
            };
            match op {
                CompareOp::Co => return a.contains(&e),
                CompareOp::Sw => return a.starts_with(&e),
                CompareOp::Ew => return a.ends_with(&e),
                _ => Some(a.cmp(&e)),
            }
        }
        (Value::Bool(a), CompValue::Bool(e)) => Some(a.cmp(e)),
        // Entra's mapping paths say `roles[primary eq "True"]`.
        (Value::Bool(a), CompValue::Str(e))
            if e.eq_ignore_ascii_case("true") || e.eq_ignore_ascii_case("false") =>
        {
            Some(a.cmp(&e.eq_ignore_ascii_case("true")))
        }
        (Value::Number(a), CompValue::Number(e)) => a
            .as_f64()
            .zip(e.as_f64())
            .and_then(|(a, e)| a.partial_cmp(&e)),
        (Value::Null, CompValue::Null) => Some(Ordering::Equal),
        _ => None,
    };
    match (op, ord) {
        (CompareOp::Eq, Some(o)) => o == Ordering::Equal,
        (CompareOp::Ne, Some(o)) => o != Ordering::Equal,
        (CompareOp::Ne, None) => true,
        (CompareOp::Gt, Some(o)) => o == Ordering::Greater,
        (CompareOp::Ge, Some(o)) => o != Ordering::Less,
        (CompareOp::Lt, Some(o)) => o == Ordering::Less,
        (CompareOp::Le, Some(o)) => o != Ordering::Greater,
        _ => false,
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod properties;
