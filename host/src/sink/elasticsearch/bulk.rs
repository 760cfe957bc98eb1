//! `_bulk` bodies and their per-item results. Every document is written with `create` and
//! an `_id` derived from where it came from, so a replay after a crash re-sends the same
//! ids and Elasticsearch answers 409 for documents it already has: counted as success,
//! never duplicated.

use serde_json::Value;

/// The `_id` of an event read from `topic`/`partition` at `offset`.
pub fn document_id(topic: &str, partition: i32, offset: i64) -> String {
    format!("{topic}-{partition}-{offset}")
}

/// Appends one `create` action and its document to a bulk body.
pub fn push_create(body: &mut Vec<u8>, index: &str, id: &str, document: &Value) {
    let action = serde_json::json!({"create": {"_index": index, "_id": id}});
    // Serialising a `Value` into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *body, &action);
    body.push(b'\n');
    let _ = serde_json::to_writer(&mut *body, document);
    body.push(b'\n');
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

/// Reads a `_bulk` response to a request of `sent` documents, item by item, in order.
pub fn parse_response(body: &[u8], sent: usize) -> Result<Vec<ItemOutcome>, BulkError> {
    let response: Value =
        serde_json::from_slice(body).map_err(|e| BulkError::Malformed(e.to_string()))?;
    let items = response
        .get("items")
        .and_then(Value::as_array)
        .ok_or_else(|| BulkError::Malformed("no `items` array".into()))?;
    if items.len() != sent {
        return Err(BulkError::Count {
            found: items.len(),
            sent,
        });
    }
    Ok(items.iter().map(outcome).collect())
}

fn outcome(item: &Value) -> ItemOutcome {
    let result = item
        .as_object()
        .and_then(|o| o.values().next())
        .unwrap_or(&Value::Null);
    let status = result.get("status").and_then(Value::as_u64).unwrap_or(0) as u16;
    let reason = || {
        let error = result.get("error");
        let kind = error
            .and_then(|e| e.get("type"))
            .and_then(Value::as_str)
            .unwrap_or("error");
        let text = error
            .and_then(|e| e.get("reason"))
            .and_then(Value::as_str)
            .unwrap_or("no reason given");
        format!("{kind}: {text}")
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

    #[test]
    fn bodies_are_create_actions_with_source_ids() {
        let mut body = Vec::new();
        push_create(
            &mut body,
            "logs-a-2025.01.15",
            &document_id("python-logs", 3, 42),
            &json!({"level": "INFO"}),
        );
        let text = String::from_utf8(body).unwrap();
        assert_eq!(text, "{\"create\":{\"_index\":\"logs-a-2025.01.15\",\"_id\":\"python-logs-3-42\"}}\n{\"level\":\"INFO\"}\n");
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
            parse_response(br#"{"items": []}"#, 2),
            Err(BulkError::Count { found: 0, sent: 2 })
        ));
    }
}
