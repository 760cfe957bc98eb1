//! A `weir run` reading its stdin, with the admin endpoint on and its log in a file: what
//! the tests of a running pipeline (reloads, readiness, plugin logs) drive and watch.
//! Everything here waits for an event (an answer, a log line, a count) under a generous
//! overall timeout, never for a fixed time.

use std::io::Write;
use std::path::PathBuf;
use std::process::ChildStdin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long any wait here may take before the test fails: the machine is small and shared.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The admin token the tests' configs set.
pub const TOKEN: &str = "s3cret";

/// The `[admin]` section on `port`, with [`TOKEN`].
pub fn admin_section(port: u16) -> String {
    format!("[admin]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\n")
}

/// A running `weir run --config pipeline.toml` in `dir`, its log in `weir.log` there.
pub struct Live {
    /// Declared first, so it is killed before `dir` is removed.
    pub run: super::Running,
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl Live {
    /// Starts it on the `pipeline.toml` already in `dir` (whose admin listens on `port`),
    /// without waiting for anything.
    pub fn spawn(dir: tempfile::TempDir, port: u16) -> Live {
        let run = super::Running::start(
            &dir.path().join("pipeline.toml"),
            &dir.path().join("weir.log"),
        );
        Live { run, dir, port }
    }

    /// As [`Live::spawn`], then waits until `/ready` answers 200.
    pub fn start(dir: tempfile::TempDir, port: u16) -> Live {
        let live = Live::spawn(dir, port);
        live.wait_for("/ready to answer 200", || {
            (live.http("GET", "/ready", None).0 == 200).then_some(())
        });
        live
    }

    /// Polls `probe` until it gives a value; fails the test after [`PATIENCE`], naming
    /// `what` and the log so far.
    pub fn wait_for<T>(&self, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(v) = probe() {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; log:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// One exchange with the admin endpoint: (status, body); (0, "") when unreachable.
    pub fn http(&self, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
        weir::admin::client::request(self.port, method, path, token).unwrap_or_default()
    }

    /// `GET /status`, parsed.
    pub fn status(&self) -> Value {
        let (code, body) = self.http("GET", "/status", None);
        assert_eq!(code, 200, "/status: {body}");
        serde_json::from_str(&body).expect("/status is JSON")
    }

    /// Waits until `/status` satisfies `done`; returns it.
    pub fn wait_status(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        self.wait_for(what, || Some(self.status()).filter(|s| done(s)))
    }

    /// Waits until a reload to a generation after `after` has run a batch on its new
    /// chain (`last_reload.swap_ms` is set); returns `/status`.
    pub fn wait_for_swap(&self, after: u64) -> Value {
        self.wait_status(&format!("a reload past generation {after} to swap"), |s| {
            s["generation"].as_u64().unwrap_or(0) > after
                && s["last_reload"]["generation"] == s["generation"]
                && s["last_reload"]["swap_ms"].is_number()
        })
    }

    /// The sum of a metric's samples that carry every one of `labels` (name, value),
    /// scraped from `/metrics` with a Prometheus text parser; 0 when absent.
    pub fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let (code, text) = self.http("GET", "/metrics", None);
        assert_eq!(code, 200, "/metrics: {text}");
        let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
            .expect("valid Prometheus text");
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match &s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Untyped(v)
                | prometheus_parse::Value::Gauge(v) => *v,
                prometheus_parse::Value::Histogram(h) => {
                    h.iter().map(|b| b.count).fold(0.0, f64::max)
                }
                _ => 0.0,
            })
            .sum()
    }

    /// What it logged so far.
    pub fn stderr(&self) -> String {
        self.run.stderr()
    }

    /// Waits until the log has a line containing every one of `parts`.
    pub fn wait_for_log(&self, parts: &[&str]) -> String {
        self.wait_for(&format!("a log line with {parts:?}"), || {
            self.stderr()
                .lines()
                .find(|l| parts.iter().all(|p| l.contains(p)))
                .map(str::to_owned)
        })
    }

    /// Writes lines to its stdin at once.
    pub fn send(&mut self, lines: &[String]) {
        let stdin = self.run.child.stdin.as_mut().expect("stdin still open");
        for line in lines {
            writeln!(stdin, "{line}").expect("write to weir's stdin");
        }
        stdin.flush().expect("flush weir's stdin");
    }

    /// Closes stdin, waits for the run to end (successfully), returns the sink's events
    /// and the log.
    pub fn finish(mut self) -> (Vec<Value>, String) {
        drop(self.run.child.stdin.take());
        let status = self.run.child.wait().expect("wait for weir");
        let log = self.stderr();
        assert!(status.success(), "weir exited with {status}:\n{log}");
        (super::read_ndjson(&self.dir.path().join("out.ndjson")), log)
    }
}

/// Feeds `{"id": N}` events, N = 0, 1, ..., into a running pipeline's stdin on a thread,
/// a few at a time at a steady pace, until stopped: a stream that outlasts whatever the
/// test does meanwhile.
pub struct Feeder {
    stop: Arc<AtomicBool>,
    fed: Arc<AtomicU64>,
    thread: JoinHandle<ChildStdin>,
}

impl Feeder {
    /// Takes `live`'s stdin and starts feeding `per_tick` events every `tick`.
    pub fn start(live: &mut Live, per_tick: u64, tick: Duration) -> Feeder {
        let mut stdin = live.run.child.stdin.take().expect("piped stdin");
        let stop = Arc::new(AtomicBool::new(false));
        let fed = Arc::new(AtomicU64::new(0));
        let (flag, count) = (stop.clone(), fed.clone());
        let thread = std::thread::spawn(move || {
            let mut id = 0;
            while !flag.load(Ordering::Relaxed) {
                for _ in 0..per_tick {
                    let _ = writeln!(stdin, "{{\"id\":{id}}}");
                    id += 1;
                }
                let _ = stdin.flush();
                count.store(id, Ordering::Relaxed);
                std::thread::sleep(tick);
            }
            stdin
        });
        Feeder { stop, fed, thread }
    }

    /// Events written so far.
    pub fn fed(&self) -> u64 {
        self.fed.load(Ordering::Relaxed)
    }

    /// Stops feeding, gives the stdin back to `live`; returns how many events were fed.
    pub fn stop(self, live: &mut Live) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        live.run.child.stdin = Some(self.thread.join().expect("feeder thread"));
        self.fed.load(Ordering::Relaxed)
    }
}

/// A pipeline file for a stdin run into `out.ndjson` (dead letters in `dead.ndjson`),
/// batches of 8 over 2 workers, whose chain is the `plugin` file once per name in
/// `order`, each configured to tag events with its name followed by `suffix` (so the
/// `tags` of an event show which chain, in which order, processed it). `extra` is added
/// after the admin section (top-level keys there land in `[admin]`).
pub fn stamp_config(
    port: u16,
    plugin: &std::path::Path,
    order: &[&str],
    suffix: &str,
    extra: &str,
) -> String {
    let mut text = format!(
        "[source]\ntype = \"stdin\"\n[sink]\ntype = \"file\"\npath = \"out.ndjson\"\n\
         [dead_letter]\ntype = \"file\"\npath = \"dead.ndjson\"\n\
         [engine]\ncache_dir = {:?}\n[pipeline]\nbatch_size = 8\nworkers = 2\n{}{extra}\n",
        super::root().join("target/test-compile-cache"),
        admin_section(port),
    );
    for name in order {
        text += &format!(
            "[[plugins]]\nname = \"{name}\"\npath = {plugin:?}\n\
             [plugins.config]\nlabel = \"{name}{suffix}\"\ntrail = true\n"
        );
    }
    text
}

/// Replaces a file the way deploys do: write beside it, rename over it.
pub fn replace(path: &std::path::Path, bytes: &[u8]) {
    let tmp = path.with_extension("incoming");
    std::fs::write(&tmp, bytes).expect("write the new file");
    std::fs::rename(&tmp, path).expect("rename it over the old one");
}

/// A temp dir holding `stamp.wasm` (a copy of the `weir-hostile` fixture) and a free
/// port, for [`stamp_config`].
pub fn stamp_dir() -> (tempfile::TempDir, u16, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let plugin = dir.path().join("stamp.wasm");
    std::fs::copy(super::wasm("weir-hostile"), &plugin).expect("copy the fixture");
    (dir, super::free_port(), plugin)
}

/// Starts a stdin run whose chain is `order` of the stamping fixture (see
/// [`stamp_config`], with the suffix `suffix`); returns it and the plugin's path.
pub fn start_stamped(order: &[&str], suffix: &str) -> (Live, PathBuf) {
    let (dir, port, plugin) = stamp_dir();
    let text = stamp_config(port, &plugin, order, suffix, "");
    std::fs::write(dir.path().join("pipeline.toml"), text).expect("write config");
    (Live::start(dir, port), plugin)
}

impl Live {
    /// Rewrites the pipeline file (by rename) with `text`.
    pub fn write_config(&self, text: &str) {
        replace(&self.dir.path().join("pipeline.toml"), text.as_bytes());
    }
}
