//! `weir check`: everything `run` would do before reading the first event.

use std::path::Path;

use crate::pipeline::{load_plugins, start_chain};
use crate::source::SourceConfig;

pub(crate) fn check(config: &Path) -> anyhow::Result<()> {
    let (loaded, engine) = super::load(config)?;
    if let SourceConfig::File { path } = &loaded.pipeline.source {
        std::fs::metadata(path).map_err(|e| {
            anyhow::anyhow!(
                "{}: source.path: cannot read {}: {e}",
                loaded.file.display(),
                path.display()
            )
        })?;
    }
    let plugins = load_plugins(&engine, &loaded)?;
    let chain = start_chain(&plugins)?;
    println!("{}: ok, {} plugin(s)", loaded.file.display(), plugins.len());
    for p in chain.plugins() {
        let c = &p.spec.config;
        println!(
            "  {}. {:<20} weir:filter@{}  sha256:{}  {} MiB, {}, {}{}",
            p.spec.index + 1,
            p.name,
            p.contract,
            &p.sha256[..12],
            c.limits.memory_mib,
            if c.limits.cpu_deadline {
                format!("{} ms", c.limits.deadline_ms)
            } else {
                "no deadline".to_owned()
            },
            c.on_error.as_str(),
            if p.cached { ", cached" } else { "" }
        );
    }
    Ok(())
}
