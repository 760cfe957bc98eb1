//! Kafka for the tests: a Tansu broker started per test on a free port (in memory), or the
//! cluster named by `WEIR_TEST_KAFKA` (`host:port`), plus a producer, topic creation and
//! committed-offset read-back, all through librdkafka as Weir itself uses it.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
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
    pub fn produce<K: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        topic: &str,
        records: &[(K, V)],
    ) -> Vec<(i32, i64)> {
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

    /// Every record of `topic` (partitions `0..partitions`), read from the start to the
    /// end: "nothing more arrived for a while" cannot tell an empty topic from a slow
    /// reader, and Tansu's high watermarks are wrong, so the end is a marker record this
    /// writes to each partition first; the read ends once every marker is seen (panics if
    /// one is not within a minute). Markers from earlier calls are left out.
    pub fn read_to_end(&self, topic: &str, partitions: i32) -> Vec<Read> {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
            .set("linger.ms", "0")
            .create()
            .expect("producer");
        let mut ends: BTreeMap<i32, i64> = BTreeMap::new();
        self.runtime.block_on(async {
            for p in 0..partitions {
                let record = FutureRecord::to(topic)
                    .partition(p)
                    .key(END_MARKER)
                    .payload(END_MARKER);
                let (partition, offset) = producer
                    .send(record, Duration::from_secs(30))
                    .await
                    .map(|d| (d.partition, d.offset))
                    .unwrap_or_else(|(e, _)| panic!("end marker to {topic}[{p}]: {e}"));
                ends.insert(partition, offset);
            }
        });
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
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ends.is_empty() {
            assert!(
                Instant::now() < deadline,
                "{topic}: end markers {ends:?} not read back; read so far: {out:?}"
            );
            let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else {
                continue;
            };
            if ends.get(&m.partition()) == Some(&m.offset()) {
                ends.remove(&m.partition());
            }
            if m.key() == Some(END_MARKER.as_bytes()) {
                continue;
            }
            out.push(Read {
                partition: m.partition(),
                offset: m.offset(),
                payload: String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
            });
        }
        out
    }
}

/// The key and payload of the records [`Kafka::read_to_end`] writes to find a topic's end.
const END_MARKER: &str = "weir-test-end-marker";

/// A record read back from a topic.
#[derive(Debug, Clone)]
pub struct Read {
    pub partition: i32,
    pub offset: i64,
    /// The value, invalid UTF-8 replaced.
    pub payload: String,
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
