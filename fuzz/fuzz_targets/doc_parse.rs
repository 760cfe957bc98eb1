//! A log line as the host receives it: parsed into a `Doc`, written back, read through
//! its accessors and projected into a plugin batch as a `ReadPlan` does, each result
//! compared with what serde_json makes of the same text. This reaches the walkers over
//! nested text (`walk.rs`) through lookups, finds-keys and compaction.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value as Json;
use weir_fuzz::{check_written, has_lone_surrogate, limits::too_deep};
use weir_wire::doc::{Doc, Node};
use weir_wire::json::ReadPlan;
use weir_wire::{join_path, BatchReader, BatchWriter, EventFields, Path, Value};

/// Paths every input is read with, beside the ones found in it.
const READS: [&str; 8] = [
    "a",
    "a.b",
    "a.0.b",
    "a.0",
    "0",
    "context.client_ip",
    "tags",
    "a\\.b",
];
/// Keys the finds-keys walk searches for (case-insensitively).
const FIND_KEYS: [&str; 4] = ["password", "token", "a", "b"];

fuzz_target!(|data: &[u8]| {
    weir_fuzz::handle_stack_overflow();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if too_deep(data) {
        return;
    }
    // Validity by serde_json's grammar alone; `Value` also needs numbers in range.
    let valid =
        serde_json::from_str::<std::collections::BTreeMap<String, serde::de::IgnoredAny>>(text);
    let doc = match Doc::parse(text.to_owned()) {
        Ok(doc) => doc,
        Err(e) => {
            assert!(
                valid.is_err(),
                "serde_json accepts what Doc refuses ({}): {text}",
                e.error
            );
            assert_eq!(e.text, text, "a refused text must be given back whole");
            return;
        }
    };
    assert!(valid.is_ok(), "Doc accepts what serde_json refuses: {text}");
    assert_eq!(doc.text(), text);
    let out = check_written(&doc);
    let value = serde_json::from_str::<serde_json::Map<String, Json>>(text).ok();
    if let Some(map) = &value {
        let written: Json = serde_json::from_slice(&out).expect("valid output nests as the input");
        assert_eq!(
            written.to_string(),
            Json::Object(map.clone()).to_string(),
            "the written event means something else than the input"
        );
        let fields: Vec<(String, Json)> = doc
            .fields()
            .map(|(k, n)| (k.to_owned(), n.to_value()))
            .collect();
        let expected: Vec<(String, Json)> =
            map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        assert_eq!(fields, expected, "fields() differ from serde_json's");
    }
    let mut reads: Vec<String> = READS.iter().map(|r| (*r).to_owned()).collect();
    for (key, node) in doc.fields() {
        assert!(doc.get(key).is_some(), "get({key:?}) misses a listed field");
        collect_paths(&join_path("", key), node, 3, &mut reads);
    }
    for read in &reads {
        let Some(path) = Path::parse(read) else {
            continue;
        };
        let node = doc.lookup(&path);
        if let Some(node) = node {
            check_node(node);
        }
        if let Some(map) = &value {
            let want = lookup_json(map, &path);
            let got = node.map(Node::to_value);
            assert_eq!(
                got.as_ref(),
                want,
                "lookup({read}) differs from serde_json's"
            );
        }
    }
    reads.retain(|r| Path::parse(r).is_some());
    project(&doc, &reads);
});

/// Adds paths to `node`'s first few members or elements, down to `depth` more levels.
fn collect_paths(prefix: &str, node: Node<'_>, depth: u32, into: &mut Vec<String>) {
    if depth == 0 || into.len() > 64 {
        return;
    }
    let children: Vec<String> = match node.to_value() {
        Json::Object(map) => map.keys().take(3).cloned().collect(),
        Json::Array(items) => (0..items.len().min(3)).map(|i| i.to_string()).collect(),
        _ => return,
    };
    for key in children {
        let path = join_path(prefix, &key);
        if let Some(child) = node.child(&key, key.parse().ok()) {
            collect_paths(&path, child, depth - 1, into);
        }
        into.push(path);
    }
}

/// Reads a node every way a plugin's projection can, checking they agree.
fn check_node(node: Node<'_>) {
    let value = node.to_value();
    let s = node.as_str();
    if let Some(want) = value.as_str() {
        assert_eq!(
            s.as_deref(),
            Some(want),
            "as_str differs from serde_json's string"
        );
    }
    if !value.is_null() {
        assert_eq!(node.is_container(), value.is_object() || value.is_array());
    }
    let _ = node.child("a", Some(0));
    let _ = node.child("0", None);
}

/// What serde_json finds at `path`: members by key, elements by an all-digits segment.
fn lookup_json<'j>(map: &'j serde_json::Map<String, Json>, path: &Path) -> Option<&'j Json> {
    let (first, rest) = path.segments().split_first()?;
    let mut cur = map.get(&first.key)?;
    for seg in rest {
        cur = match cur {
            Json::Object(m) => m.get(&seg.key)?,
            Json::Array(items) => items.get(seg.index?)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// Projects the event into a one-event batch as the host does for a plugin reading
/// `reads` and finding [`FIND_KEYS`], then decodes it as the guest SDK does.
fn project(doc: &Doc, reads: &[String]) {
    let keys: Vec<String> = FIND_KEYS.iter().map(|k| (*k).to_owned()).collect();
    let plan = ReadPlan::new(reads, &keys).expect("only valid paths are read");
    let mut batch = BatchWriter::new(plan.slot_count());
    plan.write_event(&mut batch, doc);
    let mut reader = BatchReader::new(batch.as_bytes()).expect("a written batch decodes");
    assert_eq!(
        (reader.event_count(), reader.slot_count()),
        (1, reads.len())
    );
    let mut ev = EventFields::default();
    // Known bug (reported with issue #13): a string value holding half a surrogate pair
    // (`"\udc00"`) is valid JSON to `Doc::parse` but no string to the projection, which
    // then sends the field as absent, and as an absent *found* value, which the guest's
    // `BatchReader` refuses, failing the whole batch. Tolerated while it is open.
    let lone = has_lone_surrogate(doc.text());
    match reader.next_event(&mut ev) {
        Ok(true) => {}
        Err(_) if lone => return,
        other => panic!("a written event does not decode: {other:?}"),
    }
    assert!(!reader.next_event(&mut EventFields::default()).unwrap());
    for (slot, path) in ev.slots.iter().zip(plan.reads()) {
        let node = doc.lookup(path);
        if slot.is_none() && node.is_some() && lone {
            continue;
        }
        assert_eq!(slot.is_some(), node.is_some(), "slot for {path} vs lookup");
        if let (Some(slot), Some(node)) = (slot, node) {
            check_slot(*slot, node.to_value());
        }
    }
    for (path, _) in &ev.found {
        let parsed = Path::parse(path);
        if parsed.as_ref().is_none_or(|p| doc.lookup(p).is_none()) {
            // Known bug (reported with issue #13): a key found below an empty key gets a
            // path that skips it: `{"":{"token":1}}` yields `token`, which names another
            // field, and `{"a":{"":{"token":1}}}` yields `a..token`, which does not parse.
            // So a plugin cannot remove that secret. Tolerated while it is open; any
            // other found path must parse and look up.
            assert!(
                doc.text().contains("\"\""),
                "found path {path:?} does not look up"
            );
            continue;
        }
        let parsed = parsed.unwrap();
        let last = &parsed.segments().last().unwrap().key;
        assert!(
            keys.iter().any(|k| k.eq_ignore_ascii_case(last)),
            "found {path}"
        );
    }
}

/// Checks a projected value has the kind of the field it came from.
fn check_slot(slot: Value<'_>, want: Json) {
    if want.is_null() {
        // Also what a field nested past serde_json's limit reads as; nothing to compare.
        return;
    }
    match (slot, &want) {
        (Value::Bool(b), Json::Bool(w)) => assert_eq!(b, *w),
        (Value::Str(s), Json::String(w)) => assert_eq!(s, w),
        (Value::Int(_) | Value::Uint(_) | Value::Float(_), Json::Number(_)) => {}
        (Value::Json(text), Json::Object(_) | Json::Array(_)) => {
            let parsed: Json = serde_json::from_str(text).expect("a projected sub-tree parses");
            assert_eq!(parsed, want, "projected sub-tree differs");
        }
        _ => panic!("projected {slot:?} for {want}"),
    }
}
