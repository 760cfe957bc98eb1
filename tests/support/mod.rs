//! Shared by the integration tests: builds the wasm fixtures once per test run, writes
//! pipeline files into temp dirs, and runs the real `weir` binary.
#![allow(dead_code)]

pub mod corpus;
pub mod double;
pub mod es;
pub mod hardening;
pub mod kafka;
pub mod lifecycle;
pub mod live;
pub mod proxy;
pub mod raw_http;
pub mod scenario;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// Crates built for `wasm32-wasip2` for the tests, and the file each produces.
const FIXTURES: &[(&str, &str)] = &[
    ("weir-hostile", "weir_hostile"),
    ("drop-healthz", "drop_healthz"),
    ("weir-future-contract", "weir_future_contract"),
    ("weir-raw-hostile", "weir_raw_hostile"),
    ("weir-normalize", "weir_normalize"),
    ("weir-geoip", "weir_geoip"),
    ("weir-redact", "weir_redact"),
    ("weir-route", "weir_route"),
];

/// Path of a fixture plugin's `.wasm`, building all fixtures on first use. A separate
/// target dir keeps this nested cargo off the lock the running `cargo test` holds.
pub fn wasm(krate: &str) -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.current_dir(root())
            .args(["build", "--release", "--target", "wasm32-wasip2", "--target-dir", "target/wasm"]);
        for (name, _) in FIXTURES {
            cmd.args(["-p", name]);
        }
        match cmd.output() {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => Err(format!(
                "building wasm fixtures failed (is the wasm32-wasip2 target installed? `rustup target add wasm32-wasip2`):\n{}",
                String::from_utf8_lossy(&o.stderr)
            )),
            Err(e) => Err(format!("cannot run cargo: {e}")),
        }
    });
    if let Err(e) = built {
        panic!("{e}");
    }
    let file = FIXTURES
        .iter()
        .find(|(n, _)| *n == krate)
        .map(|(_, f)| *f)
        .expect("known fixture");
    root()
        .join("target/wasm/wasm32-wasip2/release")
        .join(format!("{file}.wasm"))
}

/// A temp dir holding a pipeline: input, config, outputs.
pub struct Pipeline {
    pub dir: tempfile::TempDir,
}

impl Pipeline {
    /// A pipeline over `input` lines, with `plugins` (TOML `[[plugins]]` entries) between
    /// a file source and file sink.
    pub fn new(input: &[String], plugins: &str) -> Self {
        Self::with_settings(input, "", plugins)
    }

    /// As [`Pipeline::new`], with `settings` (TOML lines) added to `[pipeline]`.
    pub fn with_settings(input: &[String], settings: &str, plugins: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let batch = if settings.contains("batch_size") {
            ""
        } else {
            "batch_size = 4\n"
        };
        std::fs::write(dir.path().join("in.ndjson"), input.join("\n")).expect("write input");
        let cache = root().join("target/test-compile-cache");
        let config = format!(
            "[source]\ntype = \"file\"\npath = \"in.ndjson\"\n\n[sink]\ntype = \"file\"\npath = \"out.ndjson\"\nroute_field = \"route\"\n\n\
             [dead_letter]\ntype = \"file\"\npath = \"dead.ndjson\"\n\n[engine]\ncache_dir = {cache:?}\n\n\
             [pipeline]\n{batch}workers = 1\n{settings}\n\n{plugins}\n"
        );
        std::fs::write(dir.path().join("pipeline.toml"), config).expect("write config");
        Pipeline { dir }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("pipeline.toml")
    }

    /// Runs `weir run`, asserting success.
    pub fn run(&self) -> Output {
        let out = weir(&["run", "--config", &self.config().display().to_string()]);
        assert!(
            out.status.success(),
            "weir run failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// The sink's events.
    pub fn output(&self) -> Vec<serde_json::Value> {
        read_ndjson(&self.dir.path().join("out.ndjson"))
    }

    /// The dead-letter entries.
    pub fn dead(&self) -> Vec<serde_json::Value> {
        read_ndjson(&self.dir.path().join("dead.ndjson"))
    }
}

/// Runs the `weir` binary.
pub fn weir(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .output()
        .expect("run weir")
}

pub fn read_ndjson(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().map(parse_deep).collect()
}

/// Parses one JSON text without serde_json's nesting limit of 128: Weir may be
/// configured to pass deeper events.
pub fn parse_deep(text: &str) -> serde_json::Value {
    use serde::Deserialize;
    let mut de = serde_json::Deserializer::from_str(text);
    de.disable_recursion_limit();
    serde_json::Value::deserialize(&mut de).expect("valid JSON line")
}

/// `n` events numbered by `id`; those in `boom` carry `"boom": true`.
pub fn events(n: usize, boom: &[usize]) -> Vec<String> {
    (0..n)
        .map(|id| serde_json::json!({"id": id, "boom": boom.contains(&id)}).to_string())
        .collect()
}

/// The TOML entry for the hostile fixture.
pub fn hostile(name: &str, policy: &str, config: &str) -> String {
    format!(
        "[[plugins]]\nname = \"{name}\"\npath = {:?}\non_error = \"{policy}\"\n[plugins.limits]\nmemory_mib = 16\ndeadline_ms = 50\n[plugins.config]\nlabel = \"{name}\"\n{config}\n",
        wasm("weir-hostile")
    )
}

/// A free local TCP port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Waits until something listens on `port`.
pub fn wait_for_port(port: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listens on port {port} after {timeout:?}");
}

/// A name unique to this test process and call.
pub fn unique() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A `weir run` in the background, its stderr kept in a file.
pub struct Running {
    pub child: Child,
    pub log: PathBuf,
}

impl Running {
    /// Starts `weir run --config <config>`; stderr goes to `<log>`, stdin is a pipe.
    pub fn start(config: &Path, log: &Path) -> Running {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["run", "--config"])
            .arg(config)
            .env("WEIR_LOG", "info,librdkafka=warn")
            // Held open, so a `stdin` source runs until the test stops it.
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn weir");
        Running {
            child,
            log: log.to_path_buf(),
        }
    }

    /// kill -9.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().expect("wait");
        assert!(
            status.success(),
            "weir exited with {status}:\n{}",
            self.stderr()
        );
    }

    /// What it logged so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A test service (Tansu, noida-db) running in its own process group, killed as a whole
/// when dropped: the `noida-db` on PATH may be a pyenv shim that runs the real server as
/// a child, and killing only the shim leaked a server per test.
pub struct Service(Child);

impl Service {
    /// Starts `cmd` in a new process group.
    pub fn spawn(cmd: &mut Command) -> std::io::Result<Service> {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0).spawn().map(Service)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.0.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the `weir` binary, killing it and failing the test if it has not finished
/// within `limit`: what a hang test needs instead of hanging CI.
pub fn weir_within(args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run weir");
    // Drain both pipes while waiting, so a chatty run cannot block on a full pipe.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(child.stdout.take().map(|p| Box::new(p) as _));
    let err = drain(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("weir {args:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// The `stopped after N ms` figure of a deadline reason.
pub fn stopped_after(reason: &str) -> u64 {
    reason
        .split("stopped after ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no elapsed time in {reason:?}"))
}
