//! The admin HTTP endpoint: `GET /health`, `/ready`, `/status`, `/metrics` and
//! `POST /reload`. Off unless `[admin]` is configured; binds loopback unless told
//! otherwise, and then the endpoints in `token_for` (at least `POST /reload`) need the
//! bearer token from config. `/health` and `/ready` never need it.
//!
//! No client can crash, hang or exhaust it: connections, request heads, bodies and the
//! time each exchange takes are bounded (see `server`), nothing is sized by what a client
//! claims, and a reload runs beside the endpoint, never in its way.

pub mod client;
mod config;
mod routes;
mod server;

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::oneshot;

use crate::pipeline::{RunStats, Supervisor};

pub use config::{AdminConfig, Guarded};
pub use routes::MAX_BODY_BYTES;
pub use server::{HEADER_READ_TIMEOUT, MAX_CONNECTIONS, MAX_HEAD_BYTES, REQUEST_TIMEOUT};

/// The running endpoint; stops when dropped.
pub struct AdminServer {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl AdminServer {
    /// Binds and serves on a thread of its own (`weir-admin`). `supervisor` is empty
    /// until the first chain is loaded: meanwhile `/health` answers 200, `/ready` 503,
    /// and `/status` and `POST /reload` 503.
    pub fn start(
        config: &AdminConfig,
        supervisor: Arc<OnceLock<Arc<Supervisor>>>,
        stats: Arc<RunStats>,
        metrics: PrometheusHandle,
        ready: Arc<AtomicBool>,
    ) -> anyhow::Result<Self> {
        let addr = config.addr().map_err(|e| anyhow::anyhow!("admin.{e}"))?;
        let guarded = config.guarded().map_err(|e| anyhow::anyhow!("admin.{e}"))?;
        let bind = |e: std::io::Error| anyhow::anyhow!("admin.listen: cannot bind {addr}: {e}");
        let listener = std::net::TcpListener::bind(addr).map_err(bind)?;
        listener.set_nonblocking(true).map_err(bind)?;
        let runtime = server::runtime()?;
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener).map_err(bind)?
        };
        tracing::info!(%addr, "admin endpoint listening");
        let ctx = Arc::new(routes::Context {
            token: config.token().map(str::to_owned),
            guarded,
            supervisor,
            stats,
            metrics,
            ready,
        });
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("weir-admin".into())
            .spawn(move || {
                runtime.block_on(server::serve(listener, ctx, stopped));
                // Open connections are dropped; a reload still running finishes on its own.
                runtime.shutdown_background();
            })?;
        Ok(AdminServer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
