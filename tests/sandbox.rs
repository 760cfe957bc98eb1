//! Hostile plugins cannot take the host down, and their batches follow their policy.
//! What grants let a plugin reach, and the deadline on a loaded machine: `sandbox_grants.rs`.

mod support;

use support::{events, hostile, Pipeline};

fn ids(values: &[serde_json::Value]) -> Vec<u64> {
    values.iter().filter_map(|v| v["id"].as_u64()).collect()
}

/// Batches are 4 events: ids 0-3, 4-7, 8-11. `boom` at id 5 sinks the second batch, and
/// its halves are retried until id 5 alone follows the policy. The deadline is 250 ms:
/// isolating a batch may take as long as its retries would at the deadline each, and at
/// 50 ms, on a loaded machine, the restarts between the retries used that up, so batch
/// mates were dead-lettered with the looping event (and the allocating one hit the
/// deadline before the memory cap).
fn run_hostile(policy: &str, config: &str) -> Pipeline {
    let plugin =
        hostile("bad", policy, config).replace("deadline_ms = 50\n", "deadline_ms = 250\n");
    assert!(plugin.contains("deadline_ms = 250\n"), "{plugin}");
    let p = Pipeline::new(&events(12, &[5]), &plugin);
    p.run();
    p
}

fn assert_fail_closed(p: &Pipeline, reason_part: &str) {
    assert_eq!(
        ids(&p.output()),
        [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11],
        "the other events pass, the failing one's batch mates included"
    );
    let dead = p.dead();
    assert_eq!(
        dead.len(),
        1,
        "only the event that makes the batch fail is dead-lettered: {dead:?}"
    );
    for d in &dead {
        assert_eq!(d["stage"], "plugin");
        assert_eq!(d["plugin"], "bad");
        let reason = d["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains(reason_part),
            "reason {reason:?} should contain {reason_part:?}"
        );
        let original: serde_json::Value =
            serde_json::from_str(d["event"].as_str().unwrap_or_default()).unwrap();
        assert_eq!(original["id"], 5, "original event kept: {original}");
    }
    // The batch after the failure ran on a fresh instance.
    assert!(p.output().iter().all(|e| e["seen_by"] == "bad"));
}

#[test]
fn an_infinite_loop_is_stopped_by_its_deadline() {
    let p = run_hostile("fail-closed", "mode = \"loop\"");
    assert_fail_closed(
        &p,
        "exceeded its deadline of 250 ms (wall clock; stopped after ",
    );
    // The interruption itself must be prompt: a generous bound, for a noisy machine.
    let reason = p.dead()[0]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let after = support::stopped_after(&reason);
    assert!(after < 2_000, "stopped only after {after} ms: {reason}");
}

#[test]
fn without_a_cpu_deadline_a_plugin_is_still_contained_and_the_operator_is_warned() {
    let plugin = hostile("bad", "fail-closed", "mode = \"panic\"").replace(
        "deadline_ms = 50\n",
        "deadline_ms = 50\ncpu_deadline = false\n",
    );
    assert!(plugin.contains("cpu_deadline = false"), "{plugin}");
    let p = Pipeline::new(&events(12, &[5]), &plugin);
    let out = p.run();
    // Compiled by the engine without epoch checks: it still runs, traps are still
    // contained, and the next batch runs on a fresh instance.
    assert_fail_closed(&p, "hostile plugin panicked on purpose");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("plugin `bad` runs without a deadline"),
        "stderr: {stderr}"
    );
}

#[test]
fn unbounded_allocation_is_stopped_by_the_memory_cap() {
    assert_fail_closed(
        &run_hostile("fail-closed", "mode = \"alloc\""),
        "exceeded its memory cap of 16 MiB",
    );
}

#[test]
fn a_panic_is_contained_and_its_message_is_the_reason() {
    assert_fail_closed(
        &run_hostile("fail-closed", "mode = \"panic\""),
        "hostile plugin panicked on purpose",
    );
}

#[test]
fn fail_open_lets_the_batch_through_unchanged() {
    let p = run_hostile("fail-open", "mode = \"panic\"");
    let out = p.output();
    assert_eq!(
        ids(&out),
        (0..12).collect::<Vec<_>>(),
        "nothing lost, order kept"
    );
    assert!(p.dead().is_empty());
    for e in &out {
        let failing = e["id"] == 5;
        // The failing event carries none of the plugin's edits; all others do.
        assert_eq!(e.get("seen_by").is_none(), failing, "{e}");
    }
}

#[test]
fn reading_a_file_without_a_grant_fails() {
    let secret = support::root().join("Cargo.toml");
    let p = run_hostile(
        "fail-closed",
        &format!("mode = \"read-file\"\npath = {secret:?}"),
    );
    let dead = p.dead();
    assert_eq!(
        dead.len(),
        1,
        "only the event that tried is failed: {dead:?}"
    );
    let reason = dead[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("cannot read"), "{reason}");
    assert!(p.output().iter().all(|e| e.get("found").is_none()));
}

#[test]
fn clock_and_environment_are_hidden_by_default() {
    let p = run_hostile("fail-closed", "mode = \"snoop\"");
    let snooped = p
        .output()
        .into_iter()
        .find(|e| e["id"] == 5)
        .expect("event 5 kept");
    assert_eq!(snooped["found"], "clock=0 HOME=<unset>");
}

#[test]
fn invalid_json_from_a_plugin_dead_letters_only_that_event() {
    let p = run_hostile("fail-closed", "mode = \"bad-json\"");
    let dead = p.dead();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("is not valid JSON"),
        "{dead:?}"
    );
    assert_eq!(p.output().len(), 11);
}

#[test]
fn a_plugin_that_traps_in_init_is_reported_by_name() {
    let p = Pipeline::new(
        &events(1, &[]),
        &hostile("stuck", "fail-closed", "init_mode = \"loop\""),
    );
    let out = support::weir(&["check", "--config", &p.config().display().to_string()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("plugin `stuck`"), "{err}");
    assert!(err.contains("exceeded its deadline"), "{err}");
}
