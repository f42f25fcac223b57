//! The servers' logs (`kairos up`, `control`, `runtime`): events of `tracing` on stderr, as
//! text for a person or as one JSON object per line for a log collector. Calls run in a
//! `request` span carrying their request ID; no log line holds an audience ID, a parameter or
//! a session ID (paths are logged by the call's name).

use std::io::IsTerminal;

use anyhow::{Context, Result};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(clap::Args)]
pub struct LogArgs {
    /// How logs are written to stderr: human, or json (one object per line)
    #[arg(
        long,
        value_name = "FORMAT",
        env = "KAIROS_LOG_FORMAT",
        default_value = "human"
    )]
    log_format: LogFormat,
    /// What is logged: a level (error, warn, info, debug, trace), or per crate:
    /// warn,kairos_runtime=debug (debug logs every call)
    #[arg(
        long,
        value_name = "FILTER",
        env = "KAIROS_LOG",
        default_value = "info"
    )]
    log: String,
}

impl LogArgs {
    /// Installs the process's logger.
    pub fn init(&self) -> Result<()> {
        let filter: Targets = self
            .log
            .parse()
            .with_context(|| format!("--log: '{}' is not a level or crate=level list", self.log))?;
        // The builder's own level would cap the filter's: the filter decides alone.
        let builder = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_max_level(tracing::Level::TRACE);
        let installed = match self.log_format {
            LogFormat::Human => {
                let color =
                    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
                builder.with_ansi(color).finish().with(filter).try_init()
            }
            LogFormat::Json => builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .finish()
                .with(filter)
                .try_init(),
        };
        installed.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
    }
}
