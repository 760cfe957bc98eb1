//! `weir bench --suite reload`: hot reload under load. Runs the real `weir run` (this
//! binary) over a generated file through the four bundled plugins, once undisturbed and
//! once with a reload every `interval`, and reports the swap time of each reload (trigger
//! to the first batch on the new chain, from `/status`) and the throughput dip.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;

use super::median;
use super::spawn::FilePipeline;
use crate::admin::client::request;

/// What to run.
#[derive(Debug, Clone)]
pub struct ReloadOptions {
    /// Events in the corpus.
    pub events: usize,
    /// Reloads during the disturbed run.
    pub reloads: usize,
    /// Pause between reloads.
    pub interval: Duration,
    /// Undisturbed and disturbed runs each.
    pub rounds: usize,
    /// Directory of the bundled plugins.
    pub wasm_dir: PathBuf,
    /// GeoIP database.
    pub geoip_db: PathBuf,
}

/// What it measured.
#[derive(Debug, Clone)]
pub struct ReloadReport {
    /// Every reload's swap time.
    pub swaps: Vec<Duration>,
    /// Events/s of each undisturbed run.
    pub steady: Vec<f64>,
    /// Events/s of each run with reloads.
    pub disturbed: Vec<f64>,
    /// Events in the corpus.
    pub events: usize,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Runs the benchmark.
pub fn run(opts: &ReloadOptions) -> anyhow::Result<ReloadReport> {
    let setup = FilePipeline::new(opts.events, &opts.wasm_dir, &opts.geoip_db)?;
    let mut report = ReloadReport {
        swaps: Vec::new(),
        steady: Vec::new(),
        disturbed: Vec::new(),
        events: opts.events,
    };
    for round in 0..opts.rounds * 2 {
        let reloading = round % 2 == 1;
        let port = free_port()?;
        let started = Instant::now();
        let mut child = setup.spawn(
            "pipeline.toml",
            &format!("[admin]\nlisten = \"127.0.0.1:{port}\"\n"),
        )?;
        if reloading {
            let ready_by = Instant::now() + Duration::from_secs(30);
            while !matches!(request(port, "GET", "/ready", None), Ok((200, _))) {
                if Instant::now() > ready_by {
                    let _ = child.kill();
                    bail!("weir run did not become ready");
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            for _ in 0..opts.reloads {
                std::thread::sleep(opts.interval);
                let Ok((200, body)) = request(port, "POST", "/reload", None) else {
                    break;
                };
                let generation =
                    serde_json::from_str::<serde_json::Value>(&body)?["generation"].clone();
                // The swap is recorded when a worker runs its first batch on the new chain.
                let wait_until = Instant::now() + Duration::from_secs(5);
                while Instant::now() < wait_until {
                    let Ok((200, status)) = request(port, "GET", "/status", None) else {
                        break;
                    };
                    let status: serde_json::Value = serde_json::from_str(&status)?;
                    let last = &status["last_reload"];
                    if last["generation"] == generation {
                        if let Some(ms) = last["swap_ms"].as_f64() {
                            report.swaps.push(Duration::from_secs_f64(ms / 1e3));
                            break;
                        }
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        }
        let status = child.wait()?;
        if !status.success() {
            bail!("weir run failed ({status})");
        }
        let rate = opts.events as f64 / started.elapsed().as_secs_f64();
        if reloading {
            report.disturbed.push(rate);
        } else {
            report.steady.push(rate);
        }
    }
    Ok(report)
}

impl ReloadReport {
    /// Prints the figures.
    pub fn print(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        let ms: Vec<f64> = self.swaps.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        let (lo, hi) = ms
            .iter()
            .fold((f64::MAX, 0f64), |(lo, hi), x| (lo.min(*x), hi.max(*x)));
        writeln!(
            out,
            "{} events per run, the four bundled plugins, default workers",
            self.events
        )?;
        writeln!(out, "swap time, trigger to first batch on the new chain: median {:.1} ms, min-max {lo:.1}-{hi:.1} ms over {} reloads", median(&ms), ms.len())?;
        let (steady, disturbed) = (median(&self.steady), median(&self.disturbed));
        writeln!(out, "throughput: {steady:.0} events/s undisturbed, {disturbed:.0} events/s with reloads ({:+.1}%)", (disturbed / steady - 1.0) * 100.0)?;
        Ok(())
    }
}
