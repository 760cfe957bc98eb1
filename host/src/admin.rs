//! The admin HTTP endpoint: `GET /health`, `/ready`, `/status`, `/metrics` and
//! `POST /reload`. Off unless `[admin]` is configured; binds loopback unless told
//! otherwise, and then `POST /reload` needs the bearer token from config. A reload asked
//! for while one runs is answered 409.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::UNIX_EPOCH;

use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use serde_json::json;
use tiny_http::{Header, Method, Request, Response, Server};

use crate::pipeline::{RunStats, Supervisor};

/// A minimal client for this endpoint, used by `weir bench --suite reload` and the tests.
pub mod client {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    /// One HTTP/1.1 exchange with the admin endpoint on `127.0.0.1:port`: (status, body).
    pub fn request(
        port: u16,
        method: &str,
        path: &str,
        token: Option<&str>,
    ) -> std::io::Result<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let request =
            format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes())?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Ok((status, body))
    }
}

/// The `[admin]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address to listen on, e.g. `"127.0.0.1:9600"`.
    pub listen: String,
    /// Bearer token `POST /reload` must present; required when `listen` is not loopback.
    /// Write `"${WEIR_ADMIN_TOKEN}"` to keep it out of the file.
    #[serde(default)]
    pub token: Option<String>,
}

impl AdminConfig {
    /// Checks the address parses and a non-loopback listener has a token; the message
    /// starts with the key.
    pub fn validate(&self) -> Result<(), String> {
        let addr = self.addr()?;
        if !addr.ip().is_loopback() && self.token.as_deref().is_none_or(str::is_empty) {
            return Err(format!(
                "token: required because listen ({addr}) is not a loopback address: anyone who can reach it could reload the chain"
            ));
        }
        Ok(())
    }

    fn addr(&self) -> Result<SocketAddr, String> {
        self.listen
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| format!("listen: {:?} is not a host:port address", self.listen))
    }
}

/// The running endpoint; stops when dropped.
pub struct AdminServer {
    server: Arc<Server>,
    thread: Option<JoinHandle<()>>,
}

struct Context {
    token: Option<String>,
    supervisor: Arc<Supervisor>,
    stats: Arc<RunStats>,
    metrics: PrometheusHandle,
    ready: Arc<AtomicBool>,
}

impl AdminServer {
    /// Binds and serves on a thread of its own.
    pub fn start(
        config: &AdminConfig,
        supervisor: Arc<Supervisor>,
        stats: Arc<RunStats>,
        metrics: PrometheusHandle,
        ready: Arc<AtomicBool>,
    ) -> anyhow::Result<Self> {
        let addr = config.addr().map_err(|e| anyhow::anyhow!("admin.{e}"))?;
        let server = Arc::new(
            Server::http(addr)
                .map_err(|e| anyhow::anyhow!("admin.listen: cannot bind {addr}: {e}"))?,
        );
        tracing::info!(%addr, "admin endpoint listening");
        let ctx = Context {
            token: config.token.clone(),
            supervisor,
            stats,
            metrics,
            ready,
        };
        let serving = server.clone();
        let thread = std::thread::Builder::new()
            .name("weir-admin".into())
            .spawn(move || {
                for request in serving.incoming_requests() {
                    ctx.handle(request);
                }
            })?;
        Ok(AdminServer {
            server,
            thread: Some(thread),
        })
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn header(name: &str, value: &str) -> Option<Header> {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).ok()
}

fn respond(request: Request, status: u16, content_type: &str, body: String) {
    let mut response = Response::from_string(body).with_status_code(status);
    if let Some(h) = header("Content-Type", content_type) {
        response.add_header(h);
    }
    let _ = request.respond(response);
}

fn json_response(request: Request, status: u16, body: serde_json::Value) {
    respond(request, status, "application/json", body.to_string());
}

impl Context {
    fn handle(&self, request: Request) {
        let path = request
            .url()
            .split('?')
            .next()
            .unwrap_or_default()
            .to_owned();
        match (request.method(), path.as_str()) {
            (Method::Get, "/health") => respond(request, 200, "text/plain", "ok\n".into()),
            (Method::Get, "/ready") => {
                if self.ready.load(Ordering::Relaxed) {
                    respond(request, 200, "text/plain", "ready\n".into())
                } else {
                    respond(request, 503, "text/plain", "starting\n".into())
                }
            }
            (Method::Get, "/status") => json_response(request, 200, self.status()),
            (Method::Get, "/metrics") => {
                respond(
                    request,
                    200,
                    "text/plain; version=0.0.4",
                    self.metrics.render(),
                );
            }
            (Method::Post, "/reload") => {
                if !self.authorised(&request) {
                    return json_response(
                        request,
                        401,
                        json!({"ok": false, "error": "missing or wrong bearer token"}),
                    );
                }
                let Some(permit) = self.supervisor.try_begin_reload() else {
                    return json_response(
                        request,
                        409,
                        json!({"ok": false, "error": "a reload is already in progress"}),
                    );
                };
                match permit.reload("http") {
                    Ok(generation) => {
                        json_response(request, 200, json!({"ok": true, "generation": generation}))
                    }
                    Err(error) => json_response(request, 422, json!({"ok": false, "error": error})),
                }
            }
            _ => respond(request, 404, "text/plain", "not found\n".into()),
        }
    }

    fn authorised(&self, request: &Request) -> bool {
        let Some(token) = self.token.as_deref().filter(|t| !t.is_empty()) else {
            return true;
        };
        let expected = format!("Bearer {token}");
        request
            .headers()
            .iter()
            .any(|h| h.field.equiv("Authorization") && h.value.as_str() == expected)
    }

    fn status(&self) -> serde_json::Value {
        let generation = self.supervisor.generation();
        let reload = self.supervisor.status();
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
            "config": self.supervisor.config_path().display().to_string(),
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
    use super::*;

    #[test]
    fn a_public_listener_needs_a_token() {
        let public = AdminConfig {
            listen: "0.0.0.0:9600".into(),
            token: None,
        };
        assert!(public
            .validate()
            .unwrap_err()
            .starts_with("token: required"));
        assert!(AdminConfig {
            token: Some("s".into()),
            ..public
        }
        .validate()
        .is_ok());
        assert!(AdminConfig {
            listen: "127.0.0.1:9600".into(),
            token: None
        }
        .validate()
        .is_ok());
        assert!(AdminConfig {
            listen: "nowhere".into(),
            token: None
        }
        .validate()
        .unwrap_err()
        .starts_with("listen:"));
    }
}
