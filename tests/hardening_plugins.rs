//! Replies from a plugin written straight against the WIT contract
//! (`tests/fixtures/raw-hostile`), which the SDK would never produce, one test each.
//! Each asserts the host survives, the right events follow the policy, and the reason
//! names the plugin and what was wrong. The numbers in the names are the items of issue
//! #13; `hardening.rs` has the hostile log lines.

mod support;

use support::hardening::*;
use support::{events, hostile, stopped_after, weir_within, Pipeline};

#[test]
fn item3_a_reply_setting_a_45000_segment_path_fails_the_batch_naming_the_plugin() {
    let nesting = "nesting of an edit (path segments plus the value's depth) over the limit of 128";
    for (mode, n, why) in [
        (
            "deep-path",
            45_000,
            "field path (bytes) over the limit of 1024",
        ),
        ("deep-path", 200, nesting),
        ("deep-json", 200, nesting),
    ] {
        let p = raw_pipeline(6, mode, n);
        run(&p);
        assert!(p.output().is_empty(), "{mode}");
        let reasons = reasons(&p);
        assert_eq!(
            reasons.len(),
            6,
            "{mode} {n}: every event followed the policy"
        );
        for r in reasons {
            assert!(
                r.starts_with("plugin `raw` sent a malformed reply: event ") && r.contains(why),
                "{mode} {n}: {r}"
            );
        }
    }
}

#[test]
fn item4_a_plugin_sleeping_an_hour_is_stopped_at_its_deadline_or_wakes_at_once() {
    // Without a clock the plugin cannot tell time, so its sleep ends at once.
    let p = raw_pipeline(2, "sleep", 3_600_000);
    run(&p);
    assert_eq!(ids(&p.output()), [0, 1]);
    // With one, the sleep is cut at the deadline and the call fails as over it.
    let entry = raw("fail-closed", "sleep", 3_600_000, "", "").replace(
        "[plugins.config]",
        "[plugins.grants]\nclock = true\n[plugins.config]",
    );
    let p = Pipeline::new(&events(2, &[]), &entry);
    run(&p);
    let reasons = reasons(&p);
    assert_eq!(reasons.len(), 2);
    for r in &reasons {
        assert!(r.contains("exceeded its deadline of 200 ms"), "{r}");
        // A generous bound on a noisy machine; before, the call took the whole hour.
        assert!(stopped_after(r) < 5_000, "{r}");
    }
}

#[test]
fn item4_a_plugin_sleeping_in_init_is_stopped_at_the_init_deadline() {
    let check = |grants: &str| {
        let entry = raw(
            "fail-closed",
            "init-sleep",
            3_600_000,
            "",
            "init_deadline_ms = 300",
        )
        .replace("[plugins.config]", &format!("{grants}[plugins.config]"));
        let p = Pipeline::new(&[], &entry);
        weir_within(
            &["check", "--config", &p.config().display().to_string()],
            NO_HANG,
        )
    };
    let out = check("");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = check("[plugins.grants]\nclock = true\n");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("plugin `raw`") && err.contains("init exceeded its deadline of 300 ms"),
        "{err}"
    );
}

#[test]
fn item6_one_poison_event_follows_the_policy_and_its_batch_mates_do_not() {
    // 300 events, batches of 256: the poison event (a deadline) sits in the first.
    let input = events(300, &[77]);
    for policy in ["fail-closed", "fail-open"] {
        let p = Pipeline::with_settings(
            &input,
            "batch_size = 256",
            &hostile("bad", policy, "mode = \"loop\""),
        );
        run(&p);
        let out = p.output();
        let seen: Vec<u64> = out
            .iter()
            .filter(|e| e["seen_by"] == "bad")
            .filter_map(|e| e["id"].as_u64())
            .collect();
        let expected: Vec<u64> = (0..300).filter(|i| *i != 77).collect();
        assert_eq!(
            seen, expected,
            "{policy}: the others were processed normally"
        );
        if policy == "fail-closed" {
            assert_eq!(dead_ids(&p), [77]);
            assert!(reasons(&p)[0].contains("plugin `bad` exceeded its deadline"));
        } else {
            assert!(p.dead().is_empty());
            assert_eq!(ids(&out).len(), 300, "fail-open passes the poison event on");
        }
    }
}

/// The raw plugin, fail-closed, in a mode whose `init` spins for `init_ms` (so it needs
/// the clock), with a 50 ms deadline: restarts cost far more than calls.
fn slow_init_raw(mode: &str, init_ms: u64) -> String {
    raw("fail-closed", mode, init_ms, "", "")
        .replace("deadline_ms = 200", "deadline_ms = 50")
        .replace(
            "[plugins.config]",
            "[plugins.grants]\nclock = true\n[plugins.config]",
        )
}

#[test]
fn item6_isolating_a_batch_is_bounded_in_time_when_every_restart_is_slow() {
    // Every call traps and every restart spends 200 ms in init: 32 retries of a batch
    // of 256 would restart 32 times (6.4 s of init); the time bound (the retries at
    // the 50 ms deadline plus two ticks each, and a second for restarts: 3.24 s) stops
    // it after at most 17.
    let entry = slow_init_raw("slow-init-trap", 200);
    let p = Pipeline::with_settings(&events(256, &[]), "batch_size = 256", &entry);
    let out = run(&p);
    assert_eq!(p.dead().len(), 256, "every event followed the policy");
    let summary = String::from_utf8_lossy(&out.stderr);
    let restarts: u64 = summary
        .split(" restarts")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no restart count in {summary}"));
    assert!(
        (1..=17).contains(&restarts),
        "{restarts} restarts: {summary}"
    );
}

#[test]
fn item6_batch_mates_of_a_looping_event_are_cleared_even_when_restarts_are_slow() {
    // Event 0 spins past the 50 ms deadline; each restart spends 300 ms in init. Clearing
    // its 7 batch mates takes three deadlines and three restarts (~1.1 s): more than the
    // retries' deadlines alone (12 x 50 ms), which dead-lettered innocent events.
    let entry = slow_init_raw("slow-init-spin-on-zero", 300);
    let p = Pipeline::with_settings(&events(8, &[]), "batch_size = 8", &entry);
    let out = run(&p);
    assert_eq!(
        dead_ids(&p),
        vec![0],
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(ids(&p.output()), (1..8).collect::<Vec<_>>());
}

#[test]
fn item7_a_megabyte_error_is_cut_to_4_kib_per_dead_letter() {
    for mode in ["error", "log-error-trap"] {
        let p = raw_pipeline(40, mode, 1_000_000);
        run(&p);
        let reasons = reasons(&p);
        assert_eq!(reasons.len(), 40, "{mode}");
        for r in &reasons {
            assert!(r.len() < 4500, "{mode}: {} bytes", r.len());
            assert!(
                r.contains("… (truncated: 1000000 bytes in all)"),
                "{mode}: {}",
                &r[..80]
            );
        }
        let size = std::fs::metadata(p.dir.path().join("dead.ndjson")).map_or(0, |m| m.len());
        assert!(size < 400_000, "{mode}: dead-letter file of {size} bytes");
    }
}

#[test]
fn item8_80000_tags_on_one_event_are_refused_and_1000_are_applied_once_each() {
    let p = raw_pipeline(8, "tags", 80_000);
    run(&p);
    assert_eq!(dead_ids(&p), [0], "only the event with the tags");
    assert!(reasons(&p)[0].contains("edits for one event over the limit of 1024"));
    assert_eq!(ids(&p.output()), [1, 2, 3, 4, 5, 6, 7]);
    let p = raw_pipeline(2, "tags", 1_000);
    run(&p);
    let out = p.output();
    let tags = out[0]["tags"].as_array().map(Vec::len);
    assert_eq!(tags, Some(1_000));
}

#[test]
fn item9_a_flood_of_decisions_and_a_huge_manifest_are_refused_early() {
    let p = raw_pipeline(4, "keep-flood", 10_000_000);
    run(&p);
    assert_eq!(reasons(&p).len(), 4);
    assert!(
        reasons(&p)[0].contains("decisions (one per event of the batch) over the limit of"),
        "{}",
        reasons(&p)[0]
    );
    let p = Pipeline::new(&[], &raw("fail-closed", "manifest", 100_000, "", ""));
    let out = weir_within(
        &["check", "--config", &p.config().display().to_string()],
        NO_HANG,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("plugin `raw`")
            && err.contains("the plugin's manifest declares reads: 100000, over the limit of 1024"),
        "{err}"
    );
}

#[test]
fn item10_distinct_counter_names_are_capped_and_the_overflow_counted() {
    let p = raw_pipeline(300, "counters", 0);
    let out = run(&p);
    let summary = String::from_utf8_lossy(&out.stderr);
    let names = summary
        .lines()
        .filter(|l| l.trim_start().starts_with('c') && l.contains(" = "))
        .count();
    assert_eq!(names, 64, "{summary}");
    assert!(
        summary.contains("236 counter additions refused (at most 64 names)"),
        "{summary}"
    );
}

#[test]
fn item11_an_event_a_plugin_blows_up_is_dead_lettered_at_the_output() {
    let p = raw_pipeline(2, "big-output", 3_000_000);
    run(&p);
    assert!(p.output().is_empty());
    let dead = p.dead();
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0]["stage"], "sink");
    let reason = dead[0]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains(
            "after the chain, over the output limit of 2097152 (pipeline.max_output_bytes)"
        ),
        "{reason}"
    );
}

#[test]
fn item12_mmdb_refuses_a_symlink_out_of_its_granted_directory() {
    let outside = tempfile::tempdir().expect("dir");
    let grant = tempfile::tempdir().expect("dir");
    let secret = outside.path().join("secret.mmdb");
    std::fs::write(&secret, b"not for plugins").expect("write");
    std::os::unix::fs::symlink(&secret, grant.path().join("link.mmdb")).expect("link");
    let entry = raw("fail-closed", "mmdb-open", 0, "/geo/link.mmdb", "").replace(
        "[plugins.config]",
        &format!(
            "[plugins.grants]\ndirs = {{ \"/geo\" = {:?} }}\n[plugins.config]",
            grant.path()
        ),
    );
    let p = Pipeline::new(&events(1, &[]), &entry);
    run(&p);
    let got = p.output()[0]["mmdb"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        got,
        "refused: /geo/link.mmdb: leads outside its granted directory (through a symbolic link)"
    );
}

#[test]
fn item13_plugin_log_lines_cannot_forge_host_lines_and_suppression_is_shown() {
    let text = "hello\nweir: FORGED line\rand more";
    let entry = raw("fail-closed", "log", 50, text, "log_lines_per_second = 5");
    let p = Pipeline::new(&events(4, &[]), &entry);
    let out = run(&p);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr
            .lines()
            .any(|l| l.starts_with("weir: FORGED") || l.starts_with("and more")),
        "{stderr}"
    );
    assert!(
        stderr.contains(r"hello\nweir: FORGED line\rand more"),
        "{stderr}"
    );
    assert!(
        stderr.contains("45 log lines suppressed by the rate limit"),
        "{stderr}"
    );
}

#[test]
fn item13_a_shadow_stack_overflow_is_named() {
    let p = raw_pipeline(1, "stack-overflow", 0);
    run(&p);
    let reason = &reasons(&p)[0];
    assert!(reason.contains("stack overflow"), "{reason}");
}
