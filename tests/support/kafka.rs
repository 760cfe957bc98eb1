//! Kafka for the tests: a Tansu broker started per test on a free port (in memory), or the
//! cluster named by `WEIR_TEST_KAFKA` (`host:port`), plus a producer, topic creation and
//! committed-offset read-back, all through librdkafka as Weir itself uses it.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use weir::bench::kafka_client;

/// A broker for one test.
pub struct Kafka {
    /// `host:port`.
    pub brokers: String,
    _service: Option<super::Service>,
    runtime: tokio::runtime::Runtime,
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
                _service: None,
                runtime,
            };
        }
        let port = super::free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let service = super::Service::spawn(
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
            _service: Some(service),
            runtime,
        }
    }

    /// Creates a topic (a unique name is the caller's business).
    pub fn create_topic(&self, name: &str, partitions: i32) {
        kafka_client::create_topic(&self.runtime, &self.brokers, name, partitions)
            .expect("create topic");
    }

    /// Produces `(key, payload)` records, one per batch (see
    /// [`kafka_client::produce`]); returns where each landed (partition, offset).
    pub fn produce(&self, topic: &str, records: &[(String, String)]) -> Vec<(i32, i64)> {
        kafka_client::produce(&self.runtime, &self.brokers, topic, records).expect("produce")
    }

    /// The group's committed offsets for `partitions` of `topic` (absent ones as -1).
    pub fn committed(&self, group: &str, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", group)
            .create()
            .expect("consumer");
        kafka_client::committed(&consumer, topic, partitions).expect("committed offsets")
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
