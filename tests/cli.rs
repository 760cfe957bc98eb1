//! The command line as an operator and a plugin author use it.

mod support;

use support::{root, wasm, weir, Pipeline};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn check(p: &Pipeline) -> std::process::Output {
    weir(&["check", "--config", &p.config().display().to_string()])
}

fn drop_healthz(config: &str) -> String {
    format!(
        "[[plugins]]\nname = \"healthz\"\npath = {:?}\n[plugins.config]\n{config}\n",
        wasm("drop-healthz")
    )
}

#[test]
fn check_accepts_a_good_config_and_lists_the_chain() {
    let p = Pipeline::new(&[], &drop_healthz("paths = [\"/healthz\"]"));
    let out = check(&p);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ok, 1 plugin(s)")
            && stdout.contains("healthz")
            && stdout.contains("weir:filter@0.1.0"),
        "{stdout}"
    );
}

#[test]
fn check_names_the_file_line_and_unknown_key() {
    let p = Pipeline::new(
        &[],
        &drop_healthz("").replace(
            "[plugins.config]",
            "on_eror = \"fail-open\"\n[plugins.config]",
        ),
    );
    let out = check(&p);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("pipeline.toml: TOML parse error at line"),
        "{err}"
    );
    assert!(err.contains("unknown field `on_eror`"), "{err}");
}

#[test]
fn check_names_a_missing_plugin_file_and_its_entry() {
    let p = Pipeline::new(
        &[],
        "[[plugins]]\nname = \"ghost\"\npath = \"nowhere/ghost.wasm\"\n",
    );
    let out = check(&p);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("pipeline.toml:") && err.contains("plugin `ghost`: path: cannot read"),
        "{err}"
    );
    assert!(err.contains("nowhere/ghost.wasm"), "{err}");
}

#[test]
fn check_shows_the_plugins_own_reason_for_rejecting_its_config() {
    let p = Pipeline::new(&[], &drop_healthz("paths = [\"healthz\"]"));
    let err = stderr(&check(&p));
    assert!(
        err.contains(
            "plugin `healthz`: rejected its config: config.paths: \"healthz\" is not a path"
        ),
        "{err}"
    );
    let p = Pipeline::new(&[], &drop_healthz("pathz = []"));
    let err = stderr(&check(&p));
    assert!(
        err.contains(
            "rejected its config: config.pathz: unknown field `pathz`, expected one of `paths`"
        ),
        "{err}"
    );
}

#[test]
fn check_refuses_a_plugin_built_for_another_contract_version() {
    let entry = format!(
        "[[plugins]]\nname = \"future\"\npath = {:?}\n",
        wasm("weir-future-contract")
    );
    let err = stderr(&check(&Pipeline::new(&[], &entry)));
    assert!(err.contains("plugin `future`: was built for contract weir:filter@0.2.0, but this weir supports weir:filter@0.1.0"), "{err}");
}

#[test]
fn check_refuses_a_file_that_is_not_a_component() {
    let p = Pipeline::new(&[], "");
    let bogus = p.dir.path().join("bogus.wasm");
    std::fs::write(&bogus, b"not wasm").unwrap();
    std::fs::write(
        p.config(),
        std::fs::read_to_string(p.config()).unwrap()
            + &format!("[[plugins]]\nname = \"bogus\"\npath = {bogus:?}\n"),
    )
    .unwrap();
    let err = stderr(&check(&p));
    assert!(
        err.contains("plugin `bogus`") && err.contains("is not a valid WebAssembly component"),
        "{err}"
    );
}

#[test]
fn weir_test_shows_each_plugins_decision_per_event_on_the_sample_logs() {
    wasm("drop-healthz");
    let config = root().join("examples/quickstart.toml");
    let input = root().join("examples/logs/sample.ndjson");
    let out = weir(&[
        "test",
        "--config",
        &config.display().to_string(),
        "--input",
        &input.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    // Line 3 of the sample is a successful /healthz probe, line 1 an ordinary request.
    let block = |line: u32| {
        text.split("── ")
            .find(|b| b.contains(&format!("sample.ndjson:{line}\n")))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        block(3).contains("drop-healthz  drop") && block(3).contains("=> dropped"),
        "{}",
        block(3)
    );
    assert!(
        block(1).contains("drop-healthz  keep") && block(1).contains("=> {"),
        "{}",
        block(1)
    );
    assert!(
        block(42).contains("dead-lettered") && block(42).contains("invalid JSON"),
        "{}",
        block(42)
    );
    assert!(
        text.trim_end()
            .ends_with("kept, 72 dropped, 4 dead-lettered"),
        "{}",
        text.lines().last().unwrap_or_default()
    );
}

#[test]
fn run_prints_a_summary_and_accounts_for_every_event() {
    let lines: Vec<String> = (0..10)
        .map(|i| {
            serde_json::json!({"id": i, "path": if i % 3 == 0 { "/healthz" } else { "/orders" }})
                .to_string()
        })
        .chain(["{broken".to_owned()])
        .collect();
    let p = Pipeline::new(&lines, &drop_healthz(""));
    let out = p.run();
    let err = stderr(&out);
    assert!(
        err.contains("weir: 11 events in, 6 out, 4 dropped, 1 dead-lettered"),
        "{err}"
    );
    // The plugin's own counter, in its row of the summary table.
    let counter = err
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("healthz "))
        .nth(1)
        .unwrap_or_default();
    assert_eq!(counter.trim(), "health_checks_dropped = 4", "{err}");
    assert_eq!(p.output().len(), 6);
    assert_eq!(p.dead()[0]["position"], 11);
}

#[test]
fn the_kafka_to_elasticsearch_example_passes_check_and_names_bad_keys() {
    for krate in ["weir-normalize", "weir-geoip", "weir-redact", "weir-route"] {
        wasm(krate);
    }
    let example = root().join("examples/pipeline-kafka.toml");
    let out = weir(&["check", "--config", &example.display().to_string()]);
    assert!(out.status.success(), "{}", stderr(&out));
    // A typo in the sink section is reported with its line, like everywhere else.
    let text = std::fs::read_to_string(&example)
        .unwrap()
        .replace("batch_events = 1000", "batch_event = 1000");
    let bad = tempfile::Builder::new()
        .prefix(".pipeline-kafka-test-")
        .suffix(".toml")
        .tempfile_in(root().join("examples"))
        .unwrap();
    std::fs::write(bad.path(), text).unwrap();
    let out = weir(&["check", "--config", &bad.path().display().to_string()]);
    let err = stderr(&out);
    assert!(!out.status.success());
    assert!(err.contains("unknown field `batch_event`"), "{err}");
    assert!(err.contains("line 26"), "{err}");
}

/// Waits (under a generous timeout) until `path` holds a line containing `needle`.
fn wait_for_line(path: &std::path::Path, needle: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !std::fs::read_to_string(path)
        .unwrap_or_default()
        .contains(needle)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no {needle:?} in {path:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn a_first_sigint_stops_a_run_at_a_chunk_boundary_with_everything_flushed() {
    // Event 100 waits in the chain until the test opens a gate: the run is provably
    // mid-input when the signal arrives, on any machine.
    let gate = tempfile::tempdir().expect("gate dir");
    let lines: Vec<String> = (0..20_000)
        .map(|i| serde_json::json!({"seq": i, "boom": i == 100}).to_string())
        .collect();
    let entry = format!(
        "[[plugins]]\nname = \"gate\"\npath = {:?}\n[plugins.limits]\ndeadline_ms = 60000\n\
         [plugins.grants]\nclock = true\ndirs = {{ \"/gate\" = {:?} }}\n\
         [plugins.config]\nmode = \"wait-file\"\npath = \"/gate/open\"\n",
        wasm("weir-hostile"),
        gate.path()
    );
    let p = Pipeline::new(&lines, &entry);
    let log = p.dir.path().join("weir.log");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["run", "--config", &p.config().display().to_string()])
        .env("WEIR_LOG", "info")
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("spawn weir");
    wait_for_line(&log, "waiting for /gate/open");
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(kill.success());
    std::fs::write(gate.path().join("open"), b"").expect("open the gate");
    let out = child.wait_with_output().expect("wait for weir");
    let err = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(out.status.success(), "exits cleanly: {}\n{err}", out.status);
    // The promise: reading stopped at a chunk boundary (batches of 4 lines here), and
    // every event read, the one in the chain included, was processed and written.
    let text = std::fs::read_to_string(p.dir.path().join("out.ndjson")).expect("output");
    assert!(text.ends_with('\n'), "nothing torn");
    let written = p.output();
    let n = written.len();
    assert!(
        n > 100 && n < lines.len(),
        "stopped part-way, after the held event: {n}"
    );
    assert_eq!(n % 4, 0, "at a chunk boundary: {n} events");
    for (i, event) in written.iter().enumerate() {
        assert_eq!(event["seq"], i, "in order, each once");
        assert_eq!(event["seen_by"], "", "through the chain");
    }
    assert!(p.dead().is_empty());
    assert!(
        err.contains(&format!(
            "weir: {n} events in, {n} out, 0 dropped, 0 dead-lettered"
        )),
        "{err}"
    );
}

#[test]
fn three_workers_taking_chunks_as_they_come_free_keep_input_order() {
    let lines: Vec<String> = (0..30_000)
        .map(|i| {
            // Uneven work, so chunks finish out of order: every 7th event is much larger.
            let pad = if i % 7 == 0 { 4000 } else { 10 };
            format!(
                "{{\"seq\":{i},\"path\":\"/orders\",\"pad\":\"{}\"}}",
                "x".repeat(pad)
            )
        })
        .collect();
    let p = Pipeline::new(&lines, &drop_healthz(""));
    let config = std::fs::read_to_string(p.config()).unwrap();
    std::fs::write(p.config(), config.replace("workers = 1", "workers = 3")).unwrap();
    let out = p.run();
    assert!(
        stderr(&out).contains("30000 events in, 30000 out"),
        "{}",
        stderr(&out)
    );
    let written = p.output();
    assert_eq!(written.len(), lines.len());
    for (i, event) in written.iter().enumerate() {
        assert_eq!(event["seq"], i, "output in input order");
    }
}
