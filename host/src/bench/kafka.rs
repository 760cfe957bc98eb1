//! `weir bench --suite kafka`: Kafka → the four bundled plugins → Elasticsearch through the
//! real `weir run`, against a broker and a cluster (or emulator) given on the command line
//! (`scripts/bench-kafka.sh` starts Tansu and noida-db). Each round fills a new topic,
//! starts Weir, and waits until its committed offsets reach the end of every partition.
//! Reports events/s from the first commit to the last (group join excluded), Weir's own
//! CPU seconds per million events (user + sys of the `weir run` process alone, so the
//! endpoint's cost is not in it) over the whole run and over the same steady-state
//! window as the rate, and Weir's peak RSS, and how its CPU divides among its threads.
//!
//! The round's config commits every 100 ms rather than every second, so that the events
//! handled but not yet committed when the window opens (which the steady-state figure
//! counts without their CPU) stay a small share: about 0.1 s of input.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rdkafka::consumer::BaseConsumer;
use rdkafka::ClientConfig;

use super::kafka_client::{committed, create_topic, ends, produce};

use super::pipeline::{children_cpu, peak_rss_kib, process_cpu, range, thread_cpu};
use super::{generate, median};

/// What to run.
#[derive(Debug, Clone)]
pub struct KafkaOptions {
    /// Events per round.
    pub events: usize,
    /// Rounds.
    pub rounds: usize,
    /// Bootstrap brokers.
    pub brokers: String,
    /// Elasticsearch URL, or `null` for an in-process endpoint that accepts everything
    /// (to measure Weir without the cluster as the bottleneck).
    pub es_url: String,
    /// Chain workers of the `weir run` under test.
    pub workers: usize,
    /// Directory of the bundled plugins.
    pub wasm_dir: PathBuf,
    /// GeoIP database.
    pub geoip_db: PathBuf,
}

/// One round's figures.
#[derive(Debug, Clone)]
pub struct KafkaRound {
    /// Events/s from the first commit to the last.
    pub rate: f64,
    /// Weir's CPU seconds per million events, whole run (start-up, group join and the
    /// final commit included).
    pub cpu_per_million: f64,
    /// Weir's CPU seconds per million events from the first commit to the last.
    pub steady_cpu_per_million: f64,
    /// Weir's peak RSS, MiB.
    pub rss_mib: f64,
    /// Weir's CPU per thread name when the last offset was committed.
    pub threads: Vec<(String, Duration)>,
}

const PARTITIONS: i32 = 6;

/// Runs the benchmark.
pub fn run(opts: &KafkaOptions) -> anyhow::Result<Vec<KafkaRound>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let es_url = match opts.es_url.as_str() {
        "null" => super::null_es::start()?,
        url => url.to_owned(),
    };
    let records: Vec<(String, String)> = generate(opts.events, 0x5eed)
        .into_iter()
        .enumerate()
        .map(|(i, line)| (format!("k{}", i % 101), line))
        .collect();
    let dir = tempfile::tempdir()?;
    let plugins = super::spawn::bundled_plugins(&opts.wasm_dir, &opts.geoip_db);
    let mut rounds = Vec::new();
    for round in 0..opts.rounds {
        let topic = format!("weir-bench-{}-{round}", std::process::id());
        create_topic(&runtime, &opts.brokers, &topic, PARTITIONS)?;
        let ends = ends(&produce(&runtime, &opts.brokers, &topic, &records)?);
        let config = dir.path().join(format!("{topic}.toml"));
        std::fs::write(
            &config,
            format!(
                "[source]\ntype = \"kafka\"\nbrokers = \"{}\"\ntopics = [\"{topic}\"]\ngroup_id = \"{topic}\"\ncommit_interval_ms = 100\n\
                 [source.options]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"\n\
                 [sink]\ntype = \"elasticsearch\"\nurls = [\"{}\"]\nindex = \"{topic}-{{service}}-{{route}}-%Y.%m.%d\"\n\
                 [dead_letter]\ntype = \"file\"\npath = \"{topic}-dead.ndjson\"\n\
                 [pipeline]\nworkers = {}\n{plugins}",
                opts.brokers, es_url, opts.workers
            ),
        )?;
        let watcher: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &opts.brokers)
            .set("group.id", &topic)
            .create()?;
        let cpu_before = children_cpu()?;
        let mut child = Command::new(std::env::current_exe()?)
            .args(["run", "--config"])
            .arg(&config)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start weir run")?;
        let deadline = Instant::now() + Duration::from_secs(600);
        let mut first_commit = None;
        let mut peak = 0;
        let done = loop {
            if let Some(kib) = peak_rss_kib(child.id()) {
                peak = peak.max(kib);
            }
            if let Some(status) = child.try_wait()? {
                bail!("weir run exited early ({status})");
            }
            let committed = committed(&watcher, &topic, PARTITIONS)?;
            let progressed: i64 = committed.values().map(|o| (*o).max(0)).sum();
            if progressed > 0 && first_commit.is_none() {
                first_commit = Some((Instant::now(), progressed, process_cpu(child.id())));
            }
            if ends.iter().all(|(p, end)| committed.get(p) == Some(end)) {
                break (
                    Instant::now(),
                    process_cpu(child.id()),
                    thread_cpu(child.id()),
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("offsets did not reach the end in 10 minutes: {committed:?} vs {ends:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let status = child.wait()?;
        if !status.success() {
            bail!("weir run did not stop cleanly ({status})");
        }
        let cpu = (children_cpu()? - cpu_before).as_secs_f64();
        let (done, cpu_at_done, threads) = done;
        // Set at the latest in the iteration that saw the last commit.
        let (start, before, cpu_at_start) = first_commit.context("no commit was seen")?;
        if before as usize >= opts.events {
            bail!("the first commit seen already covered every event, so there is no window to measure: use more --events");
        }
        let (cpu_at_start, cpu_at_done) = cpu_at_start
            .zip(cpu_at_done)
            .context("weir run's CPU time could not be read from /proc")?;
        let measured = opts.events as f64 - before as f64;
        rounds.push(KafkaRound {
            rate: measured / done.duration_since(start).as_secs_f64().max(1e-3),
            cpu_per_million: cpu / opts.events as f64 * 1e6,
            steady_cpu_per_million: (cpu_at_done - cpu_at_start).as_secs_f64() / measured * 1e6,
            rss_mib: peak as f64 / 1024.0,
            threads,
        });
    }
    Ok(rounds)
}

/// Prints the figures.
pub fn print(
    opts: &KafkaOptions,
    rounds: &[KafkaRound],
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    let rate: Vec<f64> = rounds.iter().map(|r| r.rate).collect();
    let cpu: Vec<f64> = rounds.iter().map(|r| r.cpu_per_million).collect();
    let steady: Vec<f64> = rounds.iter().map(|r| r.steady_cpu_per_million).collect();
    let rss: Vec<f64> = rounds.iter().map(|r| r.rss_mib).collect();
    let ((rl, rh), (cl, ch), (ml, mh)) = (range(&rate), range(&cpu), range(&rss));
    let (sl, sh) = range(&steady);
    writeln!(
        out,
        "{} events per round, {} rounds, Kafka ({}) -> normalize, geoip, redact, route -> Elasticsearch ({}), {} worker(s)",
        opts.events, opts.rounds, opts.brokers, opts.es_url, opts.workers
    )?;
    writeln!(
        out,
        "events/s (first to last commit): {:.0} ({rl:.0}-{rh:.0})",
        median(&rate)
    )?;
    writeln!(
        out,
        "weir CPU s per 1M events, whole run: {:.2} ({cl:.2}-{ch:.2})",
        median(&cpu)
    )?;
    writeln!(
        out,
        "weir CPU s per 1M events, first to last commit: {:.2} ({sl:.2}-{sh:.2})",
        median(&steady)
    )?;
    writeln!(
        out,
        "weir peak RSS MiB: {:.0} ({ml:.0}-{mh:.0})",
        median(&rss)
    )?;
    print_threads(rounds, out)
}

/// Each thread name's share of Weir's CPU, over all rounds (at each round's last commit).
fn print_threads(rounds: &[KafkaRound], out: &mut impl std::io::Write) -> std::io::Result<()> {
    let mut by_name: std::collections::BTreeMap<&str, Duration> = Default::default();
    for (name, cpu) in rounds.iter().flat_map(|r| &r.threads) {
        *by_name.entry(name).or_default() += *cpu;
    }
    let total: Duration = by_name.values().sum();
    let mut shares: Vec<(&str, Duration)> = by_name.into_iter().collect();
    shares.sort_by_key(|share| std::cmp::Reverse(share.1));
    let shares: Vec<String> = shares
        .iter()
        .filter(|(_, cpu)| !cpu.is_zero())
        .map(|(name, cpu)| {
            let share = cpu.as_secs_f64() / total.as_secs_f64().max(1e-9) * 100.0;
            format!("{name} {share:.0}%")
        })
        .collect();
    writeln!(out, "weir CPU by thread: {}", shares.join(", "))
}
