//! A minimal `_bulk` endpoint for `weir bench --suite kafka --es-url null`: it reads each
//! request (gunzipping it), counts the documents and answers every one `201`, so the
//! benchmark shows what Weir itself can push when the cluster is not the bottleneck.
//! It runs in the bench process, not in `weir run`, so its CPU is not counted as Weir's.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};

/// Starts the endpoint on a free local port; returns its URL.
pub fn start() -> anyhow::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}", listener.local_addr()?);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream));
        }
    });
    Ok(url)
}

fn serve(stream: TcpStream) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let (mut length, mut gzip) = (0usize, false);
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end().to_ascii_lowercase();
            if header.is_empty() {
                break;
            }
            if let Some(v) = header.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            if header.starts_with("content-encoding:") && header.contains("gzip") {
                gzip = true;
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let reply = if request_line.contains("/_bulk") {
            let text = if gzip {
                let mut out = Vec::new();
                let _ = flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut out);
                out
            } else {
                body
            };
            let lines = text
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .count();
            let mut reply = String::from("{\"took\":0,\"errors\":false,\"items\":[");
            for i in 0..lines / 2 {
                if i > 0 {
                    reply.push(',');
                }
                reply.push_str("{\"create\":{\"status\":201}}");
            }
            reply.push_str("]}");
            reply
        } else {
            "{\"version\":{\"number\":\"9.1.0\"}}".to_owned()
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            reply.len()
        );
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(reply.as_bytes()).is_err()
        {
            return;
        }
    }
}
