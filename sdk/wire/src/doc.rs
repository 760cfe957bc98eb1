//! An event kept as the JSON text it arrived as, with the plugins' edits laid over it.
//!
//! Parsing every event into a `serde_json::Value` tree and serialising it back was most of
//! the host's own time per event: an allocation for every key and string, a hash for every
//! key. A [`Doc`] validates the text once (serde_json does the validating), remembers where
//! each top-level key and value sit in it, and writes untouched fields back out as the bytes
//! they arrived as. A field is parsed into a tree only when an edit reaches below it.

use std::borrow::Cow;
use std::fmt;
use std::hash::Hasher;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value as Json;

use crate::limits::{DEFAULT_MAX_DEPTH, MAX_TREE_BYTES};
use crate::path::Path;
use crate::scan::{check_container, lone_surrogate};
use crate::walk::{write_compact, Elements, Members};

/// A JSON object event: its original text plus its top-level fields, in order.
///
/// Keys are unique: a key repeated in the input keeps its first position and its last
/// value, as `serde_json` (and Elasticsearch's strict parser, which rejects duplicates)
/// would have it. Nested objects are passed through as written, minus insignificant
/// whitespace.
#[derive(Debug, Clone, Default)]
pub struct Doc {
    text: String,
    /// [`key_hash`] of each field's key, beside `fields` rather than in it: a lookup scans
    /// this dense array and compares key text only on a likely match.
    hashes: Vec<u64>,
    fields: Vec<Field>,
}

#[derive(Debug, Clone)]
struct Field {
    key: Key,
    value: Slot,
}

#[derive(Debug, Clone)]
enum Key {
    /// Bytes of the text between the key's quotes; such a key has no escapes.
    Span(usize, usize),
    /// A key that had escapes, or that an edit added.
    Owned(Box<str>),
}

#[derive(Debug, Clone)]
enum Slot {
    /// Bytes of the text holding the value, untouched.
    Span(usize, usize),
    /// A value an edit set, or a field parsed because an edit reached inside it.
    Tree(Json),
}

/// Text that is not one valid JSON object within the nesting limit; the text is given back.
#[derive(Debug, thiserror::Error)]
#[error("{reason}")]
pub struct NotAnObject {
    /// The text that was to be parsed.
    pub text: String,
    /// What is wrong with it.
    pub reason: Rejection,
}

/// Why a text was not accepted as an event.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// Not valid JSON, or not an object: serde_json's message, with line and column.
    #[error("{0}")]
    Json(serde_json::Error),
    /// Valid JSON nesting objects and arrays deeper than the limit (the event is level 1).
    /// Such an event could not be walked, edited or written back without recursing
    /// without bound, so it is refused whole rather than passed on partly understood.
    #[error(
        "nests objects and arrays deeper than {limit} levels (the limit is `pipeline.max_depth`)"
    )]
    TooDeep {
        /// The limit in force.
        limit: usize,
    },
    /// An object with an empty key: no field path can name it, so a plugin could not
    /// edit or remove it (a secret below it would pass redaction), and Elasticsearch
    /// refuses empty field names anyway.
    #[error("has an empty key (`\"\": …`), which no field path can name")]
    EmptyKey,
    /// A `\uD800`–`\uDFFF` escape outside a pair: serde_json validates only the syntax
    /// of escapes, and a field holding one could not be decoded for a plugin (it would
    /// arrive as absent: an email left unmasked).
    #[error("holds a lone surrogate escape (half of a UTF-16 pair) at byte {at}, which no string can hold")]
    LoneSurrogate {
        /// Byte offset of the escape's backslash.
        at: usize,
    },
}

/// A value inside a [`Doc`], for reading.
#[derive(Debug, Clone, Copy)]
pub enum Node<'d> {
    /// Valid JSON text, as it arrived.
    Text(&'d str),
    /// A parsed value.
    Tree(&'d Json),
}

impl Doc {
    /// Validates `text` as one JSON object nesting at most
    /// [`DEFAULT_MAX_DEPTH`] levels, and indexes its top-level fields.
    pub fn parse(text: String) -> Result<Doc, NotAnObject> {
        Doc::parse_limited(text, DEFAULT_MAX_DEPTH)
    }

    /// [`Doc::parse`] with a nesting limit of `max_depth` levels (the event itself is
    /// level 1). Only values that are objects or arrays are scanned for depth, so
    /// flat fields cost nothing extra.
    pub fn parse_limited(text: String, max_depth: usize) -> Result<Doc, NotAnObject> {
        // Room for the fields a log line of this size usually has, plus the few plugins
        // add, so neither vector regrows while parsing or editing (that was ~4% of a
        // pipeline's CPU). Capped: a 1 MiB line of one long string must not reserve room
        // for 40,000 fields; wider events grow as they need.
        let room = (text.len() / 24 + 8).min(64);
        let (mut hashes, mut fields) = (Vec::with_capacity(room), Vec::with_capacity(room));
        let mut refused = None;
        let parsed = {
            let mut de = serde_json::Deserializer::from_str(&text);
            de.deserialize_map(TopLevel {
                base: text.as_ptr() as usize,
                text: &text,
                hashes: &mut hashes,
                fields: &mut fields,
                value_depth: max_depth.saturating_sub(1),
                refused: &mut refused,
            })
            .and_then(|()| de.end())
        };
        let lone = parsed.is_ok().then(|| lone_surrogate(&text)).flatten();
        if let Some(at) = lone {
            return Err(NotAnObject {
                text,
                reason: Rejection::LoneSurrogate { at },
            });
        }
        match (parsed, refused) {
            (Ok(()), _) => Ok(Doc {
                text,
                hashes,
                fields,
            }),
            (Err(_), Some(Refused::TooDeep)) => Err(NotAnObject {
                text,
                reason: Rejection::TooDeep { limit: max_depth },
            }),
            (Err(_), Some(Refused::EmptyKey)) => Err(NotAnObject {
                text,
                reason: Rejection::EmptyKey,
            }),
            (Err(error), None) => Err(NotAnObject {
                text,
                reason: Rejection::Json(error),
            }),
        }
    }

    /// The text the event arrived as (edits never change it).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Gives back the original text, for a dead-letter entry.
    pub fn into_text(self) -> String {
        self.text
    }

    /// The top-level fields, in order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, Node<'_>)> {
        self.fields
            .iter()
            .map(|f| (key_of(&self.text, &f.key), self.node(&f.value)))
    }

    /// The value of a top-level field.
    pub fn get(&self, key: &str) -> Option<Node<'_>> {
        self.get_hashed(key, key_hash(key))
    }

    /// The value at `path`, if every step exists.
    pub fn lookup(&self, path: &Path) -> Option<Node<'_>> {
        let first = path.segments().first()?;
        self.lookup_hashed(path, key_hash(&first.key))
    }

    /// [`Doc::lookup`] with the hash of the path's first segment known in advance.
    pub(crate) fn lookup_hashed(&self, path: &Path, first_hash: u64) -> Option<Node<'_>> {
        let (first, rest) = path.segments().split_first()?;
        let mut node = self.get_hashed(&first.key, first_hash)?;
        for seg in rest {
            node = node.child(&seg.key, seg.index)?;
        }
        Some(node)
    }

    /// Sets a top-level field: in place when it exists, appended otherwise.
    pub fn set(&mut self, key: &str, value: Json) {
        match self.position(key) {
            Some(i) => self.fields[i].value = Slot::Tree(value),
            None => self.push(key, Slot::Tree(value)),
        }
    }

    /// Removes a top-level field; the others keep their order.
    pub fn remove(&mut self, key: &str) {
        if let Some(i) = self.position(key) {
            self.fields.remove(i);
            self.hashes.remove(i);
        }
    }

    /// A top-level field as a tree to edit in place, parsed first if untouched so far;
    /// `Ok(None)` when there is no such field.
    pub fn tree_mut(&mut self, key: &str) -> Result<Option<&mut Json>, serde_json::Error> {
        match self.position(key) {
            Some(i) => self.materialise(i).map(Some),
            None => Ok(None),
        }
    }

    /// Like [`Doc::tree_mut`], adding the field with `init` when it is absent.
    pub fn tree_or_insert(
        &mut self,
        key: &str,
        init: impl FnOnce() -> Json,
    ) -> Result<&mut Json, serde_json::Error> {
        let i = match self.position(key) {
            Some(i) => i,
            None => {
                self.push(key, Slot::Tree(init()));
                self.fields.len() - 1
            }
        };
        self.materialise(i)
    }

    /// Appends the event as compact JSON.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match &field.key {
                Key::Span(start, end) => {
                    out.push(b'"');
                    out.extend_from_slice(&self.text.as_bytes()[*start..*end]);
                    out.push(b'"');
                }
                Key::Owned(key) => write_tree(out, &Json::from(&**key)),
            }
            out.push(b':');
            match &field.value {
                Slot::Span(start, end) => write_compact(&self.text[*start..*end], out),
                Slot::Tree(value) => write_tree(out, value),
            }
        }
        out.push(b'}');
    }

    /// The event as a `serde_json` value (tests and tools; the pipeline never needs it).
    pub fn to_value(&self) -> Json {
        let mut out = Vec::with_capacity(self.text.len());
        self.write_json(&mut out);
        // What `write_json` writes is valid JSON by construction.
        serde_json::from_slice(&out).unwrap_or(Json::Null)
    }

    fn get_hashed(&self, key: &str, hash: u64) -> Option<Node<'_>> {
        let i = self.position_hashed(key, hash)?;
        Some(self.node(&self.fields[i].value))
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.position_hashed(key, key_hash(key))
    }

    fn position_hashed(&self, key: &str, hash: u64) -> Option<usize> {
        find_key(&self.text, &self.hashes, &self.fields, key, hash)
    }

    fn push(&mut self, key: &str, value: Slot) {
        self.hashes.push(key_hash(key));
        self.fields.push(Field {
            key: Key::Owned(key.into()),
            value,
        });
    }

    fn node<'d>(&'d self, slot: &'d Slot) -> Node<'d> {
        match slot {
            Slot::Span(start, end) => Node::Text(&self.text[*start..*end]),
            Slot::Tree(value) => Node::Tree(value),
        }
    }

    /// The field at `i` as a tree, parsing its text the first time. The text was
    /// validated, depth included, by `parse`, so serde_json's own recursion limit is
    /// lifted here; should the parse still fail, the edit fails loudly (a field turned
    /// into a string would let a redaction silently miss what it removes).
    fn materialise(&mut self, i: usize) -> Result<&mut Json, serde_json::Error> {
        let slot = &mut self.fields[i].value;
        if let Slot::Span(start, end) = *slot {
            if end - start > MAX_TREE_BYTES {
                return Err(de::Error::custom(format_args!(
                    "the field is {} bytes, over the {MAX_TREE_BYTES} an edit may parse",
                    end - start
                )));
            }
            let mut de = serde_json::Deserializer::from_str(&self.text[start..end]);
            de.disable_recursion_limit();
            let value = Json::deserialize(&mut de)?;
            de.end()?;
            *slot = Slot::Tree(value);
        }
        match slot {
            Slot::Tree(value) => Ok(value),
            Slot::Span(..) => unreachable!("materialised above"),
        }
    }
}

impl<'d> Node<'d> {
    /// The member `key` of an object, or element `index` of an array.
    pub fn child(self, key: &str, index: Option<usize>) -> Option<Node<'d>> {
        match self {
            Node::Tree(Json::Object(map)) => map.get(key).map(Node::Tree),
            Node::Tree(Json::Array(items)) => items.get(index?).map(Node::Tree),
            Node::Tree(_) => None,
            Node::Text(text) => match text.as_bytes().first()? {
                // A repeated key's last value wins, as when parsing into a map.
                b'{' => Members::new(text)
                    .filter(|(k, _)| k == key)
                    .last()
                    .map(|(_, v)| Node::Text(v)),
                b'[' => Elements::new(text).nth(index?).map(Node::Text),
                _ => None,
            },
        }
    }

    /// Whether it is an object or an array.
    pub fn is_container(self) -> bool {
        match self {
            Node::Text(text) => matches!(text.as_bytes().first(), Some(b'{' | b'[')),
            Node::Tree(value) => value.is_object() || value.is_array(),
        }
    }

    /// The text of a string value (unescaped, borrowed when it had no escapes).
    pub fn as_str(self) -> Option<Cow<'d, str>> {
        match self {
            Node::Tree(value) => value.as_str().map(Cow::Borrowed),
            Node::Text(text) => text_str(text),
        }
    }

    /// The value as a `serde_json` value.
    pub fn to_value(self) -> Json {
        match self {
            Node::Tree(value) => value.clone(),
            Node::Text(text) => serde_json::from_str(text).unwrap_or(Json::Null),
        }
    }
}

/// The unescaped text of a JSON string literal, `None` for any other value.
pub(crate) fn text_str(text: &str) -> Option<Cow<'_, str>> {
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        serde_json::from_str::<String>(text).ok().map(Cow::Owned)
    } else {
        Some(Cow::Borrowed(inner))
    }
}

fn write_tree(out: &mut Vec<u8>, value: &Json) {
    // Serialising a `Value` into a Vec cannot fail.
    let _ = serde_json::to_writer(out, value);
}

fn key_of<'d>(text: &'d str, key: &'d Key) -> &'d str {
    match key {
        Key::Span(start, end) => &text[*start..*end],
        Key::Owned(key) => key,
    }
}

/// Where `key` (whose [`key_hash`] is `hash`) is among `fields`: the dense `hashes` are
/// scanned, and key text is compared only on a likely match.
fn find_key(text: &str, hashes: &[u64], fields: &[Field], key: &str, hash: u64) -> Option<usize> {
    hashes
        .iter()
        .zip(fields)
        .position(|(h, f)| *h == hash && key_of(text, &f.key) == key)
}

/// A key's hash. rustc-hash's `FxHasher` takes the key a word at a time: FNV-1a, one
/// dependent multiply per byte, was ~0.25 µs of every event's parse (17 keys).
pub(crate) fn key_hash(key: &str) -> u64 {
    let mut hasher = rustc_hash::FxHasher::default();
    hasher.write(key.as_bytes());
    hasher.finish()
}

/// A key, borrowed from the input unless it had escapes.
struct KeyRef<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for KeyRef<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = KeyRef<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(KeyRef(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(KeyRef(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

/// Collects a top-level object's fields as spans of `text`.
struct TopLevel<'a> {
    base: usize,
    text: &'a str,
    hashes: &'a mut Vec<u64>,
    fields: &'a mut Vec<Field>,
    /// How deep a field's value may nest.
    value_depth: usize,
    /// Why the parse was abandoned, when it was for something serde_json accepts.
    refused: &'a mut Option<Refused>,
}

/// What a [`TopLevel`] walk refused that serde_json alone would accept.
#[derive(Debug, Clone, Copy)]
enum Refused {
    TooDeep,
    EmptyKey,
}

impl<'de> Visitor<'de> for TopLevel<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let span = |part: &str| {
            let start = part.as_ptr() as usize - self.base;
            (start, start + part.len())
        };
        let mut seen = 0u64;
        while let Some((key, value)) = map.next_entry::<KeyRef<'de>, &'de RawValue>()? {
            let raw = value.get();
            let refused = if key.0.is_empty() {
                Some(Refused::EmptyKey)
            } else if matches!(raw.as_bytes().first(), Some(b'{' | b'[')) {
                let scan = check_container(raw, self.value_depth);
                if scan.depth > self.value_depth {
                    Some(Refused::TooDeep)
                } else {
                    scan.empty_key.then_some(Refused::EmptyKey)
                }
            } else {
                None
            };
            if refused.is_some() {
                *self.refused = refused;
                return Err(de::Error::custom("refused"));
            }
            let value = {
                let (start, end) = span(value.get());
                Slot::Span(start, end)
            };
            let hash = key_hash(&key.0);
            // A one-word Bloom filter of the keys so far skips the duplicate search.
            let bit = 1u64 << (hash & 63);
            if seen & bit != 0 {
                if let Some(i) = find_key(self.text, self.hashes, self.fields, &key.0, hash) {
                    self.fields[i].value = value;
                    continue;
                }
            }
            seen |= bit;
            let key = match key.0 {
                Cow::Borrowed(k) => {
                    let (start, end) = span(k);
                    Key::Span(start, end)
                }
                Cow::Owned(k) => Key::Owned(k.into()),
            };
            self.hashes.push(hash);
            self.fields.push(Field { key, value });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(text: &str) -> Doc {
        Doc::parse(text.to_owned()).unwrap()
    }

    fn written(d: &Doc) -> String {
        let mut out = Vec::new();
        d.write_json(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn untouched_events_are_written_back_compact_with_values_as_they_arrived() {
        let text = r#" { "a" : 1.50 , "b": {"c": [1, 2], "d": "x y"}, "e\"q": "\u00e9" } "#;
        let d = doc(text);
        assert_eq!(
            written(&d),
            r#"{"a":1.50,"b":{"c":[1,2],"d":"x y"},"e\"q":"\u00e9"}"#
        );
        assert_eq!(d.text(), text);
    }

    /// Deterministic variety: std's `DefaultHasher` has fixed keys, so hashing a counter
    /// gives the same sequence on every run.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            use std::hash::Hasher;
            let mut h = std::collections::hash_map::DefaultHasher::new();
            h.write_u64(self.0);
            self.0 += 1;
            h.finish()
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn random_text(rng: &mut Rng) -> String {
        let pieces = ["a", "é", "\"", "\\", "\n", " ", "😀", "\u{1}", "k.e", "/"];
        (0..rng.below(6))
            .map(|_| pieces[rng.below(pieces.len() as u64) as usize])
            .collect()
    }

    fn random_value(rng: &mut Rng, depth: u32) -> Json {
        match if depth == 0 {
            rng.below(5)
        } else {
            rng.below(7)
        } {
            0 => Json::Null,
            1 => Json::Bool(rng.below(2) == 0),
            2 => json!(rng.next() as i64),
            3 => json!((rng.next() % 100_000) as f64 / 7.0),
            4 => Json::String(random_text(rng)),
            5 => Json::Array(
                (0..rng.below(4))
                    .map(|_| random_value(rng, depth - 1))
                    .collect(),
            ),
            _ => Json::Object(
                (0..rng.below(5))
                    // Never an empty key: Doc refuses those (tested on their own).
                    .map(|_| {
                        (
                            format!("k{}", random_text(rng)),
                            random_value(rng, depth - 1),
                        )
                    })
                    .collect(),
            ),
        }
    }

    /// Whitespace of every kind between tokens (never inside strings).
    fn loosen(compact: &str, rng: &mut Rng) -> String {
        let (mut out, mut in_string, mut escaped) = (String::new(), false, false);
        for c in compact.chars() {
            out.push(c);
            if in_string {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => in_string = false,
                    _ => {}
                }
            } else if c == '"' {
                in_string = true;
            } else {
                if matches!(c, '}' | ']' | ',' | ':') {
                    // Before the token too: pop it, pad, push it back.
                    out.pop();
                    out.push_str(pad(rng));
                    out.push(c);
                }
                if matches!(c, '{' | '[' | ',' | ':') {
                    out.push_str(pad(rng));
                }
            }
        }
        format!("{}{out}{}", pad(rng), pad(rng))
    }

    fn pad(rng: &mut Rng) -> &'static str {
        [" ", "\n", "\t ", "\r\n", ""][rng.below(5) as usize]
    }

    /// `text` with a few random edits of JSON-significant characters.
    fn mutate(text: &str, rng: &mut Rng) -> String {
        let pieces = [
            "\"",
            "\\",
            "{",
            "}",
            "[",
            "]",
            ":",
            ",",
            "0",
            "-",
            ".",
            "e",
            "a",
            " ",
            "\u{1}",
            "\\u00",
            "\\ud800",
            "\\udc00",
            "\\ud83d\\ude00",
            "tru",
            "nul",
            "1e5",
            "01",
            "1.",
        ];
        let mut chars: Vec<String> = text.chars().map(String::from).collect();
        for _ in 0..=rng.below(2) {
            let at = rng.below(chars.len() as u64 + 1) as usize;
            let piece = pieces[rng.below(pieces.len() as u64) as usize].to_owned();
            match rng.below(4) {
                0 if at < chars.len() => {
                    chars.remove(at);
                }
                1 if at < chars.len() => chars[at] = piece,
                2 => chars.truncate(at),
                _ => chars.insert(at, piece),
            }
        }
        chars.concat()
    }

    #[test]
    fn exactly_what_serde_json_accepts_as_an_object_parses() {
        let mut rng = Rng(0xbad);
        let (mut accepted, mut rejected) = (0, 0);
        for _ in 0..20_000 {
            let mut object = random_value(&mut rng, 3);
            if !object.is_object() {
                object = json!({ "v": object });
            }
            let text = mutate(&loosen(&object.to_string(), &mut rng), &mut rng);
            let ours = Doc::parse(text.clone());
            // Validity by serde_json's grammar alone (`IgnoredAny` values: numbers are
            // checked, not converted, so `1e999` is valid as JSON says it is)...
            let valid = serde_json::from_str::<
                std::collections::BTreeMap<String, serde::de::IgnoredAny>,
            >(&text);
            // ...less what Doc refuses on purpose: an empty key anywhere, and strings that
            // cannot be decoded (a lone half of a surrogate pair), each checked here
            // against serde_json's own tree.
            let tree = serde_json::from_str::<Json>(&text);
            let refused = match &ours {
                Err(NotAnObject {
                    reason: Rejection::EmptyKey,
                    ..
                }) => {
                    // Refused at the key, before the rest was read: invalid or not.
                    assert!(tree.as_ref().map_or(true, has_empty_key), "{text:?}");
                    true
                }
                Err(NotAnObject {
                    reason: Rejection::LoneSurrogate { .. },
                    ..
                }) => {
                    // What decoding the strings refuses, and serde_json's grammar does not.
                    assert!(tree.is_err(), "{text:?}");
                    true
                }
                _ => false,
            };
            assert_eq!(
                ours.is_ok(),
                valid.is_ok() && !refused,
                "{text:?}: ours {:?}, serde_json {:?}",
                ours.as_ref().err().map(|e| &e.reason),
                valid.as_ref().err()
            );
            let serde = serde_json::from_str::<serde_json::Map<String, Json>>(&text);
            if ours.is_err() {
                rejected += 1;
            } else if let (Ok(d), Ok(map)) = (&ours, &serde) {
                accepted += 1;
                let fields: Vec<(String, Json)> = d
                    .fields()
                    .map(|(k, n)| (k.to_owned(), n.to_value()))
                    .collect();
                let expected: Vec<(String, Json)> =
                    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                assert_eq!(fields, expected, "{text:?}");
            }
        }
        // Both kinds occur often enough for the comparison to mean something.
        assert!(
            accepted > 1000 && rejected > 1000,
            "{accepted} accepted, {rejected} rejected"
        );
    }

    fn has_empty_key(v: &Json) -> bool {
        match v {
            Json::Object(map) => map.iter().any(|(k, v)| k.is_empty() || has_empty_key(v)),
            Json::Array(items) => items.iter().any(has_empty_key),
            _ => false,
        }
    }

    #[test]
    fn random_objects_round_trip_to_what_serde_json_would_write() {
        let mut rng = Rng(0x5eed);
        for _ in 0..2000 {
            let mut object = random_value(&mut rng, 4);
            if !object.is_object() {
                object = json!({ "v": object });
            }
            let compact = object.to_string();
            let d = doc(&loosen(&compact, &mut rng));
            // Exactly the text, so floats keep every digit they were written with.
            assert_eq!(written(&d), compact);
            let reparsed: Json = serde_json::from_str(&compact).unwrap();
            for (key, node) in d.fields() {
                assert_eq!(node.to_value(), reparsed[key], "field {key:?}");
            }
        }
    }

    #[test]
    fn walking_valid_text_finds_what_serde_json_finds() {
        let mut rng = Rng(0x3a1c);
        for _ in 0..3000 {
            let text = loosen(&random_value(&mut rng, 4).to_string(), &mut rng);
            // Parsed back from the text, so both sides round floats the same way.
            let value: Json = serde_json::from_str(&text).unwrap();
            match &value {
                Json::Object(map) => {
                    let walked: Vec<(String, Json)> = Members::new(&text)
                        .map(|(k, v)| (k.into_owned(), serde_json::from_str(v).unwrap()))
                        .collect();
                    let expected: Vec<(String, Json)> =
                        map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                    assert_eq!(walked, expected, "{text:?}");
                    assert_eq!(Elements::new(&text).count(), 0);
                }
                Json::Array(items) => {
                    let walked: Vec<Json> = Elements::new(&text)
                        .map(|v| serde_json::from_str(v).unwrap())
                        .collect();
                    assert_eq!(&walked, items, "{text:?}");
                    assert_eq!(Members::new(&text).count(), 0);
                }
                _ => {
                    assert_eq!(Members::new(&text).count(), 0, "{text:?}");
                    assert_eq!(Elements::new(&text).count(), 0, "{text:?}");
                }
            }
        }
    }

    #[test]
    fn lookups_stay_right_as_fields_are_added_and_removed() {
        let mut d = doc(r#"{"a":0,"b":1}"#);
        for i in 0..100 {
            d.set(&format!("k{i}"), json!(i));
        }
        for i in (0..100).step_by(2) {
            d.remove(&format!("k{i}"));
        }
        d.remove("a");
        for i in 0..100 {
            let got = d.get(&format!("k{i}")).map(|n| n.to_value());
            assert_eq!(got, (i % 2 == 1).then(|| json!(i)), "k{i}");
        }
        assert!(d.get("a").is_none());
        assert_eq!(d.get("b").map(|n| n.to_value()), Some(json!(1)));
        assert_eq!(d.fields().count(), 51);
    }

    #[test]
    fn only_objects_of_valid_json_parse() {
        for bad in [
            "[1]",
            "\"s\"",
            "3",
            "null",
            "{\"a\":",
            "{\"a\":1} x",
            "{\"a\":tru}",
        ] {
            assert!(Doc::parse(bad.into()).is_err(), "{bad}");
        }
    }

    fn nested(levels: usize) -> String {
        format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn events_nesting_past_the_limit_are_refused_and_at_the_limit_accepted() {
        // The event is level 1, so a field may nest limit - 1 levels.
        let at_limit = format!(r#"{{"ok":"x","deep":{}}}"#, nested(127));
        assert!(Doc::parse(at_limit).is_ok());
        let over = format!(r#"{{"ok":"x","deep":{}}}"#, nested(128));
        let err = Doc::parse(over.clone()).unwrap_err();
        assert!(
            matches!(err.reason, Rejection::TooDeep { limit: 128 }),
            "{err}"
        );
        assert_eq!(err.text, over, "the text is given back for the dead letter");
        // 20,000 levels (what once overflowed a worker's stack) are refused the same way.
        let huge = format!(r#"{{"deep":{}}}"#, nested(20_000));
        assert!(matches!(
            Doc::parse(huge).unwrap_err().reason,
            Rejection::TooDeep { .. }
        ));
        // Brackets inside strings are not nesting.
        let strings = format!(r#"{{"s":"{}"}}"#, "[".repeat(500));
        assert!(Doc::parse(strings).is_ok());
        assert!(Doc::parse_limited(r#"{"a":[[1]]}"#.into(), 3).is_ok());
        assert!(Doc::parse_limited(r#"{"a":[[1]]}"#.into(), 2).is_err());
    }

    #[test]
    fn fields_deeper_than_serde_jsons_own_limit_are_edited_not_turned_into_strings() {
        // 300 levels under a limit of 400: serde_json alone stops at 128, and the old
        // fallback turned such a field into one string, so removing a key inside it
        // silently did nothing.
        let text = format!(r#"{{"ctx":{{"password":"p","deep":{}}}}}"#, nested(300));
        let mut d = Doc::parse_limited(text, 400).unwrap();
        let ctx = d.tree_mut("ctx").unwrap().unwrap();
        assert!(
            ctx.is_object(),
            "parsed as an object, not a string: {ctx:?}"
        );
        ctx.as_object_mut().unwrap().shift_remove("password");
        let out = written(&d);
        assert!(!out.contains("password"), "{}", &out[..60]);
        assert!(out.starts_with(r#"{"ctx":{"deep":[[["#));
    }

    #[test]
    fn empty_keys_and_lone_surrogates_are_refused_and_pairs_accepted() {
        for text in [
            r#"{"":1}"#,
            r#"{"a":{"":{"password":"p"}}}"#,
            r#"{"a":[{"" :1}]}"#,
        ] {
            let err = Doc::parse(text.into()).unwrap_err();
            assert!(matches!(err.reason, Rejection::EmptyKey), "{text}: {err}");
        }
        assert!(Doc::parse(r#"{"a":"","b":[""]}"#.into()).is_ok());
        let err = Doc::parse(r#"{"a":"x\udc00"}"#.into()).unwrap_err();
        assert!(
            matches!(err.reason, Rejection::LoneSurrogate { at: 7 }),
            "{err}"
        );
        assert!(Doc::parse(r#"{"a":{"b":"\ud83d"}}"#.into()).is_err());
        let pair = doc(r#"{"a":"\ud83d\ude00"}"#);
        assert_eq!(pair.get("a").and_then(Node::as_str).as_deref(), Some("😀"));
    }

    #[test]
    fn a_field_too_large_to_parse_for_an_edit_is_refused_not_skipped() {
        let big = format!(r#"{{"a":[{}{{"token":"t"}}]}}"#, "0,".repeat(40_000));
        let mut d = doc(&big);
        let err = d.tree_mut("a").unwrap_err().to_string();
        assert!(
            err.starts_with("the field is 80015 bytes, over the 65536"),
            "{err}"
        );
        assert!(d.tree_mut("missing").unwrap().is_none());
    }

    #[test]
    fn a_repeated_key_keeps_its_first_place_and_last_value() {
        let d = doc(r#"{"a":1,"b":2,"a":3}"#);
        assert_eq!(written(&d), r#"{"a":3,"b":2}"#);
    }

    #[test]
    fn lookups_reach_into_nested_text_and_trees() {
        let mut d = doc(r#"{"ctx":{"ip":"1.2.3.4","list":[{"k":"v"}]},"s":"a\nb"}"#);
        let path = |p: &str| Path::parse(p).unwrap();
        let text = |n: Option<Node<'_>>| n.and_then(Node::as_str).map(Cow::into_owned);
        assert_eq!(text(d.lookup(&path("ctx.ip"))).as_deref(), Some("1.2.3.4"));
        assert_eq!(text(d.lookup(&path("ctx.list.0.k"))).as_deref(), Some("v"));
        assert_eq!(text(d.lookup(&path("s"))).as_deref(), Some("a\nb"));
        assert!(d.lookup(&path("ctx.nope")).is_none());
        assert!(d.lookup(&path("s.x")).is_none());
        if let Ok(Some(Json::Object(ctx))) = d.tree_mut("ctx") {
            ctx.insert("ip".into(), json!("5.6.7.8"));
        }
        assert_eq!(text(d.lookup(&path("ctx.ip"))).as_deref(), Some("5.6.7.8"));
    }

    #[test]
    fn edits_replace_in_place_append_and_remove_keeping_order() {
        let mut d = doc(r#"{"a":1,"b":2,"c":3}"#);
        d.set("b", json!("two"));
        d.set("z", json!([1]));
        d.remove("a");
        d.tree_or_insert("tags", || json!([]))
            .unwrap()
            .as_array_mut()
            .unwrap()
            .push(json!("t"));
        assert_eq!(written(&d), r#"{"b":"two","c":3,"z":[1],"tags":["t"]}"#);
        assert_eq!(d.text(), r#"{"a":1,"b":2,"c":3}"#, "the original is kept");
        assert_eq!(d.to_value(), json!({"b":"two","c":3,"z":[1],"tags":["t"]}));
    }
}
