//! The dead-letter output: standard error, a file, or a Kafka topic. Every entry is a JSON
//! object with the original event, the reason, the stage and where the event came from.
//! A write returns only once the entries are durable (flushed, or acknowledged by Kafka),
//! because dead-lettered events count as handled for offset commits.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde::Deserialize;

use crate::source::SourceConfig;

/// The `[dead_letter]` table.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum DeadLetterConfig {
    /// One JSON object per line on standard error.
    #[default]
    Stderr,
    /// One JSON object per line in a file, appended to (so entries from before a restart
    /// are kept).
    File {
        /// The file (relative to the config file).
        path: PathBuf,
    },
    /// One JSON object per message on a Kafka topic.
    Kafka {
        /// The topic. Default: `<source topic>-dlq`, per event.
        #[serde(default)]
        topic: Option<String>,
        /// Bootstrap brokers. Default: the Kafka source's.
        #[serde(default)]
        brokers: Option<String>,
        /// librdkafka producer properties, passed through.
        #[serde(default)]
        options: BTreeMap<String, String>,
    },
}

impl DeadLetterConfig {
    pub(crate) fn resolve(&mut self, base: &Path) {
        if let DeadLetterConfig::File { path } = self {
            *path = crate::config::resolve(base, path);
        }
    }

    /// Checks the combination with the source.
    pub fn validate(&self, source: &SourceConfig) -> Result<(), String> {
        if let DeadLetterConfig::Kafka { topic, brokers, .. } = self {
            let kafka_source = matches!(source, SourceConfig::Kafka(_));
            if brokers.is_none() && !kafka_source {
                return Err("dead_letter.brokers: required when the source is not Kafka".into());
            }
            if topic.is_none() && !kafka_source {
                return Err("dead_letter.topic: required when the source is not Kafka".into());
            }
        }
        Ok(())
    }
}

/// An open dead-letter output.
pub enum DeadLetterOut {
    /// A file or standard error.
    Write(Mutex<Box<dyn Write + Send>>),
    /// A Kafka topic.
    Kafka {
        /// The producer.
        producer: FutureProducer,
        /// A fixed topic, or `None` for `<source topic>-dlq`.
        topic: Option<String>,
    },
}

impl DeadLetterOut {
    /// Opens the configured output.
    pub fn open(config: &DeadLetterConfig, source: &SourceConfig) -> anyhow::Result<Self> {
        Ok(match config {
            DeadLetterConfig::Stderr => {
                DeadLetterOut::Write(Mutex::new(Box::new(std::io::stderr())))
            }
            DeadLetterConfig::File { path } => {
                DeadLetterOut::Write(Mutex::new(create(path, "dead_letter", true)?))
            }
            DeadLetterConfig::Kafka {
                topic,
                brokers,
                options,
            } => {
                let brokers = match (brokers, source) {
                    (Some(b), _) => b.clone(),
                    (None, SourceConfig::Kafka(k)) => k.brokers.clone(),
                    (None, _) => {
                        anyhow::bail!("dead_letter.brokers: required when the source is not Kafka")
                    }
                };
                let mut client = ClientConfig::new();
                client
                    .set("bootstrap.servers", &brokers)
                    .set("acks", "all")
                    .set("enable.idempotence", "true")
                    .set("client.id", "weir-dead-letter");
                for (k, v) in options {
                    client.set(k, v);
                }
                let producer = client.create().map_err(|e| {
                    anyhow::anyhow!("dead_letter: cannot create the Kafka producer: {e}")
                })?;
                DeadLetterOut::Kafka {
                    producer,
                    topic: topic.clone(),
                }
            }
        })
    }

    /// Writes NDJSON entries and returns once they are durable.
    pub async fn write(&self, lines: &[u8]) -> anyhow::Result<()> {
        match self {
            DeadLetterOut::Write(out) => {
                let mut out = out.lock().unwrap_or_else(PoisonError::into_inner);
                out.write_all(lines)?;
                out.flush()?;
                Ok(())
            }
            DeadLetterOut::Kafka { producer, topic } => {
                let mut deliveries = Vec::new();
                for line in lines.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    let (default_topic, key) = topic_and_key(line);
                    let target = topic.clone().unwrap_or(default_topic);
                    let mut payload = std::borrow::Cow::Borrowed(line);
                    loop {
                        let record = FutureRecord::to(&target).payload(&payload[..]).key(&key);
                        match producer.send_result(record) {
                            Ok(delivery) => {
                                deliveries.push(delivery);
                                break;
                            }
                            Err((
                                KafkaError::MessageProduction(
                                    RDKafkaErrorCode::MessageSizeTooLarge,
                                ),
                                _,
                            )) if payload.len() > TRUNCATED_EVENT_BYTES * 2 => {
                                // An entry Kafka cannot hold would be retried forever and
                                // hold back its partition's commits: keep the start of the
                                // event and say so.
                                payload = std::borrow::Cow::Owned(truncate_event(line));
                            }
                            Err((
                                KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                                _,
                            )) => {
                                // Wait for what is queued, then try again.
                                for delivery in deliveries.drain(..) {
                                    confirm(delivery.await)?;
                                }
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                            Err((e, _)) => anyhow::bail!("dead_letter: Kafka produce failed: {e}"),
                        }
                    }
                }
                for delivery in deliveries {
                    confirm(delivery.await)?;
                }
                Ok(())
            }
        }
    }

    /// Flushes buffered output.
    pub async fn flush(&self) -> anyhow::Result<()> {
        if let DeadLetterOut::Write(out) = self {
            out.lock().unwrap_or_else(PoisonError::into_inner).flush()?;
        }
        Ok(())
    }
}

/// How much of an event a dead-letter message keeps when the whole entry is larger than
/// the producer's `message.max.bytes`.
const TRUNCATED_EVENT_BYTES: usize = 256 << 10;

/// The entry with its `event` cut to [`TRUNCATED_EVENT_BYTES`] (on a character boundary),
/// marked `event_truncated` with the original `event_bytes`.
fn truncate_event(line: &[u8]) -> Vec<u8> {
    let Ok(serde_json::Value::Object(mut entry)) = serde_json::from_slice(line) else {
        return line[..line.len().min(TRUNCATED_EVENT_BYTES)].to_vec();
    };
    if let Some(serde_json::Value::String(event)) = entry.get_mut("event") {
        let original = event.len();
        let mut cut = TRUNCATED_EVENT_BYTES.min(original);
        while !event.is_char_boundary(cut) {
            cut -= 1;
        }
        event.truncate(cut);
        entry.insert("event_truncated".into(), true.into());
        entry.insert("event_bytes".into(), original.into());
    }
    serde_json::to_vec(&entry).unwrap_or_default()
}

/// Turns a delivery report into a result.
fn confirm<Canceled>(
    report: Result<rdkafka::producer::future_producer::OwnedDeliveryResult, Canceled>,
) -> anyhow::Result<()> {
    match report {
        Ok(Ok(_)) => Ok(()),
        Ok(Err((e, _))) => anyhow::bail!("dead_letter: Kafka did not take the entry: {e}"),
        Err(_) => anyhow::bail!("dead_letter: the Kafka producer went away"),
    }
}

/// Where an entry's event came from, read back from the entry (the fields
/// [`DeadLetter::write_json_line`](crate::event::DeadLetter::write_json_line) writes).
#[derive(serde::Deserialize)]
struct EntryOrigin {
    topic: Option<String>,
    partition: Option<i32>,
    offset: Option<u64>,
    source: Option<String>,
    position: Option<u64>,
}

/// An entry's dead-letter topic (`<source topic>-dlq`, or `weir-dlq` for other inputs)
/// and its message key: the event's `_id`, `topic-partition-offset`.
fn topic_and_key(line: &[u8]) -> (String, String) {
    let Ok(e) = serde_json::from_slice::<EntryOrigin>(line) else {
        return ("weir-dlq".into(), String::new());
    };
    let dlq = format!("{}-dlq", e.topic.as_deref().unwrap_or("weir"));
    let origin = crate::event::Origin {
        source: e.topic.or(e.source).unwrap_or_default().into(),
        partition: e.partition,
        position: e.offset.or(e.position).unwrap_or_default(),
        timestamp_ms: None,
    };
    (dlq, origin.document_id())
}

/// Opens a file (and creates its directory) for buffered writing, truncated or appended.
pub(crate) fn create(
    path: &Path,
    section: &str,
    append: bool,
) -> anyhow::Result<Box<dyn Write + Send>> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("{section}: cannot create {}: {e}", dir.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(path)
        .map_err(|e| anyhow::anyhow!("{section}: cannot create {}: {e}", path.display()))?;
    Ok(Box::new(std::io::BufWriter::with_capacity(1 << 20, file)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversize_entries_keep_the_start_of_the_event_and_say_so() {
        let event = format!("{{\"quote\":\"{}\"", "\u{e9}\"".repeat(400_000));
        let mut line = Vec::new();
        crate::event::DeadLetter {
            raw: event.clone(),
            reason: "invalid JSON".into(),
            stage: crate::event::Stage::Decode,
            origin: crate::event::Origin::line("in".into(), 1),
        }
        .write_json_line(&mut line);
        let small = truncate_event(&line[..line.len() - 1]);
        assert!(small.len() < 2 * TRUNCATED_EVENT_BYTES, "{}", small.len());
        let v: serde_json::Value = serde_json::from_slice(&small).unwrap();
        assert_eq!(v["event_truncated"], true);
        assert_eq!(v["event_bytes"], event.len());
        assert!(event.starts_with(v["event"].as_str().unwrap()));
        assert_eq!(v["reason"], "invalid JSON");
        assert_eq!(v["position"], 1);
    }

    #[test]
    fn entries_name_their_dlq_topic_and_key() {
        let line = br#"{"event":"x","reason":"r","stage":"decode","plugin":null,"topic":"python-logs","partition":2,"offset":9}"#;
        assert_eq!(
            topic_and_key(line),
            ("python-logs-dlq".into(), "python-logs-2-9".into())
        );
        let file_line = br#"{"event":"x","source":"in.ndjson","position":4}"#;
        assert_eq!(
            topic_and_key(file_line),
            ("weir-dlq".into(), "in.ndjson-4".into())
        );
    }
}
