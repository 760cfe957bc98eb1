//! The reply buffer: a plugin's decision and edits for every event of a batch.

use crate::cursor::{put_str, Cursor};
use crate::limits::{
    MAX_EDITS_PER_EVENT, MAX_EDITS_PER_REPLY, MAX_LABEL_BYTES, MAX_PATH_BYTES, MAX_TREE_BYTES,
};
use crate::{ReplyLimits, Value, WireError};

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
    /// Decodes the reply to a batch of `expected` events, checking every item against
    /// `limits` (and the fixed bounds in [`crate::limits`]) as it goes: a reply that
    /// breaks one is refused before the host has spent more than its size on it.
    pub fn decode(buf: &'a [u8], expected: usize, limits: &ReplyLimits) -> Result<Self, WireError> {
        let mut cur = Cursor::new(buf);
        let mut decisions = Decisions {
            edits: Vec::with_capacity(expected * 4),
            events: Vec::with_capacity(expected),
        };
        // Where the current event's edits start.
        let mut first_edit = 0;
        while let Some(op) = read_op(&mut cur)? {
            let event = decisions.events.len();
            match op {
                Op::Edit(e) => {
                    if decisions.edits.len() - first_edit >= MAX_EDITS_PER_EVENT {
                        return Err(over(event, "edits for one event", MAX_EDITS_PER_EVENT));
                    }
                    if decisions.edits.len() >= MAX_EDITS_PER_REPLY {
                        return Err(over(event, "edits in one reply", MAX_EDITS_PER_REPLY));
                    }
                    check_edit(&e, event, limits)?;
                    decisions.edits.push(e);
                }
                Op::Outcome(o) => {
                    if event == expected {
                        // One decision too many: stop here rather than read the rest.
                        return Err(over(
                            event,
                            "decisions (one per event of the batch)",
                            expected,
                        ));
                    }
                    if let Outcome::Route(target) = o {
                        check_len(target, event, "route target", MAX_LABEL_BYTES)?;
                    }
                    decisions.events.push((o, decisions.edits.len()));
                    first_edit = decisions.edits.len();
                }
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

fn over(event: usize, what: &'static str, limit: usize) -> WireError {
    WireError::OverLimit { event, what, limit }
}

fn check_len(text: &str, event: usize, what: &'static str, limit: usize) -> Result<(), WireError> {
    if text.len() > limit {
        return Err(over(event, what, limit));
    }
    Ok(())
}

/// Checks an edit's path and value against the limits: the nesting an edit can leave in
/// an event is its path's segments plus its value's own depth.
fn check_edit(edit: &Edit<'_>, event: usize, limits: &ReplyLimits) -> Result<(), WireError> {
    let (path, value) = match *edit {
        Edit::Set(path, value) => (path, Some(value)),
        Edit::Remove(path) => (path, None),
        Edit::Tag(tag) => return check_len(tag, event, "tag (bytes)", MAX_LABEL_BYTES),
    };
    check_len(path, event, "field path (bytes)", MAX_PATH_BYTES)?;
    let json = match value {
        Some(Value::Json(text)) => Some(text),
        _ => None,
    };
    if let Some(text) = json {
        check_len(text, event, "JSON value (bytes)", MAX_TREE_BYTES)?;
    }
    // A path of n bytes has at most n + 1 separators' worth of segments: short ones need
    // no counting (empty segments, as in `a..b`, are refused when the edit is applied).
    if json.is_none() && path.len() < limits.max_depth {
        return Ok(());
    }
    // An escaped `\.` counts as a separator too: the bound errs on the safe side.
    let segments = path.bytes().filter(|&b| b == b'.').count() + 1;
    let room = limits.max_depth.saturating_sub(segments);
    // The same check as decoding a log line's containers (short text is not walked).
    let scan = json.map(|text| crate::scan::check_container(text, room));
    if scan.is_some_and(|s| s.empty_key) {
        // No later plugin could name or remove such a field (found by fuzzing).
        return Err(WireError::EmptyKey { event });
    }
    let depth = scan.map_or(0, |s| s.depth);
    if segments > limits.max_depth || depth > room {
        return Err(over(
            event,
            "nesting of an edit (path segments plus the value's depth)",
            limits.max_depth,
        ));
    }
    Ok(())
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

        let decisions = Decisions::decode(&bytes, 3, &ReplyLimits::default()).unwrap();
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

    fn decode(w: ReplyWriter, events: usize) -> Result<(), WireError> {
        let bytes = w.into_bytes();
        Decisions::decode(&bytes, events, &ReplyLimits { max_depth: 8 }).map(|_| ())
    }

    #[test]
    fn replies_past_the_limits_are_refused_naming_the_event_and_the_limit() {
        let over = |w: ReplyWriter| decode(w, 2).unwrap_err().to_string();
        let mut w = ReplyWriter::default();
        w.outcome(Outcome::Keep);
        w.set(&["a"; 9].join("."), Value::Int(1));
        w.outcome(Outcome::Keep);
        assert_eq!(
            over(w),
            "event 1: nesting of an edit (path segments plus the value's depth) over the limit of 8"
        );
        // Segments and the value's depth add up: 5 + 4 > 8, but 5 + 3 fits.
        let mut w = ReplyWriter::default();
        w.set("a.b.c.d.e", Value::Json("[[[[1]]]]"));
        w.outcome(Outcome::Keep);
        w.outcome(Outcome::Keep);
        assert!(over(w).contains("nesting of an edit"));
        let mut w = ReplyWriter::default();
        w.set("a.b.c.d.e", Value::Json("[[[1]]]"));
        w.outcome(Outcome::Keep);
        w.outcome(Outcome::Keep);
        assert!(decode(w, 2).is_ok());
        let mut w = ReplyWriter::default();
        w.remove(&"x".repeat(MAX_PATH_BYTES + 1));
        w.outcome(Outcome::Keep);
        assert!(over(w).starts_with("event 0: field path (bytes) over the limit of 1024"));
        let mut w = ReplyWriter::default();
        let wide = format!("[{}0]", "0,".repeat(MAX_TREE_BYTES / 2));
        w.set("w", Value::Json(&wide));
        w.outcome(Outcome::Keep);
        assert!(over(w).contains("JSON value (bytes) over the limit of 65536"));
        let mut w = ReplyWriter::default();
        w.set("level", Value::Json(r#"{"":0}"#));
        w.outcome(Outcome::Keep);
        assert_eq!(over(w), "event 0: sets a JSON value with an empty key");
        let mut w = ReplyWriter::default();
        w.outcome(Outcome::Route(&"r".repeat(MAX_LABEL_BYTES + 1)));
        assert!(over(w).contains("route target over the limit of 256"));
        let mut w = ReplyWriter::default();
        for i in 0..=MAX_EDITS_PER_EVENT {
            w.tag(&i.to_string());
        }
        w.outcome(Outcome::Keep);
        assert!(over(w).contains("edits for one event over the limit of 1024"));
    }

    #[test]
    fn a_flood_of_decisions_is_refused_at_the_first_one_too_many() {
        let bytes = vec![KEEP; 10_000_000];
        assert_eq!(
            Decisions::decode(&bytes, 4, &ReplyLimits::default())
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some("event 4: decisions (one per event of the batch) over the limit of 4")
        );
    }

    #[test]
    fn too_few_or_too_many_decisions_are_errors() {
        let mut w = ReplyWriter::default();
        w.outcome(Outcome::Keep);
        w.tag("orphan");
        let bytes = w.into_bytes();
        assert_eq!(
            Decisions::decode(&bytes, 3, &ReplyLimits::default()).err(),
            Some(WireError::DecisionCount {
                found: 2,
                expected: 3
            }),
            "an edit after the last decision counts as an unfinished one"
        );
        assert!(Decisions::decode(&bytes, 1, &ReplyLimits::default()).is_err());
    }
}
