//! Elasticsearch for the tests: noida-db (an Elasticsearch API emulator from PyPI) started
//! per test, or the cluster named by `WEIR_TEST_ES_URL`; a small blocking HTTP client; and
//! per-index document counts and `_id` listings.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

/// An Elasticsearch endpoint for one test.
pub struct Es {
    /// `http://host:port`, no trailing slash.
    pub url: String,
    _service: Option<super::Service>,
    _data: Option<tempfile::TempDir>,
}

/// Whether the tests use an external cluster.
pub fn external() -> Option<String> {
    std::env::var("WEIR_TEST_ES_URL")
        .ok()
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('/').to_owned())
}

impl Es {
    /// Starts noida-db (or uses `WEIR_TEST_ES_URL`).
    pub fn start() -> Es {
        if let Some(url) = external() {
            return Es {
                url,
                _service: None,
                _data: None,
            };
        }
        let port = super::free_port();
        let data = tempfile::tempdir().expect("temp dir");
        let service = super::Service::spawn(
            Command::new("noida-db")
                .args(["start", "--only", "elasticsearch", "--elasticsearch-port"])
                .arg(port.to_string())
                .arg("--data-dir")
                .arg(data.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )
        .unwrap_or_else(|e| {
                panic!("cannot start noida-db ({e}); install it with `pip install noida-db==0.2.0` (scripts/setup.sh does)")
            });
        let es = Es {
            url: format!("http://127.0.0.1:{port}"),
            _service: Some(service),
            _data: Some(data),
        };
        for _ in 0..200 {
            if matches!(http("GET", &format!("{}/", es.url), None), Ok((200, _))) {
                return es;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("noida-db did not answer on {}", es.url);
    }

    /// Document counts of the indices whose names start with `prefix`, after a refresh.
    pub fn counts(&self, prefix: &str) -> BTreeMap<String, u64> {
        let (_, body) = http(
            "GET",
            &format!("{}/_cat/indices?format=json", self.url),
            None,
        )
        .expect("_cat/indices");
        let list: Vec<Value> = serde_json::from_str(&body).unwrap_or_default();
        let names: Vec<String> = list
            .iter()
            .filter_map(|i| i.get("index")?.as_str().map(str::to_owned))
            .filter(|n| n.starts_with(prefix))
            .collect();
        let mut out = BTreeMap::new();
        for name in names {
            let _ = http("POST", &format!("{}/{name}/_refresh", self.url), None);
            let (_, body) =
                http("GET", &format!("{}/{name}/_count", self.url), None).expect("_count");
            let count = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v.get("count")?.as_u64())
                .unwrap_or(0);
            out.insert(name, count);
        }
        out
    }

    /// Total documents in indices starting with `prefix`.
    pub fn total(&self, prefix: &str) -> u64 {
        self.counts(prefix).values().sum()
    }

    /// Every document in indices starting with `prefix`, once nothing writes to them any
    /// more: each index's listing is checked against its `_count`, because paging on
    /// `seq` alone would skip a second document with the same `seq` at a page boundary
    /// (a duplicate under another `_id`).
    pub fn docs(&self, prefix: &str) -> Vec<Listed> {
        let (docs, counts) = self.list(prefix);
        for (index, count) in counts {
            let listed = docs.iter().filter(|d| d.index == index).count() as u64;
            assert_eq!(
                listed, count,
                "{index}: the listing by seq missed documents its _count has (two with one seq?)"
            );
        }
        docs
    }

    /// Documents in indices starting with `prefix` while they may still be written to:
    /// each one listed is there (the listing may lack the latest ones).
    pub fn docs_so_far(&self, prefix: &str) -> Vec<Listed> {
        self.list(prefix).0
    }

    /// Documents paged with `search_after` over the numeric field `seq` (read back from
    /// the sort values), and each index's `_count` from just before.
    fn list(&self, prefix: &str) -> (Vec<Listed>, BTreeMap<String, u64>) {
        let counts = self.counts(prefix);
        let mut out = Vec::new();
        for index in counts.keys() {
            let mut after: Option<Value> = None;
            loop {
                let mut query = serde_json::json!({
                    "size": 5000, "_source": false, "sort": [{"seq": "asc"}],
                    "query": {"match_all": {}}
                });
                if let Some(a) = &after {
                    query["search_after"] = a.clone();
                }
                let (status, body) = http(
                    "POST",
                    &format!("{}/{index}/_search", self.url),
                    Some(&query.to_string()),
                )
                .expect("_search");
                assert_eq!(status, 200, "{body}");
                let v: Value = serde_json::from_str(&body).expect("search reply");
                let hits = v["hits"]["hits"].as_array().cloned().unwrap_or_default();
                if hits.is_empty() {
                    break;
                }
                for h in &hits {
                    let seq = &h["sort"][0];
                    out.push(Listed {
                        index: h["_index"].as_str().unwrap_or_default().to_owned(),
                        id: h["_id"].as_str().unwrap_or_default().to_owned(),
                        seq: seq
                            .as_u64()
                            .or_else(|| seq.as_f64().map(|f| f as u64))
                            .unwrap_or_else(|| panic!("no seq sort value in {h}")),
                    });
                }
                after = hits.last().and_then(|h| h.get("sort").cloned());
            }
        }
        (out, counts)
    }
}

/// One listed document.
#[derive(Debug, Clone)]
pub struct Listed {
    pub index: String,
    pub id: String,
    /// The document's `seq` field.
    pub seq: u64,
}

/// A blocking HTTP/1.1 request with `Connection: close`; returns status and body.
pub fn http(method: &str, url: &str, body: Option<&str>) -> std::io::Result<(u16, String)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| std::io::Error::other("only http:// URLs"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let mut stream = TcpStream::connect(host)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let body = body.unwrap_or("");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(u) = userinfo {
        request.push_str(&format!(
            "Authorization: Basic {}\r\n",
            base64(u.as_bytes())
        ));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no HTTP header"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn base64(input: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
