//! Batching and delivery. Documents from many chunks fill a bulk request until it reaches
//! its count or byte limit or its age limit; up to `concurrency` requests are in flight.
//! Each request is retried until every document is settled: created, already there
//! (409, a replay), or dead-lettered with Elasticsearch's reason. A chunk's receipt is
//! completed when all of its documents and dead letters are settled, never before.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;

use super::bulk::{parse_response, BulkDoc, ItemOutcome};
use super::client::EsClient;
use super::retry::{Backoff, Jitter};
use super::{ElasticsearchConfig, Job};
use crate::pipeline::RunStats;
use crate::sink::dead_letter::DeadLetterOut;
use crate::source::Receipt;

/// Counts down a chunk's unsettled parts; the last one completes its receipt.
struct ChunkAck {
    remaining: AtomicUsize,
    receipt: Mutex<Option<Receipt>>,
}

impl ChunkAck {
    fn new(parts: usize, receipt: Receipt) -> Arc<Self> {
        Arc::new(ChunkAck {
            remaining: AtomicUsize::new(parts),
            receipt: Mutex::new(Some(receipt)),
        })
    }

    fn settle(&self, parts: usize) {
        if self.remaining.fetch_sub(parts, Ordering::AcqRel) == parts {
            let receipt = self
                .receipt
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(receipt) = receipt {
                receipt.complete();
            }
        }
    }
}

/// A document on its way, with the chunk it belongs to.
struct Pending {
    doc: BulkDoc,
    ack: Arc<ChunkAck>,
}

/// Everything a bulk request needs, shared by the requests in flight.
struct Shared {
    client: Arc<EsClient>,
    dead: Arc<DeadLetterOut>,
    stats: Arc<RunStats>,
    backoff: Backoff,
    in_flight: AtomicUsize,
}

/// Turns jobs into bulk requests.
pub(crate) struct Dispatcher {
    shared: Arc<Shared>,
    batch_events: usize,
    batch_bytes: usize,
    linger: Duration,
    concurrency: usize,
}

impl Dispatcher {
    pub(crate) fn new(
        config: &ElasticsearchConfig,
        client: Arc<EsClient>,
        dead: Arc<DeadLetterOut>,
        stats: Arc<RunStats>,
    ) -> Self {
        Dispatcher {
            shared: Arc::new(Shared {
                client,
                dead,
                stats,
                backoff: config.retry.backoff(),
                in_flight: AtomicUsize::new(0),
            }),
            batch_events: config.batch_events,
            batch_bytes: config.batch_bytes,
            linger: Duration::from_millis(config.flush_ms),
            concurrency: config.concurrency,
        }
    }

    /// Runs until the job channel closes and everything is settled, or until `shutdown`
    /// has passed since it closed (what is still unsettled then stays uncommitted).
    ///
    /// The dispatcher never blocks on a request slot: it keeps taking jobs, so a stop is
    /// seen (and its deadline starts) however long the cluster stalls, and while every
    /// slot is busy the filling batch grows to its limits instead of leaving half full.
    pub(crate) async fn run(self, mut jobs: UnboundedReceiver<Job>, shutdown: Duration) {
        let permits = Arc::new(Semaphore::new(self.concurrency));
        let mut requests = JoinSet::new();
        let mut filling = Filling::default();
        // Batches at their count or byte limit, oldest first, waiting for a slot.
        let mut full: VecDeque<Vec<Pending>> = VecDeque::new();
        loop {
            // Reap finished requests so the set does not grow.
            while requests.try_join_next().is_some() {}
            let now = tokio::time::Instant::now();
            let due = filling.due.filter(|at| *at > now);
            let sendable = !full.is_empty() || (filling.due.is_some() && due.is_none());
            tokio::select! {
                job = jobs.recv() => {
                    let Some(job) = job else { break };
                    self.take(job, &mut filling, &mut full, &mut requests);
                }
                permit = permits.clone().acquire_owned(), if sendable => {
                    // The semaphore is never closed.
                    let Ok(permit) = permit else { break };
                    let docs = full.pop_front().unwrap_or_else(|| filling.take());
                    self.spawn(docs, permit, &mut requests);
                }
                () = tokio::time::sleep_until(due.unwrap_or(now)), if due.is_some() => {}
            }
        }
        if !filling.batch.is_empty() {
            full.push_back(filling.take());
        }
        let drained = tokio::time::timeout(shutdown, async {
            while let Some(docs) = full.pop_front() {
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    break;
                };
                self.spawn(docs, permit, &mut requests);
            }
            while requests.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                requests = requests.len(),
                batches_never_sent = full.len(),
                "elasticsearch: stopping with bulk requests still retrying; their events are \
                 not committed and will be read again on the next start"
            );
            requests.abort_all();
        }
    }

    /// Adds a job's documents to the filling batch, moving it to `full` at its limits;
    /// its dead letters are written by a task of their own, which a stop's deadline
    /// covers like a request.
    fn take(
        &self,
        job: Job,
        filling: &mut Filling,
        full: &mut VecDeque<Vec<Pending>>,
        requests: &mut JoinSet<()>,
    ) {
        let ack = ChunkAck::new(job.docs.len() + 1, job.receipt);
        if job.dead.is_empty() {
            ack.settle(1);
        } else {
            let (dead, ack) = (self.shared.dead.clone(), ack.clone());
            requests.spawn(async move {
                write_dead_letters(&dead, &job.dead).await;
                ack.settle(1);
            });
        }
        for doc in job.docs {
            filling.bytes += doc.lines.len();
            filling.batch.push(Pending {
                doc,
                ack: ack.clone(),
            });
            if filling.batch.len() >= self.batch_events || filling.bytes >= self.batch_bytes {
                full.push_back(filling.take());
            }
        }
        if !filling.batch.is_empty() && filling.due.is_none() {
            filling.due = Some(tokio::time::Instant::now() + self.linger);
        }
    }

    /// Starts the request for `docs` in the slot `permit` holds.
    fn spawn(&self, docs: Vec<Pending>, permit: OwnedSemaphorePermit, requests: &mut JoinSet<()>) {
        let shared = self.shared.clone();
        requests.spawn(async move {
            let n = shared.in_flight.fetch_add(1, Ordering::Relaxed) + 1;
            crate::metrics::es_in_flight(n);
            deliver(&shared, docs).await;
            let n = shared.in_flight.fetch_sub(1, Ordering::Relaxed) - 1;
            crate::metrics::es_in_flight(n);
            drop(permit);
        });
    }
}

/// The batch being filled: its documents, their bytes, and when its age limit is up.
#[derive(Default)]
struct Filling {
    batch: Vec<Pending>,
    bytes: usize,
    due: Option<tokio::time::Instant>,
}

impl Filling {
    /// The batch, leaving an empty one with no age.
    fn take(&mut self) -> Vec<Pending> {
        self.bytes = 0;
        self.due = None;
        std::mem::take(&mut self.batch)
    }
}

/// Sends `docs` until each is settled. Only the documents of a partial failure are sent
/// again; whole-request failures (no connection, 429, 5xx) resend everything left.
async fn deliver(shared: &Shared, mut docs: Vec<Pending>) {
    let mut jitter = Jitter::default();
    let mut attempt = 0u32;
    // Sized once: growing a multi-megabyte body by doubling showed up as memmove and
    // fresh-page faults in profiles.
    let mut body = Vec::with_capacity(docs.iter().map(|p| p.doc.lines.len()).sum());
    loop {
        body.clear();
        for p in &docs {
            body.extend_from_slice(&p.doc.lines);
        }
        let started = Instant::now();
        let reply = shared.client.bulk(&body).await;
        let elapsed = started.elapsed();
        // Requests that got a bulk answer are counted once, as `ok`; the items it asks
        // to resend show in `weir_es_items_total{result="retried"}`.
        let mut answered = false;
        let failure = match reply {
            Err(e) => format!("connection: {e}"),
            Ok(reply) if reply.status == 429 || reply.status >= 500 => {
                format!("HTTP {}: {}", reply.status, snippet(&reply.body))
            }
            Ok(reply) if matches!(reply.status, 401 | 403) => {
                tracing::error!(
                    status = reply.status,
                    "elasticsearch refused the credentials (check sink.auth); retrying"
                );
                format!("HTTP {}: {}", reply.status, snippet(&reply.body))
            }
            Ok(reply) if !(200..300).contains(&reply.status) => {
                // The whole request was refused for a reason retrying cannot fix.
                crate::metrics::es_bulk("error", docs.len(), elapsed);
                let reason = format!(
                    "elasticsearch refused the bulk request: HTTP {}: {}",
                    reply.status,
                    snippet(&reply.body)
                );
                dead_letter(shared, with_reason(docs, &reason)).await;
                return;
            }
            Ok(reply) => match parse_response(&reply.body, docs.len()) {
                Err(e) => format!("{e}"),
                Ok(outcomes) => {
                    answered = true;
                    crate::metrics::es_bulk("ok", docs.len(), elapsed);
                    docs = settle(shared, docs, outcomes).await;
                    if docs.is_empty() {
                        return;
                    }
                    format!("{} documents answered 429 or 5xx", docs.len())
                }
            },
        };
        if !answered {
            crate::metrics::es_bulk("retry", docs.len(), elapsed);
        }
        let Some(delay) = shared.backoff.delay(attempt, jitter.next_unit()) else {
            let reason = format!("elasticsearch: gave up after {attempt} retries: {failure}");
            dead_letter(shared, with_reason(docs, &reason)).await;
            return;
        };
        tracing::warn!(
            attempt,
            documents = docs.len(),
            delay_ms = delay.as_millis() as u64,
            "elasticsearch bulk request failed, retrying: {failure}"
        );
        attempt += 1;
        tokio::time::sleep(delay).await;
    }
}

/// Applies per-item outcomes; returns the documents to send again.
async fn settle(shared: &Shared, docs: Vec<Pending>, outcomes: Vec<ItemOutcome>) -> Vec<Pending> {
    let (mut created, mut existing) = (0, 0);
    let mut retry = Vec::new();
    let mut rejected = Vec::new();
    for (p, outcome) in docs.into_iter().zip(outcomes) {
        match outcome {
            ItemOutcome::Created => {
                created += 1;
                p.ack.settle(1);
            }
            ItemOutcome::AlreadyExists => {
                existing += 1;
                p.ack.settle(1);
            }
            ItemOutcome::Retry { .. } => retry.push(p),
            ItemOutcome::Rejected { status, reason } => rejected.push((
                p,
                format!("elasticsearch rejected the document ({status}): {reason}"),
            )),
        }
    }
    crate::metrics::es_items(created, existing, rejected.len() as u64, retry.len() as u64);
    dead_letter(shared, rejected).await;
    retry
}

/// Pairs every document with the same reason.
fn with_reason(docs: Vec<Pending>, reason: &str) -> Vec<(Pending, String)> {
    docs.into_iter().map(|p| (p, reason.to_owned())).collect()
}

/// Dead-letters documents with their reasons, then settles them.
async fn dead_letter(shared: &Shared, docs: Vec<(Pending, String)>) {
    if docs.is_empty() {
        return;
    }
    let mut lines = Vec::new();
    for (p, reason) in &docs {
        p.doc
            .dead_letter(reason.clone())
            .write_json_line(&mut lines);
    }
    write_dead_letters(&shared.dead, &lines).await;
    record_dead(shared, docs.len());
    for (p, _) in docs {
        p.ack.settle(1);
    }
}

fn record_dead(shared: &Shared, n: usize) {
    use std::sync::atomic::Ordering::Relaxed;
    shared.stats.dead_lettered.fetch_add(n as u64, Relaxed);
    shared.stats.sent.fetch_sub(n as u64, Relaxed);
    metrics::counter!("weir_events_dead_lettered_total").increment(n as u64);
}

/// Writes dead-letter entries, retrying until the output takes them: an entry that
/// cannot be written must not let its event's offset be committed.
async fn write_dead_letters(out: &DeadLetterOut, lines: &[u8]) {
    let mut attempt = 0u32;
    let backoff = Backoff::default();
    let mut jitter = Jitter::default();
    loop {
        match out.write(lines).await {
            Ok(()) => return,
            Err(e) => {
                let delay = backoff
                    .delay(attempt, jitter.next_unit())
                    .unwrap_or(backoff.max);
                tracing::error!(attempt, "dead-letter output failed, retrying: {e:#}");
                attempt += 1;
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// The start of a response body, for error messages.
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
