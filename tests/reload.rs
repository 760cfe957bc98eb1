//! Hot reload under load: reordering plugins and replacing a plugin's `.wasm` while events
//! flow, broken reloads, and the admin endpoint that reports them.

mod support;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::wasm;

/// A running `weir run` reading events from its stdin, with the admin endpoint on.
struct Running {
    dir: tempfile::TempDir,
    child: Child,
    port: u16,
    plugin: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The config: plugins named in `order`, all the trail-stamping fixture, `extra` appended.
fn config(port: u16, plugin: &Path, order: &[&str], extra: &str) -> String {
    let mut text = format!(
        "[source]\ntype = \"stdin\"\n[sink]\ntype = \"file\"\npath = \"out.ndjson\"\n[dead_letter]\ntype = \"file\"\npath = \"dead.ndjson\"\n\
         [engine]\ncache_dir = {:?}\n[pipeline]\nbatch_size = 8\nworkers = 2\n[admin]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"s3cret\"\n{extra}\n",
        support::root().join("target/test-compile-cache")
    );
    for name in order {
        text += &format!("[[plugins]]\nname = \"{name}\"\npath = {plugin:?}\n[plugins.config]\nlabel = \"{name}\"\ntrail = true\n");
    }
    text
}

/// Replaces a file the way deploys do: write beside it, rename over it.
fn replace(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("incoming");
    std::fs::write(&tmp, bytes).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// The component with a custom section appended: the same behaviour, a new content hash.
fn rebuilt(original: &[u8], n: u32) -> Vec<u8> {
    let name = b"weir-test-build";
    let payload = n.to_le_bytes();
    let size = 1 + name.len() + payload.len();
    let mut out = original.to_vec();
    out.push(0); // custom section id
    out.push(size as u8); // LEB128, < 128
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(&payload);
    out
}

impl Running {
    fn start(order: &[&str]) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let plugin = dir.path().join("stamp.wasm");
        std::fs::copy(wasm("weir-hostile"), &plugin).unwrap();
        let port = free_port();
        std::fs::write(
            dir.path().join("pipeline.toml"),
            config(port, &plugin, order, ""),
        )
        .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["run", "--config", "pipeline.toml"])
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let running = Running {
            dir,
            child,
            port,
            plugin,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while running.http("GET", "/ready", None).0 != 200 {
            assert!(Instant::now() < deadline, "weir did not become ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        running
    }

    fn write_config(&self, order: &[&str], extra: &str) {
        replace(
            &self.dir.path().join("pipeline.toml"),
            config(self.port, &self.plugin, order, extra).as_bytes(),
        );
    }

    /// One exchange with the admin endpoint: (status, body); (0, "") when unreachable.
    fn http(&self, method: &str, path: &str, token: Option<&str>) -> (u16, String) {
        weir::admin::client::request(self.port, method, path, token).unwrap_or_default()
    }

    fn status(&self) -> Value {
        serde_json::from_str(&self.http("GET", "/status", None).1).expect("/status is JSON")
    }

    /// Waits until the running generation passes `after`; returns the new status.
    fn wait_for_generation(&self, after: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let status = self.status();
            if status["generation"].as_u64().unwrap_or(0) > after {
                return status;
            }
            assert!(Instant::now() < deadline, "no reload happened: {status}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Closes stdin, waits for the run to finish, returns (events out, stderr).
    fn finish(mut self) -> (Vec<Value>, String, tempfile::TempDir) {
        drop(self.child.stdin.take());
        let out = self.child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        (
            support::read_ndjson(&self.dir.path().join("out.ndjson")),
            stderr,
            self.dir,
        )
    }
}

/// Feeds `n` events on a thread, at a steady pace, then returns the stdin.
fn feed(child: &mut Child, n: u64) -> std::thread::JoinHandle<std::process::ChildStdin> {
    let mut stdin = child.stdin.take().expect("piped stdin");
    std::thread::spawn(move || {
        for id in 0..n {
            let _ = writeln!(stdin, "{{\"id\":{id}}}");
            if id % 20 == 0 {
                let _ = stdin.flush();
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let _ = stdin.flush();
        stdin
    })
}

#[test]
fn reorders_and_binary_replacements_under_load_lose_and_mix_nothing() {
    let orders: [&[&str]; 3] = [&["a", "b", "c"], &["c", "b", "a"], &["b", "a"]];
    let mut running = Running::start(orders[0]);
    let n = 6000;
    let feeder = feed(&mut running.child, n);
    let original = std::fs::read(&running.plugin).unwrap();
    let mut generation = running.status()["generation"].as_u64().unwrap();
    let mut hashes = BTreeSet::new();
    for i in 0..10u32 {
        if i % 2 == 0 {
            running.write_config(orders[(i as usize / 2 + 1) % orders.len()], "");
        } else {
            replace(&running.plugin, &rebuilt(&original, i));
        }
        let status = running.wait_for_generation(generation);
        generation = status["generation"].as_u64().unwrap();
        assert_eq!(status["last_reload"]["ok"], true, "{status}");
        hashes.insert(
            status["chain"][0]["sha256"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    // Two more through the other triggers.
    let (code, body) = running.http("POST", "/reload", Some("s3cret"));
    assert_eq!(code, 200, "{body}");
    generation = running.wait_for_generation(generation)["generation"]
        .as_u64()
        .unwrap();
    let pid = running.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    let status = running.wait_for_generation(generation);
    assert_eq!(status["last_reload"]["trigger"], "SIGHUP");
    assert!(status["reloads"].as_u64().unwrap() >= 12, "{status}");
    assert!(
        hashes.len() >= 3,
        "replacing the binary changed the running content hash: {hashes:?}"
    );

    running.child.stdin = Some(feeder.join().unwrap());
    let (events, stderr, _dir) = running.finish();
    let ids: Vec<u64> = events.iter().filter_map(|e| e["id"].as_u64()).collect();
    assert_eq!(
        ids,
        (0..n).collect::<Vec<_>>(),
        "every event exactly once, in order:\n{stderr}"
    );
    let allowed: BTreeSet<Vec<String>> = orders
        .iter()
        .map(|o| o.iter().map(|s| s.to_string()).collect())
        .collect();
    let mut seen = BTreeSet::new();
    for e in &events {
        let trail: Vec<String> = e["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect();
        assert!(
            allowed.contains(&trail),
            "event processed by a mix of chains: {e}"
        );
        seen.insert(trail);
    }
    assert!(
        seen.len() >= 2,
        "the reorders took effect under load: {seen:?}"
    );
}

#[test]
fn a_broken_reload_keeps_the_old_chain_and_says_why() {
    let running = Running::start(&["a", "b"]);
    let before = running.status();
    std::fs::write(running.dir.path().join("broken.wasm"), b"not a component").unwrap();
    let broken = format!(
        "[[plugins]]\nname = \"broken\"\npath = {:?}\n",
        running.dir.path().join("broken.wasm")
    );
    let text = config(running.port, &running.plugin, &["a", "b"], "") + &broken;
    replace(&running.dir.path().join("pipeline.toml"), text.as_bytes());
    let (code, body) = running.http("POST", "/reload", Some("s3cret"));
    assert_eq!(code, 422, "{body}");
    assert!(
        body.contains("plugin `broken`") && body.contains("not a valid WebAssembly component"),
        "{body}"
    );

    let status = running.status();
    assert_eq!(
        status["generation"], before["generation"],
        "old chain still running"
    );
    assert_eq!(status["chain"].as_array().unwrap().len(), 2);
    assert_eq!(status["last_reload"]["ok"], false);
    assert!(
        status["last_reload"]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("plugin `broken`"),
        "{status}"
    );
    assert!(status["reload_failures"].as_u64().unwrap() >= 1);

    // A bad TOML key is refused the same way.
    let text = config(running.port, &running.plugin, &["a", "b"], "bogus = 1");
    replace(&running.dir.path().join("pipeline.toml"), text.as_bytes());
    let (code, body) = running.http("POST", "/reload", Some("s3cret"));
    assert_eq!(code, 422);
    assert!(body.contains("unknown field `bogus`"), "{body}");

    // Scraped with a Prometheus text parser: the failures are counted.
    let (code, text) = running.http("GET", "/metrics", None);
    assert_eq!(code, 200);
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text");
    let failed: f64 = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "weir_reloads_total" && s.labels.get("outcome") == Some("failed"))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum();
    assert!(
        failed >= 2.0,
        "weir_reloads_total{{outcome=\"failed\"}} = {failed}"
    );
    assert!(scrape
        .samples
        .iter()
        .any(|s| s.metric == "weir_chain_generation"));

    // Events still flow through the old chain.
    let mut running = running;
    let feeder = feed(&mut running.child, 50);
    running.child.stdin = Some(feeder.join().unwrap());
    let (events, _, _dir) = running.finish();
    assert_eq!(events.len(), 50);
    assert!(events
        .iter()
        .all(|e| e["tags"] == serde_json::json!(["a", "b"])));
}

#[test]
fn metrics_cover_plugins_events_and_routes() {
    let mut running = Running::start(&["a"]);
    let feeder = feed(&mut running.child, 200);
    running.child.stdin = Some(feeder.join().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    while running.status()["events"]["sent"].as_u64() != Some(200) {
        assert!(Instant::now() < deadline, "events not through");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (_, text) = running.http("GET", "/metrics", None);
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("valid Prometheus text");
    let value = |metric: &str, label: Option<(&str, &str)>| -> f64 {
        scrape
            .samples
            .iter()
            .filter(|s| s.metric == metric && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
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
    };
    assert_eq!(value("weir_events_received_total", None), 200.0);
    assert_eq!(value("weir_events_sent_total", None), 200.0);
    assert_eq!(
        value("weir_plugin_events_total", Some(("outcome", "kept"))),
        200.0
    );
    assert!(
        value("weir_plugin_batch_seconds", Some(("plugin", "a"))) > 0.0,
        "per-plugin batch latency histogram"
    );
    let (code, _) = running.http("POST", "/reload", None);
    assert_eq!(code, 401, "a configured token is required");
    assert_eq!(running.http("GET", "/health", None).0, 200);
    running.finish();
}

#[test]
fn restart_only_settings_are_reported_not_ignored() {
    let running = Running::start(&["a"]);
    let text = config(running.port, &running.plugin, &["a"], "")
        .replace("batch_size = 8", "batch_size = 16");
    replace(&running.dir.path().join("pipeline.toml"), text.as_bytes());
    let (code, body) = running.http("POST", "/reload", Some("s3cret"));
    assert_eq!(code, 200, "{body}");
    let status = running.status();
    assert_eq!(
        status["last_reload"]["needs_restart"],
        serde_json::json!(["pipeline"]),
        "{status}"
    );
    running.finish();
}
