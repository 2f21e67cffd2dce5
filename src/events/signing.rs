//! How a webhook request is signed. By default the Standard Webhooks scheme
//! (<https://www.standardwebhooks.com>), so receivers verify with an existing
//! library: `webhook-id` (the event id, the same on every retry),
//! `webhook-timestamp` (unix seconds) and `webhook-signature: v1,<base64
//! HMAC-SHA256(key, id.timestamp.body)>`, the key being the base64 part of a
//! `whsec_…` secret. During a secret rotation every secret signs, the
//! signatures space-separated, so receivers holding either secret verify.
//! The older `Custodian-Signature` scheme stays as an opt-in per endpoint.

use base64::Engine;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD as B64;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Secrets are read with or without base64 padding (generators differ; the
/// reference libraries accept both).
const B64_SECRET: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The spec's key size bounds (bytes, after base64 decoding).
const KEY_MIN: usize = 24;
const KEY_MAX: usize = 64;

/// An endpoint's signature scheme (policy key `signature`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// `webhook-id`, `webhook-timestamp`, `webhook-signature` (Standard Webhooks).
    #[default]
    Standard,
    /// `Custodian-Event-Id` and `Custodian-Signature: t=…,v1=<hex>` (before issue 16).
    Custodian,
}

/// An endpoint's signing keys, current first, and its scheme.
#[derive(Clone)]
pub struct Signer {
    scheme: Scheme,
    keys: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Signer {
    /// Never the keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("scheme", &self.scheme)
            .field("keys", &self.keys.len())
            .finish()
    }
}

/// Why a secret cannot sign (names no secret value).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a Standard Webhooks secret is 'whsec_' followed by base64")]
    NotWhsec,
    #[error("the secret's key is {0} bytes; Standard Webhooks keys are 24 to 64 bytes")]
    KeySize(usize),
    #[error("the secret is empty")]
    Empty,
}

/// The key of a `whsec_<base64>` secret.
pub fn standard_key(secret: &str) -> Result<Vec<u8>, SecretError> {
    let b64 = secret
        .trim()
        .strip_prefix("whsec_")
        .ok_or(SecretError::NotWhsec)?;
    let key = B64_SECRET.decode(b64).map_err(|_| SecretError::NotWhsec)?;
    if !(KEY_MIN..=KEY_MAX).contains(&key.len()) {
        return Err(SecretError::KeySize(key.len()));
    }
    Ok(key)
}

impl Signer {
    /// A signer from the current secret and any previous ones still accepted
    /// by receivers mid-rotation.
    pub fn new(scheme: Scheme, current: &str, previous: &[String]) -> Result<Signer, SecretError> {
        let keys = std::iter::once(current)
            .chain(previous.iter().map(String::as_str))
            .map(|s| match scheme {
                Scheme::Standard => standard_key(s),
                Scheme::Custodian if s.is_empty() => Err(SecretError::Empty),
                Scheme::Custodian => Ok(s.as_bytes().to_vec()),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Signer { scheme, keys })
    }

    /// The headers for one request: `id` is the event id, `t` unix seconds.
    pub fn headers(&self, id: &str, t: i64, body: &str) -> Vec<(&'static str, String)> {
        match self.scheme {
            Scheme::Standard => {
                let signed = format!("{id}.{t}.{body}");
                let sigs: Vec<String> = self
                    .keys
                    .iter()
                    .map(|k| format!("v1,{}", B64.encode(hmac(k, &signed))))
                    .collect();
                vec![
                    ("webhook-id", id.to_string()),
                    ("webhook-timestamp", t.to_string()),
                    ("webhook-signature", sigs.join(" ")),
                ]
            }
            Scheme::Custodian => {
                let signed = format!("{t}.{body}");
                let mut sig = format!("t={t}");
                for k in &self.keys {
                    sig.push_str(",v1=");
                    sig.push_str(&hex::encode(hmac(k, &signed)));
                }
                vec![
                    ("Custodian-Event-Id", id.to_string()),
                    ("Custodian-Signature", sig),
                ]
            }
        }
    }
}

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    // HMAC takes a key of any length; the error arm cannot happen.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

/// `t=<unix>,v1=<hex HMAC-SHA256(secret, t + "." + body)>` (the `custodian` scheme, one secret).
pub fn custodian_signature(secret: &str, t: i64, body: &str) -> String {
    format!(
        "t={t},v1={}",
        hex::encode(hmac(secret.as_bytes(), &format!("{t}.{body}")))
    )
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference
    /// libraries (the same secret, id, timestamp and body in each).
    #[test]
    fn standard_signature_matches_the_reference_vector() {
        let s = Signer::new(
            Scheme::Standard,
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            &[],
        )
        .expect("secret");
        let h = s.headers(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            r#"{"test": 2432232314}"#,
        );
        assert_eq!(
            h[2],
            (
                "webhook-signature",
                "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".to_string()
            )
        );
        assert_eq!(h[0].1, "msg_p5jXN8AQM9LWM0D4loKWxJek");
        assert_eq!(h[1].1, "1614265330");
    }

    #[test]
    fn rotation_signs_with_every_secret_current_first() {
        let new = format!("whsec_{}", B64.encode([1u8; 32]));
        let old = format!("whsec_{}", B64.encode([2u8; 32]));
        let both = Signer::new(Scheme::Standard, &new, std::slice::from_ref(&old)).expect("keys");
        let one = |s: &str| Signer::new(Scheme::Standard, s, &[]).expect("key");
        let sig = |s: &Signer| s.headers("evt_1", 1, "{}")[2].1.clone();
        assert_eq!(
            sig(&both),
            format!("{} {}", sig(&one(&new)), sig(&one(&old)))
        );
        let c = Signer::new(Scheme::Custodian, "a", &["b".into()]).expect("keys");
        let h = c.headers("evt_1", 7, "{}");
        let a = custodian_signature("a", 7, "{}");
        let b = custodian_signature("b", 7, "{}");
        assert_eq!(h[1].1, format!("{a},v1={}", &b["t=7,v1=".len()..]));
        assert_eq!(h[0], ("Custodian-Event-Id", "evt_1".to_string()));
    }

    #[test]
    fn secrets_are_checked() {
        let e = |s: &str| Signer::new(Scheme::Standard, s, &[]).err();
        assert_eq!(e("plain-secret"), Some(SecretError::NotWhsec));
        assert_eq!(e("whsec_%%%"), Some(SecretError::NotWhsec));
        assert_eq!(
            e(&format!("whsec_{}", B64.encode([0u8; 8]))),
            Some(SecretError::KeySize(8))
        );
        assert_eq!(
            Signer::new(Scheme::Custodian, "", &[]).err(),
            Some(SecretError::Empty)
        );
        let ok = format!("whsec_{}", B64.encode([0u8; 25]));
        assert!(e(&ok).is_none());
        assert!(e(ok.trim_end_matches('=')).is_none(), "unpadded");
        let dbg = format!(
            "{:?}",
            Signer::new(Scheme::Custodian, "hunter2", &[]).expect("k")
        );
        assert!(!dbg.contains("hunter2"), "{dbg}");
    }
}
