//! A generated corpus of log events whose fate is known in advance: which events the
//! chain drops, which index each lands in, which are poison and why.

use std::collections::BTreeMap;

const SERVICES: [&str; 5] = [
    "payment-gateway",
    "user-profile",
    "order-api",
    "critical-service",
    "search-api",
];
const LEVELS: [&str; 6] = ["INFO", "INFO", "WARNING", "DEBUG", "ERROR", "INFO"];

/// What one generated event should become.
#[derive(Debug, Clone, PartialEq)]
pub enum Fate {
    /// Indexed into this index.
    Indexed(String),
    /// Dropped by the route plugin (DEBUG outside critical-service).
    Dropped,
    /// Dead-lettered: not JSON.
    InvalidJson,
    /// Dead-lettered: not UTF-8.
    InvalidUtf8,
    /// Dead-lettered: over the configured `max_event_bytes` (poison corpora use 4096).
    Oversize,
    /// Dead-lettered by Elasticsearch: `user_id` (a keyword) is an object.
    MappingConflict,
}

/// Generated events and their fates, by `seq`.
pub struct Corpus {
    /// `(key, payload)` records to produce.
    pub records: Vec<(String, Vec<u8>)>,
    /// Fate of each, by position.
    pub fates: Vec<Fate>,
    /// Where each was produced (partition, offset), once produced.
    pub placed: Vec<(i32, i64)>,
}

impl Corpus {
    /// `n` events of ~450 bytes, index names prefixed with `prefix`. With `poison`, one in
    /// 100 is not JSON, another one in 100 has an object where the index template maps a
    /// `keyword` (`user_id`), one in 1000 is over 4 KiB and another one in 1000 is JSON
    /// but not UTF-8.
    pub fn generate(n: usize, prefix: &str, poison: bool) -> Corpus {
        let mut records = Vec::with_capacity(n);
        let mut fates = Vec::with_capacity(n);
        for i in 0..n {
            let service = SERVICES[(i * 7 + i / 5) % SERVICES.len()];
            let level = LEVELS[(i * 13 + i / 7) % LEVELS.len()];
            let day = 15 + i % 2;
            let key = format!("k{}", i % 97);
            if poison && i % 100 == 17 {
                records.push((
                    key,
                    format!("{{\"seq\": {i}, \"message\": \"truncated").into(),
                ));
                fates.push(Fate::InvalidJson);
                continue;
            }
            if poison && i % 1000 == 89 {
                // Valid JSON once the bytes are replaced: only the UTF-8 check catches it.
                let mut text = format!("{{\"seq\": {i}, \"level\": \"ERROR\", \"service\": \"{service}\", \"message\": \"caf").into_bytes();
                text.extend_from_slice(b"\xe9 \xff\xfe\"}");
                records.push((key, text));
                fates.push(Fate::InvalidUtf8);
                continue;
            }
            if poison && i == 1234 {
                // ~700 KB of quotes: its dead-letter entry, escaped, is over Kafka's 1 MB.
                records.push((
                    key,
                    format!("{{\"seq\": {i}, \"blob\": {}", "\"".repeat(700_000)).into(),
                ));
                fates.push(Fate::Oversize);
                continue;
            }
            if poison && i % 1000 == 71 {
                let big = serde_json::json!({"seq": i, "level": "ERROR", "service": service, "stack_trace": "x".repeat(5000)});
                records.push((key, big.to_string().into()));
                fates.push(Fate::Oversize);
                continue;
            }
            let conflict = poison && i % 100 == 53;
            let user = if conflict {
                serde_json::json!({"id": i % 5000})
            } else {
                serde_json::json!(format!("u-{}", i % 5000))
            };
            let method = ["GET", "POST", "PUT"][i % 3];
            let status = [200, 201, 404, 500][i % 4];
            let ip = ["8.8.8.8", "81.2.69.160", "10.0.3.7"][i % 3];
            let event = serde_json::json!({
                "timestamp": format!("2025-01-{day}T10:{:02}:{:02}.{:03}Z", (i / 60) % 60, i % 60, i % 1000),
                "level": level,
                "service": service,
                "message": format!("request {i} handled for user mario.rossi@example.com after validation of the basket and the payment method, with {} items", i % 17),
                "seq": i,
                "correlation_id": format!("{:08x}-4b1d-4f3a-9c2e-{:012x}", i * 2654435761 % 4294967296, i),
                "method": method,
                "path": format!("/users/{}/orders", i % 9973),
                "status_code": status,
                "duration_ms": (i % 1500) as f64 + 0.5,
                "client_ip": ip,
                "user_id": user,
                "password": "hunter2",
            });
            records.push((key, event.to_string().into()));
            fates.push(if level == "DEBUG" && service != "critical-service" {
                Fate::Dropped
            } else if conflict {
                Fate::MappingConflict
            } else {
                let route = match service {
                    "payment-gateway" => "payments",
                    "user-profile" => "users",
                    _ => "general",
                };
                Fate::Indexed(format!("{prefix}-{service}-{route}-2025.01.{day}"))
            });
        }
        Corpus {
            records,
            fates,
            placed: Vec::new(),
        }
    }

    /// Expected documents per index.
    pub fn expected_counts(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for f in &self.fates {
            if let Fate::Indexed(index) = f {
                *out.entry(index.clone()).or_insert(0) += 1;
            }
        }
        out
    }

    /// Number of events with `fate`.
    pub fn count(&self, fate: &Fate) -> usize {
        self.fates.iter().filter(|f| *f == fate).count()
    }
}
