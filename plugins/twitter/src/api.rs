//! The X API v2 calls the channel makes (a direct message, a public reply), signed with OAuth
//! 1.0a user context, and what their answers mean. No state; no retry policy.

use agentdesk_social::client::{ClientError, HttpClient, Url};
use agentdesk_social::oauth1::{Credentials, authorization};
use serde_json::{Value, json};

/// X's answer to a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Created; the new DM event or post id.
    Accepted(Option<String>),
    /// 429: nothing was done; try again after `reset` (epoch seconds) when given.
    RateLimited {
        /// `x-rate-limit-reset`.
        reset: Option<u64>,
    },
    /// Refused for good.
    Refused {
        /// HTTP status.
        status: u16,
        /// X's `detail` or `title`.
        detail: String,
    },
}

/// What the agent reads about a refusal.
pub fn plain(status: u16, detail: &str) -> String {
    match status {
        401 => "Not sent: X refused the account's credentials (revoked or expired). An \
                administrator must renew the access token; until then no reply can be sent on X."
            .into(),
        403 => format!("Not sent: X does not allow this reply: {detail}"),
        _ => format!("Not sent: X refused the reply: {detail} (HTTP {status})"),
    }
}

/// The X API of one account.
#[derive(Debug, Clone)]
pub struct XApi {
    /// e.g. `https://api.x.com`.
    pub base: String,
    /// OAuth 1.0a user context.
    pub credentials: Credentials,
    /// The client.
    pub client: HttpClient,
}

fn nonce() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // A nonce needs to be unique, not secret: the clock will do when the OS has no entropy.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        return format!("{now:032x}");
    }
    hex::encode(bytes)
}

impl XApi {
    async fn post(&self, path: &str, body: &Value) -> Result<Answer, ClientError> {
        let url = format!("{}{path}", self.base.trim_end_matches('/'));
        let base = Url::parse(&url)?.base();
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let headers = [
            ("Content-Type", "application/json".to_string()),
            (
                "Authorization",
                authorization(&self.credentials, "POST", &base, &[], &nonce(), timestamp),
            ),
        ];
        let response = self
            .client
            .request("POST", &url, &headers, body.to_string().as_bytes())
            .await?;
        let json = response.json();
        Ok(match response.status {
            200 | 201 => {
                let data = &json["data"];
                let id = data["dm_event_id"]
                    .as_str()
                    .or_else(|| data["id"].as_str())
                    .map(String::from);
                Answer::Accepted(id)
            }
            429 => Answer::RateLimited {
                reset: response
                    .header("x-rate-limit-reset")
                    .and_then(|v| v.trim().parse().ok()),
            },
            status => Answer::Refused {
                status,
                detail: json["detail"]
                    .as_str()
                    .or_else(|| json["title"].as_str())
                    .or_else(|| json["errors"][0]["message"].as_str())
                    .unwrap_or("no detail")
                    .to_string(),
            },
        })
    }

    /// A direct message to a user.
    pub async fn send_dm(&self, participant: &str, text: &str) -> Result<Answer, ClientError> {
        self.post(
            &format!("/2/dm_conversations/with/{participant}/messages"),
            &json!({ "text": text }),
        )
        .await
    }

    /// A public reply to a post.
    pub async fn reply(&self, tweet_id: &str, text: &str) -> Result<Answer, ClientError> {
        self.post(
            "/2/tweets",
            &json!({ "text": text, "reply": { "in_reply_to_tweet_id": tweet_id } }),
        )
        .await
    }
}
