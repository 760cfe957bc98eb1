//! Raw HTTP/1.1 over `TcpStream`, for testing what a server does with clients that lie
//! or dawdle: every read and write is bounded by a timeout, so no test can hang on it.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread::sleep;
use std::time::{Duration, Instant};

/// What came back on one connection.
#[derive(Debug)]
pub struct Answer {
    /// The status code, 0 without one.
    pub status: u16,
    /// Everything read.
    pub text: String,
    /// Whether the server closed the connection (rather than the read timing out).
    pub closed: bool,
}

/// Reads until the server closes the connection or `timeout` passes.
pub fn read_answer(stream: &mut TcpStream, timeout: Duration) -> Answer {
    let deadline = Instant::now() + timeout;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    let closed = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break false;
        }
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                break false
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break true,
        }
    };
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    Answer {
        status,
        text,
        closed,
    }
}

/// Sends `raw` on a new connection and reads the answer for at most `timeout`.
pub fn exchange(port: u16, raw: &[u8], timeout: Duration) -> Answer {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return Answer {
            status: 0,
            text: "cannot connect".into(),
            closed: true,
        };
    };
    let _ = stream.set_write_timeout(Some(timeout));
    // The server may close before taking it all (a head over the limit): not an error here.
    let _ = stream.write_all(raw);
    read_answer(&mut stream, timeout)
}

/// `method path` with no body and `Connection: close`, the bearer `token` if given; 2 s at most.
pub fn request(port: u16, method: &str, path: &str, token: Option<&str>) -> Answer {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let raw = format!("{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n");
    exchange(port, raw.as_bytes(), Duration::from_secs(2))
}

/// Writes `first`, then an `a` every 200 ms, until the server closes the connection (or,
/// if `read`, answers); how long after connecting that was (`None`: still going after
/// `give_up`). Without `read` it never looks at the answer, as a client that only sends.
pub fn drip(port: u16, first: &[u8], give_up: Duration, read: bool) -> Option<Duration> {
    let started = Instant::now();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let pace = Duration::from_millis(200);
    stream.set_read_timeout(Some(pace)).ok()?;
    let mut buf = [0u8; 1024];
    if stream.write_all(first).is_err() {
        return Some(started.elapsed());
    }
    loop {
        if started.elapsed() > give_up {
            return None;
        }
        if stream.write_all(b"a").is_err() {
            return Some(started.elapsed());
        }
        if !read {
            sleep(pace);
            continue;
        }
        // Waiting for an answer is the pause between bytes.
        match stream.read(&mut buf) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            _ => return Some(started.elapsed()),
        }
    }
}
