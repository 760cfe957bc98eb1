//! The four bundled plugins, loaded as wasm by the host: the seeds' Logstash filter block
//! (`examples/pipeline.toml`) over the sample logs, and each plugin's config errors.

mod support;

use serde_json::Value;
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
