//! The Elasticsearch sink while every request slot is busy: documents that arrive
//! meanwhile wait in one growing batch, so a slow cluster gets full requests rather
//! than one small request per `flush_ms`.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::double::Double;

#[test]
fn while_the_only_slot_is_busy_arriving_documents_fill_one_request() {
    let dir = tempfile::tempdir().expect("temp dir");
    let double = Double::start();
    // Every request takes 400 ms; a batch is due 20 ms after its first document; each
    // event reaches the sink on its own (`batch_size = 1`), as from a slow source.
    double.set(|f| f.delay = Duration::from_millis(400));
    let config = dir.path().join("pipeline.toml");
    std::fs::write(
        &config,
        format!(
            "[source]\ntype = \"stdin\"\n\n[sink]\ntype = \"elasticsearch\"\nurls = [\"{}\"]\n\
             index = \"logs\"\nflush_ms = 20\nbatch_events = 1000\nconcurrency = 1\n\n\
             [dead_letter]\ntype = \"file\"\npath = \"dead.ndjson\"\n\n[pipeline]\nworkers = 1\nbatch_size = 1\n",
            double.url
        ),
    )
    .expect("config written");
    let mut weir = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["run", "--config", &config.display().to_string()])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weir starts");
    let mut stdin = weir.stdin.take().expect("stdin piped");
    // 300 events over ~1.5 s: one every 5 ms, each flushed on its own.
    for seq in 0..300 {
        writeln!(stdin, r#"{{"seq":{seq}}}"#).expect("weir reads stdin");
        stdin.flush().expect("flushed");
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(stdin);
    let out = weir.wait_with_output().expect("weir exits");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let state = double.state.lock().expect("double state");
    assert_eq!(state.docs.len(), 300, "every event stored: {log}");
    let sizes = &state.bulk_sizes;
    // One request per 20 ms of input would be ~75 (61 were seen when a batch was sealed
    // at its age while waiting for the slot); one per 400 ms slot is ~5, more if the
    // feeding is slowed down.
    assert!(
        sizes.len() <= 20,
        "{} requests for 300 documents arriving while one slot was busy: {sizes:?}",
        sizes.len()
    );
}
