//! HTTP digest authentication for SIP (RFC 3261 §22, RFC 2617 with MD5, `qop=auth`), both
//! sides: the client's answer to a challenge, and the registrar's challenge and check of an
//! answer. MD5 itself (RFC 1321) is RustCrypto's `md-5`.

use std::fmt::Write as _;

/// MD5 of `data` as 32 lowercase hex digits.
pub fn md5_hex(data: &[u8]) -> String {
    use md5::Digest as _;
    md5::Md5::digest(data)
        .iter()
        .fold(String::with_capacity(32), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// A `WWW-Authenticate` / `Proxy-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The realm.
    pub realm: String,
    /// The server's nonce.
    pub nonce: String,
    /// The opaque value to echo, if any.
    pub opaque: Option<String>,
    /// Whether `qop=auth` is offered.
    pub qop_auth: bool,
    /// The algorithm (only MD5 is supported).
    pub algorithm: String,
}

impl Challenge {
    /// Parses `Digest realm="...", nonce="...", ...`; `None` if not a digest challenge.
    pub fn parse(value: &str) -> Option<Challenge> {
        let rest = value.trim().strip_prefix("Digest")?.trim();
        let mut realm = None;
        let mut nonce = None;
        let mut opaque = None;
        let mut qop_auth = false;
        let mut algorithm = "MD5".to_string();
        for (name, value) in auth_params(rest) {
            match name.to_ascii_lowercase().as_str() {
                "realm" => realm = Some(value),
                "nonce" => nonce = Some(value),
                "opaque" => opaque = Some(value),
                "qop" => qop_auth = value.split(',').any(|q| q.trim() == "auth"),
                "algorithm" => algorithm = value,
                _ => {}
            }
        }
        Some(Challenge {
            realm: realm?,
            nonce: nonce?,
            opaque,
            qop_auth,
            algorithm,
        })
    }

    /// The `Authorization` value answering this challenge for a request.
    pub fn answer(
        &self,
        method: &str,
        uri: &str,
        username: &str,
        password: &str,
        nc: u32,
        cnonce: &str,
    ) -> String {
        let ha1 = md5_hex(format!("{username}:{}:{password}", self.realm).as_bytes());
        let ha2 = md5_hex(format!("{method}:{uri}").as_bytes());
        let mut value = format!(
            "Digest username=\"{username}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", algorithm=MD5",
            self.realm, self.nonce
        );
        let response = if self.qop_auth {
            let nc = format!("{nc:08x}");
            let _ = write!(value, ", qop=auth, nc={nc}, cnonce=\"{cnonce}\"");
            md5_hex(format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce).as_bytes())
        } else {
            md5_hex(format!("{ha1}:{}:{ha2}", self.nonce).as_bytes())
        };
        let _ = write!(value, ", response=\"{response}\"");
        if let Some(opaque) = &self.opaque {
            let _ = write!(value, ", opaque=\"{opaque}\"");
        }
        value
    }
}

/// An `Authorization` answer, as a registrar reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The user name claimed.
    pub username: String,
    /// The realm answered.
    pub realm: String,
    /// The nonce answered (ours, if genuine).
    pub nonce: String,
    /// The request URI the answer was computed over.
    pub uri: String,
    /// The 32 hex digits to check.
    pub response: String,
    /// `auth` when the client used `qop`, with its nonce count and client nonce.
    pub qop: Option<String>,
    /// The nonce count (with `qop`).
    pub nc: Option<String>,
    /// The client nonce (with `qop`).
    pub cnonce: Option<String>,
    /// The algorithm (MD5 when absent).
    pub algorithm: Option<String>,
}

impl Answer {
    /// Parses `Digest username="...", ...`; `None` when it is not a complete digest answer.
    pub fn parse(value: &str) -> Option<Answer> {
        let rest = value.trim().strip_prefix("Digest")?.trim();
        let mut fields: std::collections::HashMap<String, String> = auth_params(rest)
            .into_iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v))
            .collect();
        Some(Answer {
            username: fields.remove("username")?,
            realm: fields.remove("realm")?,
            nonce: fields.remove("nonce")?,
            uri: fields.remove("uri")?,
            response: fields.remove("response")?,
            qop: fields.remove("qop"),
            nc: fields.remove("nc"),
            cnonce: fields.remove("cnonce"),
            algorithm: fields.remove("algorithm"),
        })
    }

    /// Whether this answer was computed with `password` for `method` (the registrar's check;
    /// the comparison takes the same time wherever the digits differ).
    pub fn verify(&self, method: &str, password: &str) -> bool {
        if self
            .algorithm
            .as_deref()
            .is_some_and(|a| !a.eq_ignore_ascii_case("MD5"))
        {
            return false;
        }
        let ha1 = md5_hex(format!("{}:{}:{password}", self.username, self.realm).as_bytes());
        let ha2 = md5_hex(format!("{method}:{}", self.uri).as_bytes());
        let expected = match (&self.qop, &self.nc, &self.cnonce) {
            (Some(qop), Some(nc), Some(cnonce)) if qop == "auth" => {
                md5_hex(format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce).as_bytes())
            }
            (None, _, _) => md5_hex(format!("{ha1}:{}:{ha2}", self.nonce).as_bytes()),
            _ => return false,
        };
        constant_time_eq(
            expected.as_bytes(),
            self.response.to_ascii_lowercase().as_bytes(),
        )
    }
}

/// The `WWW-Authenticate` value a registrar challenges with.
pub fn challenge(realm: &str, nonce: &str, stale: bool) -> String {
    let mut value =
        format!("Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm=MD5, qop=\"auth\"");
    if stale {
        value.push_str(", stale=true");
    }
    value
}

/// Equal bytes, compared in a time that does not depend on where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `name=value` pairs separated by commas; values may be quoted (with commas inside).
fn auth_params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let Some((name, after)) = rest.split_once('=') else {
            break;
        };
        let name = name.trim().trim_start_matches(',').trim().to_string();
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (quoted[..end].to_string(), &quoted[end + 1..]),
                None => (quoted.to_string(), ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (after[..end].trim().to_string(), &after[end..]),
                None => (after.trim().to_string(), ""),
            }
        };
        out.push((name, value));
        rest = next.trim_start().trim_start_matches(',');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_the_rfc_1321_test_suite() {
        for (input, hex) in [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ] {
            assert_eq!(md5_hex(input.as_bytes()), hex, "MD5(\"{input}\")");
        }
    }

    #[test]
    fn the_rfc_2617_example_answer_is_reproduced() {
        let c = Challenge::parse(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .expect("challenge");
        assert!(c.qop_auth);
        let answer = c.answer(
            "GET",
            "/dir/index.html",
            "Mufasa",
            "Circle Of Life",
            1,
            "0a4f113b",
        );
        assert!(
            answer.contains("response=\"6629fae49393a05397450978507c4ef1\""),
            "{answer}"
        );
        assert!(Challenge::parse("Basic realm=x").is_none());
    }

    #[test]
    fn the_registrar_accepts_the_right_password_and_only_that() {
        let nonce = "n0nce";
        let challenge = Challenge::parse(&super::challenge("agentdesk", nonce, false))
            .expect("our challenge parses");
        assert!(challenge.qop_auth);
        let value = challenge.answer("REGISTER", "sip:127.0.0.1", "2001", "s3cret", 1, "c1");
        let answer = Answer::parse(&value).expect("answer parses");
        assert_eq!(answer.username, "2001");
        assert_eq!(answer.nonce, nonce);
        assert!(answer.verify("REGISTER", "s3cret"));
        assert!(!answer.verify("REGISTER", "wrong"));
        assert!(!answer.verify("INVITE", "s3cret"), "the method is covered");
        let forged = Answer {
            response: "0".repeat(32),
            ..answer.clone()
        };
        assert!(!forged.verify("REGISTER", "s3cret"));
        assert!(Answer::parse("Digest username=\"2001\"").is_none());
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
