//! The double's `_bulk` endpoint: faults that hold or stall a request, then per-item
//! answers with `create` semantics and the rejections Elasticsearch gives.

use std::collections::HashMap;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::State;

pub(super) fn bulk(
    state: &Arc<Mutex<State>>,
    headers: &HashMap<String, String>,
    body: Vec<u8>,
) -> (u16, Value) {
    let gzipped = headers.get("content-encoding").map(String::as_str) == Some("gzip");
    let body = if gzipped {
        let mut out = Vec::new();
        if flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut out)
            .is_err()
        {
            return (400, json!({"error": "bad gzip"}));
        }
        out
    } else {
        body
    };
    let docs = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
        .count()
        / 2;
    let (delay, status) = {
        let mut s = state.lock().unwrap();
        s.received_docs += docs;
        s.bulk_sizes.push(docs);
        s.concurrent += 1;
        s.max_concurrent = s.max_concurrent.max(s.concurrent);
        let now = Instant::now();
        s.hold = Some((s.hold.map_or(now, |(first, _)| first), now));
        let delay = match s.faults.slow {
            0 => s.faults.delay,
            1 => {
                s.faults.slow = 0;
                std::mem::take(&mut s.faults.delay)
            }
            n => {
                s.faults.slow = n - 1;
                s.faults.delay
            }
        };
        (delay, s.faults.statuses.pop_front())
    };
    hold(state);
    std::thread::sleep(delay);
    loop {
        let mut s = state.lock().unwrap();
        if !s.faults.stall {
            break;
        }
        if s.faults.release > 0 {
            s.faults.release -= 1;
            break;
        }
        drop(s);
        std::thread::sleep(Duration::from_millis(50));
    }
    let reply = bulk_reply(state, gzipped, body, status);
    let mut s = state.lock().unwrap();
    s.concurrent -= 1;
    s.answered_docs += docs;
    reply
}

/// Waits while `hold_until` holds requests (see [`Faults::hold_until`]).
fn hold(state: &Arc<Mutex<State>>) {
    loop {
        {
            let mut s = state.lock().unwrap();
            let (Some(target), Some((first, last))) = (s.faults.hold_until, s.hold) else {
                return;
            };
            let full = s.concurrent >= target && last.elapsed() >= s.faults.hold_quiet;
            if s.released || full || first.elapsed() > Duration::from_secs(30) {
                s.released = true;
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn bulk_reply(
    state: &Arc<Mutex<State>>,
    gzipped: bool,
    body: Vec<u8>,
    status: Option<u16>,
) -> (u16, Value) {
    if let Some(status) = status {
        return (
            status,
            json!({"error": {"type": "injected", "reason": "injected fault"}, "status": status}),
        );
    }
    let text = String::from_utf8_lossy(&body);
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let mut s = state.lock().unwrap();
    if gzipped {
        s.gzipped += 1;
    }
    let mut items = Vec::new();
    let mut errors = false;
    while let (Some(action), Some(source)) = (lines.next(), lines.next()) {
        let action: Value = serde_json::from_str(action).unwrap_or(Value::Null);
        let duplicate = s
            .faults
            .duplicate_keys
            .then(|| duplicate_key(source))
            .flatten();
        let source: Value = serde_json::from_str(source).unwrap_or(Value::Null);
        let meta = &action["create"];
        let index = meta["_index"].as_str().unwrap_or_default().to_owned();
        let id = meta["_id"].as_str().unwrap_or_default().to_owned();
        let attempt = {
            let a = s.attempts.entry(id.clone()).or_insert(0);
            *a += 1;
            *a
        };
        let seq = source.get("seq").and_then(Value::as_u64);
        let item = |status: u16, error: Option<Value>| {
            let mut item = json!({"_index": index, "_id": id, "status": status});
            if let Some(e) = error {
                item["error"] = e;
            }
            json!({"create": item})
        };
        if let Some(key) = duplicate {
            errors = true;
            items.push(item(400, Some(json!({"type": "mapper_parsing_exception", "reason": "failed to parse",
                "caused_by": {"type": "json_parse_exception", "reason": format!("Duplicate field '{key}'\n at [Source: (byte[]); line: 1]")}}))));
            continue;
        }
        let bad_field = s
            .faults
            .keyword_field
            .clone()
            .filter(|f| source.get(f).is_some_and(|v| v.is_object() || v.is_array()));
        if let Some(field) = bad_field {
            errors = true;
            items.push(item(400, Some(json!({"type": "mapper_parsing_exception", "reason": format!("failed to parse field [{field}] of type [keyword] in document with id '{id}'. Preview of field's value: '{{}}'")}))));
        } else if attempt == 1
            && s.faults
                .item_429_every
                .zip(seq)
                .is_some_and(|(k, q)| q % k == 0)
        {
            errors = true;
            items.push(item(429, Some(json!({"type": "es_rejected_execution_exception", "reason": "rejected execution (queue capacity 200)"}))));
        } else if s.docs.contains_key(&id) {
            errors = true;
            items.push(item(409, Some(json!({"type": "version_conflict_engine_exception", "reason": format!("[{id}]: version conflict, document already exists")}))));
        } else {
            s.docs.insert(id.clone(), (index.clone(), source));
            items.push(item(201, None));
        }
    }
    (200, json!({"took": 1, "errors": errors, "items": items}))
}

/// The first key repeated within one object of a JSON text, at any depth (which
/// `serde_json::Value` would silently collapse); `None` when there is none or the text
/// is not JSON.
fn duplicate_key(text: &str) -> Option<String> {
    use serde::de::{Deserialize, Deserializer, Error, MapAccess, SeqAccess, Visitor};

    /// Walks a JSON value, failing with the name of a repeated key.
    struct Unique;

    impl<'de> Deserialize<'de> for Unique {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Unique, D::Error> {
            d.deserialize_any(UniqueVisitor)
        }
    }

    struct UniqueVisitor;

    impl<'de> Visitor<'de> for UniqueVisitor {
        type Value = Unique;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Unique, A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                if !seen.insert(key.clone()) {
                    return Err(A::Error::custom(format!("duplicate:{key}")));
                }
                map.next_value::<Unique>()?;
            }
            Ok(Unique)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Unique, A::Error> {
            while seq.next_element::<Unique>()?.is_some() {}
            Ok(Unique)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_str<E>(self, _: &str) -> Result<Unique, E> {
            Ok(Unique)
        }
        fn visit_unit<E>(self) -> Result<Unique, E> {
            Ok(Unique)
        }
    }

    let err = serde_json::from_str::<Unique>(text).err()?;
    let message = err.to_string();
    let key = message.strip_prefix("duplicate:")?;
    Some(key.split(" at line ").next().unwrap_or(key).to_owned())
}
