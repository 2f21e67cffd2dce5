//! Reads the presented token from an `Authorization` header value: `Bearer <t>`,
//! `Basic base64(user:<t>)` (Okta's Basic mode: the user name is ignored), or a
//! bare token (Okta's custom header template sends what the admin typed).

use base64::Engine;

pub fn presented_token(header: &str) -> Option<String> {
    let h = header.trim();
    if h.is_empty() {
        return None;
    }
    if let Some((scheme, rest)) = h.split_once(' ') {
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            return (!rest.is_empty()).then(|| rest.to_string());
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .ok()?;
            let text = String::from_utf8(decoded).ok()?;
            let (user, pass) = text.split_once(':')?;
            let t = if pass.is_empty() { user } else { pass };
            return (!t.is_empty()).then(|| t.to_string());
        }
        return None;
    }
    // A scheme with nothing after it is not a bare token.
    if h.eq_ignore_ascii_case("bearer") || h.eq_ignore_ascii_case("basic") {
        return None;
    }
    Some(h.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        assert_eq!(presented_token("Bearer abc").as_deref(), Some("abc"));
        assert_eq!(presented_token("bearer   abc ").as_deref(), Some("abc"));
        let basic = base64::engine::general_purpose::STANDARD.encode("okta:tok");
        assert_eq!(
            presented_token(&format!("Basic {basic}")).as_deref(),
            Some("tok")
        );
        assert_eq!(presented_token("cust_bare").as_deref(), Some("cust_bare"));
        assert_eq!(presented_token("Digest x"), None);
        assert_eq!(presented_token("Bearer "), None);
        assert_eq!(presented_token(""), None);
    }
}
