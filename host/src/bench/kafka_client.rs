//! The Kafka client side the Kafka benchmark and the end-to-end tests share: creating a
//! topic, filling it, and reading a group's committed offsets back, through librdkafka as
//! Weir itself uses it.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// Creates `topic` with `partitions` partitions, replication 1.
pub fn create_topic(
    runtime: &tokio::runtime::Runtime,
    brokers: &str,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for result in runtime.block_on(admin.create_topics([&new], &AdminOptions::new()))? {
        result.map_err(|(t, e)| anyhow::anyhow!("create topic {t}: {e}"))?;
    }
    Ok(())
}

/// Produces `(key, payload)` records (text or bytes: the tests also send invalid UTF-8);
/// returns where each landed (partition, offset).
///
/// One record per batch: Tansu 0.6.0 answers a fetch from an offset inside a stored batch
/// with the *next* batch, silently skipping the rest of that batch (real Kafka returns the
/// containing batch and the client skips ahead). Any resume from a committed offset, a
/// pause or a rebalance would otherwise lose records to the broker, not to Weir.
pub fn produce<K: AsRef<[u8]>, V: AsRef<[u8]>>(
    runtime: &tokio::runtime::Runtime,
    brokers: &str,
    topic: &str,
    records: &[(K, V)],
) -> anyhow::Result<Vec<(i32, i64)>> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "0")
        .set("batch.num.messages", "1")
        .set("queue.buffering.max.messages", "2000000")
        .create()?;
    runtime.block_on(async {
        let mut deliveries = Vec::with_capacity(records.len());
        for (key, payload) in records {
            let record = FutureRecord::to(topic)
                .key(key.as_ref())
                .payload(payload.as_ref());
            deliveries.push(
                producer
                    .send_result(record)
                    .map_err(|(e, _)| anyhow::anyhow!("produce: {e}"))?,
            );
        }
        let mut placed = Vec::with_capacity(records.len());
        for d in deliveries {
            let delivery = d
                .await
                .map_err(|_| anyhow::anyhow!("producer went away"))?
                .map_err(|(e, _)| anyhow::anyhow!("produce: {e}"))?;
            placed.push((delivery.partition, delivery.offset));
        }
        Ok(placed)
    })
}

/// Each partition's end offset (highest + 1) from where records landed.
pub fn ends(placed: &[(i32, i64)]) -> BTreeMap<i32, i64> {
    let mut ends = BTreeMap::new();
    for (p, o) in placed {
        let end = ends.entry(*p).or_insert(0);
        *end = (*end).max(o + 1);
    }
    ends
}

/// The committed offsets of `consumer`'s group for partitions `0..partitions` of `topic`
/// (absent ones as -1).
pub fn committed(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        list.add_partition(topic, p);
    }
    let committed = consumer.committed_offsets(list, Duration::from_secs(10))?;
    Ok(committed
        .elements()
        .iter()
        .map(|e| {
            let offset = match e.offset() {
                Offset::Offset(o) => o,
                _ => -1,
            };
            (e.partition(), offset)
        })
        .collect())
}
