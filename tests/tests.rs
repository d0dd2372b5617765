//! One integration-test binary for the workspace (fast to link); modules by area.

mod chat_crash;
mod cli;
mod compat;
mod core_service;
mod email;
mod facebook;
mod facebook_crash;
mod fake_host;
mod isolation;
mod loading;
mod mailserver;
mod runtime;
mod shell;
mod social_fakes;
mod support;
mod twitter;
mod vendor;
mod voice;
mod voice_rfc;
mod webchat;
mod workitem;
