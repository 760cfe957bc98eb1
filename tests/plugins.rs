//! The four bundled plugins, loaded as wasm by the host: the seeds' Logstash filter block
//! (`examples/pipeline.toml`) over the sample logs, and each plugin's config errors.

mod support;

use serde_json::Value;
use support::double::Double;
use support::live::{admin_section, Live};
use support::{root, wasm, weir, Pipeline};

const SECRETS: [&str; 5] = ["password", "token", "secret", "authorization", "api_key"];

/// Runs examples/pipeline.toml as written, with its outputs redirected to a temp dir.
fn run_example_pipeline() -> (tempfile::TempDir, Vec<Value>, Vec<Value>, String) {
    build_bundled();
    let dir = tempfile::tempdir().unwrap();
    let examples = root().join("examples");
    let text = std::fs::read_to_string(examples.join("pipeline.toml")).unwrap();
    let text = text.replace(
        "\"../target/pipeline/",
        &format!("\"{}/", dir.path().display()),
    );
    // Beside the original, so its relative paths resolve the same way; removed on drop.
    let config = tempfile::Builder::new()
        .prefix(".pipeline-test-")
        .suffix(".toml")
        .tempfile_in(&examples)
        .unwrap();
    std::fs::write(config.path(), text).unwrap();
    let out = weir(&["run", "--config", &config.path().display().to_string()]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let events = support::read_ndjson(&dir.path().join("events.ndjson"));
    let dead = support::read_ndjson(&dir.path().join("dead-letter.ndjson"));
    (dir, events, dead, stderr)
}

fn build_bundled() {
    for krate in ["weir-normalize", "weir-geoip", "weir-redact", "weir-route"] {
        wasm(krate);
    }
}

fn input() -> Vec<Value> {
    let text = std::fs::read_to_string(root().join("examples/logs/sample.ndjson")).unwrap();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(Value::is_object)
        .collect()
}

fn has_secret(v: &Value) -> bool {
    match v {
        Value::Object(m) => m
            .iter()
            .any(|(k, v)| SECRETS.iter().any(|s| s.eq_ignore_ascii_case(k)) || has_secret(v)),
        Value::Array(a) => a.iter().any(has_secret),
        _ => false,
    }
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

#[test]
fn the_seed_filter_block_over_the_sample_logs() {
    let (_dir, events, dead, summary) = run_example_pipeline();
    let input = input();
    assert_eq!(
        dead.len(),
        4,
        "only the malformed lines are dead-lettered: {dead:?}"
    );
    assert!(dead.iter().all(|d| d["stage"] == "decode"));

    // DEBUG from non-critical services is dropped, everything else comes out, in order.
    let survivors: Vec<&Value> = input
        .iter()
        .filter(|e| {
            let level = e["level"].as_str().unwrap_or_default().to_ascii_uppercase();
            !(matches!(level.as_str(), "DEBUG" | "TRACE") && e["service"] != "critical-service")
        })
        .collect();
    assert_eq!(events.len(), survivors.len(), "{summary}");
    assert!(
        events.len() < input.len(),
        "the sample has DEBUG events to drop"
    );

    for (out, original) in events.iter().zip(survivors) {
        assert_eq!(out["trace_id"], original["trace_id"], "order kept");
        let level = out["level"].as_str().unwrap_or_default();
        assert!(
            ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"].contains(&level),
            "canonical level: {out}"
        );
        assert!(
            out["@timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
            "@timestamp: {out}"
        );
        let pattern = out["path_pattern"].as_str().unwrap_or_default();
        assert!(
            !pattern
                .split('/')
                .any(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())),
            "{pattern}"
        );
        assert!(!has_secret(out), "secrets gone at every depth: {out}");
        let text = out.to_string();
        assert!(
            !text.contains("mario.rossi@")
                && !text.contains("giulia.bianchi@")
                && !text.contains("luca.verdi@"),
            "emails masked: {out}"
        );
        if let Some(email) = out["email"].as_str() {
            assert!(email.contains("***@"), "{email}");
        }
        let client_ip = original["client_ip"].as_str().unwrap_or_default();
        let public = [
            "8.8.8.8",
            "81.2.69.160",
            "2.125.160.216",
            "89.160.20.128",
            "175.16.199.10",
        ]
        .contains(&client_ip);
        assert_eq!(
            out["geo"]["country_iso_code"].is_string(),
            public,
            "geo for public IPs only: {out}"
        );
        let want_route = match out["service"].as_str() {
            Some("payment-gateway") => "payments",
            Some("user-profile") => "users",
            _ => "general",
        };
        assert_eq!(out["route"], want_route);
        let slow = [
            &original["duration_ms"],
            &original["performance"]["duration_ms"],
        ]
        .iter()
        .any(|v| number(v).is_some_and(|d| d > 1000.0));
        assert_eq!(out["slow_request"] == true, slow, "slow_request: {out}");
        let severity = match level {
            "ERROR" | "CRITICAL" if original.get("exception").is_some() => Some("high"),
            "ERROR" | "CRITICAL" => Some("medium"),
            _ => None,
        };
        assert_eq!(
            out["alert_severity"].as_str(),
            severity,
            "alert_severity: {out}"
        );
        if let Some(tb) = original["exception"]["traceback"].as_str() {
            assert_eq!(out["exception"]["traceback"], tb, "traceback intact");
        }
    }
    // Numeric strings in the sample are coerced.
    assert!(events
        .iter()
        .all(|e| e["status_code"].is_number() && (e["duration_ms"].is_number())));
}

#[test]
fn weir_test_shows_every_plugins_decision_on_the_sample_logs() {
    build_bundled();
    let config = root().join("examples/pipeline.toml").display().to_string();
    let input = root()
        .join("examples/logs/sample.ndjson")
        .display()
        .to_string();
    let out = weir(&["test", "--config", &config, "--input", &input]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    for marker in [
        "normalize  keep",
        "geoip      keep  [set geo.country_iso_code",
        "redact     keep  [remove",
        "route      drop",
        "route      route payments",
        "tag _geoip_private_address",
    ] {
        assert!(text.contains(marker), "missing {marker:?}");
    }
}

fn check_error(krate: &str, config: &str, grants: &str) -> String {
    let entry = format!(
        "[[plugins]]\nname = \"p\"\npath = {:?}\n{grants}[plugins.config]\n{config}\n",
        wasm(krate)
    );
    let p = Pipeline::new(&[], &entry);
    let out = weir(&["check", "--config", &p.config().display().to_string()]);
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn each_plugin_rejects_bad_config_at_init_naming_the_key() {
    let err = check_error("weir-normalize", "level_aliases = { x = \"LOUD\" }", "");
    assert!(
        err.contains("rejected its config: config.level_aliases.x"),
        "{err}"
    );
    let err = check_error(
        "weir-redact",
        "rules = [{ name = \"cc\", pattern = \"(\", replacement = \"\" }]",
        "",
    );
    assert!(
        err.contains("rejected its config: config.rules[0] (\"cc\").pattern: invalid regex"),
        "{err}"
    );
    let err = check_error(
        "weir-route",
        "rules = [{ when = [{ field = \"a\" }], drop = true }]",
        "",
    );
    assert!(
        err.contains("rejected its config: config.rules[0].when[0]: needs exactly one of"),
        "{err}"
    );
    let err = check_error(
        "weir-geoip",
        "database = \"/geoip/missing.mmdb\"",
        &format!(
            "[plugins.grants]\ndirs = {{ \"/geoip\" = {:?} }}\n",
            root().join("plugins/geoip/testdata")
        ),
    );
    assert!(
        err.contains("rejected its config: config.database: cannot open /geoip/missing.mmdb"),
        "{err}"
    );
}

#[test]
fn geoip_without_a_grant_cannot_see_its_database() {
    let db = root().join("plugins/geoip/testdata/test-city.mmdb");
    let err = check_error("weir-geoip", &format!("database = {db:?}"), "");
    assert!(
        err.contains("not inside a granted directory"),
        "the host file is refused without a grant: {err}"
    );
}

#[test]
fn a_key_repeated_inside_a_nested_object_passes_through_and_elasticsearch_rejects_it() {
    let nested = r#"{"id":0,"ctx":{"a":1,"a":2}}"#;
    let deeper = r#"{"id":1,"ctx":{"list":[{"c":2,"c":3}]}}"#;
    let plain = r#"{"id":2,"ctx":{"a":1}}"#;
    let top = r#"{"id":3,"k":1,"x":0,"k":3}"#;
    let input: Vec<String> = [nested, deeper, plain, top].map(str::to_owned).to_vec();
    // Through a chain that edits every event (a top-level `seen_by`), into a file.
    let stamp = support::hostile("stamp", "fail-closed", "");
    let p = Pipeline::new(&input, &stamp);
    p.run();
    let text = std::fs::read_to_string(p.dir.path().join("out.ndjson")).expect("output");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(
        lines[0].contains(r#""ctx":{"a":1,"a":2}"#),
        "both keys kept: {}",
        lines[0]
    );
    assert!(
        lines[1].contains(r#""ctx":{"list":[{"c":2,"c":3}]}"#),
        "{}",
        lines[1]
    );
    assert!(
        lines[3].starts_with(r#"{"id":3,"k":3,"x":0,"#),
        "a top-level key keeps its first position and its last value: {}",
        lines[3]
    );

    // Into Elasticsearch, which refuses a document with a repeated key.
    let double = Double::start();
    double.set(|f| f.duplicate_keys = true);
    let p = Pipeline::new(&input, &stamp);
    let config = std::fs::read_to_string(p.config())
        .expect("config")
        .replace(
            "[sink]\ntype = \"file\"\npath = \"out.ndjson\"\nroute_field = \"route\"\n",
            &format!(
            "[sink]\ntype = \"elasticsearch\"\nurls = [\"{}\"]\nindex = \"logs\"\nflush_ms = 50\n",
            double.url
        ),
        );
    std::fs::write(p.config(), config).expect("write config");
    p.run();
    assert_eq!(double.stored(), 2, "the others are indexed");
    let dead = p.dead();
    let events: Vec<&str> = dead.iter().filter_map(|d| d["event"].as_str()).collect();
    assert_eq!(events, [nested, deeper], "dead-lettered as they arrived");
    for (d, key) in dead.iter().zip(["a", "c"]) {
        assert_eq!(d["stage"], "elasticsearch", "{d}");
        let reason = d["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("mapper_parsing_exception: failed to parse")
                && reason.contains(&format!("Duplicate field '{key}'")),
            "Elasticsearch's reason, cause included: {reason}"
        );
    }
}

#[test]
fn log_lines_are_rate_limited_per_instance_and_the_suppressed_counted() {
    // Two workers, so two instances of `raw`, each with its own budget of 5 lines a
    // second; each logs 50 lines in its one call. Event 0 holds worker one at the gate
    // (before `raw`) while the next chunk can only go to worker two.
    let (dir, port) = (tempfile::tempdir().expect("dir"), support::free_port());
    let gate = tempfile::tempdir().expect("gate dir");
    let text = format!(
        "[source]\ntype = \"stdin\"\n[sink]\ntype = \"file\"\npath = \"out.ndjson\"\n\
         [engine]\ncache_dir = {:?}\n[pipeline]\nbatch_size = 4\nworkers = 2\n{}\
         [[plugins]]\nname = \"gate\"\npath = {:?}\n[plugins.limits]\ndeadline_ms = 60000\n\
         [plugins.grants]\nclock = true\ndirs = {{ \"/gate\" = {:?} }}\n\
         [plugins.config]\nmode = \"wait-file\"\npath = \"/gate/open\"\n\
         [[plugins]]\nname = \"raw\"\npath = {:?}\n[plugins.limits]\nlog_lines_per_second = 5\n\
         [plugins.config]\nmode = \"log\"\nn = 50\ntext = \"a line from raw\"\n",
        root().join("target/test-compile-cache"),
        admin_section(port),
        wasm("weir-hostile"),
        gate.path(),
        wasm("weir-raw-hostile"),
    );
    std::fs::write(dir.path().join("pipeline.toml"), text).expect("write config");
    let mut live = Live::start(dir, port);
    let batch = |from: usize| -> Vec<String> {
        (from..from + 4)
            .map(|id| serde_json::json!({"id": id, "boom": id == 0}).to_string())
            .collect()
    };
    live.send(&batch(0));
    live.wait_for_log(&["waiting for /gate/open"]);
    live.send(&batch(4));
    let suppressed = || live.metric("weir_plugin_logs_suppressed_total", &[("plugin", "raw")]);
    live.wait_for("the second worker's call", || {
        (suppressed() >= 45.0).then_some(())
    });
    std::fs::write(gate.path().join("open"), b"").expect("open the gate");
    live.wait_status("8 events through", |s| s["events"]["sent"] == 8);
    assert_eq!(suppressed(), 90.0, "45 over each instance's budget of 5");
    let printed = |log: &str| {
        log.lines()
            .filter(|l| l.contains("a line from raw"))
            .count()
    };
    assert_eq!(printed(&live.stderr()), 10, "5 lines from each instance");
    let (events, log) = live.finish();
    assert_eq!(events.len(), 8);
    assert!(
        log.contains("90 log lines suppressed by the rate limit"),
        "in the run summary: {log}"
    );
}
