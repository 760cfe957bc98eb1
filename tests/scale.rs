//! Scale-out and bounded memory: two `weir` processes in one consumer group share six
//! partitions and the group recovers from a kill -9 of one (on Tansu, once a replacement
//! joins: see the test); a stalled Elasticsearch pauses consumption with the process's
//! memory under the ceiling its in-flight limit sets, at two limits, and growing with it.

mod support;

use std::time::{Duration, Instant};

use support::double::Double;
use support::scenario::{Corpus, Scenario, CATCH_UP};

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
    assert_eq!(
        s.dead_letters(),
        Vec::<serde_json::Value>::new(),
        "no dead letters"
    );
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

/// One `weir run` against its own stalled double, in its own group, with an in-flight limit.
struct Stalled {
    in_flight_mib: u64,
    group: String,
    double: Double,
    weir: support::Running,
}

impl Stalled {
    /// Starts a run reading the scenario's topic with `in_flight_mib` MiB in flight at most.
    fn start(s: &Scenario, in_flight_mib: u64) -> Stalled {
        let double = Double::start();
        double.set(|f| f.stall = true);
        let name = format!("stall-{in_flight_mib}");
        let config = s.config(
            &name,
            Some(&double.url),
            &format!("max_in_flight_bytes = {}", in_flight_mib << 20),
            "batch_events = 1000\nconcurrency = 2\nrequest_timeout_ms = 600000",
        );
        let group = format!("{}-{in_flight_mib}", s.group);
        let text = std::fs::read_to_string(&config).unwrap().replace(
            &format!("group_id = \"{}\"", s.group),
            &format!("group_id = \"{group}\""),
        );
        std::fs::write(&config, text).unwrap();
        Stalled {
            in_flight_mib,
            group,
            double,
            weir: s.run(&config, &name),
        }
    }

    /// The ceiling the README's memory model gives: a fixed base (runtime, plugin
    /// instances, librdkafka's bounded prefetch) plus about 3x the in-flight limit (raw
    /// text, encoded documents, a request body), with half a limit of slack.
    fn ceiling_mib(&self) -> f64 {
        100.0 + 3.5 * self.in_flight_mib as f64
    }
}

#[test]
fn a_stalled_cluster_pauses_consumption_and_memory_stays_under_the_ceiling() {
    let s = Scenario::start(3);
    // ~70 MB: more than the larger limit plus librdkafka's 16 MiB prefetch.
    let mut corpus = Corpus::generate(150_000, &s.prefix, false);
    let ends = s.produce(&mut corpus);
    // Two limits side by side, so that one observation window serves both.
    let mut runs = [Stalled::start(&s, 4), Stalled::start(&s, 16)];
    let deadline = Instant::now() + Duration::from_secs(120);
    while !runs
        .iter()
        .all(|r| r.weir.stderr().contains("kafka source paused"))
    {
        assert!(
            Instant::now() < deadline,
            "never paused\n{}\n{}",
            runs[0].weir.stderr(),
            runs[1].weir.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Not a wait for an event: an observation window. A consumer that kept reading
    // would grow past its ceiling meanwhile; a slow machine only makes it read less.
    std::thread::sleep(Duration::from_secs(8));
    let mut peaks = Vec::new();
    for r in &runs {
        let (peak, now) = memory_mib(r.weir.child.id());
        let committed = s.kafka.committed(&r.group, &s.topic, s.partitions);
        assert!(
            committed.values().all(|o| *o <= 0),
            "nothing is committed while nothing is indexed: {committed:?}"
        );
        let ceiling = r.ceiling_mib();
        eprintln!(
            "stalled with {} MiB in flight: peak RSS {peak:.0} MiB, now {now:.0} MiB, ceiling {ceiling:.0} MiB",
            r.in_flight_mib
        );
        assert!(
            peak > 0.0 && peak < ceiling,
            "{} MiB in flight: peak RSS {peak:.0} MiB over {ceiling:.0} MiB",
            r.in_flight_mib
        );
        peaks.push(peak);
    }
    // The limit is what holds memory: 12 MiB more of it holds at least 12 MiB more raw text.
    let more = (runs[1].in_flight_mib - runs[0].in_flight_mib) as f64;
    assert!(
        peaks[1] - peaks[0] > more,
        "peak RSS {:.0} MiB with {} MiB in flight, {:.0} MiB with {}: it should grow by over {more} MiB",
        peaks[0],
        runs[0].in_flight_mib,
        peaks[1],
        runs[1].in_flight_mib
    );
    // The smaller run has shown what it had to; the larger one recovers and delivers.
    runs[0].weir.kill9();
    let big = &mut runs[1];
    big.double.set(|f| f.stall = false);
    assert!(
        s.kafka
            .wait_committed(&big.group, &s.topic, &ends, CATCH_UP),
        "committed offsets did not reach the end\n{}",
        big.weir.stderr()
    );
    big.weir.stop();
    assert!(big.weir.stderr().contains("kafka source resumed"));
    let expected: u64 = corpus.expected_counts().values().sum();
    assert_eq!(big.double.stored() as u64, expected);
}
