//! Why a call of the client interface failed: a stable code, and a message for people.

use agentdesk_host::service::ClientError as ServiceError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Why a call failed. Plain data, so it crosses a network unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "error", rename_all = "kebab-case")]
pub enum ClientError {
    /// The core refused the command; `code` names the rule (`CoreError::code`).
    #[error("{message}")]
    Refused {
        /// The rule's stable code.
        code: String,
        /// For people.
        message: String,
    },
    /// The core could not do it (`journal`, `history`, `file`, `no-core`, ...).
    #[error("{message}")]
    Failed {
        /// A stable code.
        code: String,
        /// For people.
        message: String,
    },
    /// The core is gone (stopped, or the link to it is).
    #[error("the core service has stopped")]
    Stopped,
    /// No answer came in time (only when a caller waits).
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// An answer of the wrong kind came: a fault of the core or of the client, never skipped.
    #[error("unexpected answer to {asked}")]
    Unexpected {
        /// What was asked.
        asked: String,
    },
}

impl ClientError {
    /// The stable code.
    pub fn code(&self) -> &str {
        match self {
            ClientError::Refused { code, .. } | ClientError::Failed { code, .. } => code,
            ClientError::Stopped => "stopped",
            ClientError::Timeout(_) => "timeout",
            ClientError::Unexpected { .. } => "unexpected",
        }
    }

    /// Whether the core refused (a rule), as opposed to failing.
    pub fn is_refusal(&self) -> bool {
        matches!(self, ClientError::Refused { .. })
    }

    pub(crate) fn failed(code: &str, message: impl Into<String>) -> Self {
        ClientError::Failed {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl From<ServiceError> for ClientError {
    fn from(e: ServiceError) -> Self {
        let (code, message) = (e.code().to_string(), e.to_string());
        match e {
            ServiceError::Refused(_) | ServiceError::NotAttached { .. } => {
                ClientError::Refused { code, message }
            }
            ServiceError::Stopped => ClientError::Stopped,
            ServiceError::Journal(_) | ServiceError::History(_) => {
                ClientError::Failed { code, message }
            }
        }
    }
}
