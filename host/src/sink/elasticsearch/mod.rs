//! The Elasticsearch `_bulk` sink's building blocks: index naming, bulk bodies and their
//! per-item results, and the retry schedule. The network side (the `elasticsearch` client,
//! batching, in-flight requests) and its tests against a fault-injecting double are the
//! next step of the Kafka/Elasticsearch issue; these parts are complete and tested alone.

pub mod bulk;
pub mod index;
pub mod retry;
