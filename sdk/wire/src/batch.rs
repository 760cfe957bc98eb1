//! The batch buffer: what the host sends a plugin.

use crate::cursor::{put_str, put_u32, Cursor};
use crate::value::{Value, ABSENT};
use crate::{WireError, LAYOUT_VERSION};

/// Builds a batch buffer, one event at a time (the host's side).
#[derive(Debug)]
pub struct BatchWriter {
    buf: Vec<u8>,
    events: u32,
    slots: u32,
    found_at: Option<(usize, u32)>,
}

const HEADER: usize = 9;

impl BatchWriter {
    /// Starts an empty batch whose events each carry `slots` declared fields.
    pub fn new(slots: usize) -> Self {
        let mut w = BatchWriter {
            buf: Vec::with_capacity(4096),
            events: 0,
            slots: slots as u32,
            found_at: None,
        };
        w.clear();
        w
    }

    /// Empties the batch, keeping its allocation for the next one.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.buf.push(LAYOUT_VERSION);
        put_u32(&mut self.buf, 0);
        put_u32(&mut self.buf, self.slots);
        self.events = 0;
        self.found_at = None;
    }

    /// Writes the next declared field of the current event (`None`: absent).
    pub fn slot(&mut self, value: Option<Value<'_>>) {
        match value {
            Some(v) => v.write(&mut self.buf),
            None => self.buf.push(ABSENT),
        }
    }

    /// Appends a field given as raw parts: the tag for an object or array value followed
    /// by JSON text that `write_json` appends to the buffer. Lets the host serialise a
    /// sub-tree straight into the batch without an intermediate string.
    pub fn slot_json(&mut self, write_json: impl FnOnce(&mut Vec<u8>)) {
        self.buf.push(Value::Json("").tag());
        let len_at = self.buf.len();
        put_u32(&mut self.buf, 0);
        write_json(&mut self.buf);
        let len = (self.buf.len() - len_at - 4) as u32;
        self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
    }

    /// Ends the current event's declared fields and opens its list of found keys.
    pub fn begin_found(&mut self) {
        self.found_at = Some((self.buf.len(), 0));
        put_u32(&mut self.buf, 0);
    }

    /// Adds a found key's path; its value follows through [`slot`](Self::slot) or
    /// [`slot_json`](Self::slot_json).
    pub fn found_path(&mut self, path: &str) {
        if let Some((_, n)) = self.found_at.as_mut() {
            *n += 1;
        }
        put_str(&mut self.buf, path);
    }

    /// Ends the current event.
    pub fn end_event(&mut self) {
        if let Some((at, n)) = self.found_at.take() {
            self.buf[at..at + 4].copy_from_slice(&n.to_le_bytes());
        }
        self.events += 1;
        self.buf[1..5].copy_from_slice(&self.events.to_le_bytes());
    }

    /// Events written so far.
    pub fn events(&self) -> usize {
        self.events as usize
    }

    /// The finished buffer.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }
}

/// One event's fields as the plugin sees them: the declared slots in manifest order, and
/// the keys found anywhere.
#[derive(Debug, Default)]
pub struct EventFields<'a> {
    /// One entry per declared path, in manifest order; `None` when absent.
    pub slots: Vec<Option<Value<'a>>>,
    /// `(path, value)` of every key matched by the manifest's `finds-keys`.
    pub found: Vec<(&'a str, Value<'a>)>,
}

/// Decodes a batch buffer event by event (the plugin's side).
pub struct BatchReader<'a> {
    cur: Cursor<'a>,
    remaining: u32,
    events: u32,
    slots: u32,
}

impl<'a> BatchReader<'a> {
    /// Checks the header and prepares to read the events.
    pub fn new(buf: &'a [u8]) -> Result<Self, WireError> {
        let mut cur = Cursor::new(buf);
        let version = cur.u8("layout version")?;
        if version != LAYOUT_VERSION {
            return Err(WireError::LayoutVersion {
                found: version,
                expected: LAYOUT_VERSION,
            });
        }
        let events = cur.u32("event count")?;
        let slots = cur.u32("slot count")?;
        debug_assert_eq!(cur.pos(), HEADER);
        Ok(BatchReader {
            cur,
            remaining: events,
            events,
            slots,
        })
    }

    /// Number of events in the batch.
    pub fn event_count(&self) -> usize {
        self.events as usize
    }

    /// Number of declared fields per event.
    pub fn slot_count(&self) -> usize {
        self.slots as usize
    }

    /// Decodes the next event into `into` (reusing its vectors); `false` after the last.
    pub fn next_event(&mut self, into: &mut EventFields<'a>) -> Result<bool, WireError> {
        if self.remaining == 0 {
            return Ok(false);
        }
        self.remaining -= 1;
        into.slots.clear();
        into.found.clear();
        for _ in 0..self.slots {
            into.slots.push(Value::read(&mut self.cur)?);
        }
        let found = self.cur.u32("found count")?;
        for _ in 0..found {
            let path = self.cur.str("found path")?;
            into.found.push((path, Value::read_present(&mut self.cur)?));
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_with_slots_and_found_keys() {
        let mut w = BatchWriter::new(2);
        w.slot(Some(Value::Str("ERROR")));
        w.slot(None);
        w.begin_found();
        w.found_path("context.password");
        w.slot(Some(Value::Str("hunter2")));
        w.end_event();
        w.slot(Some(Value::Int(7)));
        w.slot_json(|b| b.extend_from_slice(br#"{"a":1}"#));
        w.begin_found();
        w.end_event();

        let mut r = BatchReader::new(w.as_bytes()).unwrap();
        assert_eq!((r.event_count(), r.slot_count()), (2, 2));
        let mut ev = EventFields::default();
        assert!(r.next_event(&mut ev).unwrap());
        assert_eq!(ev.slots, [Some(Value::Str("ERROR")), None]);
        assert_eq!(ev.found, [("context.password", Value::Str("hunter2"))]);
        assert!(r.next_event(&mut ev).unwrap());
        assert_eq!(
            ev.slots,
            [Some(Value::Int(7)), Some(Value::Json(r#"{"a":1}"#))]
        );
        assert!(ev.found.is_empty());
        assert!(!r.next_event(&mut ev).unwrap());
    }

    #[test]
    fn wrong_layout_version_is_refused() {
        let mut w = BatchWriter::new(0);
        w.end_event();
        let mut bytes = w.as_bytes().to_vec();
        bytes[0] = 99;
        assert!(matches!(
            BatchReader::new(&bytes),
            Err(WireError::LayoutVersion { found: 99, .. })
        ));
    }
}
