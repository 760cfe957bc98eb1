//! A log line as the host receives it, of any depth: parsed into a `Doc` under the
//! default nesting limit (and, for deeper text, under the configurable ceiling), written
//! back, read through its accessors and projected into a plugin batch as a `ReadPlan`
//! does, each result compared with what serde_json makes of the same text. This reaches
//! the walkers over nested text (`walk.rs`) through lookups, finds-keys and compaction.
//!
//! What is checked: `Doc::parse_limited(text, d)` accepts only valid JSON nesting at
//! most `d` levels, with no empty key and no lone surrogate escape, and accepts all such
//! text serde_json decodes (the limit exact: accepted at its own depth, refused as
//! `TooDeep` one below); a refusal names the right reason. An accepted event writes out
//! valid, within the limit and meaning the same; every value is found by the path of its
//! keys (the path parses, the lookup finds it, a string reads back with `as_str`); and
//! every read field and every found key reaches the plugin, each found path parsing and
//! looking up the value sent.
#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use serde_json::Value as Json;
use weir_fuzz::{
    check_written, has_duplicate_key, has_lone_surrogate, node_value, parse_unbounded, shape,
};
use weir_wire::doc::{Doc, Node, NotAnObject, Rejection};
use weir_wire::json::ReadPlan;
use weir_wire::limits::{DEFAULT_MAX_DEPTH, MAX_DEPTH_CEILING, MAX_PATH_BYTES};
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
/// Values of an accepted event compared one by one with serde_json's tree, at most.
const MAX_VALUES_CHECKED: usize = 512;
/// Path segments looked up from the top of the event by `check_every_value`, at most.
const MAX_LOOKUP_STEPS: usize = 1024;

fuzz_target!(|data: &[u8]| {
    weir_fuzz::handle_stack_overflow();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let shape = shape(text);
    // Validity by serde_json's grammar alone (`IgnoredAny` values: no nesting limit, and
    // numbers are checked, not converted, so `1e999` is valid as JSON says it is).
    let valid =
        serde_json::from_str::<std::collections::BTreeMap<String, serde::de::IgnoredAny>>(text)
            .is_ok();
    // serde_json's own tree, when the text is valid and not too deep to build one: it
    // also refuses what cannot be decoded (a lone surrogate escape, a number out of range).
    let tree = (valid && shape.depth <= MAX_DEPTH_CEILING)
        .then(|| parse_unbounded(text).ok())
        .flatten()
        .map(|t| match t {
            Json::Object(map) => map,
            other => panic!("a valid object parsed as {other}"),
        });

    let parsed = Doc::parse(text.to_owned());
    check_verdict(
        text,
        &parsed,
        DEFAULT_MAX_DEPTH,
        valid,
        shape,
        tree.is_some(),
    );
    let (doc, limit) = match parsed {
        Ok(doc) => (doc, DEFAULT_MAX_DEPTH),
        Err(_) if shape.depth <= DEFAULT_MAX_DEPTH => return,
        // Deeper than the default: what a pipeline with `max_depth` at its ceiling reads.
        Err(_) => {
            let parsed = Doc::parse_limited(text.to_owned(), MAX_DEPTH_CEILING);
            check_verdict(
                text,
                &parsed,
                MAX_DEPTH_CEILING,
                valid,
                shape,
                tree.is_some(),
            );
            match parsed {
                Ok(doc) => (doc, MAX_DEPTH_CEILING),
                Err(_) => return,
            }
        }
    };
    // The limit is exact: this text is accepted at its own depth and refused one below.
    let depth = shape.depth;
    assert!(
        Doc::parse_limited(text.to_owned(), depth).is_ok(),
        "refused at its own depth {depth}"
    );
    if depth >= 2 {
        let below = Doc::parse_limited(text.to_owned(), depth - 1);
        assert!(
            matches!(&below, Err(NotAnObject { reason: Rejection::TooDeep { limit }, .. }) if *limit == depth - 1),
            "depth {depth} under a limit of {}: {:?}",
            depth - 1,
            below.err().map(|e| e.reason)
        );
    }

    assert_eq!(doc.text(), text);
    let out = check_written(&doc, limit);
    let mut reads: Vec<String> = READS.iter().map(|r| (*r).to_owned()).collect();
    for (key, node) in doc.fields() {
        assert!(!key.is_empty(), "an accepted event has an empty key");
        assert!(doc.get(key).is_some(), "get({key:?}) misses a listed field");
        collect_paths(&join_path("", key), node, 3, &mut reads);
    }
    if let Some(map) = &tree {
        let written = parse_unbounded(std::str::from_utf8(&out).unwrap())
            .expect("valid output nests as the input");
        assert!(
            written == Json::Object(map.clone()),
            "the written event means something else than the input"
        );
        let fields: Vec<(String, Json)> = doc
            .fields()
            .map(|(k, n)| (k.to_owned(), value_of(n)))
            .collect();
        let expected: Vec<(String, Json)> =
            map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        assert!(fields == expected, "fields() differ from serde_json's");
        check_every_value(&doc, map);
    }
    for read in &reads {
        let Some(path) = Path::parse(read) else {
            continue;
        };
        let node = doc.lookup(&path);
        if let Some(node) = node {
            check_node(node);
        }
        if let Some(map) = &tree {
            let want = lookup_json(map, &path);
            let got = node.map(value_of);
            assert!(
                got.as_ref() == want,
                "lookup({read}) differs from serde_json's"
            );
        }
    }
    // What a manifest may declare: valid paths of at most `MAX_PATH_BYTES`.
    reads.retain(|r| Path::parse(r).is_some() && r.len() <= MAX_PATH_BYTES);
    project(&doc, &reads, tree.as_ref());
});

/// Checks `Doc::parse_limited(text, limit)`'s verdict against the oracles: an accepted
/// text is valid JSON nesting at most `limit` levels with no empty key and no lone
/// surrogate escape; a refusal names the right reason; and a text serde_json decodes,
/// within the limit and with no empty key, is accepted.
fn check_verdict(
    text: &str,
    parsed: &Result<Doc, NotAnObject>,
    limit: usize,
    valid: bool,
    shape: weir_fuzz::Shape,
    decodes: bool,
) {
    let err = match parsed {
        Ok(_) => {
            assert!(valid, "Doc accepts what serde_json refuses: {text}");
            assert!(
                shape.depth <= limit,
                "accepted at depth {} under a limit of {limit}",
                shape.depth
            );
            assert!(!shape.empty_key, "accepted an empty key: {text}");
            assert!(
                !has_lone_surrogate(text),
                "accepted a lone surrogate escape"
            );
            return;
        }
        Err(e) => e,
    };
    assert_eq!(err.text, text, "a refused text must be given back whole");
    let _ = err.to_string();
    match &err.reason {
        Rejection::TooDeep { limit: l } => {
            assert_eq!(*l, limit, "refusal names another limit");
            assert!(
                shape.depth > limit,
                "refused as deeper than {limit} at depth {}",
                shape.depth
            );
        }
        Rejection::EmptyKey => assert!(shape.empty_key, "refused for an empty key: {text}"),
        Rejection::LoneSurrogate { .. } => {
            assert!(
                has_lone_surrogate(&text),
                "refused for a lone surrogate: {text}"
            )
        }
        Rejection::Json(e) => {
            // Past the grammar, only what decoding refuses: a lone surrogate escape or a
            // number out of range (or text too deep for the tree here, left unchecked).
            assert!(
                !(valid && decodes),
                "serde_json decodes what Doc refuses ({e}): {text}"
            );
        }
    }
    assert!(
        !(valid && decodes && shape.depth <= limit && !shape.empty_key),
        "refused ({}) a text serde_json decodes within the limit: {text}",
        err.reason
    );
}

/// Every value of the event (up to [`MAX_VALUES_CHECKED`]), in serde_json's tree, is
/// found by a path built from its keys and indexes: the path parses, the lookup finds
/// the same value, and a string reads back with `as_str`. Each value is reached from its
/// parent's node; the lookup from the top runs while [`MAX_LOOKUP_STEPS`] path segments
/// allow (each step scans the text below it, so deep events would cost depth squared).
fn check_every_value(doc: &Doc, map: &serde_json::Map<String, Json>) {
    let mut stack: Vec<(String, &str, Option<usize>, Option<Node<'_>>, &Json)> = map
        .iter()
        .rev()
        .map(|(k, v)| (join_path("", k), k.as_str(), None, None, v))
        .collect();
    let (mut checked, mut steps) = (0, 0);
    while let Some((path_text, key, index, parent, want)) = stack.pop() {
        checked += 1;
        if checked > MAX_VALUES_CHECKED {
            break;
        }
        let path = Path::parse(&path_text)
            .unwrap_or_else(|| panic!("the path {path_text:?} to a value does not parse"));
        let node = match parent {
            None => doc.get(key),
            Some(parent) => parent.child(key, index),
        }
        .unwrap_or_else(|| panic!("{path_text} misses a value"));
        steps += path.segments().len();
        if steps <= MAX_LOOKUP_STEPS {
            let found = doc
                .lookup(&path)
                .unwrap_or_else(|| panic!("lookup({path_text}) misses a value"));
            assert!(
                value_of(found) == *want,
                "lookup({path_text}) reads another value"
            );
        }
        match want {
            Json::String(s) => assert_eq!(
                node.as_str().as_deref(),
                Some(s.as_str()),
                "as_str({path_text})"
            ),
            Json::Object(m) => {
                assert!(node.is_container() && node.as_str().is_none());
                stack.extend(
                    m.iter()
                        .rev()
                        .map(|(k, v)| (join_path(&path_text, k), k.as_str(), None, Some(node), v)),
                );
            }
            Json::Array(items) => {
                assert!(node.is_container() && node.as_str().is_none());
                stack.extend(items.iter().enumerate().rev().map(|(i, v)| {
                    (
                        join_path(&path_text, &i.to_string()),
                        "",
                        Some(i),
                        Some(node),
                        v,
                    )
                }));
            }
            scalar => assert!(value_of(node) == *scalar, "{path_text} reads another value"),
        }
    }
}

/// Adds paths to `node`'s first few members or elements, down to `depth` more levels.
fn collect_paths(prefix: &str, node: Node<'_>, depth: u32, into: &mut Vec<String>) {
    if depth == 0 || into.len() > 64 {
        return;
    }
    let children: Vec<String> = match node_value(node).unwrap_or_default() {
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
    let Some(value) = node_value(node) else {
        // A number serde_json cannot represent, or a container holding one.
        assert!(node.as_str().is_none());
        return;
    };
    let s = node.as_str();
    match value.as_str() {
        Some(want) => assert_eq!(s.as_deref(), Some(want), "as_str differs from the string"),
        None => assert!(s.is_none(), "as_str of a {value}"),
    }
    assert_eq!(node.is_container(), value.is_object() || value.is_array());
    // Bounded by serde_json's own limit, which a deeper node just fails.
    let _ = node.to_value();
    let _ = node.child("a", Some(0));
    let _ = node.child("0", None);
}

/// A node's value where serde_json's tree exists, so every number is representable.
fn value_of(node: Node<'_>) -> Json {
    node_value(node).expect("a number out of range in a text serde_json decodes")
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

/// The paths of the members whose key is one of [`FIND_KEYS`] (case-insensitively),
/// not searched below a match, as the finds-keys walk should report them.
fn expected_found(map: &serde_json::Map<String, Json>) -> BTreeSet<String> {
    fn members<'j>(
        prefix: &str,
        map: &'j serde_json::Map<String, Json>,
        found: &mut BTreeSet<String>,
        stack: &mut Vec<(String, &'j Json)>,
    ) {
        for (k, v) in map {
            let path = join_path(prefix, k);
            if FIND_KEYS.iter().any(|want| want.eq_ignore_ascii_case(k)) {
                found.insert(path);
            } else {
                stack.push((path, v));
            }
        }
    }
    let (mut found, mut stack) = (BTreeSet::new(), Vec::new());
    members("", map, &mut found, &mut stack);
    while let Some((path, value)) = stack.pop() {
        match value {
            Json::Object(m) => members(&path, m, &mut found, &mut stack),
            Json::Array(items) => stack.extend(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (join_path(&path, &i.to_string()), v)),
            ),
            _ => {}
        }
    }
    found
}

/// Projects the event into a one-event batch as the host does for a plugin reading
/// `reads` and finding [`FIND_KEYS`], then decodes it as the guest SDK does: every
/// read field is sent when it exists, and every found key comes with a path that parses
/// and looks up the value sent.
fn project(doc: &Doc, reads: &[String], tree: Option<&serde_json::Map<String, Json>>) {
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
    match reader.next_event(&mut ev) {
        Ok(true) => {}
        other => panic!("a written event does not decode: {other:?}"),
    }
    assert!(!reader.next_event(&mut EventFields::default()).unwrap());
    for (slot, path) in ev.slots.iter().zip(plan.reads()) {
        let node = doc.lookup(path);
        assert_eq!(slot.is_some(), node.is_some(), "slot for {path} vs lookup");
        if let (Some(slot), Some(node)) = (slot, node) {
            check_slot(*slot, node_value(node));
        }
    }
    let dup = has_duplicate_key(doc.text());
    let mut found = BTreeSet::new();
    for (path, value) in &ev.found {
        let parsed =
            Path::parse(path).unwrap_or_else(|| panic!("found path {path:?} does not parse"));
        let Some(node) = doc.lookup(&parsed) else {
            // The open bug of a key repeated in a nested object (see `has_duplicate_key`).
            assert!(dup, "found path {path:?} does not look up");
            continue;
        };
        let last = &parsed.segments().last().unwrap().key;
        assert!(
            keys.iter().any(|k| k.eq_ignore_ascii_case(last)),
            "found {path}"
        );
        // A key repeated in a nested object is found once per member; the lookup reads
        // the last one, so only a path found once must carry the lookup's value.
        if ev.found.iter().filter(|(p, _)| p == path).count() == 1 {
            check_slot(*value, node_value(node));
        }
        found.insert((*path).to_owned());
    }
    if let Some(map) = tree.filter(|_| !dup) {
        assert_eq!(
            found,
            expected_found(map),
            "found keys differ from serde_json's"
        );
    }
}

/// Checks a projected value is the field it came from (`None`: a number serde_json
/// cannot represent).
fn check_slot(slot: Value<'_>, want: Option<Json>) {
    let Some(want) = want else {
        assert!(
            matches!(slot, Value::Float(_) | Value::Json(_)),
            "projected {slot:?} for a huge number"
        );
        return;
    };
    match (slot, &want) {
        (Value::Null, Json::Null) => {}
        (Value::Bool(b), Json::Bool(w)) => assert_eq!(b, *w),
        (Value::Str(s), Json::String(w)) => assert_eq!(s, w),
        // The kind only: `-0` is an integer to the projection and a float to serde_json,
        // and the two parse floats' last bits differently.
        (Value::Int(_) | Value::Uint(_) | Value::Float(_), Json::Number(_)) => {}
        (Value::Json(text), Json::Object(_) | Json::Array(_)) => {
            let parsed = parse_unbounded(text).expect("a projected sub-tree parses");
            assert!(parsed == want, "projected sub-tree differs");
        }
        _ => panic!("projected {slot:?} for {want}"),
    }
}
