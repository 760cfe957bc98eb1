//! A TCP proxy in front of an Elasticsearch endpoint that can be switched off: while down,
//! it closes its listening socket (connections are refused) and cuts open connections.
//! It works the same in front of the emulator and a real cluster.

use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A running proxy.
pub struct Proxy {
    /// `http://127.0.0.1:port`.
    pub url: String,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    /// Proxies a free local port to `upstream` (`http://host:port`).
    pub fn start(upstream: &str) -> Proxy {
        let target = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let port = super::free_port();
        let up = Arc::new(AtomicBool::new(true));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (flag, conns) = (up.clone(), open.clone());
        std::thread::spawn(move || loop {
            while !flag.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) else {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            };
            listener.set_nonblocking(true).expect("nonblocking");
            while flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        let Ok(server) = TcpStream::connect(&target) else {
                            continue;
                        };
                        let mut list = conns.lock().unwrap();
                        list.extend(
                            [client.try_clone(), server.try_clone()]
                                .into_iter()
                                .flatten(),
                        );
                        pipe(
                            client.try_clone().expect("clone"),
                            server.try_clone().expect("clone"),
                        );
                        pipe(server, client);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            // Down: the listener is dropped here, so new connections are refused.
        });
        super::wait_for_port(port, Duration::from_secs(5));
        Proxy {
            url: format!("http://127.0.0.1:{port}"),
            up,
            open,
        }
    }

    /// Refuses new connections and cuts the open ones.
    pub fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        for c in self.open.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }

    /// Accepts connections again.
    pub fn up(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(Shutdown::Write);
    });
}
