//! Metrics through the `metrics` facade, rendered in Prometheus text format by
//! `metrics-exporter-prometheus` for the admin endpoint's `/metrics`.

use std::collections::BTreeSet;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Installs the process-wide recorder once; later calls return the same handle.
pub fn install() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [
                0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                1.0,
            ];
            let recorder = PrometheusBuilder::new()
                .set_buckets(&buckets)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .clone()
}

/// What one plugin did with one batch.
pub fn plugin_batch(plugin: &str, counts: [u64; 5], elapsed: Duration) {
    let [events_in, kept, routed, dropped, failed] = counts;
    let name = plugin.to_owned();
    for (outcome, n) in [
        ("in", events_in),
        ("kept", kept),
        ("routed", routed),
        ("dropped", dropped),
        ("failed", failed),
    ] {
        if n > 0 {
            counter!("weir_plugin_events_total", "plugin" => name.clone(), "outcome" => outcome)
                .increment(n);
        }
    }
    histogram!("weir_plugin_batch_seconds", "plugin" => name).record(elapsed.as_secs_f64());
}

/// A plugin lost a batch (trap, deadline, memory, bad reply, error).
pub fn plugin_batch_failed(plugin: &str) {
    counter!("weir_plugin_batch_failures_total", "plugin" => plugin.to_owned()).increment(1);
}

/// The series of a plugin's own counter (`count` host call), for its stats to keep.
pub fn plugin_counter(plugin: &str, name: &str) -> metrics::Counter {
    counter!("weir_plugin_counter_total", "plugin" => plugin.to_owned(), "counter" => name.to_owned())
}

/// Custom counter additions refused by the cap on distinct names.
pub fn plugin_counter_overflow(plugin: &str, n: u64) {
    counter!("weir_plugin_counter_overflow_total", "plugin" => plugin.to_owned()).increment(n);
}

/// A plugin log line dropped by the rate limit.
pub fn plugin_log_suppressed(plugin: &str) {
    counter!("weir_plugin_logs_suppressed_total", "plugin" => plugin.to_owned()).increment(1);
}

/// Distinct route labels `weir_events_routed_total` carries; events routed elsewhere are
/// counted under [`OTHER_ROUTE`]. A plugin routing every event somewhere new grew
/// `/metrics` past 11 MB.
pub const MAX_ROUTE_LABELS: usize = 64;

/// The label for routes past [`MAX_ROUTE_LABELS`].
pub const OTHER_ROUTE: &str = "_other";

/// Events read, written, dead-lettered, by route.
pub fn pipeline(received: u64, sent: u64, dead_lettered: u64, routes: &[(String, u64)]) {
    static LABELS: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    counter!("weir_events_received_total").increment(received);
    counter!("weir_events_sent_total").increment(sent);
    counter!("weir_events_dead_lettered_total").increment(dead_lettered);
    counter!("weir_events_dropped_total").increment(received.saturating_sub(sent + dead_lettered));
    if routes.is_empty() {
        return;
    }
    let Ok(mut labels) = LABELS.lock() else {
        return;
    };
    for (route, n) in routes {
        let label = if labels.contains(route) {
            route.clone()
        } else if labels.len() < MAX_ROUTE_LABELS {
            labels.insert(route.clone());
            route.clone()
        } else {
            OTHER_ROUTE.to_owned()
        };
        counter!("weir_events_routed_total", "route" => label).increment(*n);
    }
}

/// A reload attempt.
pub fn reload(ok: bool) {
    counter!("weir_reloads_total", "outcome" => if ok { "ok" } else { "failed" }).increment(1);
}

/// The running chain's generation.
pub fn generation(id: u64) {
    gauge!("weir_chain_generation").set(id as f64);
}

/// Time from a reload's trigger to the first batch on the new chain.
pub fn swap(elapsed: Duration) {
    histogram!("weir_reload_swap_seconds").record(elapsed.as_secs_f64());
}

/// Offset commits of the Kafka source: how many partitions' watermarks moved, and
/// whether the commit succeeded.
pub fn kafka_commit(partitions: usize, ok: bool) {
    let outcome = if ok { "ok" } else { "failed" };
    counter!("weir_kafka_commits_total", "outcome" => outcome).increment(1);
    counter!("weir_kafka_committed_partitions_total").increment(partitions as u64);
}

/// Events in a partition after the group's committed offset (librdkafka's `consumer_lag`).
pub fn kafka_lag(topic: &str, partition: i32, lag: i64) {
    gauge!("weir_kafka_consumer_lag", "topic" => topic.to_owned(), "partition" => partition.to_string())
        .set(lag as f64);
}

/// Whether the Kafka source is paused for backpressure (1) or consuming (0).
pub fn kafka_paused(paused: bool) {
    gauge!("weir_kafka_paused").set(if paused { 1.0 } else { 0.0 });
    if paused {
        counter!("weir_kafka_pauses_total").increment(1);
    }
}

/// One `_bulk` request: its outcome (`ok`, `retry`, `error`) and round-trip time.
pub fn es_bulk(outcome: &'static str, docs: usize, elapsed: Duration) {
    counter!("weir_es_bulk_requests_total", "outcome" => outcome).increment(1);
    counter!("weir_es_bulk_documents_total", "outcome" => outcome).increment(docs as u64);
    histogram!("weir_es_bulk_seconds").record(elapsed.as_secs_f64());
}

/// Per-item results of `_bulk` responses.
pub fn es_items(created: u64, existing: u64, rejected: u64, retried: u64) {
    for (result, n) in [
        ("created", created),
        ("already_exists", existing),
        ("rejected", rejected),
        ("retried", retried),
    ] {
        if n > 0 {
            counter!("weir_es_items_total", "result" => result).increment(n);
        }
    }
}

/// Bulk requests currently being sent or retried.
pub fn es_in_flight(requests: usize) {
    gauge!("weir_es_requests_in_flight").set(requests as f64);
}

/// An admin connection closed unserved because `admin::MAX_CONNECTIONS` were open: a
/// new one refused, or an old one that had sent nothing evicted for it.
pub fn admin_connection_refused() {
    counter!("weir_admin_connections_refused_total").increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_labels_and_plugin_counters_reach_metrics_bounded() {
        let Some(handle) = install() else {
            panic!("a recorder is installed");
        };
        let routes: Vec<(String, u64)> = (0..500).map(|i| (format!("route-{i}"), 1)).collect();
        pipeline(500, 500, 0, &routes);
        plugin_counter("p", "health_checks").increment(3);
        let text = handle.render();
        let series = text
            .lines()
            .filter(|l| l.starts_with("weir_events_routed_total{"))
            .count();
        assert_eq!(series, MAX_ROUTE_LABELS + 1, "64 routes and `_other`");
        assert!(
            text.contains(r#"weir_events_routed_total{route="_other"} 436"#),
            "{text}"
        );
        assert!(
            text.contains(r#"weir_plugin_counter_total{plugin="p",counter="health_checks"} 3"#),
            "{text}"
        );
    }
}
