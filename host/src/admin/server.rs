//! Serving the endpoint: hyper's HTTP/1 server on a single-threaded tokio runtime of the
//! admin's own, so no client can take threads or memory from the pipeline, and no client
//! can hold up another. Every client is bounded: by the connection cap, the size of its
//! request head, the time it may take to send it, and the time its whole exchange may take.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Notify};

use super::routes::{self, Context};

/// Most connections served at once: 64. At the cap, a new connection closes the oldest
/// one that has not yet sent its whole request head (a real client sends it at once, so
/// that is a silent or dawdling one); when every connection is mid-request, the new one
/// is answered 503 instead. Either is counted in `weir_admin_connections_refused_total`.
/// Reconnecting silent sockets so can only evict each other: a probe that sends its
/// request is served (refusing new connections instead let such a flood hold `/health`
/// at 503 for as long as it went on).
pub const MAX_CONNECTIONS: usize = 64;

/// Time a client has, from connecting, to send its whole request head: 5 s. One
/// request's head is a single packet for any real client; slower ones are closed.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Time one connection may take in all (head, body, answer): 10 s. The exception is a
/// `POST /reload` still running (it is bounded by the plugins' `init_deadline_ms`): it
/// gets another 10 s each time this runs out, until it answers.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Most bytes hyper buffers for one connection, and so the largest request head: 16 KiB
/// (hyper's minimum is 8 KiB). A larger head is answered 431 and the connection closed.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;

/// Pause after a failed `accept` (say, out of file descriptors) before the next one:
/// 100 ms, so the error does not turn into a busy loop.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// What a connection over the cap is told, if its socket can take it without waiting.
const BUSY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// The admin's runtime: one thread (the caller of `block_on`) for all connections, and
/// one more that runs a reload when one is asked for.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .max_blocking_threads(1)
        .thread_name("weir-admin-reload")
        .build()
}

/// One open connection, as the cap sees it.
#[derive(Default)]
struct Slot {
    /// Set once its request head has been read.
    head_read: AtomicBool,
    /// Tells it to close, to make room for a newer one.
    evict: Notify,
}

/// The open connections, oldest first. Only the admin's one thread touches it, never
/// across an `.await`.
#[derive(Default)]
struct Slots(std::sync::Mutex<std::collections::VecDeque<Arc<Slot>>>);

impl Slots {
    /// A slot for a new connection: free, or taken from the oldest that has not sent its
    /// head yet; `None` when every open connection is mid-request.
    fn take(&self) -> Option<Arc<Slot>> {
        let mut open = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if open.len() >= MAX_CONNECTIONS {
            let idle = open
                .iter()
                .position(|s| !s.head_read.load(Ordering::Relaxed))?;
            if let Some(old) = open.remove(idle) {
                old.evict.notify_one();
            }
            crate::metrics::admin_connection_refused();
        }
        let slot = Arc::new(Slot::default());
        open.push_back(slot.clone());
        Some(slot)
    }

    /// Frees `slot` (its connection has ended).
    fn free(&self, slot: &Arc<Slot>) {
        let mut open = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = open.iter().position(|s| Arc::ptr_eq(s, slot)) {
            open.remove(i);
        }
    }
}

/// Accepts and serves connections until `stop` fires (or its sender is dropped).
pub async fn serve(listener: TcpListener, ctx: Arc<Context>, mut stop: oneshot::Receiver<()>) {
    let slots = Arc::new(Slots::default());
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "admin endpoint: cannot accept a connection");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        match slots.take() {
            Some(slot) => {
                let (ctx, slots) = (ctx.clone(), slots.clone());
                tokio::spawn(async move {
                    connection(stream, ctx, &slot).await;
                    slots.free(&slot);
                });
            }
            None => {
                let _ = stream.try_write(BUSY);
                crate::metrics::admin_connection_refused();
                tracing::debug!(
                    limit = MAX_CONNECTIONS,
                    "admin endpoint: connection refused, too many open"
                );
            }
        }
    }
}

/// Serves one connection (one request: keep-alive is off) within `REQUEST_TIMEOUT`, or
/// until a newer connection evicts it.
async fn connection(stream: TcpStream, ctx: Arc<Context>, slot: &Arc<Slot>) {
    let reloading = Arc::new(AtomicBool::new(false));
    let flag = reloading.clone();
    let head = slot.clone();
    let service = service_fn(move |request| {
        head.head_read.store(true, Ordering::Relaxed);
        routes::handle(ctx.clone(), flag.clone(), request)
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service);
    let mut conn = std::pin::pin!(conn);
    let mut deadline = tokio::time::Instant::now() + REQUEST_TIMEOUT;
    loop {
        tokio::select! {
            () = slot.evict.notified() => {
                tracing::debug!("admin connection closed: evicted by a newer one");
                return;
            }
            result = conn.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "admin connection ended with an error");
                }
                return;
            }
            () = tokio::time::sleep_until(deadline) => {
                if !reloading.load(Ordering::Relaxed) {
                    tracing::debug!("admin connection closed: request timeout");
                    return;
                }
                deadline += REQUEST_TIMEOUT;
            }
        }
    }
}
