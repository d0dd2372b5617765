//! The voice channel's SIP stack: a SIP user agent (RFC 3261 over UDP) with G.711 RTP audio,
//! shared by the voice plugin (the hub's or a single desk's channel) and the desktop's own
//! endpoint (`agentdesk-phone`), so both speak SIP through the same code.
//!
//! Modules: `settings` (the admin's section), `sip` (messages), `sdp` (offer/answer), `audio`
//! (G.711, RTP, jitter buffer, WAV), `digest` (authentication, both sides), `media` (RTP legs
//! and the mixer), `ua` (transactions, dialogs, calls, the registrar and the bridge), `tasks`
//! (the socket and timer loops that drive a user agent).

pub mod audio;
#[cfg(feature = "device")]
pub mod device;
pub mod digest;
#[cfg(test)]
mod fuzz;
pub mod media;
pub mod sdp;
pub mod settings;
pub mod sip;
pub mod tasks;
pub mod ua;
