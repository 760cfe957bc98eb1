//! Scale-out and bounded memory: two `weir` processes in one consumer group share six
//! partitions and the group recovers from a kill -9 of one (on Tansu, once a replacement
//! joins: see the test); a stalled Elasticsearch pauses consumption with the process's
//! memory under the ceiling its in-flight limit sets.

mod support;

use std::time::{Duration, Instant};

use support::double::Double;
use support::scenario::{Corpus, Scenario};

#[test]
fn two_processes_share_the_partitions_and_the_group_recovers_from_a_kill_9() {
    let s = Scenario::start(6);
    let mut corpus = Corpus::generate(200_000, &s.prefix, false);
    let ends = s.produce(&mut corpus);
    let expected: u64 = corpus.expected_counts().values().sum();
    let config = s.config("scale", None, "", "batch_events = 500");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("workers = 2", "workers = 1");
    std::fs::write(&config, text).unwrap();
    let mut a = s.run(&config, "a");
    let mut b = s.run(&config, "b");
    // Both must own partitions before one is killed.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(owns_partitions(&a.stderr()) && owns_partitions(&b.stderr())) {
        assert!(
            Instant::now() < deadline,
            "both processes should be assigned partitions:\nA:\n{}\nB:\n{}",
            a.stderr(),
            b.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let indexed = s.wait_indexed(expected / 3, &a);
    b.kill9();
    assert!(indexed < expected, "the kill came before the end");
    eprintln!("killed one process at {indexed} of {expected} documents");
    // Tansu 0.6.0 detects the dead member (the survivor's heartbeat is told a rebalance
    // is in progress) but answers the survivor's JoinGroup with the old generation and
    // the dead leader, so the dead member's partitions stay stranded until another
    // member joins. Real Kafka reassigns them to the survivor alone: with
    // WEIR_TEST_KAFKA set, no replacement is started.
    let _replacement = support::kafka::external().is_none().then(|| {
        std::thread::sleep(Duration::from_secs(8));
        s.run(&config, "replacement")
    });
    s.assert_caught_up(&ends, &a);
    a.stop();
    if support::kafka::external().is_some() {
        let log = a.stderr();
        let last = log
            .lines()
            .rfind(|l| l.contains("kafka: partitions assigned"))
            .expect("assignments logged");
        for p in 0..6 {
            assert!(
                last.contains(&format!("[{p}]")),
                "the survivor owns partition {p} at the end: {last}"
            );
        }
    }
    s.assert_exactly_once(&corpus);
}

fn owns_partitions(log: &str) -> bool {
    log.lines()
        .any(|l| l.contains("kafka: partitions assigned") && l.contains('['))
}

/// Peak and current resident memory of a process, in MiB.
fn memory_mib(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(0.0, |kb| kb / 1024.0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

#[test]
fn a_stalled_cluster_pauses_consumption_and_memory_stays_under_the_ceiling() {
    let s = Scenario::start(3);
    let mut corpus = Corpus::generate(150_000, &s.prefix, false);
    let ends = s.produce(&mut corpus);
    let double = Double::start();
    double.set(|f| f.stall = true);
    // 8 MiB of raw events in flight at most: the topic holds ~70 MB.
    let in_flight_mib = 8;
    let config = s.config(
        "stall",
        Some(&double.url),
        &format!("max_in_flight_bytes = {}", in_flight_mib << 20),
        "batch_events = 1000\nconcurrency = 2\nrequest_timeout_ms = 600000",
    );
    let mut weir = s.run(&config, "stall");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !weir.stderr().contains("kafka source paused") {
        assert!(Instant::now() < deadline, "never paused\n{}", weir.stderr());
        std::thread::sleep(Duration::from_millis(200));
    }
    // Stay stalled a while: a consumer that kept reading would grow meanwhile.
    std::thread::sleep(Duration::from_secs(8));
    let (peak, now) = memory_mib(weir.child.id());
    let committed = s.kafka.committed(&s.group, &s.topic, s.partitions);
    assert!(
        committed.values().all(|o| *o <= 0),
        "nothing is committed while nothing is indexed: {committed:?}"
    );
    // The ceiling: a fixed base (runtime, plugin instances, librdkafka's bounded
    // prefetch) plus the in-flight limit a few times over (raw text, encoded
    // documents, a request body). See the README's memory section.
    let ceiling = 100.0 + 4.0 * in_flight_mib as f64;
    eprintln!("stalled: peak RSS {peak:.0} MiB, now {now:.0} MiB, ceiling {ceiling:.0} MiB");
    assert!(
        peak > 0.0 && peak < ceiling,
        "peak RSS {peak:.0} MiB over {ceiling:.0} MiB"
    );
    double.set(|f| f.stall = false);
    s.assert_caught_up(&ends, &weir);
    weir.stop();
    assert!(weir.stderr().contains("kafka source resumed"));
    let expected: u64 = corpus.expected_counts().values().sum();
    assert_eq!(double.stored() as u64, expected);
}
