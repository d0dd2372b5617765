//! The Graph API calls the channel makes (Send API messages and sender actions) and what its
//! error answers mean, in words an agent or an admin can act on. No state; no retry policy.

use agentdesk_social::client::{ClientError, HttpClient, Response};
use agentdesk_social::secrets::Secret;
use serde_json::{Value, json};

/// A Graph API error body: `{"error":{"message","type","code","error_subcode","fbtrace_id"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformError {
    /// HTTP status.
    pub status: u16,
    /// Meta's error code.
    pub code: i64,
    /// Meta's subcode, when given.
    pub subcode: Option<i64>,
    /// Meta's message.
    pub message: String,
}

/// What to do about a refused call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 4, 32, 613, or HTTP 429: too many calls; nothing was sent, try again later.
    RateLimited,
    /// 10 (or 551-style subcodes of it): outside the messaging window.
    OutsideWindow,
    /// 190: the Page token is expired or revoked; the channel needs re-authorisation.
    TokenInvalid,
    /// Anything else: the message was refused for good.
    Other,
}

impl PlatformError {
    fn from_response(response: &Response) -> Self {
        let body = response.json();
        let error = body.get("error").cloned().unwrap_or(Value::Null);
        PlatformError {
            status: response.status,
            code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
            subcode: error.get("error_subcode").and_then(Value::as_i64),
            message: error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("no error message")
                .to_string(),
        }
    }

    /// The kind of refusal.
    pub fn refusal(&self) -> Refusal {
        match self.code {
            4 | 32 | 613 => Refusal::RateLimited,
            10 => Refusal::OutsideWindow,
            190 => Refusal::TokenInvalid,
            _ if self.status == 429 => Refusal::RateLimited,
            _ => Refusal::Other,
        }
    }

    /// A sentence for the agent (or the admin) saying what happened and what to do.
    pub fn plain(&self) -> String {
        match self.refusal() {
            Refusal::RateLimited => {
                "Facebook is limiting how fast this Page may send; the message was not sent".into()
            }
            Refusal::OutsideWindow => "Not sent: Messenger's reply window for this customer has \
                 closed (the customer last wrote more than 24 hours ago). The customer must write \
                 again first."
                .into(),
            Refusal::TokenInvalid => "Not sent: Facebook refused the Page's access token (expired \
                 or revoked). An administrator must renew the token; until then no reply can be \
                 sent on Messenger."
                .into(),
            Refusal::Other => format!(
                "Not sent: Facebook refused the message: {} (code {})",
                self.message, self.code
            ),
        }
    }
}

/// The outcome of a call Meta answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Accepted; the message id when one came back.
    Accepted(Option<String>),
    /// Refused with an error body.
    Refused(PlatformError),
}

/// The Graph API of one Page.
#[derive(Debug, Clone)]
pub struct Graph {
    /// Base URL with version, e.g. `https://graph.facebook.com/v21.0`.
    pub base: String,
    /// The Page id.
    pub page_id: String,
    /// The Page access token.
    pub token: Secret,
    /// The client.
    pub client: HttpClient,
}

/// The body of a Send API text message.
pub fn message_body(
    psid: &str,
    text: &str,
    messaging_type: &str,
    tag: Option<&str>,
    metadata: &str,
) -> Value {
    let mut body = json!({
        "recipient": {"id": psid},
        "messaging_type": messaging_type,
        "message": {"text": text, "metadata": metadata},
    });
    if let Some(tag) = tag {
        body["tag"] = json!(tag);
    }
    body
}

impl Graph {
    async fn post(&self, body: &Value) -> Result<Answer, ClientError> {
        let url = format!(
            "{}/{}/messages",
            self.base.trim_end_matches('/'),
            self.page_id
        );
        let headers = [
            ("Content-Type", "application/json".to_string()),
            ("Authorization", format!("Bearer {}", self.token.expose())),
        ];
        let response = self
            .client
            .request("POST", &url, &headers, body.to_string().as_bytes())
            .await?;
        if response.status == 200 {
            let id = response
                .json()
                .get("message_id")
                .and_then(Value::as_str)
                .map(String::from);
            Ok(Answer::Accepted(id))
        } else {
            Ok(Answer::Refused(PlatformError::from_response(&response)))
        }
    }

    /// Sends a text message (the body from [`message_body`]).
    pub async fn send(&self, body: &Value) -> Result<Answer, ClientError> {
        self.post(body).await
    }

    /// The customer's name from their profile (`first_name last_name`), `None` when Meta gives
    /// none (no permission, unknown user).
    pub async fn profile(&self, psid: &str) -> Result<Option<String>, ClientError> {
        let url = format!(
            "{}/{psid}?fields=first_name,last_name",
            self.base.trim_end_matches('/')
        );
        let headers = [("Authorization", format!("Bearer {}", self.token.expose()))];
        let response = self.client.request("GET", &url, &headers, b"").await?;
        if response.status != 200 {
            return Ok(None);
        }
        let profile = response.json();
        let name = [&profile["first_name"], &profile["last_name"]]
            .iter()
            .filter_map(|v| v.as_str())
            .filter(|v| !v.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        Ok((!name.is_empty()).then_some(name))
    }

    /// `typing_on`, `typing_off` or `mark_seen`.
    pub async fn sender_action(&self, psid: &str, action: &str) -> Result<Answer, ClientError> {
        self.post(&json!({"recipient": {"id": psid}, "sender_action": action}))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(status: u16, body: &str) -> PlatformError {
        PlatformError::from_response(&Response {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        })
    }

    #[test]
    fn meta_error_codes_become_plain_words_and_a_kind_of_refusal() {
        let window = error(
            400,
            r#"{"error":{"message":"(#10) This message is sent outside of allowed window.","type":"OAuthException","code":10,"error_subcode":2018278,"fbtrace_id":"A"}}"#,
        );
        assert_eq!(window.refusal(), Refusal::OutsideWindow);
        assert!(window.plain().contains("reply window"));
        let token = error(
            401,
            r#"{"error":{"message":"Error validating access token: Session has expired","type":"OAuthException","code":190,"error_subcode":463}}"#,
        );
        assert_eq!(token.refusal(), Refusal::TokenInvalid);
        assert!(token.plain().contains("administrator must renew"));
        let rate = error(
            400,
            r#"{"error":{"message":"(#613) Calls to this api have exceeded the rate limit.","type":"OAuthException","code":613}}"#,
        );
        assert_eq!(rate.refusal(), Refusal::RateLimited);
        assert_eq!(error(429, "not json").refusal(), Refusal::RateLimited);
        let other = error(
            400,
            r#"{"error":{"message":"(#100) No matching user found","code":100}}"#,
        );
        assert_eq!(
            other.plain(),
            "Not sent: Facebook refused the message: (#100) No matching user found (code 100)"
        );
    }

    #[test]
    fn a_tagged_reply_carries_the_tag_and_an_untagged_one_does_not() {
        let tagged = message_body(
            "U1",
            "hi",
            "MESSAGE_TAG",
            Some("HUMAN_AGENT"),
            "agentdesk:1",
        );
        assert_eq!(tagged["tag"], "HUMAN_AGENT");
        assert_eq!(tagged["message"]["metadata"], "agentdesk:1");
        let plain = message_body("U1", "hi", "RESPONSE", None, "agentdesk:2");
        assert!(plain.get("tag").is_none());
        assert_eq!(plain["messaging_type"], "RESPONSE");
    }
}
