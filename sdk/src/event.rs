//! The per-event view a plugin works with.

use weir_wire::hash::{fnv1a, fnv1a_step, FNV_OFFSET};
use weir_wire::{Edit, EventFields, ReplyWriter, Value};

/// One event, as this plugin sees it: the fields it declared, plus its own edits.
///
/// Reads see the plugin's own earlier writes to the same path in this event.
/// Edits reach the host's copy of the event after the batch, and the next plugin sees them.
pub struct Event<'e> {
    reads: &'e Reads,
    finds_keys: bool,
    fields: &'e EventFields<'e>,
    reply: &'e mut ReplyWriter,
    mark: usize,
    /// A one-word Bloom filter of the paths set or removed in this event, so reading a
    /// path that was never edited does not re-decode the edits.
    edited: u64,
}

/// A path's hash (FNV-1a), and the filter bits of its parents (`a` and `a.b` for `a.b.c`),
/// from one pass: FNV's running state at each `.` is the hash of the parent before it.
fn path_hash(path: &[u8]) -> (u64, u64) {
    let (mut hash, mut parents) = (FNV_OFFSET, 0u64);
    for &b in path {
        if b == b'.' {
            parents |= bit(hash);
        }
        hash = fnv1a_step(hash, b);
    }
    (hash, parents)
}

/// A hash's bit in the one-word Bloom filter of edited paths.
fn bit(hash: u64) -> u64 {
    1 << (hash & 63)
}

/// The filter bit of a path.
fn path_bit(path: &[u8]) -> u64 {
    bit(fnv1a(path))
}

/// The paths a plugin declared. Finding a read compares lengths, then the bytes of the
/// one declared path of that length a word at a time: in wasm, hashing a path byte by
/// byte or calling `memcmp` (which `==` on strings becomes) costs more than the lookup.
pub(crate) struct Reads {
    names: Vec<String>,
}

impl Reads {
    pub(crate) fn new(names: Vec<String>) -> Self {
        Reads { names }
    }

    pub(crate) fn names(&self) -> &[String] {
        &self.names
    }

    fn position(&self, path: &str) -> Option<usize> {
        let path = path.as_bytes();
        self.names
            .iter()
            .position(|name| name.len() == path.len() && same_bytes(name.as_bytes(), path))
    }
}

/// Whether two slices of equal length hold the same bytes, compared eight at a time
/// inline (see [`Reads`]).
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let (mut wa, mut wb) = (a.chunks_exact(8), b.chunks_exact(8));
    for (x, y) in (&mut wa).zip(&mut wb) {
        if word(x) != word(y) {
            return false;
        }
    }
    let (ta, tb) = (wa.remainder(), wb.remainder());
    ta.len() == tb.len() && (0..ta.len()).all(|i| ta[i] == tb[i])
}

/// Eight bytes as one word.
#[inline]
fn word(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes.try_into().unwrap_or([0; 8]))
}

impl<'e> Event<'e> {
    pub(crate) fn new(
        reads: &'e Reads,
        finds_keys: bool,
        fields: &'e EventFields<'e>,
        reply: &'e mut ReplyWriter,
    ) -> Self {
        let mark = reply.mark();
        Event {
            reads,
            finds_keys,
            fields,
            reply,
            mark,
            edited: 0,
        }
    }

    /// The value at a declared `path`, or a key found by [`Fields::find_key`](crate::Fields::find_key);
    /// `None` when the event has no such field.
    ///
    /// # Panics
    /// In native tests only, when `path` was not declared and the plugin finds no keys:
    /// on wasm it is simply `None`.
    pub fn get(&self, path: &str) -> Option<Value<'_>> {
        if self.edited != 0 {
            // The path itself or any parent of it may have been edited.
            let (hash, parents) = path_hash(path.as_bytes());
            if self.edited & (bit(hash) | parents) != 0 {
                if let Some(own) = self.own_write(path) {
                    return own;
                }
            }
        }
        if let Some(i) = self.reads.position(path) {
            return self.fields.slots.get(i).copied().flatten();
        }
        if let Some((_, v)) = self
            .fields
            .found
            .iter()
            .find(|(p, _)| p.len() == path.len() && same_bytes(p.as_bytes(), path.as_bytes()))
        {
            return Some(*v);
        }
        if cfg!(not(target_arch = "wasm32")) && !self.finds_keys {
            panic!(
                "the plugin read `{path}` but did not declare it in `fields()`; declared: {:?}",
                self.reads.names()
            );
        }
        None
    }

    /// The text of a string field.
    pub fn get_str(&self, path: &str) -> Option<&str> {
        self.get(path).and_then(|v| v.as_str())
    }

    /// A numeric field as `f64`.
    pub fn get_f64(&self, path: &str) -> Option<f64> {
        self.get(path).and_then(|v| v.as_f64())
    }

    /// Whether the field is present (even if `null`).
    pub fn has(&self, path: &str) -> bool {
        self.get(path).is_some()
    }

    /// Sets a field, creating parent objects as needed.
    pub fn set<'v>(&mut self, path: &str, value: impl Into<Value<'v>>) {
        self.edited |= path_bit(path.as_bytes());
        self.reply.set(path, value.into());
    }

    /// Sets a field to an object or array given as JSON text (the host parses it; invalid
    /// JSON sends the event to the dead-letter output).
    pub fn set_json(&mut self, path: &str, json: &str) {
        self.edited |= path_bit(path.as_bytes());
        self.reply.set(path, Value::Json(json));
    }

    /// Removes a field, if present.
    pub fn remove(&mut self, path: &str) {
        self.edited |= path_bit(path.as_bytes());
        self.reply.remove(path);
    }

    /// Adds a tag to the event's `tags` list (once), as Logstash's `tag_on_failure` does.
    pub fn tag(&mut self, tag: &str) {
        self.reply.tag(tag);
    }

    /// Every key found by [`Fields::find_key`](crate::Fields::find_key): `(path, value)`.
    pub fn found(&self) -> impl Iterator<Item = (&str, Value<'_>)> {
        self.fields.found.iter().map(|(p, v)| (*p, *v))
    }

    /// The plugin's own last write to `path` in this event: `Some(Some(v))` set,
    /// `Some(None)` removed (or an ancestor removed or replaced), `None` untouched.
    fn own_write(&self, path: &str) -> Option<Option<Value<'_>>> {
        let under = |parent: &str| {
            path.len() > parent.len()
                && path.starts_with(parent)
                && path.as_bytes()[parent.len()] == b'.'
        };
        let mut last = None;
        for edit in self.reply.edits_since(self.mark) {
            match edit {
                Edit::Set(p, v) if p == path => last = Some(Some(v)),
                Edit::Set(p, _) | Edit::Remove(p) if p == path || under(p) => last = Some(None),
                _ => {}
            }
        }
        last
    }
}

#[cfg(test)]
mod tests {
    use weir_wire::{BatchReader, BatchWriter, EventFields, ReplyWriter, Value};

    use super::{Event, Reads};

    /// Runs `f` on an event whose declared `reads` hold the given values.
    fn with_event(reads: &[&str], values: &[Value<'_>], f: impl FnOnce(&mut Event<'_>)) {
        let names = Reads::new(reads.iter().map(|s| s.to_string()).collect());
        let mut w = BatchWriter::new(reads.len());
        for v in values {
            w.slot(Some(*v));
        }
        w.begin_found();
        w.end_event();
        let mut r = BatchReader::new(w.as_bytes()).unwrap();
        let mut fields = EventFields::default();
        assert!(r.next_event(&mut fields).unwrap());
        let mut reply = ReplyWriter::default();
        let mut event = Event::new(&names, false, &fields, &mut reply);
        f(&mut event);
    }

    #[test]
    fn same_bytes_compares_every_byte_of_any_length() {
        for len in 0..=20 {
            let a: Vec<u8> = (0..len as u8).map(|i| b'a' + i).collect();
            assert!(super::same_bytes(&a, &a.clone()), "length {len}");
            for at in 0..len {
                let mut b = a.clone();
                b[at] ^= 0x20;
                assert!(
                    !super::same_bytes(&a, &b),
                    "length {len}, differing at {at}"
                );
            }
        }
    }

    #[test]
    fn reads_see_own_writes_and_removals_of_parents() {
        with_event(
            &["level", "geo.city", "path"],
            &[Value::Str("warn"), Value::Str("Rome"), Value::Str("/x")],
            |e| {
                assert_eq!(e.get_str("level"), Some("warn"));
                e.set("level", "WARNING");
                assert_eq!(e.get_str("level"), Some("WARNING"));
                assert_eq!(
                    e.get_str("path"),
                    Some("/x"),
                    "untouched paths read the batch"
                );
                e.remove("geo");
                assert_eq!(
                    e.get("geo.city"),
                    None,
                    "removing a parent removes the child"
                );
                e.set("path", "/y");
                e.remove("path");
                assert_eq!(e.get("path"), None, "the last edit wins");
            },
        );
    }
}
