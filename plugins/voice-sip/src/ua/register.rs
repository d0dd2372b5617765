//! Registration at a registrar (RFC 3261 §10) with digest authentication: the REGISTER we send,
//! its refresh, and what its answers mean for the channel's status. Nothing about calls.

use super::Ua;
use super::dialog::resolve;
use super::transaction::Purpose;
use crate::digest::Challenge;
use crate::settings::Settings;
use crate::sip::{self, Message, SipUri};
use plugin_api::{ChannelStatus, Event};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Our registration at the registrar (RFC 3261 §10), refreshed at half the granted time.
pub struct Registration {
    pub uri: String,
    aor: String,
    dest: SocketAddr,
    username: String,
    password: Option<String>,
    expires: u32,
    call_id: String,
    tag: String,
    cseq: u32,
    nc: u32,
    challenge: Option<Challenge>,
    authorized_once: bool,
    /// When the next REGISTER is due (none while one is in flight).
    pub next: Option<Instant>,
}

impl Registration {
    /// The registration the settings ask for, if any.
    pub fn from_settings(settings: &Settings) -> Option<Registration> {
        let r = settings.registrar.as_ref()?;
        let uri = SipUri::parse(&r.uri)?;
        let dest = resolve(&uri.host, uri.port.unwrap_or(5060))?;
        let user = r.user.clone().unwrap_or_else(|| settings.user.clone());
        let username = std::env::var(&r.username_env).unwrap_or_else(|_| user.clone());
        let password = std::env::var(&r.password_env).ok();
        Some(Registration {
            uri: r.uri.clone(),
            aor: format!("sip:{user}@{}", settings.domain()),
            dest,
            username,
            password,
            expires: r.expires_secs,
            call_id: format!("{}@{}", sip::token(), settings.public()),
            tag: sip::token(),
            cseq: 0,
            nc: 0,
            challenge: None,
            authorized_once: false,
            next: Some(Instant::now()),
        })
    }

    /// Uses these credentials instead of the environment's (the desktop's endpoint is given
    /// them, not an environment).
    pub fn set_credentials(&mut self, username: &str, password: &str) {
        self.username = username.to_string();
        self.password = Some(password.to_string());
    }

    /// Where REGISTERs go.
    pub fn registrar_addr(&self) -> SocketAddr {
        self.dest
    }

    /// The username and password our own INVITEs answer a challenge with.
    pub fn credentials(&self) -> Option<(String, String)> {
        Some((self.username.clone(), self.password.clone()?))
    }
}

impl Ua {
    // ----- registration ---------------------------------------------------------------------

    pub(super) fn register(&mut self) {
        let contact = self.contact();
        let via = self.new_via();
        let Some(r) = self.registration.as_mut() else {
            return;
        };
        r.cseq += 1;
        r.next = None;
        let mut register = Message::request("REGISTER", &r.uri)
            .with("Via", via)
            .with("Max-Forwards", "70")
            .with("From", format!("<{}>;tag={}", r.aor, r.tag))
            .with("To", format!("<{}>", r.aor))
            .with("Call-ID", r.call_id.clone())
            .with("CSeq", format!("{} REGISTER", r.cseq))
            .with("Contact", contact)
            .with("Expires", r.expires.to_string())
            .with("User-Agent", "agentdesk");
        if let (Some(challenge), Some(password)) = (&r.challenge, &r.password) {
            r.nc += 1;
            let answer = challenge.answer(
                "REGISTER",
                &r.uri,
                &r.username,
                password,
                r.nc,
                &sip::token(),
            );
            register = register.with("Authorization", answer);
        }
        let dest = r.dest;
        self.send_request(register, dest, Purpose::Register);
    }

    /// Takes our registration back (REGISTER with `Expires: 0`), as an endpoint does when it
    /// stops, so the registrar stops sending it calls at once.
    pub fn unregister(&mut self) {
        let Some(r) = self.registration.as_mut() else {
            return;
        };
        r.expires = 0;
        self.register();
    }

    pub(super) fn register_answered(&mut self, response: &Message) {
        let code = response.code().unwrap_or(0);
        let Some(r) = self.registration.as_mut() else {
            return;
        };
        let status = match code {
            200..=299 if r.expires == 0 => {
                r.next = None; // unregistered: nothing to refresh
                Some((false, format!("unregistered from {}", r.uri)))
            }
            200..=299 => {
                let granted = response
                    .header("Contact")
                    .and_then(|c| sip::param(c, "expires"))
                    .or_else(|| response.header("Expires"))
                    .and_then(|e| e.trim().parse::<u64>().ok())
                    .unwrap_or(u64::from(r.expires))
                    .max(2);
                r.next = Some(Instant::now() + Duration::from_secs(granted / 2));
                r.authorized_once = false;
                Some((true, format!("registered as {} at {}", r.aor, r.uri)))
            }
            401 | 407 if !r.authorized_once && r.password.is_some() => {
                let name = if code == 401 {
                    "WWW-Authenticate"
                } else {
                    "Proxy-Authenticate"
                };
                r.challenge = response.header(name).and_then(Challenge::parse);
                r.authorized_once = true;
                r.nc = 0;
                if r.challenge.is_some() {
                    self.register();
                    return;
                }
                Some((
                    false,
                    format!("registrar {} sent no digest challenge", r.uri),
                ))
            }
            _ => {
                r.authorized_once = false;
                r.next = Some(Instant::now() + Duration::from_secs(60));
                Some((
                    false,
                    format!(
                        "registration at {} failed: {code} {}",
                        r.uri,
                        sip::reason(code)
                    ),
                ))
            }
        };
        if let Some((healthy, detail)) = status {
            self.emit(Event::ChannelStatus(ChannelStatus { healthy, detail }));
        }
    }
}
