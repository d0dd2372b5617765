//! What the channels with a customer web page share (web chat, co-browse): the HTTP head and
//! origin checks in front of their WebSocket (`http`) and the abuse limits (`limits`).
//! Linked by each plugin (not copied); no channel's rules here.

pub mod http;
pub mod limits;
