//! Kafka → the four bundled plugins → Elasticsearch, end to end with real components:
//! Tansu (or `WEIR_TEST_KAFKA`) and noida-db (or `WEIR_TEST_ES_URL`). Every test checks
//! delivery by content: the full `_id` set against where the producer placed each event,
//! each document in the index the corpus's model gives its event, committed offsets at
//! the end of every partition, the dead-letter topic read to its end (exactly the poison
//! events, with their reasons, partitions and offsets, or nothing).

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::double::Double;
use support::proxy::Proxy;
use support::scenario::{Corpus, Fate, Scenario, CATCH_UP};

#[test]
fn one_hundred_thousand_events_arrive_once_each_and_offsets_reach_the_end() {
    let s = Scenario::start(6);
    let mut corpus = Corpus::generate(100_000, &s.prefix, false);
    let ends = s.produce(&mut corpus);
    assert_eq!(ends.values().sum::<i64>(), 100_000);
    let config = s.config("e2e", None, "", "batch_events = 500");
    let admin = support::free_port();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!("\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n"));
    std::fs::write(&config, text).unwrap();
    let started = Instant::now();
    let mut weir = s.run(&config, "e2e");
    // A hot reload mid-run (SIGHUP) must not lose or duplicate anything either.
    let expected: u64 = corpus.expected_counts().values().sum();
    s.wait_indexed(expected / 4, &weir);
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &weir.child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    s.assert_caught_up(&ends, &weir);
    let elapsed = started.elapsed();
    let (status, metrics) =
        support::es::http("GET", &format!("http://127.0.0.1:{admin}/metrics"), None).unwrap();
    assert_eq!(status, 200);
    weir.stop();
    s.assert_exactly_once(&corpus);
    assert!(
        corpus.count(&Fate::Dropped) > 10_000,
        "the chain drops DEBUG"
    );
    assert_eq!(s.dead_letters(), Vec::<Value>::new(), "no dead letters");
    for name in [
        "weir_reloads_total{outcome=\"ok\"} 1",
        "weir_kafka_commits_total{outcome=\"ok\"}",
        "weir_es_bulk_requests_total{outcome=\"ok\"}",
        "weir_es_items_total{result=\"created\"}",
        "weir_es_bulk_seconds",
    ] {
        assert!(
            metrics.contains(name),
            "{name} missing from /metrics:\n{metrics}"
        );
    }
    eprintln!(
        "100k events: caught up in {:.1} s ({:.0} events/s including group join)",
        elapsed.as_secs_f64(),
        100_000.0 / elapsed.as_secs_f64()
    );
}

#[test]
fn three_kill_9s_mid_run_lose_nothing_and_duplicate_nothing() {
    let s = Scenario::start(6);
    let mut corpus = Corpus::generate(60_000, &s.prefix, false);
    let ends = s.produce(&mut corpus);
    let expected: u64 = corpus.expected_counts().values().sum();
    // Small requests and one in flight: the run is long enough to be interrupted.
    let config = s.config("crash", None, "", "batch_events = 200\nconcurrency = 1");
    for (round, fraction) in [0.15, 0.45, 0.75].into_iter().enumerate() {
        let mut weir = s.run(&config, "crash");
        let indexed = s.wait_indexed((expected as f64 * fraction) as u64, &weir);
        weir.kill9();
        assert!(
            indexed < expected,
            "round {round}: the kill came after the end ({indexed} of {expected})"
        );
        eprintln!(
            "kill -9 #{} at {indexed} of {expected} documents",
            round + 1
        );
    }
    let mut weir = s.run(&config, "crash");
    s.assert_caught_up(&ends, &weir);
    weir.stop();
    s.assert_exactly_once(&corpus);
    // Replays meet 409s, which are successes: no dead letter at all.
    assert_eq!(s.dead_letters(), Vec::<Value>::new(), "no dead letters");
    let replays = weir.stderr().matches("kafka: partitions assigned").count();
    assert!(replays >= 4, "each restart rejoined the group");
}

#[test]
fn an_outage_pauses_consumption_commits_only_what_is_indexed_and_loses_nothing() {
    let s = Scenario::start(3);
    let proxy = Proxy::start(&s.es.url);
    let mut corpus = Corpus::generate(40_000, &s.prefix, false);
    let ends = s.produce(&mut corpus);
    let expected = corpus.expected_counts().values().sum::<u64>() as usize;
    // 1 MiB in flight at most: the pause must come well before the topic is read.
    let config = s.config(
        "outage",
        Some(&proxy.url),
        "max_in_flight_bytes = 1048576",
        "batch_events = 500\nconcurrency = 1",
    );
    let mut weir = s.run(&config, "outage");
    // Sampled throughout: the group's offsets, then what Elasticsearch holds. Committing
    // on read would pass it (while down, by the megabyte read and held).
    // A pause between samples leaves the two cores to Weir, Tansu and the emulator.
    let sample = || {
        std::thread::sleep(Duration::from_millis(250));
        let committed = s.kafka.committed(&s.group, &s.topic, s.partitions);
        let (checked, indexed) = s.assert_committed_are_indexed(&corpus, &committed);
        (committed, checked, indexed)
    };
    let deadline = Instant::now() + CATCH_UP;
    while sample().2 < expected / 10 {
        assert!(Instant::now() < deadline, "no progress\n{}", weir.stderr());
    }
    let logged_before = weir.stderr().len();
    proxy.down();
    // Down until the source is paused and the sink has retried 15 times, sampling.
    let mut samples = 0;
    let (checked, indexed) = loop {
        let (_, checked, indexed) = sample();
        samples += 1;
        let log = weir.stderr();
        let retries = log
            .get(logged_before..)
            .unwrap_or_default()
            .matches("bulk request failed, retrying")
            .count();
        if paused(&log) && retries >= 15 && samples >= 3 {
            break (checked, indexed);
        }
        assert!(Instant::now() < deadline, "never paused or retried\n{log}");
    };
    assert!(indexed < expected, "the outage came before the end");
    assert!(checked > 0, "commits from before the outage were checked");
    proxy.up();
    while sample().0 != ends {
        assert!(
            Instant::now() < deadline,
            "did not catch up\n{}",
            weir.stderr()
        );
    }
    weir.stop();
    let log = weir.stderr();
    assert!(log.contains("kafka source resumed"), "resumed:\n{log}");
    s.assert_exactly_once(&corpus);
    assert_eq!(s.dead_letters(), Vec::<Value>::new());
    eprintln!("outage: {samples} samples while down, {checked} committed events checked");
}

/// Whether the source's last pause/resume line says paused.
fn paused(log: &str) -> bool {
    log.rfind("kafka source paused") > log.rfind("kafka source resumed")
}

#[test]
fn poison_events_are_dead_lettered_with_reasons_and_the_rest_is_indexed() {
    let s = Scenario::start(3);
    let mut corpus = Corpus::generate(20_000, &s.prefix, true);
    let ends = s.produce(&mut corpus);
    // noida-db accepts any type in any field, so mapping conflicts come from the double
    // here; against a real cluster the index template's `keyword` mapping refuses them.
    let double = Double::start();
    double.set(|f| f.keyword_field = Some("user_id".into()));
    let (url, setup) = match support::es::external() {
        Some(_) => (None, template_setup(&s)),
        None => (Some(double.url.clone()), String::new()),
    };
    let config = s.config("poison", url.as_deref(), "", &setup);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("workers = 2", "workers = 2\nmax_event_bytes = 4096");
    std::fs::write(&config, text).unwrap();
    let mut weir = s.run(&config, "poison");
    s.assert_caught_up(&ends, &weir);
    weir.stop();

    let dead = s.dead_letters();
    assert_eq!(
        dead.iter().filter(|d| d["event_truncated"] == true).count(),
        1,
        "the 700 KB event's entry is truncated to fit Kafka"
    );
    let invalid = corpus.count(&Fate::InvalidJson);
    let conflicts = corpus.count(&Fate::MappingConflict);
    let oversize = corpus.count(&Fate::Oversize);
    let not_utf8 = corpus.count(&Fate::InvalidUtf8);
    assert_eq!(oversize, 21);
    assert_eq!(invalid, 200);
    assert_eq!(not_utf8, 20);
    assert!(
        conflicts > 150,
        "most conflicts are not dropped by the chain first"
    );
    let stages: Vec<&str> = dead.iter().filter_map(|d| d["stage"].as_str()).collect();
    assert_eq!(
        dead.len(),
        invalid + conflicts + oversize + not_utf8,
        "one entry per poison event; stages: decode {}, elasticsearch {}",
        stages.iter().filter(|s| **s == "decode").count(),
        stages.iter().filter(|s| **s == "elasticsearch").count()
    );
    let mut seqs = std::collections::HashSet::new();
    for entry in &dead {
        let raw = entry["event"].as_str().unwrap();
        let seq: usize = raw
            .split("\"seq\":")
            .nth(1)
            .and_then(|r| r.trim().split([',', '}']).next())
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no seq in {raw}"));
        assert!(seqs.insert(seq), "seq {seq} is dead-lettered twice");
        let (partition, offset) = corpus.placed[seq];
        assert_eq!(entry["topic"], Value::from(s.topic.as_str()), "{entry}");
        assert_eq!(entry["partition"], partition, "seq {seq}: {entry}");
        assert_eq!(entry["offset"], offset, "seq {seq}: {entry}");
        let original = &corpus.records[seq].1;
        match &corpus.fates[seq] {
            Fate::InvalidJson => {
                assert_eq!(entry["stage"], "decode");
                assert!(
                    entry["reason"]
                        .as_str()
                        .unwrap()
                        .starts_with("invalid JSON"),
                    "{entry}"
                );
                assert_eq!(
                    raw.as_bytes(),
                    original,
                    "the original event, byte for byte"
                );
            }
            Fate::InvalidUtf8 => {
                assert_eq!(entry["stage"], "decode");
                let reason = entry["reason"].as_str().unwrap();
                assert!(reason.starts_with("line is not valid UTF-8"), "{reason}");
                assert_eq!(raw, String::from_utf8_lossy(original), "replaced bytes");
            }
            Fate::Oversize => {
                assert_eq!(entry["stage"], "decode");
                let reason = entry["reason"].as_str().unwrap();
                assert!(reason.contains("over the limit of 4096"), "{reason}");
                if entry["event_truncated"] == true {
                    // Too big for a Kafka message even as a dead letter: the start is kept.
                    assert!(original.len() > 500_000);
                    assert!(original.starts_with(raw.as_bytes()));
                    assert_eq!(entry["event_bytes"], original.len());
                } else {
                    assert_eq!(
                        raw.as_bytes(),
                        original,
                        "the original event, byte for byte"
                    );
                }
            }
            Fate::MappingConflict => {
                assert_eq!(entry["stage"], "elasticsearch");
                let reason = entry["reason"].as_str().unwrap();
                assert!(reason.contains("mapper_parsing_exception"), "{reason}");
                assert!(reason.contains("user_id"), "{reason}");
            }
            other => panic!("seq {seq} ({other:?}) was dead-lettered: {entry}"),
        }
    }
    let indexed = corpus.expected_counts().values().sum::<u64>() as usize;
    match support::es::external() {
        Some(_) => s.assert_exactly_once(&corpus),
        None => {
            let state = double.state.lock().unwrap();
            assert_eq!(state.docs.len(), indexed);
            for (id, (index, doc)) in &state.docs {
                let seq = doc["seq"].as_u64().unwrap() as usize;
                assert_eq!(
                    corpus.fates[seq],
                    Fate::Indexed(index.clone()),
                    "{id} in the wrong index"
                );
            }
        }
    }
}

/// `[sink.setup]` installing the seeds' template for the test's index prefix (without the
/// ILM settings, which would need the policy and a rollover alias).
fn template_setup(s: &Scenario) -> String {
    let text =
        std::fs::read_to_string(support::root().join("examples/elasticsearch/index-template.json"))
            .unwrap();
    let mut template: Value = serde_json::from_str(&text).unwrap();
    template["index_patterns"] = serde_json::json!([format!("{}-*", s.prefix)]);
    let settings = template["template"]["settings"].as_object_mut().unwrap();
    settings.retain(|k, _| !k.starts_with("index.lifecycle"));
    settings.insert("number_of_replicas".into(), 0.into());
    let file = s.dir.path().join("template.json");
    std::fs::write(&file, template.to_string()).unwrap();
    format!(
        "[sink.setup.index_template]\nname = \"{}\"\nfile = {:?}\n",
        s.prefix, file
    )
}

/// Guards the test infrastructure: with the one-record batches the tests produce, the
/// broker resumes from any offset (Tansu 0.6.0 skips to the next batch otherwise).
#[test]
fn the_test_broker_resumes_from_any_offset() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};
    let kafka = support::kafka::Kafka::start();
    let topic = format!("probe-{}", support::unique());
    kafka.create_topic(&topic, 1);
    let records: Vec<(String, String)> = (0..10_000)
        .map(|i| (format!("k{i}"), format!("{{\"i\":{i}}}")))
        .collect();
    let placed = kafka.produce(&topic, &records);
    assert_eq!(placed.last(), Some(&(0, 9999)));
    for start in [0i64, 1234, 3999, 4000, 4001, 7777] {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &kafka.brokers)
            .set("group.id", format!("probe-{start}"))
            .create()
            .unwrap();
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(&topic, 0, Offset::Offset(start))
            .unwrap();
        consumer.assign(&list).unwrap();
        let mut first = None;
        for _ in 0..50 {
            if let Some(Ok(m)) = consumer.poll(std::time::Duration::from_millis(100)) {
                first = Some(m.offset());
                break;
            }
        }
        assert_eq!(first, Some(start), "fetch from {start}");
    }
}
