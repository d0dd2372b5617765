//! One integration-test binary for the workspace (fast to link); modules by area.

mod chat_crash;
mod cli;
mod client_suite;
mod compat;
mod core_service;
mod desk_slow;
mod email;
mod facebook;
mod facebook_crash;
mod fake_host;
mod loading;
mod mailserver;
mod nats;
mod runtime;
mod seams;
mod shell;
mod social_fakes;
mod support;
mod team;
mod team_auth;
mod twitter;
mod vendor;
mod voice;
mod voice_rfc;
mod webchat;
mod workitem;
