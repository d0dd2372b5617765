//! A plugin's settings schema: JSON Schema as data, declared by the vendor (`agentdesk package
//! --settings-schema FILE` puts it into the manifest) and checked when the admin configuration
//! loads, so a bad setting is reported with file, line and key before anything starts.
//!
//! The keywords understood are the ones settings need: `type` (`object`, `string`, `integer`,
//! `number`, `boolean`, `array`), `properties`, `required`, `additionalProperties: false`,
//! `enum`, `minimum`, `maximum`, `minLength`, `maxLength`, `items`, `description`. Any other
//! keyword is ignored (so a richer schema still loads); a schema that is not an object is refused
//! at packaging.

use super::discovery::{Found, discover};
use crate::config::{AdminConfig, ConfigError};
use serde_json::Value;

/// Where in the settings a value broke the schema, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The keys from the plugin's settings table down to the value (`["limits", "per_minute"]`).
    pub path: Vec<String>,
    /// What is wrong, for the admin.
    pub message: String,
}

/// Checks `value` against `schema`.
pub fn validate(schema: &Value, value: &Value) -> Result<(), Violation> {
    check(schema, value, &mut Vec::new())
}

fn violation(path: &[String], message: String) -> Result<(), Violation> {
    Err(Violation {
        path: path.to_vec(),
        message,
    })
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a table",
    }
}

fn has_type(value: &Value, wanted: &str) -> bool {
    match wanted {
        "object" => value.is_object(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "null" => value.is_null(),
        _ => true,
    }
}

fn check(schema: &Value, value: &Value, path: &mut Vec<String>) -> Result<(), Violation> {
    let Some(schema) = schema.as_object() else {
        return Ok(());
    };
    let about = schema
        .get("description")
        .and_then(Value::as_str)
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
    if let Some(wanted) = schema.get("type").and_then(Value::as_str)
        && !has_type(value, wanted)
    {
        let wanted = match wanted {
            "object" => "a table",
            "integer" => "an integer",
            "array" => "an array",
            other => other,
        };
        return violation(
            path,
            format!("expected {wanted}, found {}{about}", type_name(value)),
        );
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let listed: Vec<String> = allowed.iter().map(ToString::to_string).collect();
        return violation(
            path,
            format!("{value} is not one of {}{about}", listed.join(", ")),
        );
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            return violation(path, format!("{value} is below the minimum {min}{about}"));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            return violation(path, format!("{value} is above the maximum {max}{about}"));
        }
    }
    if let Some(text) = value.as_str() {
        let length = text.chars().count() as u64;
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
            && length < min
        {
            return violation(path, format!("shorter than {min} characters{about}"));
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
            && length > max
        {
            return violation(path, format!("longer than {max} characters{about}"));
        }
    }
    if let (Some(items), Some(list)) = (schema.get("items"), value.as_array()) {
        for (n, item) in list.iter().enumerate() {
            path.push(format!("[{n}]"));
            check(items, item, path)?;
            path.pop();
        }
    }
    if let Some(table) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !table.contains_key(required) {
                let what = properties
                    .and_then(|p| p.get(required))
                    .and_then(|p| p.get("description"))
                    .and_then(Value::as_str)
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default();
                path.push(required.to_string());
                let result = violation(path, format!("is required{what}"));
                path.pop();
                return result;
            }
        }
        for (key, item) in table {
            path.push(key.clone());
            match properties.and_then(|p| p.get(key)) {
                Some(sub) => check(sub, item, path)?,
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    let known: Vec<&String> =
                        properties.into_iter().flatten().map(|(k, _)| k).collect();
                    let known: Vec<&str> = known.iter().map(|k| k.as_str()).collect();
                    return violation(
                        path,
                        format!(
                            "is not a setting of this plugin (it has: {})",
                            known.join(", ")
                        ),
                    );
                }
                None => {}
            }
            path.pop();
        }
    }
    Ok(())
}

/// The line (1-based) of `key` under the table `[plugins.settings."<plugin>"]` in `text`, or of
/// the table's header, or none.
fn line_of(text: &str, plugin: &str, key: Option<&str>) -> Option<usize> {
    let headers = [
        format!("[plugins.settings.\"{plugin}\"]"),
        format!("[plugins.settings.'{plugin}']"),
        format!("[plugins.settings.{plugin}]"),
    ];
    let lines: Vec<&str> = text.lines().collect();
    let header = lines
        .iter()
        .position(|l| headers.iter().any(|h| l.trim() == h))?;
    let Some(key) = key else {
        return Some(header + 1);
    };
    let found = lines[header + 1..]
        .iter()
        .take_while(|l| !l.trim_start().starts_with('['))
        .position(|l| {
            let l = l.trim_start();
            l.strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        });
    Some(found.map_or(header + 1, |n| header + 2 + n))
}

/// Checks the settings of every plugin whose manifest (found in the configured plugin
/// directories) declares a schema. `text` is the configuration file's text, `origin` its name.
pub fn check_config(config: &AdminConfig, text: &str, origin: &str) -> Result<(), ConfigError> {
    for found in discover(&config.plugin_directories()) {
        let Found::Manifest {
            manifest: Ok(manifest),
            path,
        } = found
        else {
            continue;
        };
        let Some(schema_text) = &manifest.settings_schema else {
            continue;
        };
        let schema: Value =
            serde_json::from_str(schema_text).map_err(|e| ConfigError::Invalid {
                path: origin.into(),
                message: format!("the settings schema in {} is not JSON: {e}", path.display()),
            })?;
        let settings = config
            .plugins
            .settings
            .get(&manifest.id)
            .cloned()
            .unwrap_or_default();
        let settings = serde_json::to_value(settings).map_err(|e| ConfigError::Invalid {
            path: origin.into(),
            message: format!("the settings of {} cannot be checked: {e}", manifest.id),
        })?;
        if let Err(v) = validate(&schema, &settings) {
            let line = line_of(text, &manifest.id, v.path.first().map(String::as_str));
            let key = std::iter::once(format!("plugins.settings.\"{}\"", manifest.id))
                .chain(v.path.iter().cloned())
                .collect::<Vec<_>>()
                .join(".");
            let at = line.map_or_else(String::new, |l| format!("line {l}: "));
            return Err(ConfigError::Invalid {
                path: origin.into(),
                message: format!("{at}{key}: {}", v.message),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["spool"],
            "properties": {
                "spool": { "type": "string", "minLength": 1, "description": "the spool directory" },
                "poll_secs": { "type": "integer", "minimum": 1, "maximum": 3600 },
                "mode": { "enum": ["fast", "safe"] },
                "numbers": { "type": "array", "items": { "type": "string" } }
            }
        })
    }

    fn fails(value: Value) -> Violation {
        validate(&schema(), &value).expect_err("a violation")
    }

    #[test]
    fn good_settings_pass_and_each_rule_is_named_with_its_key() {
        let good = json!({"spool": "/var/spool", "poll_secs": 5, "mode": "safe", "numbers": ["1"]});
        assert_eq!(validate(&schema(), &good), Ok(()));
        let v = fails(json!({"spool": "/x", "poll_secs": 0}));
        assert_eq!(v.path, ["poll_secs"]);
        assert!(v.message.contains("below the minimum 1"), "{}", v.message);
        let v = fails(json!({"spool": "/x", "poll_secs": "5"}));
        assert!(
            v.message.contains("expected an integer, found a string"),
            "{}",
            v.message
        );
        let v = fails(json!({"poll_secs": 5}));
        assert_eq!(v.path, ["spool"]);
        assert!(v.message.contains("required") && v.message.contains("spool directory"));
        let v = fails(json!({"spool": "/x", "mode": "slow"}));
        assert!(v.message.contains("not one of"), "{}", v.message);
        let v = fails(json!({"spool": "/x", "numbers": ["1", 2]}));
        assert_eq!(v.path, ["numbers", "[1]"]);
        let v = fails(json!({"spool": "/x", "poll": 5}));
        assert_eq!(v.path, ["poll"]);
        assert!(v.message.contains("not a setting") && v.message.contains("poll_secs"));
        let v = fails(json!({"spool": ""}));
        assert!(v.message.contains("shorter than 1"), "{}", v.message);
    }

    #[test]
    fn loading_a_configuration_checks_each_plugins_settings_against_its_manifests_schema() {
        let dir = tempfile::tempdir().expect("tmp");
        let manifest = crate::plugins::manifest::Manifest {
            manifest_version: 1,
            id: "acme.sms".into(),
            name: "Acme SMS".into(),
            vendor: "Acme".into(),
            version: semver::Version::new(0, 1, 0),
            api_version: semver::Version::new(1, 2, 0),
            channels: vec!["sms".into()],
            library: "libacme.so".into(),
            sha256: "00".into(),
            description: String::new(),
            settings_schema: Some(schema().to_string()),
        };
        std::fs::write(dir.path().join("acme.sms.plugin.toml"), manifest.to_toml()).expect("w");
        let write = |settings: &str| {
            let path = dir.path().join("agentdesk.toml");
            let text = format!(
                "[plugins]\ndirectories = [\".\"]\n[plugins.settings.\"acme.sms\"]\n{settings}"
            );
            std::fs::write(&path, text).expect("config");
            AdminConfig::load(&path)
        };
        assert!(write("spool = \"/var/spool\"\npoll_secs = 10\n").is_ok());
        let refused = write("spool = \"/var/spool\"\npoll_secs = 0\n")
            .expect_err("below the minimum")
            .to_string();
        assert!(refused.contains("agentdesk.toml"), "{refused}");
        assert!(refused.contains("line 5"), "{refused}");
        assert!(
            refused.contains("plugins.settings.\"acme.sms\".poll_secs"),
            "{refused}"
        );
    }

    #[test]
    fn the_line_of_a_key_is_found_under_its_plugins_table() {
        let text = "[core]\npoll_secs = 1\n[plugins.settings.\"acme.sms\"]\nspool = \"/x\"\n  poll_secs = 0\n[channels.chat]\n";
        assert_eq!(line_of(text, "acme.sms", Some("poll_secs")), Some(5));
        assert_eq!(line_of(text, "acme.sms", Some("missing")), Some(3));
        assert_eq!(line_of(text, "acme.sms", None), Some(3));
        assert_eq!(line_of(text, "other", None), None);
    }
}
