//! What one worker does with a chunk of raw lines: decode, chain, encode.

use crate::engine::{Chain, TraceEntry};
use crate::event::{decode, DeadLetter, Stage};
use crate::sink::encode;
use crate::source::Record;

/// One chunk's results, ready for the writer.
#[derive(Debug, Default)]
pub struct WorkerOutput {
    /// Encoded output events (NDJSON).
    pub events: Vec<u8>,
    /// Encoded dead-letter entries (NDJSON).
    pub dead: Vec<u8>,
    /// Events read.
    pub received: u64,
    /// Events written.
    pub sent: u64,
    /// Events dead-lettered.
    pub dead_lettered: u64,
    /// Events written, per route target.
    pub routes: Vec<(String, u64)>,
}

/// Decodes `records`, runs them through `chain` and encodes the survivors and the failures.
pub fn process_records(
    chain: &mut Chain,
    records: Vec<Record>,
    max_event_bytes: usize,
    route_field: Option<&str>,
    trace: Option<&mut Vec<TraceEntry>>,
) -> WorkerOutput {
    let mut out = WorkerOutput {
        received: records.len() as u64,
        ..WorkerOutput::default()
    };
    let mut events = Vec::with_capacity(records.len());
    let mut dead = Vec::new();
    for record in records {
        if record.bad_utf8 {
            dead.push(DeadLetter {
                raw: record.text,
                reason: "line is not valid UTF-8 (shown with replacement characters)".into(),
                stage: Stage::Decode,
                origin: record.origin,
            });
            continue;
        }
        match decode(record.text, record.origin, max_event_bytes) {
            Ok(event) => events.push(event),
            Err(dl) => dead.push(dl),
        }
    }
    chain.run(&mut events, &mut dead, trace);
    out.events.reserve(events.len() * 512);
    for event in &mut events {
        if let Some(route) = &event.route {
            match out.routes.iter_mut().find(|(r, _)| r == route) {
                Some((_, n)) => *n += 1,
                None => out.routes.push((route.clone(), 1)),
            }
        }
        encode(event, route_field, &mut out.events);
    }
    for dl in &dead {
        dl.write_json_line(&mut out.dead);
    }
    out.sent = events.len() as u64;
    out.dead_lettered = dead.len() as u64;
    out
}
