//! Cursor tokens for RFC 9865 pagination. A cursor is the position after the
//! last resource of a page — its sort value, `meta.created` and `id` — plus a
//! fingerprint of the query it belongs to. Keyset paging from a position costs
//! the same at any depth, and a position needs no server-side state, so a
//! cursor does not expire; resources created or deleted between pages neither
//! shift nor repeat the rest.

use super::error::{ScimError, ScimType};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// The sort expression's value (`None`: absent, or no `sortBy`).
    #[serde(rename = "s", skip_serializing_if = "Option::is_none", default)]
    pub sort: Option<String>,
    #[serde(rename = "c")]
    pub created: String,
    #[serde(rename = "i")]
    pub id: String,
    /// `totalResults`, counted once when the first page was served.
    #[serde(rename = "t", default)]
    pub total: i64,
}

#[derive(Serialize, Deserialize)]
struct Token {
    /// Query fingerprint.
    q: String,
    #[serde(flatten)]
    at: Position,
}

/// Identifies a query (resource type, filter, sort) so a cursor is only
/// accepted by the query that issued it.
pub fn fingerprint(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(&h.finalize()[..8])
}

pub fn encode(query: &str, at: &Position) -> String {
    let t = Token {
        q: query.to_string(),
        at: at.clone(),
    };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&t).unwrap_or_default())
}

pub fn decode(query: &str, token: &str) -> Result<Position, ScimError> {
    let bad = |why: &str| {
        ScimError::bad_request(
            ScimType::InvalidCursor,
            format!("the cursor is not valid: {why}"),
        )
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim())
        .map_err(|_| bad("it is not a cursor this server issued"))?;
    let t: Token =
        serde_json::from_slice(&bytes).map_err(|_| bad("it is not a cursor this server issued"))?;
    if t.q != query {
        return Err(bad(
            "it belongs to a different query (resource type, filter or sort); start again with an empty cursor",
        ));
    }
    Ok(t.at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_query_binding() {
        let q = fingerprint(&["User", "userName sw \"a\"", ""]);
        let at = Position {
            sort: Some("ann".into()),
            created: "2025-01-01T00:00:00.000000Z".into(),
            id: "u1".into(),
            total: 7,
        };
        let tok = encode(&q, &at);
        assert_eq!(decode(&q, &tok).ok(), Some(at));
        let other = fingerprint(&["User", "userName sw \"b\"", ""]);
        assert!(
            decode(&other, &tok).is_err_and(|e| e.scim_type == Some(ScimType::InvalidCursor)
                && e.detail.contains("different query"))
        );
        for junk in ["", "!!", "e30", "bm90IGpzb24"] {
            assert!(decode(&q, junk).is_err_and(|e| e.status == 400), "{junk}");
        }
        // Fingerprints separate their parts.
        assert_ne!(fingerprint(&["ab", "c"]), fingerprint(&["a", "bc"]));
    }
}
