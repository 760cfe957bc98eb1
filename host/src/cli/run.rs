//! `weir run`.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;

use crate::pipeline::{self, Progress, RunStats};

pub(crate) fn run(config: &Path) -> anyhow::Result<()> {
    let (loaded, engine) = super::load(config)?;
    let stats = Arc::new(RunStats::default());
    let progress = std::io::stderr()
        .is_terminal()
        .then(|| Progress::start(stats.clone()));
    let summary = pipeline::run(&loaded, &engine, &stats);
    drop(progress);
    summary?.print(&mut std::io::stderr())?;
    Ok(())
}
