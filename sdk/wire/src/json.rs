//! The host's side of the boundary on [`Doc`] events: projecting the fields a plugin
//! declared into a batch, and applying the edits of its reply. The SDK's native test
//! harness runs this same code, so a plugin tested natively sees exactly what the host sends.

use std::borrow::Cow;

use serde_json::{Map, Value as Json};

use crate::doc::{key_hash, text_str, Doc, Node};
use crate::limits::{truncate_reason, MAX_FIND_KEYS, MAX_PATH_BYTES, MAX_READS, MAX_REASON_BYTES};
use crate::path::push_segment;
use crate::walk::{write_compact, Elements, Members};
use crate::{BatchWriter, Edit, Outcome, Path, Value};

/// What one plugin reads, compiled once from its manifest.
#[derive(Debug, Clone)]
pub struct ReadPlan {
    reads: Vec<Path>,
    /// The hash of each read's first segment, computed once rather than per event.
    first_hashes: Vec<u64>,
    find_keys: Vec<String>,
}

/// A manifest the host will not serve: each batch would cost it work in proportion to
/// the manifest, so its size is bounded when the plugin starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A read that is not a usable field path.
    #[error(
        "invalid field path {path:?} in the plugin's manifest (empty segment or trailing backslash)"
    )]
    BadPath {
        /// The offending path (cut to its first 64 bytes).
        path: String,
    },
    /// Too many entries, or an entry too long.
    #[error("the plugin's manifest declares {what} {found}, over the limit of {limit}")]
    TooLarge {
        /// What is over its limit.
        what: &'static str,
        /// How many (or how long) it declared.
        found: usize,
        /// The limit.
        limit: usize,
    },
}

impl ReadPlan {
    /// Compiles a manifest's `reads` and `finds-keys`, within [`crate::limits`].
    pub fn new(reads: &[String], find_keys: &[String]) -> Result<Self, PlanError> {
        let too_large = |what, found, limit| PlanError::TooLarge { what, found, limit };
        if reads.len() > MAX_READS {
            return Err(too_large("reads:", reads.len(), MAX_READS));
        }
        if find_keys.len() > MAX_FIND_KEYS {
            return Err(too_large("finds-keys:", find_keys.len(), MAX_FIND_KEYS));
        }
        if let Some(long) = reads
            .iter()
            .chain(find_keys)
            .find(|p| p.len() > MAX_PATH_BYTES)
        {
            return Err(too_large("an entry of bytes:", long.len(), MAX_PATH_BYTES));
        }
        let reads: Vec<Path> = reads
            .iter()
            .map(|r| {
                Path::parse(r).ok_or_else(|| PlanError::BadPath {
                    path: r.chars().take(64).collect(),
                })
            })
            .collect::<Result<_, _>>()?;
        let first_hashes = reads
            .iter()
            .map(|p| p.segments().first().map_or(0, |s| key_hash(&s.key)))
            .collect();
        Ok(ReadPlan {
            reads,
            first_hashes,
            find_keys: find_keys.to_vec(),
        })
    }

    /// Number of declared fields per event.
    pub fn slot_count(&self) -> usize {
        self.reads.len()
    }

    /// The declared paths, in manifest order.
    pub fn reads(&self) -> &[Path] {
        &self.reads
    }

    /// Appends one event to `batch`: its declared fields, then the keys found anywhere.
    pub fn write_event(&self, batch: &mut BatchWriter, event: &Doc) {
        for (path, hash) in self.reads.iter().zip(&self.first_hashes) {
            match event.lookup_hashed(path, *hash) {
                Some(node) => write_node(batch, node),
                None => batch.slot(None),
            }
        }
        batch.begin_found();
        if !self.find_keys.is_empty() {
            let mut stack = Vec::new();
            for (key, node) in event.fields() {
                visit_member(Cow::Borrowed(key), node, &self.find_keys, &mut stack, batch);
            }
        }
        batch.end_event();
    }
}

fn write_node(batch: &mut BatchWriter, node: Node<'_>) {
    let text = match node {
        Node::Tree(value) => return write_value(batch, value),
        Node::Text(text) => text,
    };
    match text.as_bytes().first() {
        Some(b'"') => match text_str(text) {
            Some(s) => batch.slot(Some(Value::Str(&s))),
            None => batch.slot(None),
        },
        Some(b'{' | b'[') => batch.slot_json(|buf| write_compact(text, buf)),
        Some(b't') => batch.slot(Some(Value::Bool(true))),
        Some(b'f') => batch.slot(Some(Value::Bool(false))),
        Some(b'n') => batch.slot(Some(Value::Null)),
        // A number: the same variant serde_json's `Number` would report.
        _ => batch.slot(Some(if let Ok(i) = text.parse::<i64>() {
            Value::Int(i)
        } else if let Ok(u) = text.parse::<u64>() {
            Value::Uint(u)
        } else {
            Value::Float(text.parse().unwrap_or(f64::NAN))
        })),
    }
}

fn write_value(batch: &mut BatchWriter, v: &Json) {
    match v {
        Json::Null => batch.slot(Some(Value::Null)),
        Json::Bool(b) => batch.slot(Some(Value::Bool(*b))),
        Json::Number(n) => batch.slot(Some(if let Some(i) = n.as_i64() {
            Value::Int(i)
        } else if let Some(u) = n.as_u64() {
            Value::Uint(u)
        } else {
            Value::Float(n.as_f64().unwrap_or(f64::NAN))
        })),
        Json::String(s) => batch.slot(Some(Value::Str(s))),
        Json::Object(_) | Json::Array(_) => batch.slot_json(|buf| {
            let start = buf.len();
            // Serialising a `Value` into a Vec cannot fail; stay well-formed if it ever does.
            if serde_json::to_writer(&mut *buf, v).is_err() {
                buf.truncate(start);
                buf.extend_from_slice(b"null");
            }
        }),
    }
}

/// One step from the root to the node being visited.
enum Step<'v> {
    Key(Cow<'v, str>),
    Index(usize),
}

/// Visits one object member in the search for `keys` (case-insensitive): a match is
/// appended with its path; any other container is searched. The path text is built only
/// for matches.
fn visit_member<'v>(
    key: Cow<'v, str>,
    node: Node<'v>,
    keys: &[String],
    stack: &mut Vec<Step<'v>>,
    batch: &mut BatchWriter,
) {
    if keys.iter().any(|want| want.eq_ignore_ascii_case(&key)) {
        let mut path = String::new();
        for step in stack.iter() {
            match step {
                Step::Key(k) => push_segment(&mut path, k),
                Step::Index(i) => push_segment(&mut path, &i.to_string()),
            }
        }
        push_segment(&mut path, &key);
        batch.found_path(&path);
        write_node(batch, node);
    } else if node.is_container() {
        stack.push(Step::Key(key));
        find_keys(node, keys, stack, batch);
        stack.pop();
    }
}

/// Searches a container's members and elements for `keys`.
fn find_keys<'v>(
    node: Node<'v>,
    keys: &[String],
    stack: &mut Vec<Step<'v>>,
    batch: &mut BatchWriter,
) {
    match node {
        Node::Tree(Json::Object(map)) => {
            for (k, v) in map {
                visit_member(Cow::Borrowed(k), Node::Tree(v), keys, stack, batch);
            }
        }
        Node::Tree(Json::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                visit_element(i, Node::Tree(item), keys, stack, batch);
            }
        }
        Node::Tree(_) => {}
        Node::Text(text) => match text.as_bytes().first() {
            Some(b'{') => {
                for (k, v) in Members::new(text) {
                    visit_member(k, Node::Text(v), keys, stack, batch);
                }
            }
            Some(b'[') => {
                for (i, item) in Elements::new(text).enumerate() {
                    visit_element(i, Node::Text(item), keys, stack, batch);
                }
            }
            _ => {}
        },
    }
}

fn visit_element<'v>(
    i: usize,
    node: Node<'v>,
    keys: &[String],
    stack: &mut Vec<Step<'v>>,
    batch: &mut BatchWriter,
) {
    if node.is_container() {
        stack.push(Step::Index(i));
        find_keys(node, keys, stack, batch);
        stack.pop();
    }
}

/// Why a plugin's edit could not be applied. The event then goes to the dead-letter
/// output naming the plugin, since the plugin asked for something the event cannot hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// The path text does not parse.
    #[error("invalid field path {0:?}")]
    BadPath(String),
    /// A step of the path runs into a scalar.
    #[error("cannot set `{path}`: `{blocker}` holds a {kind}, not an object")]
    NotAContainer {
        /// The path being set.
        path: String,
        /// The prefix that holds a scalar.
        blocker: String,
        /// What it holds.
        kind: &'static str,
    },
    /// An array index past the end.
    #[error("cannot set `{path}`: index {index} is past the end of an array of {len}")]
    IndexOutOfRange {
        /// The path being set.
        path: String,
        /// The index asked for.
        index: usize,
        /// The array's length.
        len: usize,
    },
    /// A [`Value::Json`] that is not valid JSON.
    #[error("value set at `{path}` is not valid JSON: {error}")]
    BadJson {
        /// The path being set.
        path: String,
        /// The parser's message.
        error: String,
    },
    /// NaN or an infinity, which JSON cannot represent.
    #[error("value set at `{path}` is not a finite number")]
    NotFinite {
        /// The path being set.
        path: String,
    },
    /// A field's text could not be parsed to edit inside it. Never expected (the text was
    /// validated at decode); reported rather than guessed around, so a redaction is never
    /// skipped silently.
    #[error("cannot edit inside `{field}`: {error}")]
    Unparsable {
        /// The top-level field.
        field: String,
        /// The parser's message.
        error: String,
    },
    /// The `tags` field exists and is neither a string nor an array.
    #[error("cannot add tag {tag:?}: `tags` holds a {kind}")]
    TagsNotAList {
        /// The tag being added.
        tag: String,
        /// What `tags` holds.
        kind: &'static str,
    },
}

/// The field that [`Edit::Tag`] appends to, as Logstash does.
pub const TAGS_FIELD: &str = "tags";

/// An event's fate once a plugin's decision for it has been applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Continues down the chain.
    Keep,
    /// Discarded on purpose.
    Drop,
    /// Continues, with this route target.
    Route(String),
    /// Goes to the dead-letter output with this reason.
    Fail(String),
}

/// Applies one event's reply: its edits when the event continues, then its outcome.
/// An edit the event cannot take fails the event, naming the edit.
pub fn settle(event: &mut Doc, edits: &[Edit<'_>], outcome: Outcome<'_>) -> Fate {
    match outcome {
        Outcome::Drop => return Fate::Drop,
        Outcome::Fail(reason) => {
            return Fate::Fail(truncate_reason(reason, MAX_REASON_BYTES).into_owned())
        }
        Outcome::Keep | Outcome::Route(_) => {}
    }
    if let Err(e) = apply_all(event, edits) {
        return Fate::Fail(format!("edit rejected: {e}"));
    }
    match outcome {
        Outcome::Route(target) => Fate::Route(target.to_owned()),
        _ => Fate::Keep,
    }
}

/// Applies an event's edits in order. Tags are gathered and added together, in one
/// pass over the `tags` list however many there are (one by one, each searched the list:
/// 80,000 tags on one event cost 22 s); an edit of the `tags` field itself applies the
/// tags gathered before it first, so the order of edits still decides the result.
pub fn apply_all(event: &mut Doc, edits: &[Edit<'_>]) -> Result<(), ApplyError> {
    // A few tags (the usual case) are applied one by one, in place, without gathering.
    if edits.iter().filter(|e| matches!(e, Edit::Tag(_))).count() <= FEW_TAGS {
        return edits.iter().try_for_each(|edit| apply(event, edit));
    }
    let mut tags: Vec<&str> = Vec::new();
    for edit in edits {
        match edit {
            Edit::Tag(tag) => tags.push(tag),
            Edit::Set(path, _) | Edit::Remove(path) => {
                if !tags.is_empty() && touches_tags(path) {
                    add_tags(event, &tags)?;
                    tags.clear();
                }
                apply(event, edit)?;
            }
        }
    }
    if !tags.is_empty() {
        add_tags(event, &tags)?;
    }
    Ok(())
}

/// Whether an edit's path names the `tags` field or something inside it, escapes
/// resolved as [`Path::parse`] resolves them (`t\\ags` is `tags`).
fn touches_tags(path: &str) -> bool {
    if !path.contains('\\') {
        return path.split('.').next() == Some(TAGS_FIELD);
    }
    Path::parse(path).is_some_and(|p| p.segments().first().is_some_and(|s| s.key == TAGS_FIELD))
}

/// Applies one edit to an event. A top-level field is replaced without parsing anything;
/// an edit below one parses that field alone.
pub fn apply(event: &mut Doc, edit: &Edit<'_>) -> Result<(), ApplyError> {
    match *edit {
        Edit::Set(path, value) => {
            let value = to_json(path, value)?;
            with_segments(path, |segments| match segments {
                [key] => {
                    event.set(key, value);
                    Ok(())
                }
                [key, ..] => set(
                    event
                        .tree_or_insert(key, || Json::Null)
                        .map_err(|e| unparsable(key, e))?,
                    path,
                    segments,
                    1,
                    value,
                ),
                [] => Ok(()),
            })?
        }
        Edit::Remove(path) => with_segments(path, |segments| match segments {
            [key] => {
                event.remove(key);
                Ok(())
            }
            [key, below @ ..] => {
                if let Some(root) = event.tree_mut(key).map_err(|e| unparsable(key, e))? {
                    remove(root, below);
                }
                Ok(())
            }
            [] => Ok(()),
        })?,
        Edit::Tag(tag) => add_tags(event, &[tag]),
    }
}

fn unparsable(field: &str, error: serde_json::Error) -> ApplyError {
    ApplyError::Unparsable {
        field: field.to_owned(),
        error: error.to_string(),
    }
}

/// Converts a wire value into a `serde_json` value.
pub fn to_json(path: &str, value: Value<'_>) -> Result<Json, ApplyError> {
    Ok(match value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(b),
        Value::Int(i) => Json::from(i),
        Value::Uint(u) => Json::from(u),
        Value::Float(f) => serde_json::Number::from_f64(f)
            .map(Json::Number)
            .ok_or_else(|| ApplyError::NotFinite {
                path: path.to_owned(),
            })?,
        Value::Str(s) => Json::String(s.to_owned()),
        Value::Json(text) => serde_json::from_str(text).map_err(|e| ApplyError::BadJson {
            path: path.to_owned(),
            error: e.to_string(),
        })?,
    })
}

fn kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

/// Calls `f` with the path's segments, borrowed from `path` unless it uses escapes.
fn with_segments<R>(path: &str, f: impl FnOnce(&[&str]) -> R) -> Result<R, ApplyError> {
    let bad = || ApplyError::BadPath(path.to_owned());
    // Most edits touch a top-level field: no splitting, no allocation.
    if !path.contains(['.', '\\']) {
        return if path.is_empty() {
            Err(bad())
        } else {
            Ok(f(&[path]))
        };
    }
    if path.contains('\\') {
        let parsed = Path::parse(path).ok_or_else(bad)?;
        let segments: Vec<&str> = parsed.segments().iter().map(|s| s.key.as_str()).collect();
        return Ok(f(&segments));
    }
    // Up to eight segments on the stack; deeper paths are rare enough to allocate.
    let mut stack = [""; 8];
    let mut depth = 0;
    for seg in path.split('.') {
        if seg.is_empty() {
            return Err(bad());
        }
        if depth == stack.len() {
            let segments: Vec<&str> = path.split('.').collect();
            if segments.iter().any(|s| s.is_empty()) {
                return Err(bad());
            }
            return Ok(f(&segments));
        }
        stack[depth] = seg;
        depth += 1;
    }
    Ok(f(&stack[..depth]))
}

/// A segment's array index, when it is all digits.
fn index_of(segment: &str) -> Option<usize> {
    segment
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| segment.parse().ok())
        .flatten()
}

/// Sets `segments[from..]` below `root`, which holds `segments[..from]`.
fn set(
    root: &mut Json,
    path: &str,
    segments: &[&str],
    from: usize,
    value: Json,
) -> Result<(), ApplyError> {
    let mut cur = root;
    let mut value = Some(value);
    for (depth, seg) in segments.iter().enumerate().skip(from) {
        let last = depth + 1 == segments.len();
        if cur.is_null() {
            *cur = Json::Object(Map::new());
        }
        let index = index_of(seg);
        let blocked = match (&*cur, index) {
            (Json::Object(_), _) | (Json::Array(_), Some(_)) => None,
            (other, _) => Some(kind(other)),
        };
        if let Some(kind) = blocked {
            let blocker = segments[..depth].join(".");
            return Err(ApplyError::NotAContainer {
                path: path.to_owned(),
                blocker,
                kind,
            });
        }
        cur = match cur {
            Json::Object(map) if last => {
                let value = value.take().unwrap_or_default();
                match map.get_mut(*seg) {
                    Some(slot) => *slot = value,
                    None => {
                        map.insert((*seg).to_owned(), value);
                    }
                }
                return Ok(());
            }
            Json::Object(map) => {
                if !map.contains_key(*seg) {
                    map.insert((*seg).to_owned(), Json::Null);
                }
                match map.get_mut(*seg) {
                    Some(next) => next,
                    None => return Ok(()),
                }
            }
            Json::Array(items) => {
                let index = index.unwrap_or_default();
                let len = items.len();
                if index > len || (index == len && !last) {
                    return Err(ApplyError::IndexOutOfRange {
                        path: path.to_owned(),
                        index,
                        len,
                    });
                }
                if last {
                    let value = value.take().unwrap_or_default();
                    if index == len {
                        items.push(value);
                    } else {
                        items[index] = value;
                    }
                    return Ok(());
                }
                &mut items[index]
            }
            _ => return Ok(()),
        };
    }
    Ok(())
}

fn remove(event: &mut Json, segments: &[&str]) {
    let Some((last, parents)) = segments.split_last() else {
        return;
    };
    let mut cur = event;
    for seg in parents {
        cur = match cur {
            Json::Object(map) => match map.get_mut(*seg) {
                Some(v) => v,
                None => return,
            },
            Json::Array(items) => match index_of(seg).and_then(|i| items.get_mut(i)) {
                Some(v) => v,
                None => return,
            },
            _ => return,
        };
    }
    match cur {
        Json::Object(map) => {
            map.shift_remove(*last);
        }
        Json::Array(items) => {
            if let Some(i) = index_of(last).filter(|i| *i < items.len()) {
                items.remove(i);
            }
        }
        _ => {}
    }
}

/// Up to this many tags are looked up in the `tags` list one by one; more go through a
/// set, which costs an allocation but keeps the work linear.
const FEW_TAGS: usize = 4;

/// Adds each of `new` to the `tags` field once; a lone string tag becomes a list first.
/// A few tags are looked up in the list one by one; more go through a set of the list's
/// strings, so the work stays linear in the list plus the tags.
fn add_tags(event: &mut Doc, new: &[&str]) -> Result<(), ApplyError> {
    let tags = event
        .tree_or_insert(TAGS_FIELD, || Json::Array(Vec::new()))
        .map_err(|e| unparsable(TAGS_FIELD, e))?;
    if let Json::String(one) = tags {
        *tags = Json::Array(vec![Json::String(std::mem::take(one))]);
    }
    let items = match tags {
        Json::Array(items) => items,
        other => {
            return Err(ApplyError::TagsNotAList {
                tag: new.first().map_or_else(String::new, |t| (*t).to_owned()),
                kind: kind(other),
            })
        }
    };
    if new.len() <= FEW_TAGS {
        for tag in new {
            if !items.iter().any(|t| t.as_str() == Some(tag)) {
                items.push(Json::String((*tag).to_owned()));
            }
        }
        return Ok(());
    }
    let mut seen: rustc_hash::FxHashSet<String> = items
        .iter()
        .filter_map(|t| t.as_str().map(str::to_owned))
        .collect();
    for tag in new {
        if seen.insert((*tag).to_owned()) {
            items.push(Json::String((*tag).to_owned()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BatchReader, EventFields};
    use serde_json::json;

    fn doc(v: Json) -> Doc {
        Doc::parse(v.to_string()).unwrap()
    }

    fn plan(reads: &[&str], keys: &[&str]) -> ReadPlan {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        ReadPlan::new(&s(reads), &s(keys)).unwrap()
    }

    #[test]
    fn projects_declared_fields_and_finds_keys_at_any_depth() {
        let event = doc(json!({
            "level": "warn", "status_code": 200,
            "context": {"client_ip": "8.8.8.8", "Password": "p", "items": [{"token": "t"}]},
            "exception": {"type": "ValueError"}
        }));
        let plan = plan(
            &[
                "level",
                "context.client_ip",
                "missing",
                "exception",
                "status_code",
            ],
            &["password", "token"],
        );
        let mut w = BatchWriter::new(plan.slot_count());
        plan.write_event(&mut w, &event);
        let mut r = BatchReader::new(w.as_bytes()).unwrap();
        let mut ev = EventFields::default();
        assert!(r.next_event(&mut ev).unwrap());
        assert_eq!(ev.slots[0], Some(Value::Str("warn")));
        assert_eq!(ev.slots[1], Some(Value::Str("8.8.8.8")));
        assert_eq!(ev.slots[2], None);
        assert_eq!(ev.slots[3], Some(Value::Json(r#"{"type":"ValueError"}"#)));
        assert_eq!(ev.slots[4], Some(Value::Int(200)));
        assert_eq!(
            ev.found,
            [
                ("context.Password", Value::Str("p")),
                ("context.items.0.token", Value::Str("t"))
            ]
        );
    }

    #[test]
    fn set_creates_parents_and_remove_keeps_key_order() {
        let mut event = doc(json!({"a": 1, "b": 2, "c": 3}));
        apply(
            &mut event,
            &Edit::Set("geo.location.lat", Value::Float(45.5)),
        )
        .unwrap();
        apply(&mut event, &Edit::Remove("b")).unwrap();
        apply(&mut event, &Edit::Remove("no.such.path")).unwrap();
        assert_eq!(
            event.to_value(),
            json!({"a": 1, "c": 3, "geo": {"location": {"lat": 45.5}}})
        );
        let keys: Vec<_> = event.fields().map(|(k, _)| k.to_owned()).collect();
        assert_eq!(keys, ["a", "c", "geo"]);
    }

    #[test]
    fn set_through_a_scalar_names_the_blocker() {
        let mut event = doc(json!({"context": "oops"}));
        let err = apply(&mut event, &Edit::Set("context.client_ip", Value::Str("x"))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot set `context.client_ip`: `context` holds a string, not an object"
        );
    }

    #[test]
    fn json_values_are_parsed_and_bad_json_is_reported() {
        let mut event = doc(json!({}));
        apply(
            &mut event,
            &Edit::Set("geo", Value::Json(r#"{"city":"Rome"}"#)),
        )
        .unwrap();
        assert_eq!(event.to_value(), json!({"geo": {"city": "Rome"}}));
        let err = apply(&mut event, &Edit::Set("x", Value::Json("{nope"))).unwrap_err();
        assert!(matches!(err, ApplyError::BadJson { .. }), "{err}");
        assert!(apply(&mut event, &Edit::Set("x", Value::Float(f64::NAN))).is_err());
    }

    #[test]
    fn tags_are_added_once_and_a_string_tag_is_promoted() {
        let mut event = doc(json!({"tags": "old"}));
        apply(&mut event, &Edit::Tag("new")).unwrap();
        apply(&mut event, &Edit::Tag("new")).unwrap();
        assert_eq!(event.to_value(), json!({"tags": ["old", "new"]}));
        let mut bad = doc(json!({"tags": 5}));
        assert!(apply(&mut bad, &Edit::Tag("x")).is_err());
    }

    #[test]
    fn deep_paths_and_empty_segments() {
        let mut event = doc(json!({}));
        let deep = "a.b.c.d.e.f.g.h.i.j";
        apply(&mut event, &Edit::Set(deep, Value::Int(1))).unwrap();
        assert_eq!(
            event.to_value()["a"]["b"]["c"]["d"]["e"]["f"]["g"]["h"]["i"]["j"],
            1
        );
        for bad in ["a..b", "a.b.c.d.e.f.g.h.i..j", ".a", ""] {
            assert!(
                matches!(
                    apply(&mut event, &Edit::Set(bad, Value::Null)),
                    Err(ApplyError::BadPath(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn many_tags_are_added_once_each_in_order_and_edits_of_tags_keep_their_place() {
        let mut event = doc(json!({"tags": ["t3", "x"]}));
        let names: Vec<String> = (0..1000).map(|i| format!("t{}", i % 500)).collect();
        let mut edits: Vec<Edit<'_>> = names.iter().map(|n| Edit::Tag(n)).collect();
        apply_all(&mut event, &edits).unwrap();
        let tags = event.to_value()["tags"].as_array().unwrap().clone();
        assert_eq!(tags.len(), 501, "500 distinct plus the one that was there");
        assert_eq!(tags[..3], [json!("t3"), json!("x"), json!("t0")]);
        // Tags before a `tags` edit land before it; the ones after, after it.
        let mut event = doc(json!({}));
        edits = vec![
            Edit::Tag("a"),
            Edit::Remove("tags"),
            Edit::Tag("b"),
            Edit::Tag("c"),
            Edit::Tag("d"),
            Edit::Tag("e"),
            Edit::Tag("f"),
            Edit::Tag("b"),
        ];
        apply_all(&mut event, &edits).unwrap();
        assert_eq!(event.to_value(), json!({"tags": ["b", "c", "d", "e", "f"]}));
        // An escaped path to `tags` is a `tags` edit too (found by fuzzing).
        let mut event = doc(json!({}));
        let mut edits: Vec<Edit<'_>> = ["a", "b", "c", "d", "e"].map(Edit::Tag).to_vec();
        edits.push(Edit::Remove("t\\ags"));
        apply_all(&mut event, &edits).unwrap();
        assert_eq!(event.to_value(), json!({}));
    }

    #[test]
    fn array_elements_are_addressed_by_index() {
        let mut event = doc(json!({"users": [{"email": "a"}, {"email": "b"}]}));
        apply(
            &mut event,
            &Edit::Set("users.1.email", Value::Str("masked")),
        )
        .unwrap();
        apply(&mut event, &Edit::Remove("users.0")).unwrap();
        assert_eq!(event.to_value(), json!({"users": [{"email": "masked"}]}));
        assert!(apply(&mut event, &Edit::Set("users.5.email", Value::Null)).is_err());
    }
}
