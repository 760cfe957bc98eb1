//! A Kafka → four bundled plugins → Elasticsearch scenario: a topic filled with a
//! generated corpus whose fate is known in advance (which events the chain drops, which
//! index each lands in), a pipeline file for `weir run`, and the checks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::es::Es;
use super::kafka::{Kafka, FAST_GROUP};
use super::{root, unique, wasm, Running};

/// How long a test may wait for Weir to catch up.
pub const CATCH_UP: Duration = Duration::from_secs(300);

const SERVICES: [&str; 5] = [
    "payment-gateway",
    "user-profile",
    "order-api",
    "critical-service",
    "search-api",
];
const LEVELS: [&str; 6] = ["INFO", "INFO", "WARNING", "DEBUG", "ERROR", "INFO"];

/// What one generated event should become.
#[derive(Debug, Clone, PartialEq)]
pub enum Fate {
    /// Indexed into this index.
    Indexed(String),
    /// Dropped by the route plugin (DEBUG outside critical-service).
    Dropped,
    /// Dead-lettered: not JSON.
    InvalidJson,
    /// Dead-lettered: over the configured `max_event_bytes` (poison corpora use 4096).
    Oversize,
    /// Dead-lettered by Elasticsearch: `user_id` (a keyword) is an object.
    MappingConflict,
}

/// Generated events and their fates, by `seq`.
pub struct Corpus {
    /// `(key, payload)` records to produce.
    pub records: Vec<(String, String)>,
    /// Fate of each, by position.
    pub fates: Vec<Fate>,
    /// Where each was produced (partition, offset), once produced.
    pub placed: Vec<(i32, i64)>,
}

impl Corpus {
    /// `n` events of ~450 bytes, index names prefixed with `prefix`. With `poison`, one in
    /// 100 is not JSON, another one in 100 has an object where the index template maps a
    /// `keyword` (`user_id`), and one in 1000 is over 4 KiB.
    pub fn generate(n: usize, prefix: &str, poison: bool) -> Corpus {
        let mut records = Vec::with_capacity(n);
        let mut fates = Vec::with_capacity(n);
        for i in 0..n {
            let service = SERVICES[(i * 7 + i / 5) % SERVICES.len()];
            let level = LEVELS[(i * 13 + i / 7) % LEVELS.len()];
            let day = 15 + i % 2;
            let key = format!("k{}", i % 97);
            if poison && i % 100 == 17 {
                records.push((key, format!("{{\"seq\": {i}, \"message\": \"truncated")));
                fates.push(Fate::InvalidJson);
                continue;
            }
            if poison && i == 1234 {
                // ~700 KB of quotes: its dead-letter entry, escaped, is over Kafka's 1 MB.
                records.push((
                    key,
                    format!("{{\"seq\": {i}, \"blob\": {}", "\"".repeat(700_000)),
                ));
                fates.push(Fate::Oversize);
                continue;
            }
            if poison && i % 1000 == 71 {
                let big = serde_json::json!({"seq": i, "level": "ERROR", "service": service, "stack_trace": "x".repeat(5000)});
                records.push((key, big.to_string()));
                fates.push(Fate::Oversize);
                continue;
            }
            let conflict = poison && i % 100 == 53;
            let user = if conflict {
                serde_json::json!({"id": i % 5000})
            } else {
                serde_json::json!(format!("u-{}", i % 5000))
            };
            let method = ["GET", "POST", "PUT"][i % 3];
            let status = [200, 201, 404, 500][i % 4];
            let ip = ["8.8.8.8", "81.2.69.160", "10.0.3.7"][i % 3];
            let event = serde_json::json!({
                "timestamp": format!("2025-01-{day}T10:{:02}:{:02}.{:03}Z", (i / 60) % 60, i % 60, i % 1000),
                "level": level,
                "service": service,
                "message": format!("request {i} handled for user mario.rossi@example.com after validation of the basket and the payment method, with {} items", i % 17),
                "seq": i,
                "correlation_id": format!("{:08x}-4b1d-4f3a-9c2e-{:012x}", i * 2654435761 % 4294967296, i),
                "method": method,
                "path": format!("/users/{}/orders", i % 9973),
                "status_code": status,
                "duration_ms": (i % 1500) as f64 + 0.5,
                "client_ip": ip,
                "user_id": user,
                "password": "hunter2",
            });
            records.push((key, event.to_string()));
            fates.push(if level == "DEBUG" && service != "critical-service" {
                Fate::Dropped
            } else if conflict {
                Fate::MappingConflict
            } else {
                let route = match service {
                    "payment-gateway" => "payments",
                    "user-profile" => "users",
                    _ => "general",
                };
                Fate::Indexed(format!("{prefix}-{service}-{route}-2025.01.{day}"))
            });
        }
        Corpus {
            records,
            fates,
            placed: Vec::new(),
        }
    }

    /// Expected documents per index.
    pub fn expected_counts(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for f in &self.fates {
            if let Fate::Indexed(index) = f {
                *out.entry(index.clone()).or_insert(0) += 1;
            }
        }
        out
    }

    /// Number of events with `fate`.
    pub fn count(&self, fate: &Fate) -> usize {
        self.fates.iter().filter(|f| *f == fate).count()
    }
}

/// One scenario's broker, cluster, names and files.
pub struct Scenario {
    pub kafka: Kafka,
    pub es: Es,
    pub topic: String,
    pub group: String,
    /// Index names start with this.
    pub prefix: String,
    pub partitions: i32,
    pub dir: tempfile::TempDir,
}

impl Scenario {
    /// Starts Kafka and Elasticsearch (or uses the external ones) and creates the topic
    /// and its dead-letter topic.
    pub fn start(partitions: i32) -> Scenario {
        for krate in ["weir-normalize", "weir-geoip", "weir-redact", "weir-route"] {
            wasm(krate);
        }
        let kafka = Kafka::start();
        let es = Es::start();
        let id = unique();
        let topic = format!("logs-{id}");
        kafka.create_topic(&topic, partitions);
        kafka.create_topic(&format!("{topic}-dlq"), 1);
        Scenario {
            kafka,
            es,
            group: format!("weir-{id}"),
            prefix: format!("weir-{id}"),
            topic,
            partitions,
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Writes a pipeline file for `weir run` with the four bundled plugins; `es_url`
    /// overrides the cluster (a proxy or double), `extra` is appended to `[source]` and
    /// `sink` to `[sink]`.
    pub fn config(&self, name: &str, es_url: Option<&str>, source: &str, sink: &str) -> PathBuf {
        let geo_dir = root().join("plugins/geoip/testdata");
        let cache = root().join("target/test-compile-cache");
        let text = format!(
            r#"
[source]
type = "kafka"
brokers = "{brokers}"
topics = ["{topic}"]
group_id = "{group}"
commit_interval_ms = 200
{source}
[source.options]
{FAST_GROUP}

[sink]
type = "elasticsearch"
urls = ["{url}"]
index = "{prefix}-{{service}}-{{route}}-%Y.%m.%d"
flush_ms = 100
{sink}
[sink.retry]
initial_ms = 50
max_ms = 1000

[dead_letter]
type = "kafka"

[pipeline]
workers = 2

[engine]
cache_dir = {cache:?}

[[plugins]]
name = "normalize"
path = {normalize:?}

[[plugins]]
name = "geoip"
path = {geoip:?}
on_error = "fail-open"
[plugins.grants]
dirs = {{ "/geoip" = {geo_dir:?} }}
[plugins.config]
database = "/geoip/test-city.mmdb"

[[plugins]]
name = "redact"
path = {redact:?}
[plugins.config]
mask_emails_in = ["message"]

[[plugins]]
name = "route"
path = {route:?}
"#,
            brokers = self.kafka.brokers,
            topic = self.topic,
            group = self.group,
            url = es_url.unwrap_or(&self.es.url),
            prefix = self.prefix,
            normalize = wasm("weir-normalize"),
            geoip = wasm("weir-geoip"),
            redact = wasm("weir-redact"),
            route = wasm("weir-route"),
        );
        let path = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).expect("write config");
        path
    }

    /// Starts `weir run` on a config.
    pub fn run(&self, config: &Path, log_name: &str) -> Running {
        Running::start(config, &self.dir.path().join(format!("{log_name}.log")))
    }

    /// Produces the corpus; returns each partition's end offset.
    pub fn produce(&self, corpus: &mut Corpus) -> BTreeMap<i32, i64> {
        corpus.placed = self.kafka.produce(&self.topic, &corpus.records);
        weir::bench::kafka_client::ends(&corpus.placed)
    }

    /// Waits for the group's commits to reach `ends`.
    pub fn wait_committed(&self, ends: &BTreeMap<i32, i64>, timeout: Duration) -> bool {
        self.kafka
            .wait_committed(&self.group, &self.topic, ends, timeout)
    }

    /// Waits until at least `target` documents are indexed; returns how many there are.
    pub fn wait_indexed(&self, target: u64, weir: &Running) -> u64 {
        let deadline = std::time::Instant::now() + CATCH_UP;
        loop {
            let indexed = self.es.total(&self.prefix);
            if indexed >= target {
                return indexed;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no progress: {indexed} of {target} documents\n{}",
                weir.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Asserts the group's committed offsets reach `ends` in time.
    pub fn assert_caught_up(&self, ends: &BTreeMap<i32, i64>, weir: &Running) {
        assert!(
            self.wait_committed(ends, CATCH_UP),
            "committed offsets did not reach the end: {:?} vs {ends:?}\n{}",
            self.kafka
                .committed(&self.group, &self.topic, self.partitions),
            weir.stderr()
        );
    }

    /// Asserts every indexed event is in its index exactly once (by `_id`), none missing,
    /// and nothing else is there.
    pub fn assert_exactly_once(&self, corpus: &Corpus) {
        let counts = self.es.counts(&self.prefix);
        let ids = self.es.ids(&self.prefix);
        if counts != corpus.expected_counts() {
            // Name what is missing, by partition and offset ranges.
            let have: std::collections::HashSet<&str> =
                ids.iter().map(|(_, id)| id.as_str()).collect();
            let mut missing: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
            for (seq, fate) in corpus.fates.iter().enumerate() {
                let (p, o) = corpus.placed[seq];
                if matches!(fate, Fate::Indexed(_))
                    && !have.contains(format!("{}-{p}-{o}", self.topic).as_str())
                {
                    missing.entry(p).or_default().push(o);
                }
            }
            let ranges: Vec<String> = missing
                .iter()
                .map(|(p, offs)| {
                    format!(
                        "p{p}: {} missing, {}..={}",
                        offs.len(),
                        offs[0],
                        offs[offs.len() - 1]
                    )
                })
                .collect();
            panic!(
                "documents per index differ:\n got {counts:?}\nwant {:?}\nmissing: {ranges:?}",
                corpus.expected_counts()
            );
        }
        let mut seen = std::collections::HashSet::new();
        for (_, id) in &ids {
            assert!(seen.insert(id.clone()), "_id {id} is indexed twice");
        }
        let expected: usize = corpus
            .fates
            .iter()
            .filter(|f| matches!(f, Fate::Indexed(_)))
            .count();
        assert_eq!(ids.len(), expected, "distinct _ids");
    }

    /// The dead-letter topic's entries.
    pub fn dead_letters(&self) -> Vec<serde_json::Value> {
        self.kafka
            .read_all(&format!("{}-dlq", self.topic), 1, Duration::from_secs(3))
            .iter()
            .map(|l| serde_json::from_str(l).expect("dead-letter entries are JSON"))
            .collect()
    }
}
