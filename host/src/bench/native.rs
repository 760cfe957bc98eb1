//! The benchmark's four ops written natively on `serde_json::Value`: the reference a WASM
//! chain is measured against. Same semantics as the `weir-bench-ops` plugin, sharing its
//! pure helpers so the two cannot drift apart.

use serde_json::{Map, Value};
use weir_bench_ops::{mask_email, path_pattern, SECRETS};

/// Parses, applies the first `ops` ops (1 to 4, in chain order), serialises survivors.
pub fn process(lines: &[String], ops: usize, out: &mut Vec<u8>) {
    let mut scratch = String::new();
    for line in lines {
        let Ok(mut event) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let Value::Object(map) = &mut event else {
            continue;
        };
        if let Some(Value::String(level)) = map.get_mut("level") {
            if level.bytes().any(|b| b.is_ascii_lowercase()) {
                *level = level.to_ascii_uppercase();
            }
        }
        if ops >= 2 {
            if let Some(masked) = map
                .get("email")
                .and_then(Value::as_str)
                .and_then(mask_email)
            {
                map.insert("email".into(), Value::String(masked));
            }
            remove_keys(map, &SECRETS);
        }
        let Value::Object(map) = &mut event else {
            continue;
        };
        if ops >= 3 {
            if let Some(path) = map.get("path").and_then(Value::as_str) {
                path_pattern(path, &mut scratch);
                map.insert("path_pattern".into(), Value::String(scratch.clone()));
            }
        }
        if ops >= 4 {
            if map.get("level").and_then(Value::as_str) == Some("DEBUG") {
                continue;
            }
            let route = match map.get("service").and_then(Value::as_str) {
                Some("payment-gateway") => "payments",
                _ => "general",
            };
            map.insert("route".into(), Value::String(route.into()));
        }
        let _ = serde_json::to_writer(&mut *out, &event);
        out.push(b'\n');
    }
}

/// Removes the keys named in `keys` (case-insensitive) from `map` and everything below it.
pub(super) fn remove_keys<S: AsRef<str>>(map: &mut Map<String, Value>, keys: &[S]) {
    map.retain(|k, _| !keys.iter().any(|s| s.as_ref().eq_ignore_ascii_case(k)));
    map.values_mut().for_each(|v| remove_keys_below(v, keys));
}

fn remove_keys_below<S: AsRef<str>>(value: &mut Value, keys: &[S]) {
    match value {
        Value::Object(map) => remove_keys(map, keys),
        Value::Array(items) => items.iter_mut().for_each(|v| remove_keys_below(v, keys)),
        _ => {}
    }
}
