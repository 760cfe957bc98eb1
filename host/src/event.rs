//! An event inside Weir, and what becomes of one that cannot be processed.

use std::sync::Arc;

use serde_json::Value;
use weir_wire::doc::{Doc, Rejection};

/// Where an event came from: enough to find it again, to commit past it, and to give it
/// an `_id` that is the same every time it is replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The input: a file path, `stdin`, or a Kafka topic.
    pub source: Arc<str>,
    /// The Kafka partition; `None` for files and stdin.
    pub partition: Option<i32>,
    /// 1-based line number in a file, or the offset in a Kafka partition.
    pub position: u64,
    /// The Kafka record's timestamp (ms since the epoch), so an event without
    /// `@timestamp` is filed under the same dated index however late it is replayed.
    pub timestamp_ms: Option<i64>,
}

impl Origin {
    /// A line of a file (or stdin).
    pub fn line(source: Arc<str>, line: u64) -> Self {
        Origin {
            source,
            partition: None,
            position: line,
            timestamp_ms: None,
        }
    }

    /// The document `_id`: `topic-partition-offset` for Kafka, `source-line` otherwise.
    /// Stable across replays, which is what makes `create` writes idempotent.
    pub fn document_id(&self) -> String {
        match self.partition {
            Some(p) => format!("{}-{p}-{}", self.source, self.position),
            None => format!("{}-{}", self.source, self.position),
        }
    }
}

/// A parsed event on its way through the chain.
#[derive(Debug, Clone)]
pub struct Event {
    /// The event: its original text, validated once, with the plugins' edits laid over
    /// it. The text stays as it arrived, so a dead-letter entry can carry it.
    pub doc: Doc,
    /// The route target set by the last plugin that routed the event.
    pub route: Option<String>,
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
    /// Elasticsearch rejected the document (a per-item 4xx such as a mapping conflict), or
    /// retries were bounded by config and ran out.
    Elasticsearch,
}

/// An event that could not be processed, with why and where.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The event as it arrived.
    pub raw: String,
    /// Why it was given up on. Shared: a batch that fails as a whole gives every one of
    /// its events the same reason, and a plugin's reason can be up to 4 KiB.
    pub reason: Arc<str>,
    /// Where in the pipeline.
    pub stage: Stage,
    /// Where it came from.
    pub origin: Origin,
}

impl DeadLetter {
    /// Appends this entry as one JSON line: `event` (the original text), `reason`,
    /// `stage` (`decode`, `plugin`, `sink` or `elasticsearch`), `plugin` (when a plugin),
    /// then `topic`, `partition`, `offset` for Kafka input or `source`, `position` otherwise.
    pub fn write_json_line(&self, out: &mut Vec<u8>) {
        let (stage, plugin) = match &self.stage {
            Stage::Decode => ("decode", None),
            Stage::Plugin(name) => ("plugin", Some(&**name)),
            Stage::Sink => ("sink", None),
            Stage::Elasticsearch => ("elasticsearch", None),
        };
        let mut entry = serde_json::json!({
            "event": self.raw,
            "reason": &*self.reason,
            "stage": stage,
            "plugin": plugin,
        });
        if let Value::Object(map) = &mut entry {
            let o = &self.origin;
            match o.partition {
                Some(partition) => {
                    map.insert("topic".into(), Value::from(&*o.source));
                    map.insert("partition".into(), Value::from(partition));
                    map.insert("offset".into(), Value::from(o.position));
                }
                None => {
                    map.insert("source".into(), Value::from(&*o.source));
                    map.insert("position".into(), Value::from(o.position));
                }
            }
        }
        let _ = serde_json::to_writer(&mut *out, &entry);
        out.push(b'\n');
    }
}

/// The bounds every event is held to (`[pipeline]`): what a log line may be on the way
/// in, and what the chain may make of it on the way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventLimits {
    /// Largest input line, in bytes.
    pub max_bytes: usize,
    /// Deepest nesting of objects and arrays (the event is level 1).
    pub max_depth: usize,
    /// Largest encoded output event, in bytes.
    pub max_output_bytes: usize,
}

impl Default for EventLimits {
    fn default() -> Self {
        crate::config::RunConfig::default().event_limits()
    }
}

/// Parses one input line into an event, or explains why it cannot be one.
pub fn decode(raw: String, origin: Origin, limits: &EventLimits) -> Result<Event, DeadLetter> {
    let fail = |raw: String, reason: String| DeadLetter {
        raw,
        reason: reason.into(),
        stage: Stage::Decode,
        origin: origin.clone(),
    };
    let max_bytes = limits.max_bytes;
    if raw.len() > max_bytes {
        let reason = format!(
            "event is {} bytes, over the limit of {max_bytes}",
            raw.len()
        );
        return Err(fail(raw, reason));
    }
    let failed = match Doc::parse_limited(raw, limits.max_depth) {
        Ok(doc) => {
            return Ok(Event {
                doc,
                route: None,
                origin,
            })
        }
        Err(failed) => failed,
    };
    let error = match failed.reason {
        Rejection::TooDeep { .. } | Rejection::EmptyKey | Rejection::LoneSurrogate { .. } => {
            let reason = format!("event {}", failed.reason);
            return Err(fail(failed.text, reason));
        }
        Rejection::Json(error) => error,
    };
    // Only lines that fail come here: parse again to say what the line holds instead.
    let found = |kind: &str| format!("not a JSON object: found {kind}");
    let reason = match serde_json::from_str::<Value>(&failed.text) {
        Ok(Value::Array(_)) => found("an array"),
        Ok(Value::String(_)) => found("a string"),
        Ok(Value::Number(_)) => found("a number"),
        Ok(Value::Bool(_)) => found("a boolean"),
        Ok(Value::Null) => found("null"),
        Ok(Value::Object(_)) => format!("invalid JSON: {error}"),
        Err(e) => format!("invalid JSON: {e}"),
    };
    Err(fail(failed.text, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin::line("in.ndjson".into(), 7)
    }

    fn limits(max_bytes: usize) -> EventLimits {
        EventLimits {
            max_bytes,
            ..EventLimits::default()
        }
    }

    #[test]
    fn objects_decode_and_everything_else_is_dead_lettered_with_a_reason() {
        assert!(decode(r#"{"a":1}"#.into(), origin(), &limits(100)).is_ok());
        let dl = decode(r#"{"a":"#.into(), origin(), &limits(100)).unwrap_err();
        assert!(
            dl.reason.starts_with("invalid JSON: EOF while parsing"),
            "{}",
            dl.reason
        );
        assert_eq!(dl.raw, r#"{"a":"#);
        assert_eq!(
            &*decode("[1]".into(), origin(), &limits(100))
                .unwrap_err()
                .reason,
            "not a JSON object: found an array"
        );
        let big = decode(
            format!("{{\"a\":\"{}\"}}", "x".repeat(200)),
            origin(),
            &limits(100),
        )
        .unwrap_err();
        assert!(
            big.reason.contains("over the limit of 100"),
            "{}",
            big.reason
        );
        let deep = format!(r#"{{"a":{}1{}}}"#, "[".repeat(200), "]".repeat(200));
        let dl = decode(deep.clone(), origin(), &limits(1 << 20)).unwrap_err();
        assert_eq!(
            &*dl.reason,
            "event nests objects and arrays deeper than 128 levels (the limit is `pipeline.max_depth`)"
        );
        assert_eq!(dl.raw, deep);
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

    #[test]
    fn kafka_entries_name_topic_partition_and_offset_and_ids_are_stable() {
        let origin = Origin {
            source: "python-logs".into(),
            partition: Some(3),
            position: 42,
            timestamp_ms: Some(1),
        };
        assert_eq!(origin.document_id(), "python-logs-3-42");
        assert_eq!(
            Origin::line("in.ndjson".into(), 7).document_id(),
            "in.ndjson-7"
        );
        let dl = DeadLetter {
            raw: "x".into(),
            reason: "invalid JSON".into(),
            stage: Stage::Decode,
            origin,
        };
        let mut out = Vec::new();
        dl.write_json_line(&mut out);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"event": "x", "reason": "invalid JSON", "stage": "decode", "plugin": null, "topic": "python-logs", "partition": 3, "offset": 42})
        );
    }
}
