//! The NDJSON sink: a file or standard output.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;

use super::{DeadLetterOut, Sink};
use crate::pipeline::WorkerOutput;
use crate::source::Receipt;

/// Writes encoded lines; dead letters go to the dead-letter output.
pub struct LineSink {
    out: Box<dyn Write + Send>,
    dead: Arc<DeadLetterOut>,
    /// Only needed when the dead-letter output is a Kafka topic.
    runtime: tokio::runtime::Runtime,
}

impl LineSink {
    /// Writes to `out`.
    pub fn new(out: Box<dyn Write + Send>, dead: Arc<DeadLetterOut>) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()?;
        Ok(LineSink { out, dead, runtime })
    }
}

impl Sink for LineSink {
    fn write(&mut self, out: WorkerOutput, receipt: Receipt) -> anyhow::Result<()> {
        self.out
            .write_all(&out.events)
            .context("sink: write failed")?;
        if !out.dead.is_empty() {
            self.runtime
                .block_on(self.dead.write(&out.dead))
                .context("dead_letter: write failed")?;
        }
        if receipt.is_tracked() {
            self.out.flush().context("sink: flush failed")?;
            receipt.complete();
        }
        Ok(())
    }

    fn close(mut self: Box<Self>) -> anyhow::Result<()> {
        self.out.flush().context("sink: flush failed")?;
        self.runtime
            .block_on(self.dead.flush())
            .context("dead_letter: flush failed")
    }
}
