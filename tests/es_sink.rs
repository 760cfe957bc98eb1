//! The Elasticsearch sink against a fault-injecting double: whole-request 429 and 5xx,
//! per-item 429s (only those items are resent), per-item mapping rejections (dead-lettered
//! with Elasticsearch's reason), connection resets, slow responses past the request
//! timeout (the resend is answered 409 and counts as success), bounded retries, batching,
//! concurrency, gzip, auth headers, and template/ILM installation only when changed.
//! The source is a file, so these run without Kafka.

mod support;

use std::path::PathBuf;

use serde_json::Value;
use support::double::Double;
use support::{read_ndjson, weir};

struct Run {
    dir: tempfile::TempDir,
    n: usize,
}

impl Run {
    /// `n` events with `seq` (and `user_id` an object for every seq in `bad`).
    fn new(n: usize, bad: &[usize]) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let lines: Vec<String> = (0..n)
            .map(|seq| {
                let user = if bad.contains(&seq) {
                    serde_json::json!({"id": seq})
                } else {
                    serde_json::json!(format!("u{seq}"))
                };
                serde_json::json!({"seq": seq, "service": "api", "user_id": user, "@timestamp": "2025-01-15T10:00:00Z"})
                    .to_string()
            })
            .collect();
        std::fs::write(dir.path().join("in.ndjson"), lines.join("\n")).unwrap();
        Run { dir, n }
    }

    /// Writes the config with `sink` lines added to `[sink]`; runs `weir run`.
    fn run(&self, double: &Double, sink: &str) -> String {
        let config = self.config(double, sink);
        let out = weir(&["run", "--config", &config.display().to_string()]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        stderr
    }

    fn config(&self, double: &Double, sink: &str) -> PathBuf {
        let text = format!(
            "[source]\ntype = \"file\"\npath = \"in.ndjson\"\n\n[sink]\ntype = \"elasticsearch\"\nurls = [\"{}\"]\n\
             index = \"logs-{{service}}-%Y.%m.%d\"\nflush_ms = 50\n{sink}\n\n[dead_letter]\ntype = \"file\"\npath = \"dead.ndjson\"\n\n\
             [pipeline]\nworkers = 2\nbatch_size = 64\n",
            double.url
        );
        let path = self.dir.path().join("pipeline.toml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn dead(&self) -> Vec<Value> {
        read_ndjson(&self.dir.path().join("dead.ndjson"))
    }

    /// Every event is stored once, under its file-line `_id`, in the right index.
    fn assert_all_stored(&self, double: &Double, except: &[usize]) {
        let state = double.state.lock().unwrap();
        assert_eq!(state.docs.len(), self.n - except.len());
        for (id, (index, doc)) in &state.docs {
            let seq = doc["seq"].as_u64().unwrap() as usize;
            assert!(!except.contains(&seq));
            assert_eq!(index, "logs-api-2025.01.15");
            assert!(id.ends_with(&format!("in.ndjson-{}", seq + 1)), "{id}");
        }
    }
}

const FAST_RETRY: &str = "[sink.retry]\ninitial_ms = 10\nmax_ms = 100\n";

#[test]
fn a_429_storm_5xx_and_per_item_429s_are_retried_and_only_failed_items_are_resent() {
    let run = Run::new(2000, &[]);
    let double = Double::start();
    double.set(|f| {
        f.statuses = [429, 429, 429, 429, 429, 503, 502, 500].into();
        f.item_429_every = Some(7);
    });
    let log = run.run(&double, &format!("batch_events = 250\n{FAST_RETRY}"));
    run.assert_all_stored(&double, &[]);
    assert!(run.dead().is_empty());
    let state = double.state.lock().unwrap();
    for (id, (_, doc)) in &state.docs {
        let seq = doc["seq"].as_u64().unwrap();
        let want = if seq % 7 == 0 { 2 } else { 1 };
        assert_eq!(
            state.attempts[id], want,
            "seq {seq}: only items answered 429 are sent again"
        );
    }
    assert!(state.bulk_requests >= 8 + 8, "{}", state.bulk_requests);
    assert!(log.contains("HTTP 429"), "{log}");
}

#[test]
fn resets_and_responses_slower_than_the_timeout_end_in_exactly_one_copy() {
    let run = Run::new(1000, &[]);
    let double = Double::start();
    double.set(|f| {
        f.resets = 3;
        f.delay = std::time::Duration::from_millis(1500);
        f.slow = 2;
    });
    let log = run.run(
        &double,
        &format!("batch_events = 200\nrequest_timeout_ms = 500\n{FAST_RETRY}"),
    );
    // The timed-out requests are answered late, after their resends were stored: those
    // late copies meet 409s.
    double.wait_idle();
    run.assert_all_stored(&double, &[]);
    assert!(run.dead().is_empty(), "{:?}", run.dead());
    let state = double.state.lock().unwrap();
    assert!(
        state.attempts.values().any(|a| *a >= 2),
        "some documents were sent twice"
    );
    assert!(log.contains("connection"), "{log}");
}

#[test]
fn mapping_rejections_are_dead_lettered_with_the_reason_and_the_rest_is_stored() {
    let bad = [3, 500, 999];
    let run = Run::new(1000, &bad);
    let double = Double::start();
    double.set(|f| f.keyword_field = Some("user_id".into()));
    let log = run.run(&double, "");
    run.assert_all_stored(&double, &bad);
    let dead = run.dead();
    assert_eq!(dead.len(), 3, "{log}");
    for entry in dead {
        let seq = entry["position"].as_u64().unwrap() as usize - 1;
        assert!(bad.contains(&seq));
        assert_eq!(entry["stage"], "elasticsearch");
        assert_eq!(
            entry["source"],
            run.dir.path().join("in.ndjson").display().to_string()
        );
        let reason = entry["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("elasticsearch rejected the document (400): mapper_parsing_exception: failed to parse field [user_id]"),
            "{reason}"
        );
        let raw: Value = serde_json::from_str(entry["event"].as_str().unwrap()).unwrap();
        assert_eq!(raw["seq"], seq, "the original event");
    }
    assert!(
        log.contains("1000 events in, 997 out, 0 dropped, 3 dead-lettered"),
        "{log}"
    );
}

#[test]
fn bounded_retries_give_up_into_the_dead_letter_output() {
    let run = Run::new(300, &[]);
    let double = Double::start();
    double.set(|f| f.statuses = std::iter::repeat_n(503, 1000).collect());
    run.run(
        &double,
        "batch_events = 100\n[sink.retry]\ninitial_ms = 5\nmax_ms = 10\nmax_retries = 2\n",
    );
    assert_eq!(double.stored(), 0);
    let dead = run.dead();
    assert_eq!(dead.len(), 300);
    assert!(dead.iter().all(|d| d["reason"]
        .as_str()
        .unwrap()
        .starts_with("elasticsearch: gave up after 2 retries: HTTP 503")));
    // Three attempts per request: the first and two retries.
    assert_eq!(double.state.lock().unwrap().bulk_requests, 3 * 3);
}

/// Every dead-letter entry has `reason`, and the entries hold the events `0..n`.
fn assert_dead_lettered(run: &Run, reason: impl Fn(&str) -> bool) {
    let dead = run.dead();
    let mut seqs: Vec<u64> = dead
        .iter()
        .map(|d| {
            let r = d["reason"].as_str().unwrap_or_default();
            assert!(reason(r), "reason: {r}");
            assert_eq!(d["stage"], "elasticsearch");
            let raw: Value = serde_json::from_str(d["event"].as_str().unwrap()).unwrap();
            raw["seq"].as_u64().unwrap()
        })
        .collect();
    seqs.sort_unstable();
    assert_eq!(seqs, (0..run.n as u64).collect::<Vec<_>>());
}

#[test]
fn a_request_refused_with_a_4xx_is_dead_lettered_with_the_reason_and_not_resent() {
    for status in [400, 404, 413] {
        let run = Run::new(50, &[]);
        let double = Double::start();
        double.set(|f| f.statuses = std::iter::repeat_n(status, 1000).collect());
        let log = run.run(&double, FAST_RETRY);
        let want = format!("elasticsearch refused the bulk request: HTTP {status}: ");
        assert_dead_lettered(&run, |r| {
            r.starts_with(&want) && r.contains("injected fault")
        });
        let state = double.state.lock().unwrap();
        assert_eq!(state.bulk_sizes.iter().sum::<usize>(), 50, "each sent once");
        assert!(state.docs.is_empty());
        assert!(!log.contains("retrying"), "{log}");
        assert!(
            log.contains("50 events in, 0 out, 0 dropped, 50 dead-lettered"),
            "{log}"
        );
    }
}

#[test]
fn refused_credentials_are_retried_and_logged_as_errors() {
    const REFUSED: &str = "elasticsearch refused the credentials (check sink.auth); retrying";
    let errors = |log: &str| {
        log.lines()
            .filter(|l| l.contains("ERROR") && l.contains(REFUSED))
            .count()
    };
    for status in [401, 403] {
        // Refused for good: each document is sent 1 + max_retries times, every refusal
        // is an error line, and then the documents are dead-lettered.
        let run = Run::new(50, &[]);
        let double = Double::start();
        double.set(|f| f.statuses = std::iter::repeat_n(status, 1000).collect());
        let log = run.run(
            &double,
            "[sink.retry]\ninitial_ms = 5\nmax_ms = 10\nmax_retries = 2\n",
        );
        let want = format!("elasticsearch: gave up after 2 retries: HTTP {status}: ");
        assert_dead_lettered(&run, |r| r.starts_with(&want));
        let state = double.state.lock().unwrap();
        assert_eq!(state.bulk_sizes.iter().sum::<usize>(), 3 * 50);
        assert_eq!(errors(&log), state.bulk_requests as usize, "{log}");
    }
    // With the default (unbounded) retries, once the credentials are accepted everything
    // is stored, once.
    let run = Run::new(50, &[]);
    let double = Double::start();
    double.set(|f| f.statuses = [401, 403].into());
    let log = run.run(&double, FAST_RETRY);
    run.assert_all_stored(&double, &[]);
    assert!(run.dead().is_empty());
    assert_eq!(errors(&log), 2, "{log}");
}

#[test]
fn batches_are_bounded_gzipped_and_sent_concurrently_up_to_the_limit() {
    let run = Run::new(3000, &[]);
    let double = Double::start();
    // The first requests are held until three are in flight and no fourth has come for
    // half a second: a fourth would arrive meanwhile if the limit were not kept.
    double.set(|f| {
        f.hold_until = Some(3);
        f.hold_quiet = std::time::Duration::from_millis(500);
        f.delay = std::time::Duration::from_millis(50);
    });
    run.run(&double, "batch_events = 100\nconcurrency = 3");
    run.assert_all_stored(&double, &[]);
    let state = double.state.lock().unwrap();
    assert_eq!(
        state.max_concurrent, 3,
        "three requests in flight: reached, never passed"
    );
    let sizes = &state.bulk_sizes;
    assert_eq!(sizes.iter().sum::<usize>(), 3000, "each document sent once");
    assert!(
        sizes.iter().all(|n| (1..=100).contains(n)),
        "at most 100 documents per request: {sizes:?}"
    );
    // The file is read in milliseconds, so requests fill to the count (only one sent at
    // the 1 s age limit after a stall of the reader would be short), held slots or not.
    let at_the_count = sizes.iter().filter(|n| **n == 100).count();
    assert!(
        at_the_count >= 25,
        "requests fill to 100 documents: {sizes:?}"
    );
    assert_eq!(state.gzipped, state.bulk_requests, "every body gzipped");
    drop(state);

    // By bytes: ~80-byte documents, 4 KiB requests.
    let double = Double::start();
    run.run(&double, "batch_bytes = 4096\ngzip_level = 0");
    let state = double.state.lock().unwrap();
    assert!(
        state.bulk_requests >= 3000 * 120 / 4096,
        "{}",
        state.bulk_requests
    );
    assert_eq!(state.gzipped, 0);
}

#[test]
fn basic_and_api_key_credentials_are_sent() {
    let run = Run::new(10, &[]);
    let double = Double::start();
    run.run(
        &double,
        "[sink.auth]\nusername = \"weir\"\npassword = \"s3cret\"",
    );
    // base64("weir:s3cret")
    let state = double.state.lock().unwrap();
    assert!(!state.auth.is_empty());
    assert!(state.auth.iter().all(|a| a == "Basic d2VpcjpzM2NyZXQ="));
    drop(state);
    let double = Double::start();
    run.run(&double, "[sink.auth]\napi_key = \"aWQ6a2V5\"");
    let state = double.state.lock().unwrap();
    assert!(!state.auth.is_empty());
    assert!(state.auth.iter().all(|a| a == "ApiKey aWQ6a2V5"));
    drop(state);
    // Credentials in the URL are basic auth.
    let double = Double::start();
    let with_user = Double {
        url: double.url.replace("http://", "http://weir:s3cret@"),
        state: double.state.clone(),
    };
    run.run(&with_user, "");
    let state = double.state.lock().unwrap();
    assert!(!state.auth.is_empty());
    assert!(state.auth.iter().all(|a| a == "Basic d2VpcjpzM2NyZXQ="));
}

#[test]
fn the_template_and_ilm_policy_are_installed_only_when_absent_or_changed() {
    let run = Run::new(10, &[]);
    let examples = support::root().join("examples/elasticsearch");
    let template = run.dir.path().join("template.json");
    std::fs::copy(examples.join("index-template.json"), &template).unwrap();
    let setup = format!(
        "[sink.setup.index_template]\nname = \"python-logs\"\nfile = {template:?}\n\
         [sink.setup.ilm_policy]\nname = \"python-logs-policy\"\nfile = {:?}\n",
        examples.join("ilm-policy.json")
    );
    let double = Double::start();
    let puts = |d: &Double| {
        d.state
            .lock()
            .unwrap()
            .log
            .iter()
            .filter(|l| l.starts_with("PUT"))
            .cloned()
            .collect::<Vec<_>>()
    };
    run.run(&double, &setup);
    assert_eq!(
        puts(&double),
        [
            "PUT /_ilm/policy/python-logs-policy",
            "PUT /_index_template/python-logs"
        ]
    );
    let stored = double.state.lock().unwrap().resources["/_index_template/python-logs"].clone();
    assert_eq!(stored["_meta"]["managed_by"], "weir");
    assert_eq!(
        stored["template"]["mappings"]["properties"]["duration_ms"]["type"],
        "float"
    );

    run.run(&double, &setup);
    assert_eq!(puts(&double).len(), 2, "unchanged: nothing is PUT again");

    let text = std::fs::read_to_string(&template).unwrap();
    std::fs::write(
        &template,
        text.replace("\"number_of_shards\": 2", "\"number_of_shards\": 3"),
    )
    .unwrap();
    run.run(&double, &setup);
    assert_eq!(
        puts(&double).last().map(String::as_str),
        Some("PUT /_index_template/python-logs"),
        "a changed template is replaced"
    );
    assert_eq!(puts(&double).len(), 3);
}

#[test]
fn a_missing_setup_file_is_a_clear_start_up_error() {
    let run = Run::new(1, &[]);
    let double = Double::start();
    let config = run.config(
        &double,
        "[sink.setup.ilm_policy]\nname = \"p\"\nfile = \"missing.json\"\n",
    );
    let out = weir(&["run", "--config", &config.display().to_string()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("sink.setup: ILM policy `p`:") && stderr.contains("missing.json"),
        "{stderr}"
    );
}

#[test]
fn https_with_a_custom_ca_is_trusted_only_with_that_ca() {
    let run = Run::new(200, &[]);
    let (double, ca) = Double::start_tls();
    let ca_file = run.dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    run.run(&double, &format!("tls_ca_file = {ca_file:?}"));
    run.assert_all_stored(&double, &[]);
    assert!(run.dead().is_empty());

    // Without the CA the certificate is refused: nothing is stored, and bounded retries
    // end in the dead-letter output with the TLS error as the reason.
    let run = Run::new(10, &[]);
    let (double, _) = Double::start_tls();
    run.run(
        &double,
        "[sink.retry]\ninitial_ms = 5\nmax_ms = 10\nmax_retries = 1\n",
    );
    assert_eq!(double.stored(), 0);
    let dead = run.dead();
    assert_eq!(dead.len(), 10);
    let reason = dead[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("gave up after 1 retries: connection:")
            && reason.to_lowercase().contains("certificate"),
        "{reason}"
    );
}
