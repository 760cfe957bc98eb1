//! The admin endpoint against clients that lie, dawdle or pile up, and against a reload
//! that takes its time: the process survives, other clients are answered promptly, and
//! `/health` answers afterwards. Raw sockets, each read bounded by a timeout.

mod support;

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::thread::sleep;
use std::time::{Duration, Instant};

use support::raw_http::{drip, exchange, request, Answer};
use support::{free_port, hostile, weir, Pipeline, Running};
use weir::admin::{HEADER_READ_TIMEOUT, MAX_CONNECTIONS};

const TOKEN: &str = "s3cret";

/// A `weir run` reading stdin (so it runs until killed) with the admin endpoint on.
struct Admin {
    port: u16,
    running: Running,
    _pipeline: Pipeline,
}

impl Admin {
    /// `admin` is added to `[admin]`, `plugins` are `[[plugins]]` entries.
    fn start(admin: &str, plugins: &str) -> Admin {
        let port = free_port();
        let pipeline = Pipeline::new(
            &[],
            &format!("[admin]\nlisten = \"127.0.0.1:{port}\"\n{admin}\n\n{plugins}"),
        );
        let config = std::fs::read_to_string(pipeline.config())
            .expect("config")
            .replace("type = \"file\"\npath = \"in.ndjson\"", "type = \"stdin\"");
        std::fs::write(pipeline.config(), config).expect("write config");
        let log = pipeline.dir.path().join("weir.log");
        let running = Running::start(&pipeline.config(), &log);
        let mut admin = Admin {
            port,
            running,
            _pipeline: pipeline,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while admin.get("/ready", None).status != 200 {
            admin.assert_alive("starting");
            assert!(Instant::now() < deadline, "not ready:\n{}", admin.log());
            sleep(Duration::from_millis(50));
        }
        admin
    }

    fn get(&self, path: &str, token: Option<&str>) -> Answer {
        request(self.port, "GET", path, token)
    }

    fn log(&self) -> String {
        self.running.stderr()
    }

    fn assert_alive(&mut self, when: &str) {
        let exited = self.running.child.try_wait().expect("try_wait");
        assert!(
            exited.is_none(),
            "weir exited ({when}): {exited:?}\n{}",
            self.log()
        );
    }

    /// The process runs and `/health` answers 200 within 2 s.
    fn assert_healthy(&mut self, when: &str) {
        self.assert_alive(when);
        let health = self.get("/health", None);
        assert_eq!(
            health.status,
            200,
            "/health {when}: {health:?}\n{}",
            self.log()
        );
    }

    /// The process's thread count.
    fn threads(&self) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.running.child.id()))
            .expect("/proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("a Threads: line")
    }
}

#[test]
fn content_lengths_a_client_makes_up_neither_crash_nor_wedge_the_endpoint() {
    let mut admin = Admin::start("", "");
    let cases: [&[&str]; 5] = [
        &["9223372036854775807"],
        &["18446744073709551615"],
        &["-1"],
        &["ten"],
        &["5", "6"],
    ];
    for lengths in cases {
        let headers: String = lengths
            .iter()
            .map(|l| format!("Content-Length: {l}\r\n"))
            .collect();
        let raw = format!("GET /health HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
        let answer = exchange(admin.port, raw.as_bytes(), Duration::from_secs(3));
        assert!(
            answer.closed && (answer.status == 0 || (400..500).contains(&answer.status)),
            "Content-Length {lengths:?}: {answer:?}"
        );
        admin.assert_healthy(&format!("after Content-Length {lengths:?}"));
    }
}

#[test]
fn slow_clients_hold_up_no_one_and_a_slow_head_is_cut_off() {
    let mut admin = Admin::start("", "");
    let port = admin.port;
    let give_up = HEADER_READ_TIMEOUT + Duration::from_secs(5);
    let slow_head =
        std::thread::spawn(move || drip(port, b"GET /health HTTP/1.1\r\nX-Slow: ", give_up, true));
    // A body claimed huge, then sent at the same pace by a client that never reads.
    let slow_body = std::thread::spawn(move || {
        drip(
            port,
            b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n",
            Duration::from_secs(4),
            false,
        )
    });
    sleep(Duration::from_millis(500));
    for _ in 0..4 {
        let asked = Instant::now();
        let health = admin.get("/health", None);
        assert_eq!(health.status, 200, "{health:?}");
        assert!(
            asked.elapsed() < Duration::from_secs(2),
            "/health took {:?} beside slow clients",
            asked.elapsed()
        );
        assert!(
            !slow_head.is_finished(),
            "the slow head is still being sent"
        );
        sleep(Duration::from_millis(500));
    }
    let cut = slow_head.join().expect("drip thread");
    let cut = cut.unwrap_or_else(|| panic!("a head sent for {give_up:?} was never cut off"));
    assert!(
        cut >= HEADER_READ_TIMEOUT.saturating_sub(Duration::from_secs(1))
            && cut <= HEADER_READ_TIMEOUT + Duration::from_secs(3),
        "the slow head was closed after {cut:?}, header timeout {HEADER_READ_TIMEOUT:?}"
    );
    let _ = slow_body.join();
    admin.assert_healthy("after slow clients");
}

#[test]
fn a_request_head_over_the_limit_is_refused() {
    let mut admin = Admin::start("", "");
    let mut raw = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ".to_vec();
    raw.extend(std::iter::repeat_n(b'a', 1 << 20));
    raw.extend_from_slice(b"\r\n\r\n");
    let answer = exchange(admin.port, &raw, Duration::from_secs(5));
    assert!(
        answer.closed && (answer.status == 0 || answer.status == 431),
        "{:?}",
        answer.text.lines().next()
    );
    admin.assert_healthy("after a 1 MB head");
}

#[test]
fn idle_connections_past_the_cap_lock_out_probes_only_briefly_and_add_no_threads() {
    let mut admin = Admin::start("", "");
    let before = admin.threads();
    let extra = 10;
    let idle: Vec<TcpStream> = (0..MAX_CONNECTIONS + extra)
        .map(|_| TcpStream::connect(("127.0.0.1", admin.port)).expect("connect"))
        .collect();
    sleep(Duration::from_millis(500));
    let during = admin.threads();
    assert!(
        during <= before + 1,
        "{} idle connections: {before} threads before, {during} with them",
        idle.len()
    );
    // Those past the cap were closed at once; the others are still waiting.
    let closed = idle
        .iter()
        .filter(|s| {
            s.set_nonblocking(true).expect("nonblocking");
            !matches!((&**s).read(&mut [0u8; 256]), Err(e) if e.kind() == ErrorKind::WouldBlock)
        })
        .count();
    assert_eq!(
        closed, extra,
        "connections past the cap of {MAX_CONNECTIONS}"
    );
    // A probe evicts the oldest idle one, so it gets through while they are held open.
    let deadline = Instant::now() + HEADER_READ_TIMEOUT + Duration::from_secs(5);
    while admin.get("/health", None).status != 200 {
        admin.assert_alive("with idle connections");
        assert!(
            Instant::now() < deadline,
            "/health locked out by idle connections"
        );
        sleep(Duration::from_millis(200));
    }
    let metrics = admin.get("/metrics", None).text;
    let refused = metrics
        .lines()
        .find_map(|l| l.strip_prefix("weir_admin_connections_refused_total "))
        .and_then(|n| n.trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(refused >= extra as f64, "refusals counted: {refused}");
    assert!(admin.threads() <= before + 1);
    drop(idle);
    admin.assert_healthy("after idle connections");
}

#[test]
fn reconnecting_silent_sockets_cannot_keep_probes_out() {
    // Found in review: 80 silent sockets, each reconnecting as soon as it was closed,
    // held `/health` at 503 for as long as they went on (89 of 89 probes).
    let mut admin = Admin::start("", "");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let port = admin.port;
    let flood: Vec<_> = (0..MAX_CONNECTIONS + 16)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(20);
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && Instant::now() < deadline
                {
                    if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                        // Wait, silent, until the server closes it.
                        let _ = s.set_read_timeout(Some(Duration::from_secs(6)));
                        let _ = s.read(&mut [0u8; 64]);
                    }
                }
            })
        })
        .collect();
    sleep(Duration::from_millis(500));
    let answers: Vec<u16> = (0..20)
        .map(|_| {
            sleep(Duration::from_millis(100));
            admin.get("/health", None).status
        })
        .collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in flood {
        let _ = t.join();
    }
    let served = answers.iter().filter(|s| **s == 200).count();
    assert!(served >= 15, "/health during the flood: {answers:?}");
    admin.assert_healthy("after the flood");
}

#[test]
fn token_for_guards_status_and_metrics_only_when_asked() {
    let token = format!("token = \"{TOKEN}\"");
    let guarded = Admin::start(
        &format!("{token}\ntoken_for = [\"reload\", \"status\", \"metrics\"]"),
        "",
    );
    for path in ["/status", "/metrics"] {
        assert_eq!(guarded.get(path, None).status, 401, "{path} without token");
        assert_eq!(
            guarded.get(path, Some("wrong")).status,
            401,
            "{path} wrong token"
        );
        assert_eq!(
            guarded.get(path, Some(TOKEN)).status,
            200,
            "{path} with token"
        );
    }
    for path in ["/health", "/ready"] {
        assert_eq!(guarded.get(path, None).status, 200, "{path} is always open");
    }
    assert_eq!(request(guarded.port, "POST", "/reload", None).status, 401);
    drop(guarded);

    let default = Admin::start(&token, "");
    for path in ["/status", "/metrics", "/health"] {
        assert_eq!(
            default.get(path, None).status,
            200,
            "{path} open by default"
        );
    }
    assert_eq!(request(default.port, "POST", "/reload", None).status, 401);
    let reload = request(default.port, "POST", "/reload", Some(TOKEN));
    assert_eq!(reload.status, 200, "{reload:?}");
}

#[test]
fn check_names_an_unknown_token_for_endpoint() {
    let p = Pipeline::new(
        &[],
        "[admin]\nlisten = \"127.0.0.1:9600\"\ntoken = \"t\"\ntoken_for = [\"reload\", \"x\"]\n",
    );
    let out = weir(&["check", "--config", &p.config().display().to_string()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("admin.token_for: unknown endpoint \"x\""),
        "{err}"
    );
}

#[test]
fn a_slow_reload_holds_up_neither_status_nor_health_and_a_second_is_refused() {
    let spin = 3000;
    let slow = hostile(
        "slow",
        "fail-open",
        &format!("init_spin_ms = {spin}\n[plugins.grants]\nclock = true"),
    )
    .replace(
        "deadline_ms = 50\n",
        "deadline_ms = 50\ninit_deadline_ms = 10000\n",
    );
    let mut admin = Admin::start("", &slow);
    let port = admin.port;
    let first = std::thread::spawn(move || {
        let asked = Instant::now();
        let answer = weir::admin::client::request(port, "POST", "/reload", None);
        (answer, asked.elapsed())
    });
    sleep(Duration::from_millis(500));
    let asked = Instant::now();
    let second = request(port, "POST", "/reload", None);
    assert_eq!(second.status, 409, "{second:?}");
    assert!(
        second
            .text
            .ends_with(r#"{"ok":false,"error":"a reload is already in progress"}"#),
        "{second:?}"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "409 took {:?}",
        asked.elapsed()
    );
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        for path in ["/status", "/health"] {
            let asked = Instant::now();
            let answer = admin.get(path, None);
            assert_eq!(answer.status, 200, "{path} during a reload: {answer:?}");
            assert!(
                asked.elapsed() < Duration::from_secs(1),
                "{path} took {:?} during a reload",
                asked.elapsed()
            );
        }
        sleep(Duration::from_millis(100));
    }
    assert!(
        !first.is_finished(),
        "the first reload still runs (its init spins {spin} ms)"
    );
    let (answer, took) = first.join().expect("reload thread");
    let (code, body) = answer.expect("POST /reload answered");
    assert_eq!(code, 200, "{body}");
    assert!(
        took >= Duration::from_millis(spin - 500),
        "the reload took {took:?}"
    );
    admin.assert_healthy("after the reload");
}
