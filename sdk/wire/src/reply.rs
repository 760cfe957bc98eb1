//! The reply buffer: a plugin's decision and edits for every event of a batch.

use crate::cursor::{put_str, Cursor};
use crate::{Value, WireError};

const SET: u8 = 1;
const REMOVE: u8 = 2;
const TAG: u8 = 3;
const KEEP: u8 = 16;
const DROP: u8 = 17;
const ROUTE: u8 = 18;
const FAIL: u8 = 19;

/// What happens to one event after a plugin has seen it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    /// The event continues down the chain, with the plugin's edits applied.
    Keep,
    /// The event is discarded on purpose; it counts as handled.
    Drop,
    /// The event continues with its edits and this route target (e.g. an index suffix).
    /// A later plugin's route replaces an earlier one.
    Route(&'a str),
    /// The event cannot be processed; it goes to the dead-letter output with this reason.
    Fail(&'a str),
}

/// One change a plugin made to an event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Edit<'a> {
    /// Sets the field at the path, creating parent objects as needed.
    Set(&'a str, Value<'a>),
    /// Removes the field at the path, if present.
    Remove(&'a str),
    /// Adds a tag to the event's `tags` array, once.
    Tag(&'a str),
}

/// Writes a reply, event by event (the plugin's side).
#[derive(Debug, Default)]
pub struct ReplyWriter {
    buf: Vec<u8>,
}

impl ReplyWriter {
    /// An empty reply with room for about `events` decisions.
    pub fn with_capacity(events: usize) -> Self {
        ReplyWriter {
            buf: Vec::with_capacity(events * 2 + 64),
        }
    }

    /// Byte offset where the current event's edits start; see [`edits_since`](Self::edits_since).
    pub fn mark(&self) -> usize {
        self.buf.len()
    }

    /// Records [`Edit::Set`].
    pub fn set(&mut self, path: &str, value: Value<'_>) {
        self.buf.push(SET);
        put_str(&mut self.buf, path);
        value.write(&mut self.buf);
    }

    /// Records [`Edit::Remove`].
    pub fn remove(&mut self, path: &str) {
        self.buf.push(REMOVE);
        put_str(&mut self.buf, path);
    }

    /// Records [`Edit::Tag`].
    pub fn tag(&mut self, tag: &str) {
        self.buf.push(TAG);
        put_str(&mut self.buf, tag);
    }

    /// Ends the current event with its outcome.
    pub fn outcome(&mut self, outcome: Outcome<'_>) {
        match outcome {
            Outcome::Keep => self.buf.push(KEEP),
            Outcome::Drop => self.buf.push(DROP),
            Outcome::Route(target) => {
                self.buf.push(ROUTE);
                put_str(&mut self.buf, target);
            }
            Outcome::Fail(reason) => {
                self.buf.push(FAIL);
                put_str(&mut self.buf, reason);
            }
        }
    }

    /// The edits written since `mark`, in order: how a plugin reads its own writes.
    pub fn edits_since(&self, mark: usize) -> impl Iterator<Item = Edit<'_>> {
        let mut cur = Cursor::new(self.buf.get(mark..).unwrap_or_default());
        std::iter::from_fn(move || match read_op(&mut cur) {
            Ok(Some(Op::Edit(e))) => Some(e),
            _ => None,
        })
    }

    /// The finished buffer.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

enum Op<'a> {
    Edit(Edit<'a>),
    Outcome(Outcome<'a>),
}

fn read_op<'a>(cur: &mut Cursor<'a>) -> Result<Option<Op<'a>>, WireError> {
    if cur.is_empty() {
        return Ok(None);
    }
    let at = cur.pos();
    Ok(Some(match cur.u8("reply opcode")? {
        SET => Op::Edit(Edit::Set(cur.str("set path")?, Value::read_present(cur)?)),
        REMOVE => Op::Edit(Edit::Remove(cur.str("remove path")?)),
        TAG => Op::Edit(Edit::Tag(cur.str("tag")?)),
        KEEP => Op::Outcome(Outcome::Keep),
        DROP => Op::Outcome(Outcome::Drop),
        ROUTE => Op::Outcome(Outcome::Route(cur.str("route target")?)),
        FAIL => Op::Outcome(Outcome::Fail(cur.str("failure reason")?)),
        tag => {
            return Err(WireError::UnknownTag {
                at,
                tag,
                what: "reply opcode",
            })
        }
    }))
}

/// One event's part of a reply.
#[derive(Debug)]
pub struct EventReply<'a> {
    /// The event's edits, in the order the plugin made them.
    pub edits: Vec<Edit<'a>>,
    /// The event's fate.
    pub outcome: Outcome<'a>,
}

/// Decodes a reply (the host's side), checking it answers every event exactly once.
pub struct ReplyReader<'a> {
    cur: Cursor<'a>,
    expected: usize,
    seen: usize,
}

impl<'a> ReplyReader<'a> {
    /// Prepares to read a reply to a batch of `expected` events.
    pub fn new(buf: &'a [u8], expected: usize) -> Self {
        ReplyReader {
            cur: Cursor::new(buf),
            expected,
            seen: 0,
        }
    }

    /// Decodes the next event's edits into `edits` (cleared first) and returns its outcome;
    /// `None` after the last event. A reply with too few or too many decisions is an error.
    pub fn next_event(
        &mut self,
        edits: &mut Vec<Edit<'a>>,
    ) -> Result<Option<Outcome<'a>>, WireError> {
        edits.clear();
        if self.seen == self.expected {
            if !self.cur.is_empty() {
                return Err(WireError::DecisionCount {
                    found: self.seen + 1,
                    expected: self.expected,
                });
            }
            return Ok(None);
        }
        loop {
            match read_op(&mut self.cur)? {
                Some(Op::Edit(e)) => edits.push(e),
                Some(Op::Outcome(o)) => {
                    self.seen += 1;
                    return Ok(Some(o));
                }
                None => {
                    return Err(WireError::DecisionCount {
                        found: self.seen,
                        expected: self.expected,
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_and_edits_round_trip() {
        let mut w = ReplyWriter::default();
        let mark = w.mark();
        w.set("level", Value::Str("WARNING"));
        w.remove("password");
        assert_eq!(
            w.edits_since(mark).collect::<Vec<_>>(),
            [
                Edit::Set("level", Value::Str("WARNING")),
                Edit::Remove("password")
            ]
        );
        w.outcome(Outcome::Route("payments"));
        w.tag("bad_level");
        w.outcome(Outcome::Fail("no service"));
        w.outcome(Outcome::Drop);
        let bytes = w.into_bytes();

        let mut r = ReplyReader::new(&bytes, 3);
        let mut edits = Vec::new();
        assert_eq!(
            r.next_event(&mut edits).unwrap(),
            Some(Outcome::Route("payments"))
        );
        assert_eq!(edits.len(), 2);
        assert_eq!(
            r.next_event(&mut edits).unwrap(),
            Some(Outcome::Fail("no service"))
        );
        assert_eq!(edits, [Edit::Tag("bad_level")]);
        assert_eq!(r.next_event(&mut edits).unwrap(), Some(Outcome::Drop));
        assert!(edits.is_empty());
        assert_eq!(r.next_event(&mut edits).unwrap(), None);
    }

    #[test]
    fn too_few_or_too_many_decisions_are_errors() {
        let mut w = ReplyWriter::default();
        w.outcome(Outcome::Keep);
        let bytes = w.into_bytes();
        let mut edits = Vec::new();

        let mut short = ReplyReader::new(&bytes, 2);
        assert!(short.next_event(&mut edits).unwrap().is_some());
        assert_eq!(
            short.next_event(&mut edits),
            Err(WireError::DecisionCount {
                found: 1,
                expected: 2
            })
        );

        let mut long = ReplyReader::new(&bytes, 0);
        assert!(long.next_event(&mut edits).is_err());
    }
}
