//! An event inside Weir, and what becomes of one that cannot be processed.

use std::sync::Arc;

use serde_json::Value;

/// Where an event came from: enough to find it again, and to commit past it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The input: a file path, `stdin`, or a Kafka topic.
    pub source: Arc<str>,
    /// 1-based line number in a file, or the offset in a Kafka partition.
    pub position: u64,
}

/// A parsed event on its way through the chain.
#[derive(Debug, Clone)]
pub struct Event {
    /// The event, parsed once; plugins' edits are applied here.
    pub body: Value,
    /// The route target set by the last plugin that routed the event.
    pub route: Option<String>,
    /// The original text, kept so a dead-letter entry can carry the event as it arrived.
    pub raw: String,
    /// Where it came from.
    pub origin: Origin,
}

/// The stage at which an event was given up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// The input line was not a JSON object, or was too large.
    Decode,
    /// A plugin failed the event, or failed its batch under `fail-closed`.
    Plugin(Arc<str>),
    /// The sink refused it.
    Sink,
}

/// An event that could not be processed, with why and where.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The event as it arrived.
    pub raw: String,
    /// Why it was given up on.
    pub reason: String,
    /// Where in the pipeline.
    pub stage: Stage,
    /// Where it came from.
    pub origin: Origin,
}

impl DeadLetter {
    /// Appends this entry as one JSON line: `event` (the original text), `reason`,
    /// `stage` (`decode`, `plugin` or `sink`), `plugin` (when a plugin), `source`, `position`.
    pub fn write_json_line(&self, out: &mut Vec<u8>) {
        let (stage, plugin) = match &self.stage {
            Stage::Decode => ("decode", None),
            Stage::Plugin(name) => ("plugin", Some(&**name)),
            Stage::Sink => ("sink", None),
        };
        let entry = serde_json::json!({
            "event": self.raw,
            "reason": self.reason,
            "stage": stage,
            "plugin": plugin,
            "source": &*self.origin.source,
            "position": self.origin.position,
        });
        let _ = serde_json::to_writer(&mut *out, &entry);
        out.push(b'\n');
    }
}

/// Parses one input line into an event, or explains why it cannot be one.
pub fn decode(raw: String, origin: Origin, max_bytes: usize) -> Result<Event, DeadLetter> {
    let fail = |raw: String, reason: String| DeadLetter {
        raw,
        reason,
        stage: Stage::Decode,
        origin: origin.clone(),
    };
    if raw.len() > max_bytes {
        let reason = format!(
            "event is {} bytes, over the limit of {max_bytes}",
            raw.len()
        );
        return Err(fail(raw, reason));
    }
    match serde_json::from_str::<Value>(&raw) {
        Ok(body @ Value::Object(_)) => Ok(Event {
            body,
            route: None,
            raw,
            origin,
        }),
        Ok(other) => {
            let kind = match other {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Bool(_) => "a boolean",
                _ => "null",
            };
            Err(fail(raw, format!("not a JSON object: found {kind}")))
        }
        Err(e) => {
            let reason = format!("invalid JSON: {e}");
            Err(fail(raw, reason))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            source: "in.ndjson".into(),
            position: 7,
        }
    }

    #[test]
    fn objects_decode_and_everything_else_is_dead_lettered_with_a_reason() {
        assert!(decode(r#"{"a":1}"#.into(), origin(), 100).is_ok());
        let dl = decode(r#"{"a":"#.into(), origin(), 100).unwrap_err();
        assert!(
            dl.reason.starts_with("invalid JSON: EOF while parsing"),
            "{}",
            dl.reason
        );
        assert_eq!(dl.raw, r#"{"a":"#);
        assert_eq!(
            decode("[1]".into(), origin(), 100).unwrap_err().reason,
            "not a JSON object: found an array"
        );
        let big = decode(format!("{{\"a\":\"{}\"}}", "x".repeat(200)), origin(), 100).unwrap_err();
        assert!(
            big.reason.contains("over the limit of 100"),
            "{}",
            big.reason
        );
    }

    #[test]
    fn dead_letter_lines_carry_event_reason_stage_plugin_and_position() {
        let dl = DeadLetter {
            raw: "{bad".into(),
            reason: "r".into(),
            stage: Stage::Plugin("geo".into()),
            origin: origin(),
        };
        let mut out = Vec::new();
        dl.write_json_line(&mut out);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"event": "{bad", "reason": "r", "stage": "plugin", "plugin": "geo", "source": "in.ndjson", "position": 7})
        );
    }
}
