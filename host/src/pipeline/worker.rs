//! What one worker does with a chunk of raw lines: decode, chain, encode. Encoding
//! (NDJSON lines or `_bulk` actions with their index names) happens here, on every core,
//! not in the sink.

use crate::engine::{Chain, TraceEntry};
use crate::event::{decode, DeadLetter, Event, EventLimits, Stage};
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
    limits: &EventLimits,
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
        match decode(record.text, record.origin, limits) {
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
    let max = limits.max_output_bytes;
    match encoding {
        Encoding::Lines { route_field } => {
            out.events.reserve(events.len() * 512);
            for mut event in events {
                let start = out.events.len();
                encode(&mut event, route_field.as_deref(), &mut out.events);
                let size = out.events.len() - start - 1;
                if size > max {
                    out.events.truncate(start);
                    dead.push(too_large(event, size, max));
                } else {
                    sent += 1;
                }
            }
        }
        Encoding::Bulk(bulk) => {
            out.docs.reserve(events.len());
            let now = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now());
            for event in events {
                match bulk.encode(event, now) {
                    // The action line is small next to the document; it counts too.
                    Ok(doc) if doc.lines.len() > max => dead.push(DeadLetter {
                        reason: output_too_large(doc.lines.len(), max).into(),
                        raw: doc.raw,
                        stage: Stage::Sink,
                        origin: doc.origin,
                    }),
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
    out.sent = sent;
    out.dead_lettered = dead.len() as u64;
    out
}

/// Why an event the chain made too large is not written.
fn output_too_large(size: usize, max: usize) -> String {
    format!("event is {size} bytes after the chain, over the output limit of {max} (pipeline.max_output_bytes)")
}

fn too_large(event: Event, size: usize, max: usize) -> DeadLetter {
    DeadLetter {
        raw: event.doc.into_text(),
        reason: output_too_large(size, max).into(),
        stage: Stage::Sink,
        origin: event.origin,
    }
}
