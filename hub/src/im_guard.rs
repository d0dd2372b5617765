//! The start-up check that nothing the hub carries can be stored by NATS: no JetStream stream may
//! capture a subject that carries interaction detail (requests and their answers, snapshots, the
//! team view), IM text included. Holds the check and subject matching; no serving.

use agentdesk_client::remote::wire;
use serde::Deserialize;
use std::time::Duration;

/// JetStream's API for listing streams with their configuration (a plain NATS request).
const STREAM_LIST: &str = "$JS.API.STREAM.LIST";
/// How long the server may take to answer.
const WAIT: Duration = Duration::from_secs(3);

/// Why the hub refuses to run.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// A stream stores subjects that carry interaction detail.
    #[error(
        "JetStream stream `{stream}` captures `{captured}`, which carries interaction detail \
         (`{protected}`; internal IM must never be stored): remove the stream or narrow its \
         subjects, then start the hub again"
    )]
    Captured {
        /// The stream.
        stream: String,
        /// Its subject that overlaps.
        captured: String,
        /// The hub's subject it overlaps.
        protected: String,
    },
    /// The streams could not be listed, so nothing can be promised.
    #[error(
        "cannot check that no JetStream stream stores interaction detail: {0} (the hub's NATS \
         user needs `{STREAM_LIST}` and `_INBOX.>`; regenerate the authorization with \
         `agentdesk hub nats-config`)"
    )]
    Unchecked(String),
}

#[derive(Debug, Deserialize)]
struct ListPage {
    #[serde(default)]
    error: Option<ApiError>,
    #[serde(default)]
    total: usize,
    #[serde(default)]
    streams: Vec<StreamInfo>,
}

#[derive(Debug, Deserialize)]
struct ApiError {
    #[serde(default)]
    err_code: u32,
    #[serde(default)]
    description: String,
}

#[derive(Debug, Deserialize)]
struct StreamInfo {
    config: StreamConfig,
}

#[derive(Debug, Deserialize)]
struct StreamConfig {
    name: String,
    #[serde(default)]
    subjects: Vec<String>,
}

/// JetStream's code for "JetStream not enabled for account": nothing can be stored.
const NOT_ENABLED: u32 = 10039;

/// The subjects that carry interaction detail for a team of `agents`.
pub fn protected_subjects<'a>(agents: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut subjects = vec![
        wire::ALL_REQUESTS.to_string(),
        wire::snapshots("*"),
        wire::TEAM.to_string(),
        format!("{}.>", wire::TEAM_INBOX),
        // The hub's own requests (this check) and any client with the default prefix.
        "_INBOX.>".to_string(),
    ];
    subjects.extend(
        agents
            .into_iter()
            .map(|a| format!("{}.>", wire::inbox_prefix(a))),
    );
    subjects
}

/// Whether two subject patterns (with `*` and `>` wildcards) can match the same subject.
pub fn overlap(a: &str, b: &str) -> bool {
    let (mut a, mut b) = (a.split('.'), b.split('.'));
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(">"), Some(_)) | (Some(_), Some(">")) => return true,
            (Some(x), Some(y)) if x == y || x == "*" || y == "*" => {}
            _ => return false,
        }
    }
}

/// Lists every stream and refuses if one captures a protected subject. A server without
/// JetStream stores nothing and passes.
pub async fn refuse_capturing_streams(
    client: &async_nats::Client,
    protected: &[String],
) -> Result<(), GuardError> {
    let mut offset = 0;
    loop {
        let body = format!("{{\"offset\":{offset}}}");
        let asked = tokio::time::timeout(WAIT, client.request(STREAM_LIST, body.into())).await;
        let message = match asked {
            Err(_) => return Err(GuardError::Unchecked(format!("no answer within {WAIT:?}"))),
            Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                tracing::info!("JetStream is not enabled on this NATS server: nothing is stored");
                return Ok(());
            }
            Ok(Err(e)) => return Err(GuardError::Unchecked(e.to_string())),
            Ok(Ok(message)) => message,
        };
        let page: ListPage = serde_json::from_slice(&message.payload)
            .map_err(|e| GuardError::Unchecked(format!("unreadable answer: {e}")))?;
        if let Some(error) = page.error {
            if error.err_code == NOT_ENABLED {
                return Ok(());
            }
            return Err(GuardError::Unchecked(error.description));
        }
        for stream in &page.streams {
            for captured in &stream.config.subjects {
                if let Some(protected) = protected.iter().find(|p| overlap(captured, p)) {
                    return Err(GuardError::Captured {
                        stream: stream.config.name.clone(),
                        captured: captured.to_string(),
                        protected: protected.clone(),
                    });
                }
            }
        }
        offset += page.streams.len();
        if page.streams.is_empty() || offset >= page.total {
            tracing::info!(
                streams = offset,
                "no JetStream stream captures interaction detail"
            );
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_overlap_as_nats_matches_them() {
        assert!(overlap(">", "ad.v1.agent.*.req"));
        assert!(overlap("ad.>", "ad.v1.agent.*.req"));
        assert!(overlap("ad.v1.agent.ann.req", "ad.v1.agent.*.req"));
        assert!(overlap("ad.*.agent.>", "ad.v1.agent.*.snap"));
        assert!(overlap("_INBOX_ann.>", "_INBOX_ann.>"));
        assert!(!overlap("orders.>", "ad.v1.agent.*.req"));
        assert!(!overlap("ad.v1.agent.ann", "ad.v1.agent.*.req"));
        assert!(!overlap("ad.v1.agent.*.req.x", "ad.v1.agent.*.req"));
        assert!(!overlap("ad", "ad.>"));
        assert!(!overlap("_INBOX_bob.>", "_INBOX_ann.>"));
    }

    #[test]
    fn every_agent_inbox_is_protected() {
        let subjects = protected_subjects(["ann", "bob"]);
        assert!(subjects.iter().any(|s| s == "_INBOX_bob.>"));
        assert!(subjects.iter().any(|s| overlap("ad.v1.agent.ann.snap", s)));
    }
}
