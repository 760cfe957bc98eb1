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

/// A whole reply, decoded and checked before any of it is applied, so a malformed reply
/// never leaves a batch half-edited. Decoding once serves both the check and the apply.
#[derive(Debug, Default)]
pub struct Decisions<'a> {
    edits: Vec<Edit<'a>>,
    /// Each event's outcome and the end of its edits in `edits`.
    events: Vec<(Outcome<'a>, usize)>,
}

impl<'a> Decisions<'a> {
    /// Decodes the reply to a batch of `expected` events.
    pub fn decode(buf: &'a [u8], expected: usize) -> Result<Self, WireError> {
        let mut cur = Cursor::new(buf);
        let mut decisions = Decisions {
            edits: Vec::with_capacity(expected * 4),
            events: Vec::with_capacity(expected),
        };
        while let Some(op) = read_op(&mut cur)? {
            match op {
                Op::Edit(e) => decisions.edits.push(e),
                Op::Outcome(o) => decisions.events.push((o, decisions.edits.len())),
            }
        }
        let trailing_edits = decisions.edits.len() > decisions.events.last().map_or(0, |e| e.1);
        if decisions.events.len() != expected || trailing_edits {
            return Err(WireError::DecisionCount {
                found: decisions.events.len() + usize::from(trailing_edits),
                expected,
            });
        }
        Ok(decisions)
    }

    /// Each event's outcome and edits, in batch order.
    pub fn iter(&self) -> impl Iterator<Item = (Outcome<'a>, &[Edit<'a>])> + '_ {
        let mut start = 0;
        self.events.iter().map(move |&(outcome, end)| {
            let edits = &self.edits[start..end];
            start = end;
            (outcome, edits)
        })
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

        let decisions = Decisions::decode(&bytes, 3).unwrap();
        let events: Vec<_> = decisions.iter().collect();
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].0, Outcome::Route("payments"));
        assert_eq!(events[0].1.len(), 2);
        assert_eq!(
            events[1],
            (Outcome::Fail("no service"), &[Edit::Tag("bad_level")][..])
        );
        assert_eq!(events[2], (Outcome::Drop, &[][..]));
    }

    #[test]
    fn too_few_or_too_many_decisions_are_errors() {
        let mut w = ReplyWriter::default();
        w.outcome(Outcome::Keep);
        w.tag("orphan");
        let bytes = w.into_bytes();
        assert_eq!(
            Decisions::decode(&bytes, 3).err(),
            Some(WireError::DecisionCount {
                found: 2,
                expected: 3
            }),
            "an edit after the last decision counts as an unfinished one"
        );
        assert!(Decisions::decode(&bytes, 1).is_err());
    }
}
