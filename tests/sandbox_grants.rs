//! What `[plugins.grants]` let a plugin reach, and nothing more: no network at all, granted
//! directories read-only and closed at their edges, exactly the named environment
//! variables, and real clocks only with `clock = true` (README "Sandbox and failure
//! handling", SECURITY.md "Sandbox"). The hostile fixture's probe modes try each edge and
//! report every attempt. Also here, not in `sandbox.rs`: the default deadline holds on a
//! loaded machine. Its spinning threads would fail the tight 50 ms deadlines of the tests
//! there when run beside them; every test in this file has a lax one.

mod support;

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use support::{events, hostile, Pipeline};

/// A probe's outcomes by attempt: `Ok(what it got)` or `Err(the error)`.
type Outcomes = BTreeMap<String, Result<String, String>>;

/// A pipeline of two events through the hostile fixture; the second one runs the probe
/// `config` under `grants` (TOML lines of `[plugins.grants]`). The deadline is raised so a
/// loaded machine cannot fail the probing batch.
fn probe_pipeline(grants: &str, config: &str) -> Pipeline {
    let plugin = hostile("probe", "fail-closed", config)
        .replace("deadline_ms = 50\n", "deadline_ms = 5000\n")
        .replace(
            "[plugins.config]",
            &format!("[plugins.grants]\n{grants}\n[plugins.config]"),
        );
    assert!(plugin.contains("deadline_ms = 5000"), "{plugin}");
    Pipeline::new(&events(2, &[1]), &plugin)
}

/// The outcomes the probing event carries, after asserting both events came through.
fn outcomes(p: &Pipeline) -> Outcomes {
    let out = p.output();
    assert!(p.dead().is_empty(), "{:?}", p.dead());
    assert_eq!(out.len(), 2, "{out:?}");
    let found = out[1]["found"].as_str().expect("the probe's report");
    found
        .lines()
        .map(|line| {
            let (name, outcome) = line.split_once('\t').expect("name, tab, outcome");
            let outcome = match outcome.split_once(':') {
                Some(("ok", v)) => Ok(v.to_owned()),
                Some(("err", e)) => Err(e.to_owned()),
                _ => panic!("unexpected outcome line {line:?}"),
            };
            (name.to_owned(), outcome)
        })
        .collect()
}

/// The attempts that succeeded.
fn through(got: &Outcomes) -> Vec<(&String, &String)> {
    got.iter()
        .filter_map(|(name, outcome)| outcome.as_ref().ok().map(|v| (name, v)))
        .collect()
}

#[test]
fn a_plugin_can_neither_connect_bind_send_nor_look_up_names() {
    let tcp = TcpListener::bind("127.0.0.1:0").expect("tcp listener");
    let udp = UdpSocket::bind("127.0.0.1:0").expect("udp socket");
    let (tcp_addr, udp_addr) = (tcp.local_addr().unwrap(), udp.local_addr().unwrap());
    let p = probe_pipeline(
        "",
        &format!("mode = \"network\"\naddr = \"{tcp_addr}\"\nudp_addr = \"{udp_addr}\""),
    );
    p.run();
    let got = outcomes(&p);
    let names: Vec<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(names, ["dns", "tcp-connect", "udp-bind", "udp-send"]);
    // Nothing reached the test's sockets: a connection completed by the kernel waits in
    // the backlog even if never accepted, and a datagram in the socket's queue.
    tcp.set_nonblocking(true).unwrap();
    udp.set_nonblocking(true).unwrap();
    let accepted = tcp.accept();
    let mut buf = [0; 64];
    let received = udp.recv_from(&mut buf);
    assert!(
        through(&got).is_empty()
            && matches!(&accepted, Err(e) if e.kind() == ErrorKind::WouldBlock)
            && matches!(&received, Err(e) if e.kind() == ErrorKind::WouldBlock),
        "the plugin reached the network: {:?}; the listener: {accepted:?}; the UDP socket: {received:?}",
        through(&got)
    );
}

/// Every entry under `dir` (relative path) with its content (`None` for a directory) and
/// modification time: what a write would change.
fn snapshot(dir: &Path) -> BTreeMap<String, (Option<String>, SystemTime)> {
    let mut all = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("metadata");
            let content = if meta.is_dir() {
                todo.push(path.clone());
                None
            } else {
                Some(std::fs::read_to_string(&path).expect("read"))
            };
            let rel = path.strip_prefix(dir).unwrap().display().to_string();
            all.insert(rel, (content, meta.modified().expect("mtime")));
        }
    }
    all
}

#[test]
fn a_granted_directory_refuses_every_write_and_stays_unchanged() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("hello.txt"), "granted").unwrap();
    std::fs::create_dir(data.path().join("keep")).unwrap();
    let before = snapshot(data.path());
    let p = probe_pipeline(
        &format!("dirs = {{ \"/data\" = {:?} }}", data.path()),
        "mode = \"write\"\npath = \"/data\"",
    );
    p.run();
    let got = outcomes(&p);
    let names: Vec<&str> = got.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "append",
            "create",
            "hard-link",
            "mkdir",
            "remove",
            "rename",
            "rmdir",
            "set-modified",
            "truncate"
        ]
    );
    assert!(
        through(&got).is_empty(),
        "writes went through: {:?}",
        through(&got)
    );
    assert_eq!(snapshot(data.path()), before, "the host directory changed");
}

#[test]
fn a_granted_directory_is_readable_and_nothing_else() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir_all(data.join("keep")).unwrap();
    std::fs::write(data.join("hello.txt"), "granted").unwrap();
    let outside = root.path().join("outside.txt");
    std::fs::write(&outside, "secret").unwrap();
    std::os::unix::fs::symlink(&outside, data.join("link-abs")).unwrap();
    std::os::unix::fs::symlink("../outside.txt", data.join("link-rel")).unwrap();
    let inside = ["/data/hello.txt", "/data/keep/../hello.txt"];
    let refused = [
        "/data/../outside.txt".to_owned(),
        "/data/keep/../../outside.txt".to_owned(),
        "/data/link-abs".to_owned(),
        "/data/link-rel".to_owned(),
        // Host paths, of the secret and of the granted file itself: only guest paths exist.
        outside.display().to_string(),
        data.join("hello.txt").display().to_string(),
        "/etc/hostname".to_owned(),
    ];
    let paths: Vec<String> = inside
        .iter()
        .map(|s| s.to_string())
        .chain(refused.clone())
        .collect();
    let p = probe_pipeline(
        &format!("dirs = {{ \"/data\" = {data:?} }}"),
        &format!("mode = \"read-all\"\npaths = {paths:?}"),
    );
    p.run();
    let got = outcomes(&p);
    assert_eq!(got.len(), paths.len(), "{got:?}");
    for path in inside {
        assert_eq!(got[path], Ok("granted".to_owned()), "{path}");
    }
    let read: Vec<_> = through(&got)
        .into_iter()
        .filter(|(path, _)| !inside.contains(&path.as_str()))
        .collect();
    assert!(read.is_empty(), "read outside the grant: {read:?}");
}

/// Runs `weir run` on `p` with `set` added to its environment and `unset` removed.
fn run_with_env(p: &Pipeline, set: &[(&str, &str)], unset: &[&str]) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.args(["run", "--config"]).arg(p.config());
    cmd.envs(set.iter().copied());
    for name in unset {
        cmd.env_remove(name);
    }
    let out = cmd.output().expect("run weir");
    assert!(
        out.status.success(),
        "weir run failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

#[test]
fn env_and_clock_grants_pass_exactly_what_they_name() {
    let set = [
        ("WEIR_PROBE_A", "alpha"),
        ("WEIR_PROBE_B", "beta"),
        ("WEIR_PROBE_SECRET", "hidden"),
    ];
    let config = "mode = \"env-clocks\"\nsleep_ms = 30";
    let granted = probe_pipeline(
        "env = [\"WEIR_PROBE_A\", \"WEIR_PROBE_B\", \"WEIR_PROBE_UNSET\"]\nclock = true",
        config,
    );
    let before = now_ms();
    run_with_env(&granted, &set, &["WEIR_PROBE_UNSET"]);
    let after = now_ms();
    let got = outcomes(&granted);
    assert_eq!(
        got["env"],
        Ok("WEIR_PROBE_A=alpha,WEIR_PROBE_B=beta".to_owned()),
        "only the named variables that are set, with their values"
    );
    let wall: u128 = got["wall-ms"].clone().unwrap().parse().unwrap();
    // The host's own clock read around the run; a second's slack for clock adjustment.
    assert!(
        before - 1000 <= wall && wall <= after + 1000,
        "wall clock {wall} ms outside the run ({before}..{after})"
    );
    let slept: u128 = got["slept-ns"].clone().unwrap().parse().unwrap();
    assert!(slept >= 30_000_000, "a 30 ms sleep took {slept} ns");

    let plain = probe_pipeline("", config);
    run_with_env(&plain, &set, &[]);
    let expected: Outcomes = [
        ("env", ""),       // no grant, no variables
        ("wall-ms", "0"),  // the wall clock reads zero
        ("slept-ns", "0"), // the monotonic clock reads zero, and the sleep ends at once
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), Ok(v.to_owned())))
    .collect();
    assert_eq!(outcomes(&plain), expected);
}

/// Threads that spin until stopped, twice as many as the machine has cores: every thread
/// of a `weir` run beside them waits its turn for a core.
struct Hogs {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<u64>>,
}

impl Hogs {
    fn start() -> Hogs {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..2 * cores.max(2))
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut spins = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        spins = std::hint::black_box(spins + 1);
                    }
                    spins
                })
            })
            .collect();
        Hogs { stop, threads }
    }

    /// Stops them; returns how many of them spun at all.
    fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.threads
            .into_iter()
            .map(|t| t.join().unwrap_or(0))
            .filter(|spins| *spins > 0)
            .count()
    }
}

#[test]
fn normal_batches_on_a_loaded_machine_meet_the_default_deadline() {
    // The default deadline (100 ms) is wall-clock time: a batch descheduled in the middle
    // of its call still counts the ticks. Batches of real work (~1 ms of CPU each here)
    // beside more spinning threads than cores must still never miss it. A missed deadline
    // would not lose events (the batch is retried in halves), so the failed batches are
    // what is counted.
    let plugin = hostile("busy", "fail-closed", "work = 50000").replace("deadline_ms = 50\n", "");
    assert!(!plugin.contains("deadline_ms"), "{plugin}");
    let n = 10_000;
    let p = Pipeline::with_settings(&events(n, &[]), "batch_size = 100", &plugin);
    let hogs = Hogs::start();
    let out = p.run();
    let spun = hogs.stop();
    assert!(spun >= 4, "only {spun} hogs ran");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let row = stderr
        .lines()
        .find(|l| l.trim_start().starts_with("busy "))
        .unwrap_or_else(|| panic!("no summary row for the plugin: {stderr}"));
    let counts: Vec<&str> = row.split_whitespace().skip(1).take(5).collect();
    assert_eq!(
        counts,
        [
            n.to_string(),
            n.to_string(),
            "0".into(),
            "0".into(),
            "0".into()
        ],
        "{stderr}"
    );
    assert!(
        !stderr.contains("failed batches") && !stderr.contains("deadline"),
        "batches failed on a loaded machine: {stderr}"
    );
    assert!(p.dead().is_empty());
    assert_eq!(p.output().len(), n);
}
