//! A pipeline file as `weir run`, `weir check` and a reload read it:
//! `LoadedConfig::from_text` (`${VAR}` substitution, TOML, validation, path resolution,
//! error messages with lines). Nothing is read from disk: the file's path only anchors
//! relative paths. A few variables are set, so substitution succeeds past them. An
//! accepted file's event limits (`pipeline.max_depth`, `max_output_bytes`) are usable.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use weir::config::{substitute, LoadedConfig};
use weir_wire::limits::MAX_DEPTH_CEILING;

/// The file every input pretends to be; it need not exist.
const FILE: &str = "/tmp/weir-fuzz/conf/pipeline.toml";

fn env(name: &str) -> Option<String> {
    match name {
        "HOST" => Some("http://127.0.0.1:9200".into()),
        "TOKEN" => Some("s3cret".into()),
        "EMPTY" => Some(String::new()),
        "QUOTE" => Some("\"\n[x]".into()),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    weir_fuzz::handle_stack_overflow();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // `[admin] listen` is resolved with `to_socket_addrs`, so a host name in it would make
    // the fuzzer send DNS queries off this machine: skip any input that could reach it,
    // judged after `${VAR}` substitution as `from_text` does it (`ad${EMPTY}min`), with
    // the key written plainly or spelled with TOML's `\u` escapes in a quoted key.
    let reachable = |t: &str| t.contains("admin") || t.contains("\\u") || t.contains("\\U");
    if reachable(text) || substitute(text, env).is_ok_and(|t| reachable(&t)) {
        return;
    }
    match LoadedConfig::from_text(Path::new(FILE), text, env) {
        Ok(loaded) => {
            for plugin in &loaded.plugins {
                let _ = (plugin.name(), plugin.wasm_path(), plugin.init_json());
                let path = plugin.wasm_path();
                // An empty path stays empty (and fails when the plugin is loaded).
                assert!(
                    path.is_absolute() || path.as_os_str().is_empty(),
                    "{path:?} left relative"
                );
            }
            // What the workers hold events to: a nesting limit the host can walk, and
            // room for at least one byte in and out.
            let limits = loaded.pipeline.pipeline.event_limits();
            assert!(
                (1..=MAX_DEPTH_CEILING).contains(&limits.max_depth),
                "pipeline.max_depth {} accepted",
                limits.max_depth
            );
            assert!(limits.max_bytes >= 1 && limits.max_output_bytes >= 1);
            let _ = format!("{loaded:?}");
        }
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.starts_with(FILE),
                "error does not name the file: {message}"
            );
        }
    }
});
