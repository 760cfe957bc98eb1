//! What one worker does with a chunk of raw lines: decode, chain, encode. Encoding
//! (NDJSON lines or `_bulk` actions with their index names) happens here, on every core,
//! not in the sink.

use crate::engine::{Chain, TraceEntry};
use crate::event::{decode, DeadLetter, Stage};
use crate::sink::elasticsearch::BulkDoc;
use crate::sink::{encode, Encoding};
use crate::source::Record;

/// One chunk's results, ready for the writer.
#[derive(Debug, Default)]
pub struct WorkerOutput {
    /// Encoded output events (NDJSON), for [`Encoding::Lines`].
    pub events: Vec<u8>,
    /// `_bulk` documents, for [`Encoding::Bulk`].
    pub docs: Vec<BulkDoc>,
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
    encoding: &Encoding,
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
    for event in &events {
        if let Some(route) = &event.route {
            match out.routes.iter_mut().find(|(r, _)| r == route) {
                Some((_, n)) => *n += 1,
                None => out.routes.push((route.clone(), 1)),
            }
        }
    }
    let mut sent = 0;
    match encoding {
        Encoding::Lines { route_field } => {
            out.events.reserve(events.len() * 512);
            for event in &mut events {
                encode(event, route_field.as_deref(), &mut out.events);
            }
            sent = events.len();
        }
        Encoding::Bulk(bulk) => {
            out.docs.reserve(events.len());
            let now = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now());
            for event in events {
                match bulk.encode(event, now) {
                    Ok(doc) => {
                        out.docs.push(doc);
                        sent += 1;
                    }
                    Err(dl) => dead.push(dl),
                }
            }
        }
    }
    for dl in &dead {
        dl.write_json_line(&mut out.dead);
    }
    out.sent = sent as u64;
    out.dead_lettered = dead.len() as u64;
    out
}
