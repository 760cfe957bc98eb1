//! `weir bench` (filled in below).

#[derive(Debug, clap::Args)]
pub(crate) struct BenchArgs {}

pub(crate) fn bench(_args: &BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
