//! The Kafka source's lifecycle promises ("What Weir guarantees" in the README), each
//! against Tansu (or `WEIR_TEST_KAFKA`) and the fault-injecting double: a partition lost to
//! a session timeout is not committed; a paused consumer stays in the group and resumes at
//! half of `max_in_flight_bytes`; a second SIGTERM exits at once; `shutdown_timeout_ms`
//! bounds the drain; the SIGTERM commit alone brings the offsets to the end.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use support::double::{Double, State};
use support::lifecycle::{logged, metric, metrics, signal, wait_exit, wait_until, Config, Life};
use support::Running;

/// What Weir logs once a first signal has stopped its reading.
const STOPPING: &str = "stopping: reading stopped";

const CREATED: &str = "weir_es_items_total{result=\"created\"}";

/// Waits until Weir has settled `n` created documents (the double answered them and Weir
/// ran their receipts).
fn wait_created(weir: &Running, config: &Config, n: usize) {
    wait_until(&format!("{n} documents settled"), weir, || {
        metric(&metrics(config.admin), CREATED) as usize >= n
    });
}

#[test]
fn the_sigterm_commit_alone_brings_every_partition_to_its_end() {
    let life = Life::start(3);
    let double = Double::start();
    let ends = life.produce(300, 200);
    assert_eq!(ends.len(), 3, "every partition holds events");
    // Ten minutes between periodic commits: only the stop can commit in this test.
    let config = life.config(
        "sigterm",
        &double.url,
        "commit_interval_ms = 600000",
        "",
        "flush_ms = 100",
        "",
    );
    let mut weir = life.run(&config, "sigterm");
    wait_created(&weir, &config, 300);
    assert_eq!(life.acked(&double), ends, "the double acknowledged all");
    assert!(
        life.committed().values().all(|o| *o == -1),
        "nothing is committed before the stop: {:?}",
        life.committed()
    );
    weir.stop();
    assert_eq!(
        life.committed(),
        ends,
        "the SIGTERM commit reaches the end of every partition\n{}",
        weir.stderr()
    );
}

#[test]
fn a_partition_lost_to_a_session_timeout_is_not_committed() {
    let life = Life::start(1);
    let double = Double::start();
    let ends = life.produce(100, 200);
    let config = life.config(
        "lost",
        &double.url,
        "commit_interval_ms = 600000",
        "",
        "flush_ms = 100",
        "",
    );
    let mut weir = life.run(&config, "lost");
    wait_created(&weir, &config, 100);
    // Weir now holds a watermark of 100, not yet committed (ten minutes between commits).
    signal(&weir, "STOP");
    let frozen = Instant::now();
    // Another member takes the partition once Weir's session (6 s) has expired there, and
    // commits a position of its own.
    let theirs = BTreeMap::from([(0, 7)]);
    life.take_over(&theirs);
    assert_eq!(life.committed(), theirs);
    // However soon the broker moved the partition, Weir's own clock must see the session
    // expire: frozen for longer than session.timeout.ms (6 s), whatever else happened.
    while frozen.elapsed() < Duration::from_secs(7) {
        std::thread::sleep(Duration::from_millis(100));
    }
    signal(&weir, "CONT");
    // librdkafka sees its session expired, revokes the partitions as lost, and rejoins.
    wait_until("the loss", &weir, || weir.stderr().contains("lost=true"));
    wait_until("the rejoin", &weir, || {
        weir.stderr().matches("kafka: partitions assigned").count() >= 2
    });
    assert_eq!(
        life.committed(),
        theirs,
        "the new owner's position stands\n{}",
        weir.stderr()
    );
    let log = weir.stderr();
    let lost: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("kafka: partitions revoked") && l.contains("lost=true"))
        .collect();
    assert!(
        !lost.is_empty() && lost.iter().all(|l| l.trim_end().ends_with("committed=")),
        "the lost partition's revocation commits nothing:\n{log}"
    );
    // Back as the owner, Weir reads from that position again (409s from the double).
    wait_until("the re-read from offset 7", &weir, || {
        let state = double.state.lock().expect("double");
        (7..100).all(|o| state.attempts.get(&format!("{}-0-{o}", life.topic)) == Some(&2))
    });
    weir.stop();
    assert_eq!(life.committed(), ends, "a normal stop commits again");
}

/// Starts Weir against a double that answers the first two bulk requests and then stalls
/// (one request in flight at a time, so the rest wait for it; one event per chunk, so
/// an acknowledged event is a handled one), and waits until Weir has
/// committed what those two acknowledged and has a third request hanging: the state in
/// which a stop must drain, and cannot. (Commits at or past the acknowledged offsets end
/// the wait, so that a premature commit fails the test's own check, not this wait.)
fn stalled(life: &Life, double: &Double, name: &str, shutdown_ms: u64) -> Running {
    double.set(|f| {
        f.stall = true;
        f.release = 2;
    });
    let sink = format!(
        "batch_events = 20\nflush_ms = 100\nconcurrency = 1\nshutdown_timeout_ms = {shutdown_ms}"
    );
    let config = life.config(
        name,
        &double.url,
        "commit_interval_ms = 200",
        "",
        &sink,
        "batch_size = 1",
    );
    let weir = life.run(&config, name);
    wait_until(
        "the acknowledged events committed, a request hanging",
        &weir,
        || {
            let hanging = {
                let s = double.state.lock().expect("double");
                s.faults.release == 0 && s.answered_docs > 0 && s.received_docs > s.answered_docs
            };
            let acked = life.acked(double);
            hanging
                && life
                    .committed()
                    .iter()
                    .all(|(p, c)| *c >= acked[p] || (*c == -1 && acked[p] == 0))
        },
    );
    weir
}

/// Asserts no partition's committed offset passes what the double acknowledged, and
/// that some events were still unacknowledged.
fn assert_nothing_unacknowledged_committed(
    life: &Life,
    double: &Double,
    ends: &BTreeMap<i32, i64>,
) {
    let (committed, acked) = (life.committed(), life.acked(double));
    for (p, c) in &committed {
        assert!(
            *c <= acked[p],
            "partition {p}: committed {c}, but only offsets below {} were acknowledged",
            acked[p]
        );
    }
    assert!(
        acked.values().sum::<i64>() < ends.values().sum::<i64>(),
        "events were still unacknowledged: {acked:?} of {ends:?}"
    );
}

#[test]
fn a_second_sigterm_exits_at_once_and_commits_nothing_unacknowledged() {
    let life = Life::start(2);
    let double = Double::start();
    let ends = life.produce(200, 200);
    // Ten minutes to drain: only the second signal can end this run soon.
    let mut weir = stalled(&life, &double, "second", 600_000);
    signal(&weir, "TERM");
    wait_until("the first signal to stop the reading", &weir, || {
        weir.stderr().contains(STOPPING)
    });
    signal(&weir, "TERM");
    let status = wait_exit(&mut weir, Duration::from_secs(60)).unwrap_or_else(|| {
        panic!(
            "still running 60 s after the second SIGTERM\n{}",
            weir.stderr()
        )
    });
    assert_eq!(status.code(), Some(130), "exit code of the second signal");
    assert_nothing_unacknowledged_committed(&life, &double, &ends);
}

#[test]
fn shutdown_timeout_ms_bounds_the_drain_and_the_next_run_reads_the_rest_again() {
    let life = Life::start(2);
    let double = Double::start();
    let ends = life.produce(200, 200);
    let mut weir = stalled(&life, &double, "bounded", 2000);
    signal(&weir, "TERM");
    let sent = Instant::now();
    // A stalled request alone would take the 60 s request timeout, then retry forever.
    let status = wait_exit(&mut weir, Duration::from_secs(60)).unwrap_or_else(|| {
        panic!(
            "still draining 60 s after SIGTERM with shutdown_timeout_ms = 2000\n{}",
            weir.stderr()
        )
    });
    let took = sent.elapsed();
    assert!(status.success(), "exit status {status}\n{}", weir.stderr());
    assert!(
        took >= Duration::from_secs(2),
        "exited after {took:?}: the drain gives the stalled cluster shutdown_timeout_ms"
    );
    let log = weir.stderr();
    assert!(
        log.contains("stopping with bulk requests still retrying"),
        "the drain gave up, and says so:\n{log}"
    );
    assert_nothing_unacknowledged_committed(&life, &double, &ends);
    let committed = life.committed();

    // The next run, against a healthy cluster, reads exactly the uncommitted events again.
    let fresh = Double::start();
    let config = life.config(
        "again",
        &fresh.url,
        "commit_interval_ms = 200",
        "",
        "flush_ms = 100",
        "",
    );
    let mut again = life.run(&config, "again");
    wait_until("the offsets at the end", &again, || {
        life.committed() == ends
    });
    again.stop();
    let expected: std::collections::HashSet<String> = ends
        .iter()
        .flat_map(|(p, end)| (committed[p].max(0)..*end).map(move |o| (*p, o)))
        .map(|(p, o)| format!("{}-{p}-{o}", life.topic))
        .collect();
    let got: std::collections::HashSet<String> = fresh
        .state
        .lock()
        .expect("double")
        .docs
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        got, expected,
        "the second run indexes what the first did not commit"
    );
}

#[test]
fn a_paused_consumer_stays_in_the_group_and_resumes_at_half_of_max_in_flight_bytes() {
    const SIZE: usize = 1000;
    const MAX: usize = 20 * SIZE;
    let life = Life::start(1);
    let double = Double::start();
    double.set(|f| f.stall = true);
    let ends = life.produce(60, SIZE);
    // One event per chunk, so in-flight bytes move one event at a time; requests of up to
    // two documents, all sent at once (the stalled double holds every one it gets).
    let config = life.config(
        "pause",
        &double.url,
        &format!("commit_interval_ms = 600000\nmax_in_flight_bytes = {MAX}"),
        "\"max.poll.interval.ms\" = \"6000\"\n",
        "batch_events = 2\nflush_ms = 100\nconcurrency = 64",
        "batch_size = 1",
    );
    let mut weir = life.run(&config, "pause");
    let docs = |f: fn(&State) -> usize| f(&double.state.lock().expect("double"));
    wait_until("the pause, and 20 events at the double", &weir, || {
        metric(&metrics(config.admin), "weir_kafka_paused") == 1.0
            && docs(|s| s.received_docs) >= 20
    });
    assert_eq!(
        logged(&weir.stderr(), "kafka source paused", "in_flight_bytes"),
        [MAX as u64],
        "paused exactly when max_in_flight_bytes were unacknowledged"
    );
    // Staying in the group is a matter of time: paused for longer than session.timeout.ms
    // and max.poll.interval.ms (6 s each), nothing happens but the clock.
    std::thread::sleep(Duration::from_secs(9));
    let text = metrics(config.admin);
    assert_eq!(metric(&text, "weir_kafka_paused"), 1.0, "still paused");
    assert_eq!(metric(&text, "weir_kafka_pauses_total"), 1.0);
    assert_eq!(docs(|s| s.received_docs), 20, "nothing read while paused");
    let log = weir.stderr();
    assert!(
        !log.contains("partitions revoked") && !log.contains("MAXPOLL"),
        "no rebalance while paused, no poll interval exceeded:\n{log}"
    );
    let level = release_until_resumed(&double, &weir, &config, SIZE, MAX);
    assert_eq!(
        logged(&weir.stderr(), "kafka source resumed", "in_flight_bytes"),
        [level as u64],
        "resumed at the first acknowledgement that left at most half in flight"
    );
    eprintln!("paused at {MAX} bytes in flight, resumed at {level}");
    double.set(|f| f.stall = false);
    wait_created(&weir, &config, 60);
    weir.stop();
    assert_eq!(life.committed(), ends);
    let state = double.state.lock().expect("double");
    assert!(
        state.attempts.values().all(|a| *a == 1),
        "no event was read twice: the consumer never left the group\n{}",
        weir.stderr()
    );
    assert_eq!(
        weir.stderr().matches("kafka: partitions assigned").count(),
        1,
        "one assignment for the whole run"
    );
}

/// Has the stalled double answer one request at a time while Weir is paused with
/// `max / size` events of `size` bytes in flight, and returns the in-flight bytes at which
/// Weir resumed: the first level at or below half of `max`. Fails if Weir resumes while
/// more than half is unacknowledged.
fn release_until_resumed(
    double: &Double,
    weir: &Running,
    config: &Config,
    size: usize,
    max: usize,
) -> usize {
    let answered = || double.state.lock().expect("double").answered_docs;
    let paused = || metric(&metrics(config.admin), "weir_kafka_paused");
    loop {
        let before = answered();
        double.set(|f| f.release = 1);
        wait_until("the next request answered and settled", weir, || {
            let now = answered();
            now > before && metric(&metrics(config.admin), CREATED) as usize == now
        });
        let level = (max / size - answered()) * size;
        if level <= max / 2 {
            wait_until("the resume", weir, || paused() == 0.0);
            return level;
        }
        // Give a premature resume the time to show (the source checks every 100 ms).
        let deadline = Instant::now() + Duration::from_millis(500);
        while Instant::now() < deadline {
            assert_eq!(
                paused(),
                1.0,
                "resumed with {level} bytes unacknowledged, over half of {max}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
