//! Plugin replies built with `ReplyWriter` from structured input, so most inputs get
//! past the decoder (all but those past its limits): sets of every value kind at nested
//! paths (array indexes, escaped dots, paths into the events' own fields), removes, tags,
//! and all four outcomes; then checked and applied as in `reply_apply` (see
//! `weir_fuzz::reply`).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use weir_wire::{Outcome, ReplyWriter, Value};

/// Segments paths are mostly made of: the events' own keys, indexes, odd keys.
const SEGMENTS: [&str; 16] = [
    "level", "ctx", "ip", "list", "tags", "users", "email", "deep", "a", "b", "0", "1", "2",
    "a\\.b", "new", "k",
];

#[derive(Debug, Arbitrary)]
struct Event {
    edits: Vec<EditIn>,
    outcome: OutcomeIn,
}

#[derive(Debug, Arbitrary)]
enum EditIn {
    Set(PathIn, ValueIn),
    Remove(PathIn),
    Tag(String),
}

#[derive(Debug, Arbitrary)]
enum OutcomeIn {
    Keep,
    Drop,
    Route(String),
    Fail(String),
}

/// A path: segments picked from [`SEGMENTS`] or free text, joined with dots.
#[derive(Debug, Arbitrary)]
struct PathIn(Vec<SegmentIn>);

#[derive(Debug, Arbitrary)]
enum SegmentIn {
    Known(u8),
    Free(String),
}

#[derive(Debug, Arbitrary)]
enum ValueIn {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
    /// Text that is usually JSON: `Json(s)` is sent as is, and sometimes it is not JSON.
    Json(String),
    /// An object or array built so it is always JSON.
    Tree(JsonIn),
}

#[derive(Debug, Arbitrary)]
enum JsonIn {
    Num(i32),
    Str(String),
    Array(Vec<JsonIn>),
    Object(Vec<(String, JsonIn)>),
}

impl PathIn {
    fn text(&self) -> String {
        let segments: Vec<&str> = self
            .0
            .iter()
            .map(|s| match s {
                SegmentIn::Known(i) => SEGMENTS[usize::from(*i) % SEGMENTS.len()],
                SegmentIn::Free(s) => s.as_str(),
            })
            .collect();
        segments.join(".")
    }
}

impl JsonIn {
    fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            JsonIn::Num(n) => J::from(*n),
            JsonIn::Str(s) => J::from(s.as_str()),
            JsonIn::Array(items) => J::Array(items.iter().map(JsonIn::to_json).collect()),
            JsonIn::Object(members) => J::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }
}

fuzz_target!(|events: Vec<Event>| {
    weir_fuzz::handle_stack_overflow();
    let mut w = ReplyWriter::default();
    for event in &events {
        for edit in &event.edits {
            match edit {
                EditIn::Set(path, value) => {
                    let tree;
                    let value = match value {
                        ValueIn::Null => Value::Null,
                        ValueIn::Bool(b) => Value::Bool(*b),
                        ValueIn::Int(i) => Value::Int(*i),
                        ValueIn::Uint(u) => Value::Uint(*u),
                        ValueIn::Float(f) => Value::Float(*f),
                        ValueIn::Str(s) => Value::Str(s),
                        ValueIn::Json(s) => Value::Json(s),
                        ValueIn::Tree(t) => {
                            tree = t.to_json().to_string();
                            Value::Json(&tree)
                        }
                    };
                    w.set(&path.text(), value);
                }
                EditIn::Remove(path) => w.remove(&path.text()),
                EditIn::Tag(tag) => w.tag(tag),
            }
        }
        w.outcome(match &event.outcome {
            OutcomeIn::Keep => Outcome::Keep,
            OutcomeIn::Drop => Outcome::Drop,
            OutcomeIn::Route(t) => Outcome::Route(t),
            OutcomeIn::Fail(r) => Outcome::Fail(r),
        });
    }
    weir_fuzz::reply::run(&w.into_bytes(), events.len());
});
