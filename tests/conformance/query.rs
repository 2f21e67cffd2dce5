//! Query encoding.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum QueryEncoding {
    /// RFC 3986: only unreserved characters stay raw; space = %20.
    Pct20,
    /// application/x-www-form-urlencoded (WHATWG serializer): space = '+'.
    Plus,
    /// Like `Plus`, but `"` and `@` are left raw (MS SCIM Validator capture).
    PlusRawQuotes,
}

impl QueryEncoding {
    pub(crate) fn parse(name: &str) -> Result<Self, String> {
        match name {
            "pct20" => Ok(Self::Pct20),
            "plus" => Ok(Self::Plus),
            "plus_rawquotes" => Ok(Self::PlusRawQuotes),
            other => Err(format!(
                "unknown query_encoding `{other}` (known: pct20, plus, plus_rawquotes)"
            )),
        }
    }
}

/// RFC 3986 unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~".
pub(crate) const PCT20_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// WHATWG application/x-www-form-urlencoded byte serializer keeps ALPHA / DIGIT / "*-._".
pub(crate) const FORM_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_');
pub(crate) const FORM_RAWQUOTES_SET: &AsciiSet = &FORM_SET.remove(b'"').remove(b'@');

pub(crate) fn encode_component(text: &str, encoding: QueryEncoding) -> String {
    let set = match encoding {
        QueryEncoding::Pct20 => return utf8_percent_encode(text, PCT20_SET).to_string(),
        QueryEncoding::Plus => FORM_SET,
        QueryEncoding::PlusRawQuotes => FORM_RAWQUOTES_SET,
    };
    text.split(' ')
        .map(|part| utf8_percent_encode(part, set).to_string())
        .collect::<Vec<_>>()
        .join("+")
}

/// Encodes ordered `[name, value]` pairs (names and values alike) into a query string without
/// the leading `?`.
pub(crate) fn encode_query(pairs: &[(String, String)], encoding: QueryEncoding) -> String {
    pairs
        .iter()
        .map(|(name, value)| {
            format!(
                "{}={}",
                encode_component(name, encoding),
                encode_component(value, encoding)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}
