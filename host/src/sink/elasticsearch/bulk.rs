//! `_bulk` bodies and their per-item results. Every document is written with `create` and
//! an `_id` derived from where it came from, so a replay after a crash re-sends the same
//! ids and Elasticsearch answers 409 for documents it already has: counted as success,
//! never duplicated.

use chrono::{DateTime, Utc};
use weir_wire::doc::Doc;

use super::index::{event_time, IndexTemplate};
use crate::event::{DeadLetter, Event, Origin, Stage};

/// Appends one `create` action and its document to a bulk body.
pub fn push_create(body: &mut Vec<u8>, index: &str, id: &str, document: &Doc) {
    body.extend_from_slice(b"{\"create\":{\"_index\":");
    // Serialising a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *body, index);
    body.extend_from_slice(b",\"_id\":");
    let _ = serde_json::to_writer(&mut *body, id);
    body.extend_from_slice(b"}}\n");
    document.write_json(body);
    body.push(b'\n');
}

/// One event ready for `_bulk`: its action and source lines, and what a dead-letter
/// entry needs should Elasticsearch refuse it.
#[derive(Debug, Clone)]
pub struct BulkDoc {
    /// The `create` action line and the document line, each ending in `\n`.
    pub lines: Vec<u8>,
    /// The event as it arrived.
    pub raw: String,
    /// Where it came from.
    pub origin: Origin,
}

impl BulkDoc {
    /// The dead-letter entry for this document.
    pub fn dead_letter(&self, reason: String) -> DeadLetter {
        DeadLetter {
            raw: self.raw.clone(),
            reason: reason.into(),
            stage: Stage::Elasticsearch,
            origin: self.origin.clone(),
        }
    }
}

/// How workers turn events into `_bulk` documents: index name from the template, `_id`
/// from the origin.
#[derive(Debug, Clone)]
pub struct BulkEncoding {
    /// The index name template.
    pub template: IndexTemplate,
    /// Replaces a missing field or route in the index name.
    pub fallback: String,
}

impl BulkEncoding {
    /// Encodes one event; an index name that breaks Elasticsearch's rules dead-letters it.
    /// The date comes from `@timestamp`, else the Kafka record's timestamp, else `now`,
    /// so a replayed event lands in the same index as the first time.
    pub fn encode(&self, event: Event, now: DateTime<Utc>) -> Result<BulkDoc, DeadLetter> {
        let fallback_time = event
            .origin
            .timestamp_ms
            .and_then(DateTime::from_timestamp_millis)
            .unwrap_or(now);
        let at = event_time(&event.doc, fallback_time);
        let index =
            match self
                .template
                .render(&event.doc, event.route.as_deref(), at, &self.fallback)
            {
                Ok(index) => index,
                Err(e) => {
                    return Err(DeadLetter {
                        raw: event.doc.into_text(),
                        reason: e.to_string().into(),
                        stage: Stage::Elasticsearch,
                        origin: event.origin,
                    })
                }
            };
        let mut lines = Vec::with_capacity(event.doc.text().len() + 256);
        push_create(&mut lines, &index, &event.origin.document_id(), &event.doc);
        Ok(BulkDoc {
            lines,
            raw: event.doc.into_text(),
            origin: event.origin,
        })
    }
}

/// What became of one document of a bulk request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemOutcome {
    /// Written.
    Created,
    /// Already there (409 on `create`): a replay; success.
    AlreadyExists,
    /// 429 or 5xx: send this item again later.
    Retry {
        /// The item's status.
        status: u16,
        /// Elasticsearch's reason.
        reason: String,
    },
    /// Any other 4xx (mapping conflict, parse error): dead-letter with the reason.
    Rejected {
        /// The item's status.
        status: u16,
        /// Elasticsearch's error type and reason.
        reason: String,
    },
}

/// Why a bulk response could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BulkError {
    /// Not JSON, or not a bulk response.
    #[error("malformed _bulk response: {0}")]
    Malformed(String),
    /// A different number of items than documents sent.
    #[error("_bulk response has {found} items for {sent} documents")]
    Count {
        /// Items in the response.
        found: usize,
        /// Documents sent.
        sent: usize,
    },
}

/// The parts of a `_bulk` response Weir reads; everything else (shards, sequence numbers,
/// versions: most of the bytes) is skipped without being built.
#[derive(serde::Deserialize)]
struct BulkResponse {
    items: Vec<Item>,
}

/// One item: `{"create": {...}}` (or `index`, `update`, `delete` for other actions).
#[derive(serde::Deserialize)]
struct Item {
    #[serde(alias = "index", alias = "update", alias = "delete")]
    create: ItemResult,
}

#[derive(serde::Deserialize)]
struct ItemResult {
    #[serde(default)]
    status: u16,
    #[serde(default)]
    error: Option<ItemError>,
}

#[derive(serde::Deserialize)]
struct ItemError {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    /// What lies under a generic reason: a duplicate key, say, is
    /// `mapper_parsing_exception: failed to parse`, and only this names the key.
    #[serde(default)]
    caused_by: Option<Box<ItemError>>,
}

impl ItemError {
    /// `type: reason`, then each `caused_by` in turn: at most [`MAX_CAUSES`] of them
    /// (serde_json's own depth limit bounds the parse), the whole cut to the bound on
    /// every dead-letter reason.
    fn describe(&self) -> String {
        let mut text = format!(
            "{}: {}",
            self.kind.as_deref().unwrap_or("error"),
            self.reason.as_deref().unwrap_or("no reason given")
        );
        let mut cause = self.caused_by.as_deref();
        for _ in 0..MAX_CAUSES {
            let Some(c) = cause else { break };
            text += &format!(
                " (caused by {}: {})",
                c.kind.as_deref().unwrap_or("error"),
                c.reason.as_deref().unwrap_or("no reason given")
            );
            cause = c.caused_by.as_deref();
        }
        weir_wire::limits::truncate_reason(&text, weir_wire::limits::MAX_REASON_BYTES).into_owned()
    }
}

/// How many `caused_by` levels a reason names; Elasticsearch nests two or three.
const MAX_CAUSES: usize = 8;

/// Reads a `_bulk` response to a request of `sent` documents, item by item, in order.
pub fn parse_response(body: &[u8], sent: usize) -> Result<Vec<ItemOutcome>, BulkError> {
    let response: BulkResponse =
        serde_json::from_slice(body).map_err(|e| BulkError::Malformed(e.to_string()))?;
    if response.items.len() != sent {
        return Err(BulkError::Count {
            found: response.items.len(),
            sent,
        });
    }
    Ok(response
        .items
        .into_iter()
        .map(|i| outcome(i.create))
        .collect())
}

fn outcome(result: ItemResult) -> ItemOutcome {
    let status = result.status;
    let reason = || {
        result
            .error
            .as_ref()
            .map_or_else(|| "error: no reason given".to_owned(), ItemError::describe)
    };
    match status {
        200..=299 => ItemOutcome::Created,
        409 => ItemOutcome::AlreadyExists,
        429 | 500..=599 => ItemOutcome::Retry {
            status,
            reason: reason(),
        },
        _ => ItemOutcome::Rejected {
            status,
            reason: reason(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kafka_event(body: serde_json::Value, timestamp_ms: Option<i64>) -> Event {
        Event {
            doc: Doc::parse(body.to_string()).unwrap(),
            route: Some("hot".into()),
            origin: Origin {
                source: "python-logs".into(),
                partition: Some(3),
                position: 42,
                timestamp_ms,
            },
        }
    }

    #[test]
    fn bodies_are_create_actions_with_source_ids() {
        let encoding = BulkEncoding {
            template: IndexTemplate::parse("logs-{service}-{route}-%Y.%m.%d").unwrap(),
            fallback: "unknown".into(),
        };
        let now = DateTime::from_timestamp_millis(1_800_000_000_000).unwrap();
        let event = kafka_event(
            json!({"level": "INFO", "service": "API", "@timestamp": "2025-01-15T10:00:00Z"}),
            None,
        );
        let doc = encoding.encode(event, now).unwrap();
        let text = String::from_utf8(doc.lines).unwrap();
        assert_eq!(text, "{\"create\":{\"_index\":\"logs-api-hot-2025.01.15\",\"_id\":\"python-logs-3-42\"}}\n{\"level\":\"INFO\",\"service\":\"API\",\"@timestamp\":\"2025-01-15T10:00:00Z\"}\n");
        // No @timestamp: the Kafka record's time decides, not the wall clock.
        let replayed = kafka_event(json!({"service": "api"}), Some(1_736_935_200_000));
        let doc = encoding.encode(replayed, now).unwrap();
        assert!(String::from_utf8(doc.lines)
            .unwrap()
            .starts_with("{\"create\":{\"_index\":\"logs-api-hot-2025.01.15\""));
        // An index name that breaks the rules is a dead letter, not a bad request.
        let bad = BulkEncoding {
            template: IndexTemplate::parse("{service}").unwrap(),
            fallback: "x".into(),
        };
        let dl = bad
            .encode(kafka_event(json!({"service": "_x"}), None), now)
            .unwrap_err();
        assert_eq!(dl.stage, Stage::Elasticsearch);
        assert!(dl.reason.contains("starts with"), "{}", dl.reason);
    }

    #[test]
    fn items_are_classified_in_order() {
        let response = json!({"took": 3, "errors": true, "items": [
            {"create": {"status": 201}},
            {"create": {"status": 409, "error": {"type": "version_conflict_engine_exception", "reason": "exists"}}},
            {"create": {"status": 429, "error": {"type": "es_rejected_execution_exception", "reason": "queue full"}}},
            {"create": {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "failed to parse field [duration_ms] of type [float]"}}},
            {"create": {"status": 503, "error": {"type": "unavailable_shards_exception", "reason": "primary shard is not active"}}}
        ]});
        let got = parse_response(response.to_string().as_bytes(), 5).unwrap();
        assert_eq!(got[0], ItemOutcome::Created);
        assert_eq!(got[1], ItemOutcome::AlreadyExists);
        assert!(matches!(&got[2], ItemOutcome::Retry { status: 429, .. }));
        assert_eq!(
            got[3],
            ItemOutcome::Rejected {
                status: 400,
                reason:
                    "mapper_parsing_exception: failed to parse field [duration_ms] of type [float]"
                        .into()
            }
        );
        assert!(matches!(&got[4], ItemOutcome::Retry { status: 503, .. }));
    }

    #[test]
    fn a_rejection_names_its_cause() {
        // What Elasticsearch 7 answers for a document with a key repeated in one object.
        let response = json!({"took": 1, "errors": true, "items": [
            {"create": {"status": 400, "error": {"type": "mapper_parsing_exception", "reason": "failed to parse",
                "caused_by": {"type": "json_parse_exception", "reason": "Duplicate field 'a'"}}}}
        ]});
        let got = parse_response(response.to_string().as_bytes(), 1).unwrap();
        assert_eq!(
            got[0],
            ItemOutcome::Rejected {
                status: 400,
                reason: "mapper_parsing_exception: failed to parse (caused by json_parse_exception: Duplicate field 'a')".into()
            }
        );
    }

    #[test]
    fn a_cause_chain_is_cut_to_its_bounds() {
        // 20 levels of causes, each with a 1 KiB reason.
        let mut error = json!({"type": "t20", "reason": "r".repeat(1024)});
        for level in (0..20).rev() {
            error = json!({"type": format!("t{level}"), "reason": "r".repeat(1024), "caused_by": error});
        }
        let response = json!({"took": 1, "errors": true, "items": [
            {"create": {"status": 400, "error": error}}
        ]});
        let got = parse_response(response.to_string().as_bytes(), 1).unwrap();
        let ItemOutcome::Rejected { reason, .. } = &got[0] else {
            panic!("{got:?}")
        };
        assert!(
            reason.len() <= weir_wire::limits::MAX_REASON_BYTES + 100,
            "{} bytes",
            reason.len()
        );
        assert!(
            reason.contains("truncated"),
            "{}",
            &reason[reason.len() - 80..]
        );
        // With short reasons, the levels past MAX_CAUSES are left out.
        let mut error = json!({"type": "t20", "reason": "r"});
        for level in (0..20).rev() {
            error = json!({"type": format!("t{level}"), "reason": "r", "caused_by": error});
        }
        let response = json!({"took": 1, "errors": true, "items": [
            {"create": {"status": 400, "error": error}}
        ]});
        let got = parse_response(response.to_string().as_bytes(), 1).unwrap();
        let ItemOutcome::Rejected { reason, .. } = &got[0] else {
            panic!("{got:?}")
        };
        assert_eq!(reason.matches("caused by").count(), MAX_CAUSES, "{reason}");
        assert!(
            reason.contains("caused by t8: r") && !reason.contains("t9"),
            "{reason}"
        );
    }

    #[test]
    fn a_replay_answered_by_noida_db_counts_as_success() {
        // Recorded from noida-db 0.2.0 (the test emulator) re-sending two created documents.
        let body = r#"{"errors":true,"items":[{"create":{"error":{"reason":"[t-0-1]: version conflict, document already exists","root_cause":[{"reason":"[t-0-1]: version conflict, document already exists","type":"version_conflict_engine_exception"}],"type":"version_conflict_engine_exception"},"status":409}},{"create":{"_id":"t-0-2","_index":"logs-a-2025.01.15","_primary_term":1,"_seq_no":1,"_shards":{"failed":0,"successful":1,"total":2},"_version":1,"result":"created","status":201}}],"took":0}"#;
        assert_eq!(
            parse_response(body.as_bytes(), 2).unwrap(),
            [ItemOutcome::AlreadyExists, ItemOutcome::Created]
        );
    }

    #[test]
    fn malformed_responses_are_errors() {
        assert!(matches!(
            parse_response(b"<html>", 1),
            Err(BulkError::Malformed(_))
        ));
        assert!(matches!(
            parse_response(br#"{"error": {"type": "x"}}"#, 1),
            Err(BulkError::Malformed(_))
        ));
        assert!(matches!(
            parse_response(br#"{"items": []}"#, 2),
            Err(BulkError::Count { found: 0, sent: 2 })
        ));
    }
}
