//! The co-browse sessions and their rules, with explicit time and no sockets: 9-digit session
//! codes (single use, expiring), the customer's resume secret, one-time viewer links, phases.
//! The relay (`server`) only carries what these rules allow.

use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Where a session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// A code was shown to the customer; nothing was offered yet.
    Waiting,
    /// Offered to the core (linked by its code); no agent yet.
    Offered,
    /// An agent accepted it; the viewer may be open.
    Active,
}

/// Whether the agent may act on the customer's page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteMode {
    /// Pointer mode: the agent's pointer shows; nothing else.
    #[default]
    Off,
    /// The agent asked; the customer has not approved yet.
    Requested,
    /// The customer approved: clicks, values and scrolling go to the page (which still refuses
    /// form submission and restricted elements).
    Granted,
}

impl WriteMode {
    /// The word on the wire.
    pub fn word(self) -> &'static str {
        match self {
            WriteMode::Off => "off",
            WriteMode::Requested => "requested",
            WriteMode::Granted => "granted",
        }
    }
}

/// Why a session request is refused; the `code()` crosses the wire to the customer's script.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No such session (never existed, or ended and forgotten).
    #[error("no co-browse session has this code")]
    UnknownCode,
    /// The code was used to start co-browsing already.
    #[error("this session code was used already")]
    CodeUsed,
    /// The code is older than its time to live.
    #[error("this session code has expired")]
    CodeExpired,
    /// The resume secret does not match.
    #[error("this page cannot resume that session")]
    WrongSecret,
    /// The viewer link is unknown, used or expired.
    #[error("this viewer link is not valid (used, expired or unknown): ask for a new one")]
    BadViewLink,
    /// More rrweb events in one message than allowed.
    #[error("too many events in one message")]
    TooManyEvents,
    /// The plugin is stopping: nothing can be offered.
    #[error("co-browse is not available now")]
    Unavailable,
    /// The agent acted on the page without the customer's approval.
    #[error("write mode is not on: the customer has not approved it")]
    WriteNotGranted,
    /// The request does not fit the session's phase.
    #[error("not possible now: the session is {0:?}")]
    WrongPhase(Phase),
    /// Random bytes were not available.
    #[error("no randomness: {0}")]
    Random(String),
}

impl Refusal {
    /// A stable code for the wire.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::UnknownCode => "unknown-code",
            Refusal::CodeUsed => "code-used",
            Refusal::CodeExpired => "code-expired",
            Refusal::WrongSecret => "wrong-secret",
            Refusal::BadViewLink => "bad-view-link",
            Refusal::WrongPhase(_) => "wrong-phase",
            Refusal::WriteNotGranted => "write-not-granted",
            Refusal::TooManyEvents => "too-many-events",
            Refusal::Unavailable => "unavailable",
            Refusal::Random(_) => "internal",
        }
    }
}

/// One session.
#[derive(Debug)]
pub struct Session {
    /// The 9-digit code the customer sees.
    pub code: String,
    /// Known only to the customer's page that started it (kept in its session storage).
    secret: String,
    /// When the code was shown.
    minted: Instant,
    /// Where it is.
    pub phase: Phase,
    /// The customer's connection, while one is open: text messages to it.
    pub customer: Option<mpsc::Sender<String>>,
    /// Which customer connection is the current one (a newer one replaces it).
    pub customer_connection: u64,
    /// Since when no customer connection is open (for the reconnect grace).
    pub customer_gone_since: Option<Instant>,
    /// The agent's viewer, while open.
    pub viewer: Option<mpsc::Sender<String>>,
    /// Which viewer connection is the current one.
    pub viewer_connection: u64,
    /// The agent's display name, once accepted.
    pub agent: Option<String>,
    /// Pointer or write mode.
    pub write: WriteMode,
    /// How many times it was offered (a linked offer the core could not link yet is offered
    /// again, as a new interaction).
    pub attempt: u32,
}

impl Session {
    /// The interaction id of the current offer.
    pub fn interaction(&self) -> String {
        format!("cobrowse-{}.{}", self.code, self.attempt)
    }
}

/// The code of the session an interaction id belongs to.
pub fn code_of(id: &str) -> Option<&str> {
    id.strip_prefix("cobrowse-")?.split('.').next()
}

/// A one-time viewer link's token.
#[derive(Debug, Clone)]
struct ViewLink {
    code: String,
    minted: Instant,
}

/// Every session, the codes used already and the viewer links not yet opened.
#[derive(Debug, Default)]
pub struct Sessions {
    by_code: HashMap<String, Session>,
    /// Codes whose session ended or started, with when: never minted again while listed, and
    /// refused as used.
    used: HashMap<String, Instant>,
    links: HashMap<String, ViewLink>,
    code_ttl: Duration,
    link_ttl: Duration,
}

fn random_u64() -> Result<u64, Refusal> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| Refusal::Random(e.to_string()))?;
    Ok(u64::from_le_bytes(bytes))
}

fn random_token() -> Result<String, Refusal> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| Refusal::Random(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Sessions {
    /// No sessions; codes live `code_ttl`, viewer links `link_ttl`.
    pub fn new(code_ttl: Duration, link_ttl: Duration) -> Self {
        Sessions {
            code_ttl,
            link_ttl,
            ..Sessions::default()
        }
    }

    /// How many sessions there are.
    pub fn len(&self) -> usize {
        self.by_code.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.by_code.is_empty()
    }

    /// The session with `code`.
    pub fn get(&self, code: &str) -> Option<&Session> {
        self.by_code.get(code)
    }

    /// The session with `code`, to change.
    pub fn get_mut(&mut self, code: &str) -> Option<&mut Session> {
        self.by_code.get_mut(code)
    }

    /// A new session for a customer's page: its code and resume secret.
    pub fn start(&mut self, now: Instant) -> Result<(String, String), Refusal> {
        let code = loop {
            // Uniform over 9 digits: values past the last whole 10^9 block are drawn again.
            let n = random_u64()?;
            if n >= u64::MAX - u64::MAX % 1_000_000_000 {
                continue;
            }
            let code = format!("{:09}", n % 1_000_000_000);
            if !self.by_code.contains_key(&code) && !self.used.contains_key(&code) {
                break code;
            }
        };
        let secret = random_token()?;
        self.by_code.insert(
            code.clone(),
            Session {
                code: code.clone(),
                secret: secret.clone(),
                minted: now,
                phase: Phase::Waiting,
                customer: None,
                customer_connection: 0,
                customer_gone_since: None,
                viewer: None,
                viewer_connection: 0,
                agent: None,
                write: WriteMode::Off,
                attempt: 0,
            },
        );
        Ok((code, secret))
    }

    /// The customer's page (the same one after a reload, or another page of the site) comes back
    /// to its session.
    pub fn resume(&mut self, code: &str, secret: &str) -> Result<&mut Session, Refusal> {
        if self.used.contains_key(code) && !self.by_code.contains_key(code) {
            return Err(Refusal::CodeUsed);
        }
        let session = self.by_code.get_mut(code).ok_or(Refusal::UnknownCode)?;
        if !constant_time_eq(session.secret.as_bytes(), secret.as_bytes()) {
            return Err(Refusal::WrongSecret);
        }
        Ok(session)
    }

    /// The customer asks for the session to be offered (linked by its code): once, and only
    /// while the code is fresh. The code is used up.
    pub fn offer(&mut self, code: &str, now: Instant) -> Result<(), Refusal> {
        let ttl = self.code_ttl;
        let session = self.by_code.get_mut(code).ok_or(Refusal::UnknownCode)?;
        if session.phase != Phase::Waiting {
            return Err(Refusal::CodeUsed);
        }
        if now.saturating_duration_since(session.minted) >= ttl {
            return Err(Refusal::CodeExpired);
        }
        session.phase = Phase::Offered;
        session.attempt = 1;
        self.used.insert(code.to_string(), now);
        Ok(())
    }

    /// The agent accepted: the session is active and gets a one-time viewer link token.
    pub fn accept(&mut self, code: &str, agent: &str, now: Instant) -> Result<String, Refusal> {
        let session = self.by_code.get_mut(code).ok_or(Refusal::UnknownCode)?;
        if session.phase != Phase::Offered {
            return Err(Refusal::WrongPhase(session.phase));
        }
        session.phase = Phase::Active;
        session.agent = Some(agent.to_string());
        self.view_link(code, now)
    }

    /// A new one-time viewer link for an active session (the agent asks again).
    pub fn view_link(&mut self, code: &str, now: Instant) -> Result<String, Refusal> {
        let session = self.by_code.get(code).ok_or(Refusal::UnknownCode)?;
        if session.phase != Phase::Active {
            return Err(Refusal::WrongPhase(session.phase));
        }
        let token = random_token()?;
        self.links.insert(
            token.clone(),
            ViewLink {
                code: code.to_string(),
                minted: now,
            },
        );
        Ok(token)
    }

    /// Opens a viewer link: once, while fresh, for a session still active. Its session's code.
    pub fn open_view(&mut self, token: &str, now: Instant) -> Result<String, Refusal> {
        let link = self.links.remove(token).ok_or(Refusal::BadViewLink)?;
        if now.saturating_duration_since(link.minted) >= self.link_ttl {
            return Err(Refusal::BadViewLink);
        }
        match self.by_code.get(&link.code) {
            Some(s) if s.phase == Phase::Active => Ok(link.code),
            _ => Err(Refusal::BadViewLink),
        }
    }

    /// Ends a session: it is forgotten (its code stays used). Returns it, to close its sockets.
    pub fn end(&mut self, code: &str, now: Instant) -> Option<Session> {
        self.used.insert(code.to_string(), now);
        self.links.retain(|_, l| l.code != code);
        self.by_code.remove(code)
    }

    /// Sessions whose code expired unused, or whose customer stayed away longer than `grace`:
    /// their codes (end them). Also forgets used codes and links older than they matter.
    pub fn due(&mut self, now: Instant, grace: Duration) -> Vec<String> {
        let ttl = self.code_ttl;
        self.used
            .retain(|_, at| now.saturating_duration_since(*at) < ttl.saturating_mul(4));
        let link_ttl = self.link_ttl;
        self.links
            .retain(|_, l| now.saturating_duration_since(l.minted) < link_ttl);
        self.by_code
            .values()
            .filter(|s| {
                // A code shown but not used, or offered but never taken by an agent (nothing
                // carried the code: the core keeps such an offer waiting until this ends it).
                (s.phase != Phase::Active && now.saturating_duration_since(s.minted) >= ttl)
                    || s.customer_gone_since
                        .is_some_and(|t| now.saturating_duration_since(t) >= grace)
            })
            .map(|s| s.code.clone())
            .collect()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions() -> Sessions {
        Sessions::new(Duration::from_secs(60), Duration::from_secs(30))
    }

    #[test]
    fn a_code_is_nine_digits_and_unique() {
        let mut s = sessions();
        let now = Instant::now();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..500 {
            let (code, secret) = s.start(now).expect("start");
            assert_eq!(code.len(), 9);
            assert!(code.bytes().all(|b| b.is_ascii_digit()));
            assert_eq!(secret.len(), 48);
            assert!(seen.insert(code));
        }
    }

    #[test]
    fn a_code_is_offered_once_and_not_after_it_expired() {
        let mut s = sessions();
        let now = Instant::now();
        let (code, _) = s.start(now).expect("start");
        s.offer(&code, now).expect("first offer");
        assert_eq!(s.offer(&code, now), Err(Refusal::CodeUsed));
        let (late, _) = s.start(now).expect("start");
        assert_eq!(
            s.offer(&late, now + Duration::from_secs(61)),
            Err(Refusal::CodeExpired)
        );
        // Both are due: the code never used, and the offer nothing linked within the code's time.
        let mut due = s.due(now + Duration::from_secs(61), Duration::MAX);
        due.sort();
        let mut both = vec![code, late];
        both.sort();
        assert_eq!(due, both);
    }

    #[test]
    fn a_session_resumes_only_with_its_secret_and_never_after_it_ended() {
        let mut s = sessions();
        let now = Instant::now();
        let (code, secret) = s.start(now).expect("start");
        assert_eq!(s.resume(&code, "nope").err(), Some(Refusal::WrongSecret));
        assert!(s.resume(&code, &secret).is_ok());
        s.end(&code, now);
        assert_eq!(s.resume(&code, &secret).err(), Some(Refusal::CodeUsed));
    }

    #[test]
    fn a_viewer_link_opens_once_while_fresh_and_only_for_an_active_session() {
        let mut s = sessions();
        let now = Instant::now();
        let (code, _) = s.start(now).expect("start");
        assert!(
            s.view_link(&code, now).is_err(),
            "not before an agent accepted"
        );
        s.offer(&code, now).expect("offer");
        let token = s.accept(&code, "Ann", now).expect("accept");
        assert_eq!(s.open_view(&token, now), Ok(code.clone()));
        assert_eq!(s.open_view(&token, now), Err(Refusal::BadViewLink), "once");
        let late = s.view_link(&code, now).expect("another");
        assert_eq!(
            s.open_view(&late, now + Duration::from_secs(31)),
            Err(Refusal::BadViewLink)
        );
        let after = s.view_link(&code, now).expect("another");
        s.end(&code, now);
        assert_eq!(s.open_view(&after, now), Err(Refusal::BadViewLink));
    }
}
