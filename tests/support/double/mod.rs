//! A fault-injecting Elasticsearch double for the failure paths an emulator cannot
//! produce: whole-request 429/5xx, per-item 429s, per-item mapping rejections, slow or
//! stalled responses, and connection resets. It keeps what it indexed (`create`
//! semantics: 409 for an existing `_id`), counts every attempt per `_id`, and serves
//! `_index_template` and `_ilm/policy` GET/PUT from memory, logging every request.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

mod bulk;
use bulk::bulk;

/// What the double should do wrong.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    /// Whole-request statuses for the next `_bulk` requests, in order (429, 503, ...).
    pub statuses: VecDeque<u16>,
    /// Close the connection without answering for the next this-many `_bulk` requests.
    pub resets: u32,
    /// Answer 429 for every item whose `seq` is a multiple of this, on its first attempt.
    pub item_429_every: Option<u64>,
    /// Reject (400, mapper_parsing_exception) documents whose field holds an object or
    /// an array, as a `keyword` mapping would.
    pub keyword_field: Option<String>,
    /// Wait `delay` before answering each `_bulk` request (all of them when `slow` is 0,
    /// else the next `slow` ones).
    pub delay: Duration,
    /// How many of the next `_bulk` requests are delayed; 0 = every one.
    pub slow: u32,
    /// Never answer `_bulk` requests while set (a stalled cluster).
    pub stall: bool,
    /// Hold `_bulk` requests unanswered until this many are in flight at once and no
    /// other has arrived for `hold_quiet` (or 30 s have passed, less than the client's
    /// default request timeout): a client keeping more
    /// in flight than it may shows it while the held ones wait. Then every request is
    /// answered as usual.
    pub hold_until: Option<u32>,
    /// See `hold_until`.
    pub hold_quiet: Duration,
    /// While stalled, answer this many more `_bulk` requests (any of those waiting, or the
    /// next to arrive): a stalled cluster acknowledging one request at a time.
    pub release: u32,
    /// Reject (400) documents that repeat a key within one object, as Elasticsearch
    /// does: `mapper_parsing_exception` "failed to parse", caused by "Duplicate field".
    pub duplicate_keys: bool,
}

/// What the double has seen and stored.
#[derive(Debug, Default)]
pub struct State {
    /// Faults to apply.
    pub faults: Faults,
    /// Stored documents by `_id`: (index, source).
    pub docs: HashMap<String, (String, Value)>,
    /// `create` attempts per `_id`.
    pub attempts: HashMap<String, u32>,
    /// `_bulk` requests received.
    pub bulk_requests: u32,
    /// Documents in the `_bulk` requests received, counted on arrival (before any delay
    /// or stall): with `answered_docs`, what a stalled cluster holds unanswered.
    pub received_docs: usize,
    /// Documents in the `_bulk` requests answered so far.
    pub answered_docs: usize,
    /// Largest number of `_bulk` requests being answered at once.
    pub max_concurrent: u32,
    concurrent: u32,
    /// `METHOD path` of every request.
    pub log: Vec<String>,
    /// Bodies PUT to `_index_template/<name>` and `_ilm/policy/<name>`, by path.
    pub resources: HashMap<String, Value>,
    /// Whether request bodies arrived gzip-compressed.
    pub gzipped: u32,
    /// `Authorization` headers seen.
    pub auth: Vec<String>,
    /// Documents in each `_bulk` request, in arrival order, faults or not: how often
    /// each document was sent.
    pub bulk_sizes: Vec<usize>,
    /// For `hold_until`: when the first request was held, the last one arrived, and
    /// whether they have been let go.
    hold: Option<(Instant, Instant)>,
    released: bool,
}

/// A running double.
pub struct Double {
    /// `http://127.0.0.1:port`.
    pub url: String,
    /// Shared state; lock to set faults or read results.
    pub state: Arc<Mutex<State>>,
}

impl Double {
    /// Starts listening on a free port.
    pub fn start() -> Double {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = shared.clone();
                std::thread::spawn(move || serve(stream, state));
            }
        });
        Double { url, state }
    }

    /// The same double over HTTPS, with a certificate for `localhost` signed by a fresh
    /// CA; returns the double (its URL is `https://localhost:port`) and the CA's PEM.
    pub fn start_tls() -> (Double, String) {
        let ca_key = rcgen::KeyPair::generate().expect("CA key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "weir test CA");
        let ca = ca_params.self_signed(&ca_key).expect("CA cert");
        let key = rcgen::KeyPair::generate().expect("server key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("server params")
            .signed_by(&key, &ca, &ca_key)
            .expect("server cert");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .expect("server config");
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        std::thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                let state = shared.clone();
                let Ok(conn) = rustls::ServerConnection::new(config.clone()) else {
                    continue;
                };
                std::thread::spawn(move || serve(rustls::StreamOwned::new(conn, tcp), state));
            }
        });
        let double = Double {
            url: format!("https://localhost:{port}"),
            state,
        };
        (double, ca.pem())
    }

    /// Sets the faults.
    pub fn set(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut self.state.lock().unwrap().faults);
    }

    /// Waits until no `_bulk` request is being answered (late, slow ones included).
    pub fn wait_idle(&self) {
        while self.state.lock().unwrap().concurrent > 0 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Number of stored documents.
    pub fn stored(&self) -> usize {
        self.state.lock().unwrap().docs.len()
    }
}

fn serve(stream: impl Read + Write, state: Arc<Mutex<State>>) {
    let mut reader = BufReader::new(stream);
    loop {
        let Some((method, path, headers, body)) = read_request(&mut reader) else {
            return;
        };
        let is_bulk = path.starts_with("/_bulk");
        {
            let mut s = state.lock().unwrap();
            s.log.push(format!("{method} {path}"));
            if let Some(a) = headers.get("authorization") {
                s.auth.push(a.clone());
            }
            if is_bulk {
                s.bulk_requests += 1;
                if s.faults.resets > 0 {
                    s.faults.resets -= 1;
                    return; // dropped without an answer: the client sees a reset
                }
            }
        }
        let (status, reply) = if is_bulk {
            bulk(&state, &headers, body)
        } else {
            other(&state, &method, &path, &body)
        };
        let text = reply.to_string();
        let head = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            text.len()
        );
        let writer = reader.get_mut();
        if writer.write_all(head.as_bytes()).is_err()
            || writer.write_all(text.as_bytes()).is_err()
            || writer.flush().is_err()
        {
            return;
        }
    }
}

type Request = (String, String, HashMap<String, String>, Vec<u8>);

fn read_request(reader: &mut BufReader<impl Read>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some((method, path, headers, body))
}

fn other(state: &Arc<Mutex<State>>, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
    let mut s = state.lock().unwrap();
    let name = path.rsplit('/').next().unwrap_or_default().to_owned();
    match (method, path) {
        ("GET", "/") => (
            200,
            json!({"name": "double", "version": {"number": "9.1.0"}, "tagline": "You Know, for Search"}),
        ),
        ("GET", p) if p.starts_with("/_index_template/") => match s.resources.get(p) {
            Some(v) => (
                200,
                json!({"index_templates": [{"name": name, "index_template": v}]}),
            ),
            None => (
                404,
                json!({"error": {"type": "resource_not_found_exception"}, "status": 404}),
            ),
        },
        ("GET", p) if p.starts_with("/_ilm/policy/") => match s.resources.get(p) {
            Some(v) => (200, json!({ name: {"version": 1, "policy": v["policy"]} })),
            None => (
                404,
                json!({"error": {"type": "resource_not_found_exception"}, "status": 404}),
            ),
        },
        ("PUT", p) if p.starts_with("/_index_template/") || p.starts_with("/_ilm/policy/") => {
            let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
            s.resources.insert(p.to_owned(), v);
            (200, json!({"acknowledged": true}))
        }
        _ => (404, json!({"error": "no handler found for uri"})),
    }
}
