//! The plugin table as text, for `agentdesk plugins`: one block per plugin, reasons in full.
//! Formatting only; the table comes from the client interface.

use agentdesk_client::{PluginRow, PluginTable};
use std::fmt::Write;

/// The reports as JSON for scripts: `{"plugins": [{id, name, vendor, version, api_version,
/// channels, path, status, reason, isolation, restarts, last_exit}], "not_found": [..]}`.
pub fn render_json(table: &PluginTable) -> String {
    let plugins: Vec<serde_json::Value> = table
        .plugins
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id,
                "name": r.name,
                "vendor": r.vendor,
                "version": r.version,
                "api_version": r.api_version,
                "channels": r.channels,
                "path": r.path,
                "status": r.status,
                "reason": r.reason,
                "isolation": r.isolation,
                "restarts": r.restarts,
                "last_exit": r.last_exit,
            })
        })
        .collect();
    let not_found: Vec<&str> = table.not_found.iter().map(|n| n.text.as_str()).collect();
    let all = serde_json::json!({ "plugins": plugins, "not_found": not_found });
    format!("{all:#}\n")
}

/// Renders the reports as an aligned table followed by the reasons, then what the configuration
/// names but nothing provides.
pub fn render(table: &PluginTable) -> String {
    let mut out = rows(&table.plugins);
    if !table.not_found.is_empty() {
        let _ = writeln!(out, "\nExpected but not found:");
        for missing in &table.not_found {
            let _ = writeln!(out, "  {}", missing.text);
        }
    }
    out
}

fn rows(reports: &[PluginRow]) -> String {
    if reports.is_empty() {
        return "No plugins found in the plugin directories.\n".into();
    }
    let header = [
        "ID",
        "NAME",
        "VENDOR",
        "VERSION",
        "API",
        "CHANNELS",
        "STATUS",
        "ISOLATION",
        "RESTARTS",
    ];
    let rows: Vec<[String; 9]> = reports
        .iter()
        .map(|r| {
            [
                r.id.clone(),
                dash(&r.name),
                dash(&r.vendor),
                r.version.clone().unwrap_or_else(|| "-".into()),
                r.api_version.clone().unwrap_or_else(|| "-".into()),
                if r.channels.is_empty() {
                    "-".into()
                } else {
                    r.channels.join(",")
                },
                r.status.clone(),
                r.isolation.clone(),
                r.restarts.to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, cells: &[String]| {
        let text: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", text.join("  ").trim_end());
    };
    line(&mut out, &header.map(String::from));
    for row in &rows {
        line(&mut out, row);
    }
    let with_status: Vec<&PluginRow> = reports
        .iter()
        .filter(|r| r.channel_status.is_some())
        .collect();
    if !with_status.is_empty() {
        let _ = writeln!(out);
        for r in with_status {
            if let Some(status) = &r.channel_status {
                let health = if status.healthy { "ok" } else { "trouble" };
                let _ = writeln!(out, "{} channel status: {health}: {}", r.id, status.detail);
            }
        }
    }
    let exited: Vec<&PluginRow> = reports.iter().filter(|r| r.last_exit.is_some()).collect();
    if !exited.is_empty() {
        let _ = writeln!(out);
        for r in exited {
            let _ = writeln!(
                out,
                "{} last exit of its process: {}",
                r.id,
                r.last_exit.as_deref().unwrap_or_default()
            );
        }
    }
    let with_reasons: Vec<&PluginRow> = reports.iter().filter(|r| r.reason.is_some()).collect();
    if !with_reasons.is_empty() {
        let _ = writeln!(out);
        for r in with_reasons {
            let _ = writeln!(
                out,
                "{} ({}): {}\n    {}",
                r.id,
                r.status,
                r.reason.as_deref().unwrap_or_default(),
                r.path
            );
        }
    }
    out
}

fn dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_string()
    }
}
