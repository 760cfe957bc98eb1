//! The Kafka source's lifecycle (a lost partition, a pause, stopping) against Tansu (or
//! `WEIR_TEST_KAFKA`) and the fault-injecting Elasticsearch double, with no plugins: every
//! event becomes one document whose `_id` names its partition and offset, so what the
//! double acknowledged says exactly which offsets Weir may have committed.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use super::double::Double;
use super::kafka::{Kafka, FAST_GROUP};
use super::{free_port, unique, Running};

/// How long any awaited event may take on a loaded machine before the test fails.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// A broker, a topic and a group for one test.
pub struct Life {
    pub kafka: Kafka,
    pub topic: String,
    pub group: String,
    pub partitions: i32,
    pub dir: tempfile::TempDir,
}

/// A pipeline file and the admin port it listens on.
pub struct Config {
    pub path: PathBuf,
    pub admin: u16,
}

impl Life {
    /// Starts Kafka and creates a topic of `partitions`.
    pub fn start(partitions: i32) -> Life {
        let kafka = Kafka::start();
        let id = unique();
        let topic = format!("life-{id}");
        kafka.create_topic(&topic, partitions);
        Life {
            kafka,
            group: format!("weir-{id}"),
            topic,
            partitions,
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Writes a pipeline file: the topic into the double at `es_url`, no plugins, the
    /// admin endpoint on a free port. `source` goes into `[source]` (it must set
    /// `commit_interval_ms`), `options` into `[source.options]` after the fast-join
    /// settings, `sink` into `[sink]` and `pipeline` into `[pipeline]`.
    pub fn config(
        &self,
        name: &str,
        es_url: &str,
        source: &str,
        options: &str,
        sink: &str,
        pipeline: &str,
    ) -> Config {
        let admin = free_port();
        let text = format!(
            "[source]\ntype = \"kafka\"\nbrokers = \"{brokers}\"\ntopics = [\"{topic}\"]\n\
             group_id = \"{group}\"\n{source}\n[source.options]\n{FAST_GROUP}{options}\n\n\
             [sink]\ntype = \"elasticsearch\"\nurls = [\"{es_url}\"]\nindex = \"lifecycle\"\n{sink}\n\n\
             [dead_letter]\ntype = \"file\"\npath = \"{name}-dead.ndjson\"\n\n\
             [pipeline]\nworkers = 1\n{pipeline}\n\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n",
            brokers = self.kafka.brokers,
            topic = self.topic,
            group = self.group,
        );
        let path = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).expect("write config");
        Config { path, admin }
    }

    /// Starts `weir run` on a config.
    pub fn run(&self, config: &Config, log_name: &str) -> Running {
        Running::start(
            &config.path,
            &self.dir.path().join(format!("{log_name}.log")),
        )
    }

    /// Produces `n` events of exactly `size` bytes each (`seq` numbers them); returns each
    /// partition's end offset.
    pub fn produce(&self, n: usize, size: usize) -> BTreeMap<i32, i64> {
        let records: Vec<(String, String)> = (0..n)
            .map(|i| {
                let head = format!("{{\"seq\":{i},\"pad\":\"");
                let pad = size
                    .checked_sub(head.len() + 2)
                    .expect("size leaves room for the padding");
                (format!("k{i}"), format!("{head}{}\"}}", "x".repeat(pad)))
            })
            .collect();
        let placed = self.kafka.produce(&self.topic, &records);
        weir::bench::kafka_client::ends(&placed)
    }

    /// The group's committed offsets (-1 where none).
    pub fn committed(&self) -> BTreeMap<i32, i64> {
        self.kafka
            .committed(&self.group, &self.topic, self.partitions)
    }

    /// Per partition, the lowest offset the double has not acknowledged: the most any
    /// correct commit may say.
    pub fn acked(&self, double: &Double) -> BTreeMap<i32, i64> {
        let state = double.state.lock().expect("double state");
        let prefix = format!("{}-", self.topic);
        let stored: HashSet<(i32, i64)> = state
            .docs
            .keys()
            .filter_map(|id| {
                let (p, o) = id.strip_prefix(&prefix)?.split_once('-')?;
                Some((p.parse().ok()?, o.parse().ok()?))
            })
            .collect();
        (0..self.partitions)
            .map(|p| {
                let low = (0..).find(|o| !stored.contains(&(p, *o))).unwrap_or(0);
                (p, low)
            })
            .collect()
    }
}

/// The text of `/metrics` on `admin`.
pub fn metrics(admin: u16) -> String {
    match super::es::http("GET", &format!("http://127.0.0.1:{admin}/metrics"), None) {
        Ok((200, body)) => body,
        _ => String::new(),
    }
}

/// The value of one series (`name` or `name{labels}`) in a `/metrics` text; 0 when absent,
/// as a counter not yet incremented is.
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

/// Waits until `done` holds, failing the test with `what` and Weir's log after
/// [`PATIENCE`]: every wait in these tests is for an event, never a fixed sleep.
pub fn wait_until(what: &str, weir: &Running, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            weir.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sends `signal` (`TERM`, `STOP`, `CONT`) to the process.
pub fn signal(weir: &Running, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &weir.child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} failed");
}

/// Waits up to `limit` for the process to exit; `None` if it is still running.
pub fn wait_exit(weir: &mut Running, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = weir.child.try_wait().expect("wait") {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The numeric `field=` of every log line containing `message`, in order.
pub fn logged(log: &str, message: &str, field: &str) -> Vec<u64> {
    let key = format!("{field}=");
    log.lines()
        .filter(|l| l.contains(message))
        .filter_map(|l| {
            let rest = &l[l.find(&key)? + key.len()..];
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

impl Life {
    /// Joins the group as another member (the test's own consumer), waits until it owns
    /// every partition, commits `offsets` as that owner would, and leaves: the position a
    /// member that lost its partitions must not overwrite.
    pub fn take_over(&self, offsets: &BTreeMap<i32, i64>) {
        use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
        use rdkafka::{ClientConfig, Offset, TopicPartitionList};
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.kafka.brokers)
            .set("group.id", &self.group)
            .set("enable.auto.commit", "false")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "500")
            .create()
            .expect("consumer");
        consumer.subscribe(&[&self.topic]).expect("subscribe");
        let deadline = Instant::now() + PATIENCE;
        while consumer.assignment().map_or(0, |a| a.count()) < self.partitions as usize {
            assert!(
                Instant::now() < deadline,
                "the second member was never assigned the partitions"
            );
            let _ = consumer.poll(Duration::from_millis(100));
        }
        let mut list = TopicPartitionList::new();
        for (p, o) in offsets {
            list.add_partition_offset(&self.topic, *p, Offset::Offset(*o))
                .expect("partition");
        }
        consumer
            .commit(&list, CommitMode::Sync)
            .expect("the new owner commits");
    }
}
