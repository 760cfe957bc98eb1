//! `weir test`: the plugin author's daily tool. Every event goes through the chain alone,
//! and every plugin's decision and edits are shown with the result.

use std::io::Write;
use std::path::Path;

use crate::pipeline::{load_plugins, process_records, start_chain};
use crate::sink::Encoding;
use crate::source::LineSource;

pub(crate) fn test(config: &Path, input: &Path) -> anyhow::Result<()> {
    let (loaded, engine) = super::load(config)?;
    let plugins = load_plugins(&engine, &loaded)?;
    let mut chain = start_chain(&plugins)?;
    let file = std::fs::File::open(input)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", input.display()))?;
    let mut source = LineSource::new(std::io::BufReader::new(file), &input.display().to_string());
    let width = plugins.iter().map(|p| p.name.len()).max().unwrap_or(0);
    let mut out = std::io::stdout().lock();
    let (mut kept, mut dropped, mut dead) = (0, 0, 0);
    loop {
        let mut records = Vec::with_capacity(1);
        let more = source.read_chunk(1, &mut records)?;
        let Some(record) = records.first() else { break };
        let line = record.origin.position;
        let mut trace = Vec::new();
        let result = process_records(
            &mut chain,
            records,
            &loaded.pipeline.pipeline.event_limits(),
            &Encoding::Lines {
                route_field: Some("@route".into()),
            },
            Some(&mut trace),
        );
        writeln!(out, "── {}:{line}", input.display())?;
        for t in &trace {
            let edits = if t.edits.is_empty() {
                String::new()
            } else {
                format!("  [{}]", t.edits.join("; "))
            };
            writeln!(out, "   {:<width$}  {}{edits}", t.plugin, t.decision)?;
        }
        if result.sent > 0 {
            kept += 1;
            write!(out, "   => ")?;
            out.write_all(&result.events)?;
        } else if result.dead_lettered > 0 {
            dead += 1;
            write!(out, "   => dead-lettered: ")?;
            out.write_all(&result.dead)?;
        } else {
            dropped += 1;
            writeln!(out, "   => dropped")?;
        }
        if !more {
            break;
        }
    }
    writeln!(out, "{kept} kept, {dropped} dropped, {dead} dead-lettered")?;
    Ok(())
}
