//! A scenario played live (`mode = "live"`): the real plugins of the scenario's configuration and
//! the core service on the wall clock, with agents played by the steps — log in, Ready, wait for
//! an offer, accept, reply, end, Mark Done. Prints each step, every change of the agents'
//! interactions as it is seen, and at the end the transcript of each named interaction. For
//! vendors and admins who want to see a channel work without a window.

use super::ScenarioError;
use crate::config::AdminConfig;
use crate::core::{AgentCommand, InteractionKey, InteractionState};
use crate::runtime::Runtime;
use crate::service::{Answer, CoreHandle, Query};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LiveFile {
    /// `live`.
    mode: String,
    /// The admin configuration (TOML text): plugin directories, allowlist, agents.
    config: String,
    /// How long a `wait` step waits at most.
    #[serde(default = "default_wait")]
    wait_secs: u64,
    #[serde(default, rename = "step")]
    steps: Vec<toml::Table>,
}

fn default_wait() -> u64 {
    10
}

/// Whether a scenario file is to be played live (`mode = "live"`).
pub fn is_live(text: &str) -> bool {
    text.parse::<toml::Table>()
        .ok()
        .and_then(|t| t.get("mode").and_then(|m| m.as_str()).map(|m| m == "live"))
        .unwrap_or(false)
}

/// The players' view: named interactions and the last state printed for each.
struct Play {
    core: CoreHandle,
    names: BTreeMap<String, InteractionKey>,
    seen: BTreeMap<(String, InteractionKey), String>,
    agents: Vec<String>,
    started: Instant,
}

impl Play {
    fn name_of(&self, key: InteractionKey) -> String {
        self.names
            .iter()
            .find(|(_, k)| **k == key)
            .map_or_else(|| format!("#{key}"), |(n, _)| n.clone())
    }

    fn stamp(&self) -> String {
        let ms = self.started.elapsed().as_millis();
        format!("{:>4}.{:03}", ms / 1000, ms % 1000)
    }

    /// Prints every change of the agents' interactions since the last look.
    fn look(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        for agent in self.agents.clone() {
            let Ok(Some(snapshot)) = self.core.snapshot(&agent) else {
                continue;
            };
            for i in &snapshot.interactions {
                let state = state_word(&i.state);
                let key = (agent.clone(), i.key);
                if self.seen.get(&key) != Some(&state) {
                    writeln!(
                        out,
                        "{} {agent}: {} ({} {}) {state}",
                        self.stamp(),
                        self.name_of(i.key),
                        i.channel,
                        i.contact
                            .addresses
                            .first()
                            .map_or("-", |a| a.value.as_str())
                    )?;
                    self.seen.insert(key, state);
                }
            }
        }
        Ok(())
    }
}

fn state_word(state: &InteractionState) -> String {
    match state {
        InteractionState::Queued => "queued".into(),
        InteractionState::Offered { agent, .. } => format!("offered to {agent}"),
        InteractionState::Active => "active".into(),
        InteractionState::Ended => "ended".into(),
        InteractionState::InWorkbin { workbin } => format!("in workbin {workbin}"),
        InteractionState::Done => "done".into(),
        InteractionState::Abandoned => "abandoned".into(),
        InteractionState::Rejected { reason } => format!("rejected: {reason}"),
        InteractionState::Forwarded => "forwarded".into(),
    }
}

/// Plays a live scenario given as TOML text (`origin` names it in errors; relative paths in its
/// configuration resolve against `base_dir`), printing to `out`.
pub fn run_live(
    text: &str,
    origin: &str,
    base_dir: Option<&Path>,
    out: &mut dyn Write,
) -> Result<(), ScenarioError> {
    let invalid = |message: String| ScenarioError::Invalid {
        origin: origin.into(),
        message,
    };
    let io = |e: std::io::Error| invalid(format!("cannot print: {e}"));
    let file: LiveFile =
        toml::from_str(text).map_err(|e| invalid(e.to_string().trim().to_string()))?;
    if file.mode != "live" {
        return Err(invalid(format!(
            "mode `{}`: only `live` is known",
            file.mode
        )));
    }
    let mut config = AdminConfig::parse(&file.config, &format!("{origin} (config)"))?;
    config.base_dir = base_dir.map(Path::to_path_buf);
    let runtime = Runtime::start(&config).map_err(|e| invalid(format!("cannot start: {e}")))?;
    for report in runtime.plugins.reports() {
        writeln!(out, "plugin {} {}", report.id, report.status.word()).map_err(io)?;
    }
    let mut play = Play {
        core: runtime.core(),
        names: BTreeMap::new(),
        seen: BTreeMap::new(),
        agents: config.agents.iter().map(|a| a.id.clone()).collect(),
        started: Instant::now(),
    };
    let wait = Duration::from_secs(file.wait_secs);
    let outcome = play_steps(&mut play, &file.steps, wait, origin, out);
    let transcripts = print_transcripts(&play, out).map_err(io);
    runtime.stop();
    outcome.and(transcripts)
}

fn play_steps(
    play: &mut Play,
    steps: &[toml::Table],
    wait: Duration,
    origin: &str,
    out: &mut dyn Write,
) -> Result<(), ScenarioError> {
    let io = |e: std::io::Error| ScenarioError::Invalid {
        origin: origin.into(),
        message: format!("cannot print: {e}"),
    };
    for (n, step) in steps.iter().enumerate() {
        let number = n + 1;
        let step_error = |message: String| ScenarioError::Invalid {
            origin: origin.into(),
            message: format!("step {number}: {message}"),
        };
        let text = |k: &str| step.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let agent = text("agent").ok_or_else(|| step_error("`agent` is missing".into()))?;
        let named = |name: &str| {
            play.names
                .get(name)
                .copied()
                .ok_or_else(|| step_error(format!("no interaction named `{name}` yet")))
        };
        let shown = toml::to_string(step).unwrap_or_default().replace('\n', " ");
        writeln!(out, "{} step {number}: {}", play.stamp(), shown.trim()).map_err(io)?;
        if let Some(what) = text("wait") {
            let deadline = Instant::now() + wait;
            loop {
                play.look(out).map_err(io)?;
                if let Some(found) = waited(play, &agent, &what, text("interaction"))? {
                    if let Some(name) = text("as") {
                        writeln!(out, "{} {agent}: #{found} is {name}", play.stamp())
                            .map_err(io)?;
                        play.names.insert(name, found);
                    }
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(step_error(format!(
                        "`{what}` did not happen within {} s",
                        wait.as_secs()
                    )));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        } else if let Some(reply) = text("reply") {
            let name = text("interaction")
                .ok_or_else(|| step_error("`reply` needs `interaction`".into()))?;
            let key = named(&name)?;
            play.core
                .send_message(&agent, key, &reply)
                .map_err(|e| step_error(format!("refused: {e}")))?;
        } else {
            let mut fields = step.clone();
            fields.remove("agent");
            if let Some(name) = fields.remove("interaction") {
                let key = named(name.as_str().unwrap_or_default())?;
                fields.insert("key".into(), toml::Value::Integer(key as i64));
            }
            let command: AgentCommand = toml::Value::Table(fields)
                .try_into()
                .map_err(|e| step_error(format!("not a command: {e}")))?;
            play.core
                .execute(&agent, command)
                .map_err(|e| ScenarioError::Refused {
                    step: number,
                    what: format!("{agent}: {}", shown.trim()),
                    reason: e.to_string(),
                })?;
        }
        play.look(out).map_err(io)?;
    }
    Ok(())
}

/// Whether what a `wait` step waits for has happened: `offer` (an interaction offered to the
/// agent and not named yet), or a state word (`active`, `ended`, `done`) of a named interaction.
fn waited(
    play: &Play,
    agent: &str,
    what: &str,
    interaction: Option<String>,
) -> Result<Option<InteractionKey>, ScenarioError> {
    let snapshot = play
        .core
        .snapshot(agent)
        .map_err(|e| ScenarioError::Invalid {
            origin: agent.into(),
            message: e.to_string(),
        })?;
    let Some(snapshot) = snapshot else {
        return Ok(None);
    };
    if what == "offer" {
        return Ok(snapshot
            .interactions
            .iter()
            .find(|i| {
                matches!(&i.state, InteractionState::Offered { agent: a, .. } if a == agent)
                    && !play.names.values().any(|k| *k == i.key)
            })
            .map(|i| i.key));
    }
    let Some(key) = interaction.and_then(|n| play.names.get(&n).copied()) else {
        return Ok(None);
    };
    let state = snapshot
        .interactions
        .iter()
        .find(|i| i.key == key)
        .map(|i| state_word(&i.state));
    // An interaction marked done leaves the agent's list.
    let done = what == "done" && state.is_none();
    Ok((done || state.as_deref() == Some(what)).then_some(key))
}

fn print_transcripts(play: &Play, out: &mut dyn Write) -> std::io::Result<()> {
    for (name, key) in &play.names {
        writeln!(out, "\ntranscript of {name}:")?;
        match play.core.query(Query::Transcript {
            key: *key,
            offset: 0,
            limit: 1000,
        }) {
            Ok(Answer::Lines(lines)) => {
                for line in lines {
                    writeln!(out, "  {}: {}", line.party, line.text)?;
                }
            }
            Ok(_) => writeln!(out, "  (no transcript)")?,
            Err(e) => writeln!(out, "  (cannot read it: {e})")?,
        }
    }
    Ok(())
}
