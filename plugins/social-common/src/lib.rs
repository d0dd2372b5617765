//! What the social channels (Facebook Messenger, X) share, linked by both plugins rather than
//! copied: the webhook server, signature checks, the HTTP client, rate limits, secrets, the
//! durable journal and the ordered delivery of events to the host. No platform rules here.

pub mod client;
pub mod deliver;
pub mod inbox;
pub mod journal;
pub mod limits;
pub mod oauth1;
pub mod secrets;
pub mod signature;
pub mod webhook;
