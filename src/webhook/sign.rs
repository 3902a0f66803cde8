//! Webhook signatures: `X-Webhook-Signature: sha256=<hex>` (HMAC-SHA256 of the raw body,
//! one entry per secret during a rotation) and Standard Webhooks (`webhook-signature:
//! v1,<base64>` over `id.timestamp.body`, with the decoded `whsec_` key).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    // HMAC accepts keys of any length.
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

/// `sha256=<lowercase hex>` per secret, comma-separated.
pub fn github_style(secrets: &[String], body: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| format!("sha256={}", hex::encode(mac(s.as_bytes(), &[body]))))
        .collect::<Vec<_>>()
        .join(",")
}

/// The key bytes of a Standard Webhooks secret (`whsec_` + base64).
fn standard_key(secret: &str) -> Vec<u8> {
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    STANDARD
        .decode(b64)
        .unwrap_or_else(|_| secret.as_bytes().to_vec())
}

/// `v1,<base64>` per secret, space-separated.
pub fn standard(secrets: &[String], id: &str, timestamp: i64, body: &[u8]) -> String {
    let ts = timestamp.to_string();
    secrets
        .iter()
        .map(|s| {
            let sig = mac(
                &standard_key(s),
                &[id.as_bytes(), b".", ts.as_bytes(), b".", body],
            );
            format!("v1,{}", STANDARD.encode(sig))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn githubs_published_test_vector() {
        let s = github_style(&["It's a Secret to Everybody".into()], b"Hello, World!");
        assert_eq!(
            s,
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn standard_webhooks_published_test_vector() {
        let s = standard(
            &["whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD".into()],
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            1649367553,
            br#"{"email":"test@example.com","username":"test_user"}"#,
        );
        assert_eq!(s, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
    }

    #[test]
    fn a_rotation_signs_with_every_secret() {
        let s = github_style(&["a".into(), "b".into()], b"x");
        assert_eq!(s.split(',').count(), 2);
        assert!(
            s.split(',')
                .all(|p| p.starts_with("sha256=") && p.len() == 7 + 64)
        );
    }
}
