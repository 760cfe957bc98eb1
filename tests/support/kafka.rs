//! Kafka for the tests: a Tansu broker started per test on a free port (in memory), or the
//! cluster named by `WEIR_TEST_KAFKA` (`host:port`), plus a producer, topic creation and
//! committed-offset read-back, all through librdkafka as Weir itself uses it.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// A broker for one test.
pub struct Kafka {
    /// `host:port`.
    pub brokers: String,
    child: Option<Child>,
    runtime: tokio::runtime::Runtime,
}

impl Drop for Kafka {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            super::kill_group(child);
        }
    }
}

/// Whether the tests use an external cluster.
pub fn external() -> Option<String> {
    std::env::var("WEIR_TEST_KAFKA")
        .ok()
        .filter(|s| !s.is_empty())
}

impl Kafka {
    /// Starts Tansu (or connects to `WEIR_TEST_KAFKA`).
    pub fn start() -> Kafka {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime");
        if let Some(brokers) = external() {
            return Kafka {
                brokers,
                child: None,
                runtime,
            };
        }
        let port = super::free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = super::spawn_group(
            Command::new(tansu())
                .args([
                    "broker",
                    "--listener-url",
                    &url,
                    "--advertised-listener-url",
                    &url,
                    "--storage-engine",
                    "memory://tansu/",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .unwrap_or_else(|e| {
                panic!("cannot start tansu ({e}); install it with `cargo install tansu --locked --features dynostore` (scripts/setup.sh does)")
            });
        let brokers = format!("127.0.0.1:{port}");
        super::wait_for_port(port, Duration::from_secs(20));
        Kafka {
            brokers,
            child: Some(child),
            runtime,
        }
    }

    /// Creates a topic (a unique name is the caller's business).
    pub fn create_topic(&self, name: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .create()
            .expect("admin client");
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        let results = self
            .runtime
            .block_on(admin.create_topics([&topic], &AdminOptions::new()))
            .expect("create topics");
        for r in results {
            r.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
        }
    }

    /// Produces `(key, payload)` records; returns where each landed (partition, offset).
    ///
    /// One record per batch: Tansu 0.6.0 answers a fetch from an offset inside a stored
    /// batch with the *next* batch, silently skipping the rest of that batch (real Kafka
    /// returns the containing batch and the client skips ahead). Any resume from a
    /// committed offset or a pause would lose records to the broker, not to Weir.
    pub fn produce(&self, topic: &str, records: &[(String, String)]) -> Vec<(i32, i64)> {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("linger.ms", "0")
            .set("batch.num.messages", "1")
            .set("queue.buffering.max.messages", "1000000")
            .create()
            .expect("producer");
        let mut placed = Vec::with_capacity(records.len());
        self.runtime.block_on(async {
            let mut deliveries = Vec::with_capacity(records.len());
            for (key, payload) in records {
                let record = FutureRecord::to(topic).key(key).payload(payload);
                deliveries.push(
                    producer
                        .send_result(record)
                        .map_err(|(e, _)| e)
                        .expect("enqueue"),
                );
            }
            for d in deliveries {
                let delivery = d
                    .await
                    .expect("delivery future")
                    .map_err(|(e, _)| e)
                    .expect("delivered");
                placed.push((delivery.partition, delivery.offset));
            }
        });
        placed
    }

    /// The group's committed offsets for `partitions` of `topic` (absent ones as -1).
    pub fn committed(&self, group: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", group)
            .create()
            .expect("consumer");
        let mut list = TopicPartitionList::new();
        for p in 0..partitions {
            list.add_partition(topic, p);
        }
        let committed = consumer
            .committed_offsets(list, Duration::from_secs(10))
            .expect("committed offsets");
        committed
            .elements()
            .iter()
            .map(|e| {
                let offset = match e.offset() {
                    Offset::Offset(o) => o,
                    _ => -1,
                };
                (e.partition(), offset)
            })
            .collect()
    }

    /// Waits until the group's committed offsets reach `ends`; returns false on timeout.
    pub fn wait_committed(
        &self,
        group: &str,
        topic: &str,
        ends: &BTreeMap<i32, i64>,
        timeout: Duration,
    ) -> bool {
        let partitions = ends.keys().max().map_or(0, |p| p + 1);
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let got = self.committed(group, topic, partitions);
            if ends.iter().all(|(p, end)| got.get(p) == Some(end)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        false
    }

    /// Reads every record of `topic` from the start (all partitions), stopping after
    /// `idle` without a new one.
    pub fn read_all(&self, topic: &str, partitions: i32, idle: Duration) -> Vec<String> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", format!("reader-{}", super::unique()))
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut list = TopicPartitionList::new();
        for p in 0..partitions {
            list.add_partition_offset(topic, p, Offset::Beginning)
                .expect("partition");
        }
        consumer.assign(&list).expect("assign");
        let mut out = Vec::new();
        let mut last = Instant::now();
        while last.elapsed() < idle {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                out.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
                last = Instant::now();
            }
        }
        out
    }
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

/// The tansu binary: `TANSU` if set, else on `PATH` or in `~/.cargo/bin`.
fn tansu() -> String {
    if let Ok(t) = std::env::var("TANSU") {
        return t;
    }
    let home_bin = std::env::var("HOME")
        .map(|h| format!("{h}/.cargo/bin/tansu"))
        .unwrap_or_default();
    if std::path::Path::new(&home_bin).exists() {
        home_bin
    } else {
        "tansu".into()
    }
}

/// Librdkafka options for a Weir consumer against the test broker: fast group joins.
pub const FAST_GROUP: &str =
    "\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"\n";
