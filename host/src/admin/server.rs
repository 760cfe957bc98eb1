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
use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use super::routes::{self, Context};

/// Most connections served at once: 64. One more is answered 503 (when its socket takes
/// it without waiting), closed at once and counted in
/// `weir_admin_connections_refused_total`; idle ones free their slot after
/// `HEADER_READ_TIMEOUT`, so a flood of silent sockets locks probes out for seconds, not
/// forever.
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

/// Accepts and serves connections until `stop` fires (or its sender is dropped).
pub async fn serve(listener: TcpListener, ctx: Arc<Context>, mut stop: oneshot::Receiver<()>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
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
        match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                tokio::spawn(connection(stream, ctx.clone(), slot));
            }
            Err(_) => {
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

/// Serves one connection (one request: keep-alive is off) within `REQUEST_TIMEOUT`.
async fn connection(stream: TcpStream, ctx: Arc<Context>, _slot: OwnedSemaphorePermit) {
    let reloading = Arc::new(AtomicBool::new(false));
    let flag = reloading.clone();
    let service = service_fn(move |request| routes::handle(ctx.clone(), flag.clone(), request));
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
