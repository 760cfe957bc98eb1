//! The consumer's callbacks: on a partition revocation, commit what is safe before the
//! partition goes to another group member; route librdkafka's logs into `tracing` and its
//! statistics into the lag metric.

use std::sync::Arc;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::{Offset, TopicPartitionList};

use super::Shared;

/// Rebalance and log callbacks for the Kafka source.
pub(crate) struct GroupContext {
    shared: Arc<Shared>,
}

impl GroupContext {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        GroupContext { shared }
    }
}

impl ClientContext for GroupContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => tracing::error!(target: "librdkafka", "{fac}: {message}"),
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", "{fac}: {message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", "{fac}: {message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", "{fac}: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(target: "librdkafka", "{error}: {reason}");
    }

    /// librdkafka's periodic statistics (`statistics.interval.ms`): per-partition lag
    /// behind the high watermark, counted from the last committed offset, so it includes
    /// events read but not yet in Elasticsearch.
    fn stats(&self, statistics: Statistics) {
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    crate::metrics::kafka_lag(topic, *partition, p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(list) => {
                tracing::info!(partitions = %describe(list), "kafka: partitions assigned");
            }
            Rebalance::Revoke(list) => {
                // Lost (session expired) partitions already belong to someone else:
                // committing for them could move the new owner's position backwards.
                let lost = consumer.assignment_lost();
                let mut commit = TopicPartitionList::new();
                {
                    let mut tracker = self.shared.tracker();
                    for e in list.elements() {
                        let Some(watermark) = tracker.revoke(e.topic(), e.partition()) else {
                            continue;
                        };
                        if !lost {
                            let _ = commit.add_partition_offset(
                                e.topic(),
                                e.partition(),
                                Offset::Offset(watermark),
                            );
                        }
                    }
                }
                if commit.count() > 0 {
                    if let Err(e) = consumer.commit(&commit, CommitMode::Sync) {
                        tracing::warn!("kafka: commit on revocation failed: {e}");
                    }
                }
                tracing::info!(
                    partitions = %describe(list),
                    lost,
                    committed = %describe(&commit),
                    "kafka: partitions revoked"
                );
            }
            Rebalance::Error(e) => tracing::warn!("kafka: rebalance error: {e}"),
        }
    }
}

fn describe(list: &TopicPartitionList) -> String {
    list.elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => format!("{}[{}]@{o}", e.topic(), e.partition()),
            _ => format!("{}[{}]", e.topic(), e.partition()),
        })
        .collect::<Vec<_>>()
        .join(",")
}
