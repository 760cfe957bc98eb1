//! What each endpoint answers. A request's body is never needed: it is read and thrown
//! away, up to `MAX_BODY_BYTES`, before the route runs.

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::UNIX_EPOCH;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Incoming};
use hyper::{header, Method, Request, Response, StatusCode};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;

use super::config::Guarded;
use crate::pipeline::{RunStats, Supervisor};

/// Most bytes of request body read (and discarded) before answering: 64 KiB. The
/// endpoints take no body; reading a small one lets its sender see the answer (closing
/// on unread bytes resets the connection), and a declared or sent body above this is
/// answered 413 without reading further.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What the endpoints answer from: shared by every connection.
pub struct Context {
    /// The token, if set (and not empty).
    pub token: Option<String>,
    /// Endpoints that need the token.
    pub guarded: Vec<Guarded>,
    /// Owns the running chain and performs reloads; set once the first chain is loaded
    /// (the endpoint answers from the start, so `/health` and `/ready` can be probed
    /// while plugins initialise).
    pub supervisor: Arc<OnceLock<Arc<Supervisor>>>,
    /// Event counters.
    pub stats: Arc<RunStats>,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// Set once the pipeline runs.
    pub ready: Arc<AtomicBool>,
}

type Answer = Response<Full<Bytes>>;

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Answer {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Answer {
    respond(status, "application/json", body.to_string())
}

fn failure(status: StatusCode, error: &str) -> Answer {
    json_response(status, json!({"ok": false, "error": error}))
}

/// Reads the body and throws it away; `Err` is the answer when it is too large or broken.
async fn discard(body: Incoming) -> Result<(), Answer> {
    let too_large = || failure(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
    if body.size_hint().lower() > MAX_BODY_BYTES as u64 {
        return Err(too_large());
    }
    let mut body = Limited::new(body, MAX_BODY_BYTES);
    while let Some(frame) = body.frame().await {
        if let Err(e) = frame {
            return Err(if e.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                failure(StatusCode::BAD_REQUEST, "cannot read the request body")
            });
        }
    }
    Ok(())
}

/// Answers one request. `reloading` is set while this request waits for a reload, which
/// the connection's timeout then allows for.
pub async fn handle(
    ctx: Arc<Context>,
    reloading: Arc<AtomicBool>,
    request: Request<Incoming>,
) -> Result<Answer, Infallible> {
    let (parts, body) = request.into_parts();
    if let Err(answer) = discard(body).await {
        return Ok(answer);
    }
    let answer = match (&parts.method, parts.uri.path()) {
        (&Method::GET, "/health") => respond(StatusCode::OK, "text/plain", "ok\n".into()),
        (&Method::GET, "/ready") => {
            if ctx.ready.load(Ordering::Relaxed) {
                respond(StatusCode::OK, "text/plain", "ready\n".into())
            } else {
                respond(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    "starting\n".into(),
                )
            }
        }
        (&Method::GET, "/status") => ctx.guard(Guarded::Status, &parts.headers, || {
            ctx.supervisor.get().map_or_else(starting, |supervisor| {
                json_response(StatusCode::OK, ctx.status(supervisor))
            })
        }),
        (&Method::GET, "/metrics") => ctx.guard(Guarded::Metrics, &parts.headers, || {
            respond(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                ctx.metrics.render(),
            )
        }),
        (&Method::POST, "/reload") => {
            if ctx.authorised(Guarded::Reload, &parts.headers) {
                ctx.reload(&reloading).await
            } else {
                unauthorised()
            }
        }
        _ => respond(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
    };
    Ok(answer)
}

fn unauthorised() -> Answer {
    failure(StatusCode::UNAUTHORIZED, "missing or wrong bearer token")
}

/// What `/status` and `POST /reload` answer before the first chain is loaded.
fn starting() -> Answer {
    failure(
        StatusCode::SERVICE_UNAVAILABLE,
        "starting: the chain is not loaded yet",
    )
}

/// Compares without stopping at the first difference, so the time taken does not tell
/// how much of a guessed token was right.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .fold(0u8, |diff, (x, y)| std::hint::black_box(diff | (x ^ y)))
            == 0
}

impl Context {
    fn authorised(&self, endpoint: Guarded, headers: &header::HeaderMap) -> bool {
        let Some(token) = self.token.as_deref() else {
            return true;
        };
        if !self.guarded.contains(&endpoint) {
            return true;
        }
        let expected = format!("Bearer {token}");
        headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .any(|value| same_bytes(value.as_bytes(), expected.as_bytes()))
    }

    fn guard(
        &self,
        endpoint: Guarded,
        headers: &header::HeaderMap,
        answer: impl FnOnce() -> Answer,
    ) -> Answer {
        if self.authorised(endpoint, headers) {
            answer()
        } else {
            unauthorised()
        }
    }

    /// Runs the reload on the runtime's blocking thread, so this one keeps serving; a
    /// reload already running is answered 409 at once rather than queued.
    async fn reload(&self, reloading: &AtomicBool) -> Answer {
        let Some(supervisor) = self.supervisor.get() else {
            return starting();
        };
        let Some(permit) = supervisor.try_begin_reload() else {
            return failure(StatusCode::CONFLICT, "a reload is already in progress");
        };
        reloading.store(true, Ordering::Relaxed);
        let outcome = tokio::task::spawn_blocking(move || permit.reload("http")).await;
        reloading.store(false, Ordering::Relaxed);
        match outcome {
            Ok(Ok(generation)) => json_response(
                StatusCode::OK,
                json!({"ok": true, "generation": generation}),
            ),
            Ok(Err(error)) => failure(StatusCode::UNPROCESSABLE_ENTITY, &error),
            Err(_) => failure(StatusCode::INTERNAL_SERVER_ERROR, "the reload panicked"),
        }
    }

    fn status(&self, supervisor: &Supervisor) -> serde_json::Value {
        let generation = supervisor.generation();
        let reload = supervisor.status();
        let chain: Vec<serde_json::Value> = generation
            .plugins
            .iter()
            .map(|p| {
                let c = &p.spec.config;
                json!({
                    "name": &*p.name,
                    "path": p.spec.wasm_path().display().to_string(),
                    "sha256": p.sha256,
                    "contract": format!("weir:filter@{}", p.contract),
                    "on_error": c.on_error.as_str(),
                    "limits": {
                        "memory_mib": c.limits.memory_mib,
                        "deadline_ms": c.limits.deadline_ms,
                        "init_deadline_ms": c.limits.init_deadline_ms,
                        "cpu_deadline": c.limits.cpu_deadline,
                    },
                })
            })
            .collect();
        let last = reload.last.map(|l| {
            json!({
                "at_unix_ms": l.at.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default(),
                "trigger": l.trigger,
                "ok": l.outcome.is_ok(),
                "generation": l.outcome.as_ref().ok(),
                "error": l.outcome.as_ref().err(),
                "needs_restart": l.needs_restart,
                "swap_ms": l.swap.map(|d| d.as_secs_f64() * 1e3),
            })
        });
        let s = &self.stats;
        json!({
            "config": supervisor.config_path().display().to_string(),
            "generation": generation.id,
            "chain": chain,
            "reloads": reload.reloads,
            "reload_failures": reload.failures,
            "last_reload": last,
            "events": {
                "received": s.received.load(Ordering::Relaxed),
                "sent": s.sent.load(Ordering::Relaxed),
                "dead_lettered": s.dead_lettered.load(Ordering::Relaxed),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::same_bytes;

    #[test]
    fn tokens_compare_by_every_byte() {
        assert!(same_bytes(b"Bearer s3cret", b"Bearer s3cret"));
        assert!(!same_bytes(b"Bearer s3creT", b"Bearer s3cret"));
        assert!(!same_bytes(b"Bearer s3cre", b"Bearer s3cret"));
        assert!(!same_bytes(b"", b"Bearer s3cret"));
    }
}
