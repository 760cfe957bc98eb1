//! A Kafka → four bundled plugins → Elasticsearch scenario: a topic filled with a
//! generated corpus whose fate is known in advance (`corpus.rs`), a pipeline file for
//! `weir run`, and the checks: documents against the corpus's model, commits against
//! what Elasticsearch holds, dead letters read to the topic's end.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use super::corpus::{Corpus, Fate};
use super::es::Es;
use super::kafka::{Kafka, FAST_GROUP};
use super::{root, unique, wasm, Running};

/// How long a test may wait for Weir to catch up.
pub const CATCH_UP: Duration = Duration::from_secs(300);

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

    /// Asserts Elasticsearch holds exactly what the corpus's model expects: the `_id` set
    /// is `<topic>-<partition>-<offset>` of every event meant to be indexed, where the
    /// producer's delivery reports placed it; each `_id` once, holding that event's `seq`,
    /// in the index the model computed from the event; nothing else.
    pub fn assert_exactly_once(&self, corpus: &Corpus) {
        let expected = self.expected_docs(corpus);
        let docs = self.es.docs(&self.prefix);
        let mut wrong = Vec::new();
        let mut seen = HashSet::new();
        for d in &docs {
            let Some(want) = expected.get(&d.id) else {
                wrong.push(format!(
                    "unexpected _id {} (seq {}) in {}",
                    d.id, d.seq, d.index
                ));
                continue;
            };
            if !seen.insert(d.id.as_str()) {
                wrong.push(format!(
                    "_id {} is indexed twice (again in {})",
                    d.id, d.index
                ));
            }
            if d.seq != want.seq as u64 {
                wrong.push(format!(
                    "_id {} holds seq {}, not seq {}",
                    d.id, d.seq, want.seq
                ));
            }
            if d.index != want.index {
                wrong.push(format!(
                    "_id {} (seq {}) is in {}, not in {}",
                    d.id, d.seq, d.index, want.index
                ));
            }
        }
        // What is missing, by partition and offset range.
        let mut missing: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
        for (id, want) in &expected {
            if !seen.contains(id.as_str()) {
                missing.entry(want.partition).or_default().push(want.offset);
            }
        }
        let missing: Vec<String> = missing
            .iter_mut()
            .map(|(p, offs)| {
                offs.sort_unstable();
                format!(
                    "p{p}: {} missing, {}..={}",
                    offs.len(),
                    offs[0],
                    offs[offs.len() - 1]
                )
            })
            .collect();
        assert!(
            wrong.is_empty() && missing.is_empty(),
            "{} documents, {} expected; {} wrong, first: {:?}; missing: {missing:?}",
            docs.len(),
            expected.len(),
            wrong.len(),
            &wrong[..wrong.len().min(20)]
        );
    }

    /// The documents the model expects, by `_id`.
    fn expected_docs<'c>(&self, corpus: &'c Corpus) -> HashMap<String, Expected<'c>> {
        assert_eq!(
            corpus.placed.len(),
            corpus.fates.len(),
            "the corpus is produced"
        );
        corpus
            .fates
            .iter()
            .zip(&corpus.placed)
            .enumerate()
            .filter_map(|(seq, (fate, &(partition, offset)))| match fate {
                Fate::Indexed(index) => Some((
                    format!("{}-{partition}-{offset}", self.topic),
                    Expected {
                        seq,
                        index,
                        partition,
                        offset,
                    },
                )),
                _ => None,
            })
            .collect()
    }

    /// Asserts that every event the model indexes below `committed` (the group's offsets,
    /// read before this call) is in Elasticsearch: nothing is committed before it is
    /// indexed. Returns how many such events were checked, and how many documents
    /// Elasticsearch held.
    pub fn assert_committed_are_indexed(
        &self,
        corpus: &Corpus,
        committed: &BTreeMap<i32, i64>,
    ) -> (usize, usize) {
        let have: HashSet<String> = self
            .es
            .docs_so_far(&self.prefix)
            .into_iter()
            .map(|d| d.id)
            .collect();
        let mut covered = 0;
        for (id, want) in self.expected_docs(corpus) {
            if want.offset >= committed.get(&want.partition).copied().unwrap_or(-1) {
                continue;
            }
            assert!(
                have.contains(&id),
                "partition {} is committed at {committed:?} but offset {} (seq {}) is not in Elasticsearch",
                want.partition,
                want.offset,
                want.seq
            );
            covered += 1;
        }
        (covered, have.len())
    }

    /// The dead-letter topic's entries, read to its end (see [`Kafka::read_to_end`]).
    pub fn dead_letters(&self) -> Vec<serde_json::Value> {
        self.kafka
            .read_to_end(&format!("{}-dlq", self.topic), 1)
            .iter()
            .map(|r| serde_json::from_str(&r.payload).expect("dead-letter entries are JSON"))
            .collect()
    }
}

/// Where the model expects one event's document.
struct Expected<'c> {
    seq: usize,
    index: &'c str,
    partition: i32,
    offset: i64,
}
