//! The team view as text, for `agentdesk team`: every agent's channels with their state and time
//! in it, their open interactions, and every queue. Formatting only; the view comes from the
//! client interface.

use crate::desk::text;
use agentdesk_client::TeamView;
use std::fmt::Write;

/// Renders `team` as aligned tables.
pub fn render(team: &TeamView) -> String {
    let mut rows = vec![[
        "AGENT".to_string(),
        "NAME".into(),
        "CHANNEL".into(),
        "STATE".into(),
        "FOR".into(),
        "LOAD".into(),
    ]];
    for agent in &team.agents {
        if !agent.logged_in {
            rows.push([
                agent.agent.clone(),
                agent.name.clone(),
                "-".into(),
                "not logged in".into(),
                "-".into(),
                "-".into(),
            ]);
            continue;
        }
        for channel in &agent.channels {
            let mut state = text::channel_state(&channel.state);
            if agent.dnd {
                state.push_str(" (DND)");
            }
            rows.push([
                agent.agent.clone(),
                agent.name.clone(),
                channel.channel.clone(),
                state,
                text::duration(team.at.saturating_sub(channel.since)),
                format!("{}/{}", channel.load, channel.capacity),
            ]);
        }
    }
    let mut out = aligned(&rows);
    let open: Vec<String> = team
        .agents
        .iter()
        .flat_map(|a| {
            a.interactions.iter().map(move |i| {
                format!(
                    "  {}: #{} {} {}",
                    a.agent,
                    i.key,
                    i.channel,
                    text::interaction_state(&i.state)
                )
            })
        })
        .collect();
    let _ = writeln!(out, "\nOpen interactions:");
    if open.is_empty() {
        let _ = writeln!(out, "  none");
    }
    for line in open {
        let _ = writeln!(out, "{line}");
    }
    let mut queues = vec![["QUEUE".to_string(), "WAITING".into(), "OLDEST WAIT".into()]];
    for q in &team.queues {
        queues.push([
            q.channel.clone(),
            q.waiting.to_string(),
            q.oldest_since.map_or("-".into(), |since| {
                text::duration(team.at.saturating_sub(since))
            }),
        ]);
    }
    let _ = writeln!(out);
    out.push_str(&aligned(&queues));
    out
}

fn aligned<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}
