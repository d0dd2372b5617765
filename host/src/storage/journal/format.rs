//! The journal's row formats: how one row's `events` text encodes a batch of core events, per
//! format version, and the upgrade step from each old version to the next. No SQL here.
//!
//! To change the shape of `CoreEvent` on disk (rename a variant or a field, split an event):
//! add a version, write its upgrade step on `serde_json::Value` (the old typed shape no longer
//! exists in the code), add it to `upgrade`, and add rows in the old shape to the tests.
//! The golden journal (`host/tests/golden/`) fails CI when a change forgets to.

use crate::core::{CoreEvent, Millis, Stamped};
use serde_json::Value;

/// The format this code writes.
pub const CURRENT: u32 = 2;

/// The oldest format this code reads: rows written before formats had a number are format 1.
pub const OLDEST: u32 = 1;

/// Format 1: a JSON array of `{"seq": n, "at": ms, "event": {"kind": ..}}`; the row's first
/// sequence number is repeated in every event.
/// Format 2: a JSON array of `[at, event]`: the sequence numbers follow from the row's `first_seq`
/// (a row cannot hold a gap), and each event is smaller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// Written by a newer version of agentdesk.
    #[error(
        "row format {found} is newer than this agentdesk reads (up to {CURRENT}): upgrade agentdesk"
    )]
    Future {
        /// The row's format.
        found: u32,
    },
    /// Not a format any version wrote.
    #[error("row format {found} was never written by agentdesk")]
    Unknown {
        /// The row's format.
        found: u32,
    },
    /// The text does not decode in its format.
    #[error("format {format}: {reason}")]
    Undecodable {
        /// The row's format.
        format: u32,
        /// Why.
        reason: String,
    },
}

/// Encodes a batch (in sequence, without gaps: the caller checks) in the current format.
pub fn encode(events: &[Stamped], into: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    let rows: Vec<(Millis, &CoreEvent)> = events.iter().map(|s| (s.at, &s.event)).collect();
    serde_json::to_writer(into, &rows)
}

/// Decodes one row written in `format` whose first event is `first_seq`, upgrading old formats.
pub fn decode(format: u32, first_seq: u64, text: &str) -> Result<Vec<Stamped>, FormatError> {
    let undecodable = |format: u32| {
        move |e: serde_json::Error| FormatError::Undecodable {
            format,
            reason: e.to_string(),
        }
    };
    let events: Vec<(Millis, CoreEvent)> = match format {
        CURRENT => serde_json::from_str(text).map_err(undecodable(CURRENT))?,
        f if f > CURRENT => return Err(FormatError::Future { found: f }),
        f if f < OLDEST => return Err(FormatError::Unknown { found: f }),
        old => {
            let value: Value = serde_json::from_str(text).map_err(undecodable(old))?;
            let current = upgrade(old, first_seq, value)?;
            serde_json::from_value(current).map_err(undecodable(CURRENT))?
        }
    };
    Ok(events
        .into_iter()
        .zip(first_seq..)
        .map(|((at, event), seq)| Stamped { seq, at, event })
        .collect())
}

/// Runs the upgrade steps from `format` up to `CURRENT`, one version at a time.
fn upgrade(mut format: u32, first_seq: u64, mut value: Value) -> Result<Value, FormatError> {
    while format < CURRENT {
        value = match format {
            1 => v1_to_v2(first_seq, value)?,
            other => return Err(FormatError::Unknown { found: other }),
        };
        format += 1;
    }
    Ok(value)
}

/// Format 1 → 2: `{"seq", "at", "event"}` objects become `[at, event]` pairs; the sequence
/// numbers must run from the row's `first_seq` without a gap (they are dropped).
fn v1_to_v2(first_seq: u64, value: Value) -> Result<Value, FormatError> {
    let bad = |reason: String| FormatError::Undecodable { format: 1, reason };
    let Value::Array(events) = value else {
        return Err(bad("not an array of events".into()));
    };
    let mut upgraded = Vec::with_capacity(events.len());
    for (expected, event) in (first_seq..).zip(events) {
        let Value::Object(mut fields) = event else {
            return Err(bad(format!("event {expected} is not an object")));
        };
        let seq = fields.get("seq").and_then(Value::as_u64);
        if seq != Some(expected) {
            return Err(bad(format!("event {expected} has seq {seq:?}")));
        }
        let at = fields
            .remove("at")
            .filter(Value::is_u64)
            .ok_or_else(|| bad(format!("event {expected} has no time")))?;
        let event = fields
            .remove("event")
            .ok_or_else(|| bad(format!("event {expected} has no event")))?;
        upgraded.push(Value::Array(vec![at, event]));
    }
    Ok(Value::Array(upgraded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dnd(seq: u64, on: bool) -> Stamped {
        Stamped {
            seq,
            at: 1000 + seq,
            event: CoreEvent::DndChanged {
                agent: "ann".into(),
                on,
            },
        }
    }

    #[test]
    fn the_current_format_reads_back_what_it_wrote_with_its_sequence_numbers() {
        let batch = vec![dnd(7, true), dnd(8, false)];
        let mut text = Vec::new();
        encode(&batch, &mut text).expect("encode");
        let text = String::from_utf8(text).expect("utf-8");
        assert_eq!(
            text,
            r#"[[1007,{"kind":"dnd-changed","agent":"ann","on":true}],[1008,{"kind":"dnd-changed","agent":"ann","on":false}]]"#
        );
        assert_eq!(decode(CURRENT, 7, &text), Ok(batch));
    }

    #[test]
    fn a_format_1_row_written_before_formats_had_numbers_is_upgraded() {
        // Exactly as `serde_json::to_writer(&[Stamped])` wrote rows before format 2, including an
        // event from before 1.1 (`interaction-rejected` without its `code`).
        let v1 = r#"[{"seq":3,"at":1003,"event":{"kind":"dnd-changed","agent":"ann","on":true}},{"seq":4,"at":1004,"event":{"kind":"interaction-rejected","key":9,"reason":"nobody"}}]"#;
        let events = decode(1, 3, v1).expect("upgraded");
        assert_eq!(events[0], dnd(3, true));
        assert_eq!(
            events[1],
            Stamped {
                seq: 4,
                at: 1004,
                event: CoreEvent::InteractionRejected {
                    key: 9,
                    reason: "nobody".into(),
                    code: plugin_api::RejectCode::default(),
                }
            }
        );
    }

    #[test]
    fn a_format_1_row_whose_sequence_numbers_do_not_follow_its_first_is_refused() {
        let v1 = r#"[{"seq":3,"at":1003,"event":{"kind":"dnd-changed","agent":"ann","on":true}},{"seq":5,"at":1004,"event":{"kind":"dnd-changed","agent":"ann","on":true}}]"#;
        let err = decode(1, 3, v1).unwrap_err();
        assert!(err.to_string().contains("event 4 has seq Some(5)"), "{err}");
    }

    #[test]
    fn a_row_from_a_newer_agentdesk_is_a_typed_error_not_a_skip() {
        assert_eq!(
            decode(CURRENT + 1, 1, "[]"),
            Err(FormatError::Future { found: CURRENT + 1 })
        );
        assert_eq!(decode(0, 1, "[]"), Err(FormatError::Unknown { found: 0 }));
    }

    #[test]
    fn an_unknown_event_kind_is_an_error_naming_the_format() {
        let err = decode(CURRENT, 1, r#"[[1,{"kind":"agent-teleported"}]]"#).unwrap_err();
        assert!(
            matches!(&err, FormatError::Undecodable { format: CURRENT, reason } if reason.contains("agent-teleported")),
            "{err}"
        );
    }
}
