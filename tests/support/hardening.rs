//! The hardening tests' shared pieces: the raw-hostile plugin's pipeline entry, a run
//! that must not hang, and readers of what came out and what was dead-lettered.

use std::time::Duration;

use serde_json::Value;

use super::{wasm, weir_within, Pipeline};

/// A generous bound for runs that must not hang (the machine is small and shared).
pub const NO_HANG: Duration = Duration::from_secs(60);

/// The raw plugin's `[[plugins]]` entry.
pub fn raw(policy: &str, mode: &str, n: u64, text: &str, limits: &str) -> String {
    format!(
        "[[plugins]]\nname = \"raw\"\npath = {:?}\non_error = \"{policy}\"\n\
         [plugins.limits]\nmemory_mib = 256\ndeadline_ms = 200\n{limits}\n\
         [plugins.config]\nmode = \"{mode}\"\nn = {n}\ntext = {text:?}\n",
        wasm("weir-raw-hostile")
    )
}

/// A file pipeline over `events` numbered events through the raw plugin, fail-closed.
pub fn raw_pipeline(events: usize, mode: &str, n: u64) -> Pipeline {
    Pipeline::new(
        &super::events(events, &[]),
        &raw("fail-closed", mode, n, "", ""),
    )
}

/// Runs the pipeline, which must succeed within [`NO_HANG`].
pub fn run(p: &Pipeline) -> std::process::Output {
    let out = weir_within(
        &["run", "--config", &p.config().display().to_string()],
        NO_HANG,
    );
    assert!(
        out.status.success(),
        "weir run failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The `id` of each event.
pub fn ids(values: &[Value]) -> Vec<u64> {
    values.iter().filter_map(|v| v["id"].as_u64()).collect()
}

/// The reason of each dead-letter entry.
pub fn reasons(p: &Pipeline) -> Vec<String> {
    p.dead()
        .iter()
        .map(|d| d["reason"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The `id`s of the dead-lettered events, read from the front of their text (the tests'
/// events start with it): some are nested far too deep to parse.
pub fn dead_ids(p: &Pipeline) -> Vec<u64> {
    p.dead()
        .iter()
        .filter_map(|d| {
            let rest = d["event"].as_str()?.strip_prefix(r#"{"id":"#)?;
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}
