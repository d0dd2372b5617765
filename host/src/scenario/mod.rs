//! The headless driver: a working day written as a TOML scenario (agent commands, plugin offers,
//! contacts leaving, at given times) run through the core on a manual clock, with a time-in-state
//! report and optional expected figures to compare. No window, no plugins, no wall clock. A
//! scenario with `mode = "live"` is played with real plugins instead (`live`).

mod live;

pub use live::{is_live, run_live};

use crate::config::AdminConfig;
use crate::core::{AgentCommand, Core, InteractionKey, Millis, Policy};
use plugin_api::{ChannelKind, Contact, EndReason, Ended, Event, InteractionId, Offer, Route};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// The plugin id scenario offers come from.
pub const SCENARIO_PLUGIN: &str = "scenario";

/// A scenario that could not be run, or whose expectations failed.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file is not a valid scenario.
    #[error("scenario {origin}: {message}")]
    Invalid {
        /// The file.
        origin: String,
        /// What is wrong, with the step number.
        message: String,
    },
    /// The embedded configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A step was refused by the core (a scenario must only do what the rules allow).
    #[error("scenario step {step} ({what}) was refused: {reason}")]
    Refused {
        /// 1-based step number.
        step: usize,
        /// The step.
        what: String,
        /// The rule.
        reason: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    /// The admin configuration (TOML text) the day runs under.
    config: String,
    #[serde(default, rename = "step")]
    steps: Vec<toml::Table>,
    #[serde(default, rename = "expect")]
    expectations: Vec<Expectation>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expectation {
    agent: String,
    channel: String,
    /// A time-in-state label: `ready`, `not-ready:<reason>`, `after-call-work`, `pending:<reason>`.
    state: String,
    seconds: u64,
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct Report {
    /// (agent, channel, label) → ms, up to the end of the day.
    pub time_in_state: BTreeMap<(String, String, String), Millis>,
    /// Scenario interaction id → handling ms.
    pub handling: BTreeMap<String, Millis>,
    /// Expectation failures, in words (empty when all hold).
    pub mismatches: Vec<String>,
    /// Number of journal events the day produced.
    pub journal_events: usize,
}

impl Report {
    /// The report as text.
    pub fn render(&self) -> String {
        let mut out = String::from("AGENT     CHANNEL   STATE                      SECONDS\n");
        for ((agent, channel, label), ms) in &self.time_in_state {
            let _ = writeln!(out, "{agent:<9} {channel:<9} {label:<26} {:>7}", ms / 1000);
        }
        if !self.handling.is_empty() {
            out.push_str("\nINTERACTION  HANDLING SECONDS\n");
            for (id, ms) in &self.handling {
                let _ = writeln!(out, "{id:<12} {:>16}", ms / 1000);
            }
        }
        let _ = writeln!(out, "\n{} journal events", self.journal_events);
        for m in &self.mismatches {
            let _ = writeln!(out, "MISMATCH: {m}");
        }
        out
    }
}

/// Parses "HH:MM:SS" (time of day) into ms.
fn time_of_day(text: &str) -> Option<Millis> {
    let parts: Vec<u64> = text
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = parts[..] else { return None };
    (h < 24 && m < 60 && s < 60).then_some(((h * 60 + m) * 60 + s) * 1000)
}

/// Runs a scenario given as TOML text; `origin` names it in errors.
pub fn run(text: &str, origin: &str) -> Result<Report, ScenarioError> {
    let invalid = |message: String| ScenarioError::Invalid {
        origin: origin.into(),
        message,
    };
    let file: File = toml::from_str(text).map_err(|e| invalid(e.to_string().trim().to_string()))?;
    let config = AdminConfig::parse(&file.config, &format!("{origin} (config)"))?;
    let mut channels: BTreeSet<String> = BTreeSet::new();
    for agent in &config.agents {
        if let crate::config::ChannelAssignment::Some(list) = &agent.channels {
            channels.extend(list.iter().cloned());
        }
    }
    let channels: Vec<String> = channels.into_iter().collect();
    let mut core = Core::new(Policy::from_config(&config, &channels), 0);
    let mut journal_events = 0usize;
    let mut now = 0;
    let mut keys: BTreeMap<String, InteractionKey> = BTreeMap::new();
    for (n, step) in file.steps.iter().enumerate() {
        let number = n + 1;
        let step_error = |message: &str| invalid(format!("step {number}: {message}"));
        let at = step
            .get("at")
            .and_then(|v| v.as_str())
            .ok_or_else(|| step_error("`at = \"HH:MM:SS\"` is missing"))?;
        let at =
            time_of_day(at).ok_or_else(|| step_error("`at` must be a time of day \"HH:MM:SS\""))?;
        if at < now {
            return Err(step_error("steps must be in time order"));
        }
        now = at;
        journal_events += core.tick(now).len();
        if let Some(offer) = step.get("offer") {
            let offer = offer
                .as_table()
                .ok_or_else(|| step_error("`offer` must be a table"))?;
            let get = |k: &str| offer.get(k).and_then(|v| v.as_str()).map(str::to_string);
            let id = get("id").ok_or_else(|| step_error("`offer.id` is missing"))?;
            let channel = get("channel").ok_or_else(|| step_error("`offer.channel` is missing"))?;
            let route = match get("agent") {
                Some(agent) => Route::agent(agent),
                None => Route::queue(get("queue").unwrap_or_else(|| "default".into())),
            };
            let media = crate::core::model::default_media(&channel);
            let event = Event::Offer(Offer {
                interaction: InteractionId::new(id.clone()),
                external_id: id.clone(),
                channel: ChannelKind::new(channel),
                media,
                route,
                contact: Contact::default(),
                subject: None,
                case_data: vec![],
                actions: vec![],
                priority: 0,
            });
            journal_events += core.on_plugin_event(now, SCENARIO_PLUGIN, &event).len();
            let key = core
                .interaction_by_plugin_id(SCENARIO_PLUGIN, &InteractionId::new(id.clone()))
                .map(|i| i.key)
                .ok_or_else(|| step_error("the offer was not taken (duplicate id?)"))?;
            keys.insert(id, key);
        } else if let Some(id) = step.get("contact_leaves").and_then(|v| v.as_str()) {
            if !keys.contains_key(id) {
                return Err(step_error(&format!("no offer `{id}` before this step")));
            }
            let event = Event::Ended(Ended {
                interaction: InteractionId::new(id),
                reason: EndReason::ContactLeft,
                detail: String::new(),
            });
            journal_events += core.on_plugin_event(now, SCENARIO_PLUGIN, &event).len();
        } else if let Some(agent) = step.get("agent").and_then(|v| v.as_str()) {
            let mut fields = step.clone();
            fields.remove("at");
            fields.remove("agent");
            if let Some(id) = fields.remove("interaction") {
                let id = id.as_str().unwrap_or_default().to_string();
                let key = keys
                    .get(&id)
                    .ok_or_else(|| step_error(&format!("no offer `{id}` before this step")))?;
                fields.insert("key".into(), toml::Value::Integer(*key as i64));
            }
            let shown = toml::to_string(&fields)
                .unwrap_or_default()
                .replace('\n', " ");
            let command: AgentCommand = toml::Value::Table(fields)
                .try_into()
                .map_err(|e| step_error(&format!("not a command: {e}")))?;
            let events =
                core.execute(now, agent, command)
                    .map_err(|refused| ScenarioError::Refused {
                        step: number,
                        what: format!("{agent}: {}", shown.trim()),
                        reason: refused.to_string(),
                    })?;
            journal_events += events.len();
        } else {
            return Err(step_error(
                "a step needs `agent` (a command), `offer` or `contact_leaves`",
            ));
        }
    }
    let end = file
        .steps
        .last()
        .and_then(|s| s.get("at"))
        .and_then(|v| v.as_str())
        .and_then(time_of_day)
        .unwrap_or(0);
    let mut time_in_state = BTreeMap::new();
    for agent in core.agents() {
        for (channel, ch) in &agent.channels {
            let mut labels: BTreeSet<String> = core
                .stats()
                .rows()
                .filter(|(a, c, _, _)| *a == agent.id && c == channel)
                .map(|(_, _, l, _)| l.to_string())
                .collect();
            labels.extend(ch.state.label());
            for label in labels {
                let ms = core.time_in_state(&agent.id, channel, &label, end);
                time_in_state.insert((agent.id.clone(), channel.clone(), label), ms);
            }
        }
    }
    let handling = keys
        .iter()
        .map(|(id, key)| (id.clone(), core.handling_time(*key, end)))
        .collect();
    let mismatches = file
        .expectations
        .iter()
        .filter_map(|e| {
            let got = time_in_state
                .get(&(e.agent.clone(), e.channel.clone(), e.state.clone()))
                .copied()
                .unwrap_or(0);
            (got != e.seconds * 1000).then(|| {
                format!(
                    "{} {} {}: expected {} s, got {} s",
                    e.agent,
                    e.channel,
                    e.state,
                    e.seconds,
                    got as f64 / 1000.0
                )
            })
        })
        .collect();
    Ok(Report {
        time_in_state,
        handling,
        mismatches,
        journal_events,
    })
}
