//! Reloads that fail, and settings a reload cannot apply: the old chain keeps running
//! (events keep flowing through it), and the reason is in `/status`, `/metrics` and the
//! log. Successful reloads under load: `tests/reload.rs`.

mod support;

use serde_json::Value;
use support::live::{stamp_config, start_stamped, Feeder, TOKEN};
use support::wasm;

/// One way a reload can fail: `[[plugins]]` text appended to a working config, or
/// `admin` keys added to it, and what the reason must say.
struct Breakage {
    what: &'static str,
    entry: String,
    admin: &'static str,
    reason: &'static [&'static str],
}

fn breakages(dir: &std::path::Path) -> Vec<Breakage> {
    let broken = dir.join("broken.wasm");
    std::fs::write(&broken, b"not a component").expect("write broken.wasm");
    let hostile = |name: &str, config: &str| {
        format!(
            "[[plugins]]\nname = \"{name}\"\npath = {:?}\n[plugins.config]\n{config}\n",
            wasm("weir-hostile")
        )
    };
    vec![
        Breakage {
            what: "an invalid .wasm",
            entry: format!("[[plugins]]\nname = \"broken\"\npath = {broken:?}\n"),
            admin: "",
            reason: &["plugin `broken`", "not a valid WebAssembly component"],
        },
        Breakage {
            what: "an init trap",
            entry: hostile("trap", "init_mode = \"panic\""),
            admin: "",
            reason: &["plugin `trap`", "hostile plugin panicked on purpose"],
        },
        Breakage {
            what: "a config the plugin rejects",
            entry: hostile("picky", "colour = \"red\""),
            admin: "",
            reason: &[
                "plugin `picky`",
                "rejected its config",
                "unknown field `colour`",
            ],
        },
        Breakage {
            what: "a contract mismatch",
            entry: format!(
                "[[plugins]]\nname = \"future\"\npath = {:?}\n",
                wasm("weir-future-contract")
            ),
            admin: "",
            reason: &[
                "plugin `future`",
                "built for contract weir:filter@0.2.0, but this weir supports weir:filter@0.1.0",
            ],
        },
        Breakage {
            what: "a bad TOML key",
            entry: String::new(),
            admin: "bogus = 1",
            reason: &["TOML parse error at line", "unknown field `bogus`"],
        },
    ]
}

fn error_of(status: &Value) -> &str {
    status["last_reload"]["error"].as_str().unwrap_or_default()
}

#[test]
fn a_reload_that_fails_in_any_way_keeps_the_old_chain_and_says_why() {
    let (mut live, plugin) = start_stamped(&["a", "b"], "0");
    let feeder = Feeder::start(&mut live, 8, std::time::Duration::from_millis(4));
    let cases = breakages(live.dir.path());
    for (k, case) in cases.iter().enumerate() {
        let failures = k as u64 + 1;
        // A config with the fault, on top of the running chain reordered: were it
        // applied, events would show it.
        let text = stamp_config(live.port, &plugin, &["b", "a"], "1", case.admin) + &case.entry;
        live.write_config(&text);
        let status = live.wait_status(&format!("the reload with {} to fail", case.what), |s| {
            s["reload_failures"].as_u64() >= Some(failures)
        });
        let what = case.what;
        assert_eq!(status["reload_failures"], failures, "{what}: {status}");
        assert_eq!(status["generation"], 1, "{what}: the old chain stays");
        assert_eq!(status["last_reload"]["ok"], false, "{what}: {status}");
        let names: Vec<&str> = status["chain"]
            .as_array()
            .expect("chain")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(names, ["a", "b"], "{what}");
        for part in case.reason {
            assert!(error_of(&status).contains(part), "{what}: {status}");
        }
        live.wait_for_log(&["reload refused; the running chain stays", case.reason[0]]);
        let last = case.reason[case.reason.len() - 1];
        assert!(
            live.stderr().contains(last),
            "{what}: the log names {last:?}"
        );
        assert_eq!(
            live.metric("weir_reloads_total", &[("outcome", "failed")]),
            failures as f64,
            "{what}: weir_reloads_total{{outcome=\"failed\"}}"
        );
        // Events go on through the old chain after the failure.
        let sent = status["events"]["sent"].as_u64().expect("sent");
        live.wait_status(&format!("events flowing after {what}"), |s| {
            s["events"]["sent"].as_u64() > Some(sent + 16)
        });
    }
    // Asked for over HTTP, the last one is refused with the reason.
    let (code, body) = live.http("POST", "/reload", Some(TOKEN));
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("unknown field `bogus`"), "{body}");
    let n = cases.len() as f64 + 1.0;
    assert_eq!(
        live.metric("weir_reloads_total", &[("outcome", "failed")]),
        n
    );
    assert_eq!(live.metric("weir_reloads_total", &[("outcome", "ok")]), 0.0);
    let fed = feeder.stop(&mut live);
    let (events, log) = live.finish();
    let ids: Vec<u64> = events.iter().filter_map(|e| e["id"].as_u64()).collect();
    assert!(
        ids == (0..fed).collect::<Vec<_>>(),
        "every event once, in order:\n{log}"
    );
    for e in &events {
        assert_eq!(
            e["tags"],
            serde_json::json!(["a0", "b0"]),
            "the old chain: {e}"
        );
    }
}

#[test]
fn every_restart_only_section_is_reported_and_logged_not_applied() {
    let (mut live, plugin) = start_stamped(&["a"], "");
    let mut text = stamp_config(live.port, &plugin, &["a"], "", "");
    let empty_cache = format!("cache_dir = {:?}", "");
    let changes: [(&str, &str, &str); 6] = [
        (
            "source",
            "type = \"stdin\"",
            "type = \"file\"\npath = \"in.ndjson\"",
        ),
        ("sink", "path = \"out.ndjson\"", "path = \"out2.ndjson\""),
        (
            "dead_letter",
            "path = \"dead.ndjson\"",
            "path = \"dead2.ndjson\"",
        ),
        ("pipeline", "batch_size = 8", "batch_size = 16"),
        ("engine", "cache_dir = ", &empty_cache),
        (
            "admin",
            &format!("token = \"{TOKEN}\""),
            "token = \"changed\"",
        ),
    ];
    for (generation, (section, from, to)) in (1..).zip(changes) {
        let at = text
            .find(from)
            .unwrap_or_else(|| panic!("{from} in the config"));
        let end = if section == "engine" {
            at + text[at..].find('\n').expect("line end")
        } else {
            at + from.len()
        };
        text.replace_range(at..end, to);
        live.write_config(&text);
        let status = live.wait_status(&format!("the reload changing [{section}]"), |s| {
            s["generation"].as_u64() > Some(generation)
        });
        assert_eq!(status["last_reload"]["ok"], true, "{section}: {status}");
        // Against the settings the process started with: every change so far is still
        // waiting for a restart.
        let so_far: Vec<&str> = changes[..generation as usize].iter().map(|c| c.0).collect();
        assert_eq!(
            status["last_reload"]["needs_restart"],
            serde_json::json!(so_far),
            "{status}"
        );
        live.wait_for_log(&[
            "takes effect only after a restart",
            &format!("setting={section}"),
        ]);
    }
    // None of it applied: the old token still reloads, events still reach out.ndjson.
    let (code, body) = live.http("POST", "/reload", Some(TOKEN));
    assert_eq!(code, 200, "the running admin keeps its token: {body}");
    live.send(&[r#"{"id":0}"#.to_owned()]);
    let (events, _) = live.finish();
    assert_eq!(events.len(), 1, "the running sink stays");
}
