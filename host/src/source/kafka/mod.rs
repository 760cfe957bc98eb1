//! The Kafka source: a consumer-group member that reads JSON events, tracks every offset
//! until the sink has handled it, commits only contiguous watermarks, and pauses its
//! partitions when too much is in flight (Elasticsearch slow or down), so memory stays
//! bounded and Kafka does the buffering.

mod context;

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde::Deserialize;

use super::offsets::OffsetTracker;
use super::{Chunk, Receipt, Record, Records, Source};
use crate::event::Origin;

use context::GroupContext;

/// The `[source]` table with `type = "kafka"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// `host:port[,host:port...]` of the bootstrap brokers.
    pub brokers: String,
    /// The topics to consume.
    pub topics: Vec<String>,
    /// The consumer group; processes sharing it share the partitions.
    ///
    /// Default: `weir`.
    #[serde(default = "default_group")]
    pub group_id: String,
    /// How often moved watermarks are committed, in milliseconds.
    ///
    /// Default: 1000.
    #[serde(default = "default_commit_interval")]
    pub commit_interval_ms: u64,
    /// Raw event bytes read but not yet handled by the sink above which consumption
    /// pauses, until half of that is handled. This bounds memory when Elasticsearch is
    /// slow or down; Kafka keeps the rest.
    ///
    /// Default: 16777216 (16 MiB).
    #[serde(default = "default_in_flight")]
    pub max_in_flight_bytes: usize,
    /// Any librdkafka consumer property, passed through as is and applied over Weir's
    /// defaults (see [`DEFAULT_OPTIONS`]).
    #[serde(default)]
    pub options: BTreeMap<String, toml::Value>,
}

fn default_group() -> String {
    "weir".into()
}

fn default_commit_interval() -> u64 {
    1000
}

fn default_in_flight() -> usize {
    16 << 20
}

/// librdkafka properties Weir sets unless `[source.options]` overrides them: offsets are
/// committed by Weir alone, a new group starts from the oldest retained event, group
/// joins and failure detection take seconds rather than the default ~45 s, the prefetch
/// queue is bounded so a paused consumer does not hold 64 MiB per process, and statistics
/// (for the lag metric) come every 10 s.
pub const DEFAULT_OPTIONS: &[(&str, &str)] = &[
    ("enable.auto.commit", "false"),
    ("enable.auto.offset.store", "false"),
    ("auto.offset.reset", "earliest"),
    ("session.timeout.ms", "10000"),
    ("heartbeat.interval.ms", "1000"),
    ("queued.max.messages.kbytes", "16384"),
    // Feeds `weir_kafka_consumer_lag`.
    ("statistics.interval.ms", "10000"),
    ("client.id", "weir"),
];

/// Options Weir relies on and an operator must not turn back on.
const FIXED_OPTIONS: &[(&str, &str)] = &[("enable.auto.commit", "false")];

impl KafkaConfig {
    /// The librdkafka configuration: defaults, then the operator's options.
    pub fn client_config(&self) -> Result<ClientConfig, String> {
        let mut config = ClientConfig::new();
        // Everything librdkafka logs goes to `tracing`, which filters (`WEIR_LOG`); left
        // alone, the crate derives the level from the `log` facade, which is off here.
        config.set_log_level(rdkafka::config::RDKafkaLogLevel::Debug);
        for (k, v) in DEFAULT_OPTIONS {
            config.set(*k, *v);
        }
        config.set("bootstrap.servers", &self.brokers);
        config.set("group.id", &self.group_id);
        for (key, value) in &self.options {
            let text = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(format!(
                        "source.options.{key}: expected a string, number or boolean, found {}",
                        other.type_str()
                    ))
                }
            };
            if let Some((_, fixed)) = FIXED_OPTIONS.iter().find(|(k, v)| k == key && *v != text) {
                return Err(format!(
                    "source.options.{key}: Weir commits offsets itself; this must stay {fixed}"
                ));
            }
            config.set(key, text);
        }
        Ok(config)
    }

    /// Checks what can be checked without a broker.
    pub fn validate(&self) -> Result<(), String> {
        if self.topics.is_empty() {
            return Err("source.topics: name at least one topic".into());
        }
        if self.brokers.trim().is_empty() {
            return Err("source.brokers: must not be empty".into());
        }
        if self.max_in_flight_bytes == 0 {
            return Err("source.max_in_flight_bytes: must be at least 1".into());
        }
        self.client_config().map(|_| ())
    }
}

/// State shared between the consumer thread and the receipts the sink completes.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    pub(crate) tracker: Mutex<OffsetTracker>,
    in_flight_bytes: AtomicUsize,
}

impl Shared {
    fn tracker(&self) -> std::sync::MutexGuard<'_, OffsetTracker> {
        // The tracker holds plain data; a panic elsewhere cannot leave it half-updated.
        self.tracker.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A consumer-group member handing chunks of records to the pipeline.
pub struct KafkaSource {
    consumer: BaseConsumer<GroupContext>,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    max_in_flight: usize,
    commit_every: Duration,
    last_commit: Instant,
    paused: bool,
    topics: HashMap<String, Arc<str>>,
}

/// How long a chunk waits for more records once it has one. Fuller chunks amortise the
/// per-batch plugin calls: 5 ms → 25 ms took `weir bench --suite kafka --es-url null` from
/// 17.2 to 14.6 CPU s per 1M events; 25 ms is nothing next to the sink's 1 s flush.
const LINGER: Duration = Duration::from_millis(25);
/// How long one poll waits when nothing is queued (also the stop-check interval).
const IDLE_POLL: Duration = Duration::from_millis(100);

impl KafkaSource {
    /// Joins the group and subscribes; `stop` ends the stream at the next chunk boundary.
    pub fn start(config: &KafkaConfig, stop: Arc<AtomicBool>) -> anyhow::Result<Self> {
        let client_config = config.client_config().map_err(|e| anyhow::anyhow!("{e}"))?;
        let shared = Arc::new(Shared::default());
        let consumer: BaseConsumer<GroupContext> = client_config
            .create_with_context(GroupContext::new(shared.clone()))
            .map_err(|e| anyhow::anyhow!("source: cannot create the Kafka consumer: {e}"))?;
        let topics: Vec<&str> = config.topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&topics)
            .map_err(|e| anyhow::anyhow!("source: cannot subscribe to {topics:?}: {e}"))?;
        tracing::info!(brokers = %config.brokers, group = %config.group_id, ?topics, "kafka source subscribed");
        Ok(KafkaSource {
            consumer,
            shared,
            stop,
            max_in_flight: config.max_in_flight_bytes,
            commit_every: Duration::from_millis(config.commit_interval_ms),
            last_commit: Instant::now(),
            paused: false,
            topics: HashMap::new(),
        })
    }

    /// Commits every watermark that moved. Failures are logged and retried at the next
    /// interval: a late commit only means a longer replay after a crash.
    fn commit(&mut self, mode: CommitMode) {
        self.last_commit = Instant::now();
        let moved = self.shared.tracker().to_commit();
        if moved.is_empty() {
            return;
        }
        let mut list = TopicPartitionList::new();
        for (topic, partition, offset) in &moved {
            if let Err(e) = list.add_partition_offset(topic, *partition, Offset::Offset(*offset)) {
                tracing::warn!(%topic, partition, offset, "kafka: cannot list offset to commit: {e}");
            }
        }
        match self.consumer.commit(&list, mode) {
            Ok(()) => crate::metrics::kafka_commit(moved.len(), true),
            Err(e) => {
                crate::metrics::kafka_commit(moved.len(), false);
                tracing::warn!("kafka: offset commit failed (retried at the next interval): {e}");
            }
        }
    }

    /// Pauses every assigned partition while too much is in flight, and resumes them once
    /// half of it is handled.
    fn apply_backpressure(&mut self) {
        let in_flight = self.shared.in_flight_bytes.load(Ordering::Acquire);
        let want_pause = if self.paused {
            in_flight > self.max_in_flight / 2
        } else {
            in_flight >= self.max_in_flight
        };
        if want_pause != self.paused || want_pause {
            // Re-applied while paused: a rebalance may have assigned new partitions.
            if let Ok(assignment) = self.consumer.assignment() {
                let result = if want_pause {
                    self.consumer.pause(&assignment)
                } else {
                    self.consumer.resume(&assignment)
                };
                if let Err(e) = result {
                    tracing::warn!("kafka: pause/resume failed: {e}");
                }
            }
            if want_pause != self.paused {
                tracing::info!(
                    in_flight_bytes = in_flight,
                    "kafka source {}",
                    if want_pause {
                        "paused: the sink is behind"
                    } else {
                        "resumed"
                    }
                );
                crate::metrics::kafka_paused(want_pause);
            }
            self.paused = want_pause;
        }
    }
}

impl Source for KafkaSource {
    fn next_chunk(&mut self, max: usize) -> anyhow::Result<Option<Chunk>> {
        let mut records: Vec<Record> = Vec::with_capacity(max);
        // (topic, partition, epoch) -> offsets, for the receipt.
        let mut handled: Vec<(Arc<str>, i32, u64, Vec<i64>)> = Vec::new();
        let mut bytes = 0usize;
        let mut first_at: Option<Instant> = None;
        loop {
            if self.stop.load(Ordering::Relaxed) && records.is_empty() {
                return Ok(None);
            }
            if self.last_commit.elapsed() >= self.commit_every {
                self.commit(CommitMode::Async);
            }
            if records.is_empty() {
                self.apply_backpressure();
            }
            let wait = match first_at {
                Some(at) => LINGER.saturating_sub(at.elapsed()),
                None => IDLE_POLL,
            };
            let message = match self.consumer.poll(wait) {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    tracing::warn!("kafka: consumer error: {e}");
                    continue;
                }
                None if !records.is_empty() => break,
                None => continue,
            };
            let topic = match self.topics.get(message.topic()) {
                Some(t) => t.clone(),
                None => {
                    let t: Arc<str> = message.topic().into();
                    self.topics.insert(message.topic().to_owned(), t.clone());
                    t
                }
            };
            let partition = message.partition();
            let offset = message.offset();
            let record = Record::from_bytes(
                message.payload().unwrap_or_default(),
                Origin {
                    source: topic,
                    partition: Some(partition),
                    position: offset.max(0) as u64,
                    timestamp_ms: message.timestamp().to_millis(),
                },
            );
            drop(message);
            let topic = &record.origin.source;
            let epoch = self.shared.tracker().received(topic, partition, offset);
            match handled
                .iter_mut()
                .find(|(t, p, e, _)| *p == partition && *e == epoch && t == topic)
            {
                Some((_, _, _, offsets)) => offsets.push(offset),
                None => handled.push((topic.clone(), partition, epoch, vec![offset])),
            }
            bytes += record.text.len();
            records.push(record);
            first_at.get_or_insert_with(Instant::now);
            if records.len() >= max {
                break;
            }
        }
        self.shared
            .in_flight_bytes
            .fetch_add(bytes, Ordering::AcqRel);
        let shared = self.shared.clone();
        let receipt = Receipt::new(move || {
            let mut tracker = shared.tracker();
            for (topic, partition, epoch, offsets) in handled {
                tracker.handled(&topic, partition, epoch, offsets);
            }
            drop(tracker);
            shared.in_flight_bytes.fetch_sub(bytes, Ordering::AcqRel);
        });
        Ok(Some(Chunk {
            records: Records::Split(records),
            receipt,
        }))
    }

    fn finish(&mut self) -> anyhow::Result<()> {
        self.commit(CommitMode::Sync);
        let in_flight = self.shared.tracker().in_flight();
        if in_flight > 0 {
            tracing::warn!(
                in_flight,
                "kafka: stopping with events not yet handled; they will be read again"
            );
        }
        self.consumer.unsubscribe();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(options: &str) -> KafkaConfig {
        toml::from_str(&format!(
            "brokers = \"k:9092\"\ntopics = [\"logs\"]\n[options]\n{options}"
        ))
        .unwrap()
    }

    #[test]
    fn options_pass_through_over_the_defaults() {
        let c = config("\"session.timeout.ms\" = 6000\n\"fetch.min.bytes\" = \"1\"");
        let cc = c.client_config().unwrap();
        assert_eq!(cc.get("session.timeout.ms"), Some("6000"));
        assert_eq!(cc.get("fetch.min.bytes"), Some("1"));
        assert_eq!(cc.get("enable.auto.commit"), Some("false"));
        assert_eq!(cc.get("group.id"), Some("weir"));
        assert_eq!(cc.get("bootstrap.servers"), Some("k:9092"));
    }

    #[test]
    fn auto_commit_cannot_be_turned_back_on() {
        let err = config("\"enable.auto.commit\" = true")
            .validate()
            .unwrap_err();
        assert!(
            err.starts_with("source.options.enable.auto.commit"),
            "{err}"
        );
        let err = config("nested = { a = 1 }").validate().unwrap_err();
        assert!(err.contains("found table"), "{err}");
    }
}
