//! Webhook signatures: HMAC-SHA256 of the raw request body, as Meta (hex) and X (base64) send
//! it, compared in constant time. Nothing else: what a platform signs is its plugin's business.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a signature was refused. The texts never contain the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The header is absent.
    #[error("no signature header")]
    Missing,
    /// The header is not `sha256=<digest>` in the expected encoding.
    #[error("the signature header is malformed")]
    Malformed,
    /// The digest does not match the body.
    #[error("the signature does not match the body")]
    Mismatch,
}

/// HMAC-SHA256 of `message` with `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    // An HMAC key may have any length: `new_from_slice` cannot fail for HMAC.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    };
    mac.update(message);
    mac.finalize().into_bytes().into()
}

fn verify(key: &[u8], body: &[u8], claimed: &[u8]) -> Result<(), SignatureError> {
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    };
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(claimed)
        .map_err(|_| SignatureError::Mismatch)
}

/// Checks Meta's `X-Hub-Signature-256: sha256=<hex>` over the raw body with the app secret.
pub fn verify_hex_sha256(
    secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let digest = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    let claimed = hex::decode(digest).map_err(|_| SignatureError::Malformed)?;
    verify(secret, body, &claimed)
}

/// Checks X's `x-twitter-webhooks-signature: sha256=<base64>` over the raw body.
pub fn verify_base64_sha256(
    secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let digest = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    let claimed = base64::engine::general_purpose::STANDARD
        .decode(digest)
        .map_err(|_| SignatureError::Malformed)?;
    verify(secret, body, &claimed)
}

/// `sha256=` + base64 HMAC-SHA256: X's CRC response token and its webhook signature.
pub fn base64_sha256(secret: &[u8], message: &[u8]) -> String {
    format!(
        "sha256={}",
        base64::engine::general_purpose::STANDARD.encode(hmac_sha256(secret, message))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_matches_rfc_4231_test_case_2() {
        let digest = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(digest),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_meta_signature_is_checked_on_the_raw_bytes() {
        let body = br#"{"object":"page","text":"caf\u00e9"}"#;
        let header = format!("sha256={}", hex::encode(hmac_sha256(b"s3cret", body)));
        assert_eq!(verify_hex_sha256(b"s3cret", body, Some(&header)), Ok(()));
        // The same JSON re-serialised with the character itself is another body.
        let other = r#"{"object":"page","text":"café"}"#.as_bytes();
        assert_eq!(
            verify_hex_sha256(b"s3cret", other, Some(&header)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_hex_sha256(b"other", body, Some(&header)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_hex_sha256(b"s3cret", body, None),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_hex_sha256(b"s3cret", body, Some("sha1=abcd")),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_hex_sha256(b"s3cret", body, Some("sha256=zz")),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn an_x_signature_is_base64_and_the_crc_token_uses_the_same_digest() {
        let body = br#"{"for_user_id":"1"}"#;
        let header = base64_sha256(b"consumer", body);
        assert_eq!(
            verify_base64_sha256(b"consumer", body, Some(&header)),
            Ok(())
        );
        assert_eq!(
            verify_base64_sha256(b"consumer", b"{}", Some(&header)),
            Err(SignatureError::Mismatch)
        );
        // RFC 4231 case 2 in base64.
        assert_eq!(
            base64_sha256(b"Jefe", b"what do ya want for nothing?"),
            "sha256=W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM="
        );
    }
}
