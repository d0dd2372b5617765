//! OAuth 1.0a request signing (HMAC-SHA1, RFC 5849), as X requires for user-context calls: the
//! signature base string from the method, the base URL and every query, form and `oauth_*`
//! parameter, then the `Authorization: OAuth ...` header. JSON bodies are not signed.

use crate::secrets::Secret;
use base64::Engine;
use hmac::{Hmac, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha1::Sha1;

/// RFC 3986 unreserved characters stay; everything else is encoded (`%20`, never `+`).
const ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes as OAuth 1.0a requires.
pub fn encode(value: &str) -> String {
    utf8_percent_encode(value, ENCODE).to_string()
}

/// The four credentials of a user-context call.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The app's API key.
    pub consumer_key: Secret,
    /// The app's API key secret.
    pub consumer_secret: Secret,
    /// The account's access token.
    pub token: Secret,
    /// The account's access token secret.
    pub token_secret: Secret,
}

/// The signature base string: `METHOD&enc(base_url)&enc(sorted, encoded parameters)`.
pub fn base_string(method: &str, base_url: &str, params: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> =
        params.iter().map(|(k, v)| (encode(k), encode(v))).collect();
    encoded.sort();
    let joined = encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        encode(base_url),
        encode(&joined)
    )
}

/// base64 HMAC-SHA1 of the base string with `consumer_secret&token_secret`.
pub fn signature(base: &str, consumer_secret: &str, token_secret: &str) -> String {
    let key = format!("{}&{}", encode(consumer_secret), encode(token_secret));
    let mut mac = match Hmac::<Sha1>::new_from_slice(key.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    };
    mac.update(base.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The `Authorization` header value for a request. `params` are the query and form parameters
/// (decoded); `base_url` has no query.
pub fn authorization(
    credentials: &Credentials,
    method: &str,
    base_url: &str,
    params: &[(String, String)],
    nonce: &str,
    timestamp: u64,
) -> String {
    let oauth = [
        (
            "oauth_consumer_key",
            credentials.consumer_key.expose().to_string(),
        ),
        ("oauth_nonce", nonce.to_string()),
        ("oauth_signature_method", "HMAC-SHA1".to_string()),
        ("oauth_timestamp", timestamp.to_string()),
        ("oauth_token", credentials.token.expose().to_string()),
        ("oauth_version", "1.0".to_string()),
    ];
    let mut all: Vec<(String, String)> = params.to_vec();
    all.extend(oauth.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let signed = signature(
        &base_string(method, base_url, &all),
        credentials.consumer_secret.expose(),
        credentials.token_secret.expose(),
    );
    let mut fields: Vec<String> = oauth
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", encode(v)))
        .collect();
    fields.push(format!("oauth_signature=\"{}\"", encode(&signed)));
    fields.sort();
    format!("OAuth {}", fields.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// X's "Creating a signature" walk-through (docs.x.com, OAuth 1.0a).
    fn example() -> (Credentials, Vec<(String, String)>) {
        let credentials = Credentials {
            consumer_key: Secret::new("xvz1evFS4wEEPTGEFPHBog"),
            consumer_secret: Secret::new("kAcSOqF21Fu85e7zjz7ZN2U4ZRhfV3WpwPAoE3Z7kBw"),
            token: Secret::new("370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb"),
            token_secret: Secret::new("LswwdoUaIvS8ltyTt5jkRh4J50vUPVVHtR2YPi5kE"),
        };
        let params = vec![
            (
                "status".to_string(),
                "Hello Ladies + Gentlemen, a signed OAuth request!".to_string(),
            ),
            ("include_entities".to_string(), "true".to_string()),
        ];
        (credentials, params)
    }

    #[test]
    fn the_signature_matches_xs_published_walk_through() {
        let (credentials, mut params) = example();
        params.extend(
            [
                ("oauth_consumer_key", "xvz1evFS4wEEPTGEFPHBog"),
                ("oauth_nonce", "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg"),
                ("oauth_signature_method", "HMAC-SHA1"),
                ("oauth_timestamp", "1318622958"),
                (
                    "oauth_token",
                    "370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb",
                ),
                ("oauth_version", "1.0"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let base = base_string(
            "POST",
            "https://api.twitter.com/1.1/statuses/update.json",
            &params,
        );
        assert_eq!(
            base,
            "POST&https%3A%2F%2Fapi.twitter.com%2F1.1%2Fstatuses%2Fupdate.json&include_entities%3Dtrue%26oauth_consumer_key%3Dxvz1evFS4wEEPTGEFPHBog%26oauth_nonce%3DkYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D1318622958%26oauth_token%3D370773112-GmHxMAgYyLbNEtIKZeRNFsMKPR9EyMZeS9weJAEb%26oauth_version%3D1.0%26status%3DHello%2520Ladies%2520%252B%2520Gentlemen%252C%2520a%2520signed%2520OAuth%2520request%2521"
        );
        assert_eq!(
            signature(
                &base,
                credentials.consumer_secret.expose(),
                credentials.token_secret.expose()
            ),
            "hCtSmYh+iHYCEqBWrE7C7hYmtUk="
        );
    }

    #[test]
    fn the_header_carries_the_same_signature_encoded() {
        let (credentials, params) = example();
        let header = authorization(
            &credentials,
            "POST",
            "https://api.twitter.com/1.1/statuses/update.json",
            &params,
            "kYjzVBB8Y0ZFabxSWbWovY3uYSQ2pTgmZeNu2VS4cg",
            1318622958,
        );
        assert!(
            header.contains("oauth_signature=\"hCtSmYh%2BiHYCEqBWrE7C7hYmtUk%3D\""),
            "{header}"
        );
        assert!(header.starts_with("OAuth oauth_consumer_key=\"xvz1evFS4wEEPTGEFPHBog\""));
    }
}
