//! The plugin report as text, for `agentdesk plugins`: one block per plugin, reasons in full.
//! Formatting only; the statuses come from the host.

use agentdesk_host::NotFound;
use agentdesk_host::PluginReport;
use std::fmt::Write;

/// The reports as JSON for scripts: `{"plugins": [{id, name, vendor, version, api_version,
/// channels, path, status, reason, isolation, restarts, last_exit}], "not_found": [..]}`.
pub fn render_json(reports: &[PluginReport], not_found: &[NotFound]) -> String {
    let plugins: Vec<serde_json::Value> = reports
        .iter()
        .map(|r| {
            serde_json::json!({
                "id": r.id,
                "name": r.name,
                "vendor": r.vendor,
                "version": r.version.as_ref().map(ToString::to_string),
                "api_version": r.api_version.as_ref().map(ToString::to_string),
                "channels": r.channels,
                "path": r.path.display().to_string(),
                "status": r.status.word(),
                "reason": r.status.reason(),
                "isolation": r.isolation.word(),
                "restarts": r.restarts,
                "last_exit": r.last_exit,
            })
        })
        .collect();
    let not_found: Vec<String> = not_found.iter().map(ToString::to_string).collect();
    let all = serde_json::json!({ "plugins": plugins, "not_found": not_found });
    format!("{all:#}\n")
}

/// Renders the reports as an aligned table followed by the reasons, then what the configuration
/// names but nothing provides.
pub fn render(reports: &[PluginReport], not_found: &[NotFound]) -> String {
    let mut out = table(reports);
    if !not_found.is_empty() {
        let _ = writeln!(out, "\nExpected but not found:");
        for missing in not_found {
            let _ = writeln!(out, "  {missing}");
        }
    }
    out
}

fn table(reports: &[PluginReport]) -> String {
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
                r.version.as_ref().map_or("-".into(), ToString::to_string),
                r.api_version
                    .as_ref()
                    .map_or("-".into(), ToString::to_string),
                if r.channels.is_empty() {
                    "-".into()
                } else {
                    r.channels.join(",")
                },
                r.status.word().to_string(),
                r.isolation.word().to_string(),
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
    let with_status: Vec<&PluginReport> = reports
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
    let exited: Vec<&PluginReport> = reports.iter().filter(|r| r.last_exit.is_some()).collect();
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
    let with_reasons: Vec<&PluginReport> = reports
        .iter()
        .filter(|r| r.status.reason().is_some())
        .collect();
    if !with_reasons.is_empty() {
        let _ = writeln!(out);
        for r in with_reasons {
            let _ = writeln!(
                out,
                "{} ({}): {}\n    {}",
                r.id,
                r.status.word(),
                r.status.reason().unwrap_or_default(),
                r.path.display()
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
