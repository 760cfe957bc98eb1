//! The command line: `weir run`, `weir check`, `weir test`, `weir bench`.

mod bench;
mod check;
mod run;
mod test;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::LoadedConfig;
use crate::engine::{default_cache_dir, WasmEngine};

/// Weir: Kafka-to-Elasticsearch log pipeline with WebAssembly filter plugins.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a pipeline; prints a summary when a finite input ends.
    Run {
        /// The pipeline file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a pipeline file and load (and initialise) every plugin.
    Check {
        /// The pipeline file.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run events through the chain and show each plugin's decision per event.
    Test {
        /// The pipeline file (its source and sink are ignored).
        #[arg(long, short)]
        config: PathBuf,
        /// Events, one JSON object per line.
        #[arg(long, short)]
        input: PathBuf,
    },
    /// Measure chain throughput against the same work done natively in Rust.
    Bench(bench::BenchArgs),
}

/// Runs the CLI with the process's arguments; the exit code is non-zero on any error.
pub fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { config } => run::run(&config),
        Command::Check { config } => check::check(&config),
        Command::Test { config, input } => test::test(&config, &input),
        Command::Bench(args) => bench::bench(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `weir test ... | head` closing the pipe early is not an error.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // Colours only on a terminal: a log file or a collector gets plain text.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// Loads a config and sets up the engine with its compile cache.
pub(crate) fn load(config: &Path) -> anyhow::Result<(LoadedConfig, WasmEngine)> {
    let loaded = LoadedConfig::load(config)?;
    let cache = match &loaded.pipeline.engine.cache_dir {
        Some(dir) if dir.as_os_str().is_empty() => None,
        Some(dir) => Some(dir.clone()),
        None => default_cache_dir(),
    };
    let limits = weir_wire::ReplyLimits {
        max_depth: loaded.pipeline.pipeline.max_depth,
    };
    let engine = WasmEngine::new(cache, limits)?;
    Ok((loaded, engine))
}
