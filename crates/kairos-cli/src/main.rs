//! `kairos`: one binary for every Kairos process and command.

mod data_cmd;
mod demo;
mod impact_cmd;
mod loadtest_cmd;
mod remote;
mod runtime_cmd;
mod segments_cmd;
mod tables;
mod test_cmd;
mod up_cmd;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "kairos",
    version,
    about = "Kairos: real-time interaction management"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run Kairos on this machine with the embedded store and the demo channel
    Up(up_cmd::Args),
    /// Check channel files offline and print every error as file:line:column: message
    Validate(validate::Args),
    /// Serve the runtime API: offline mode serves channel files directly
    Runtime(runtime_cmd::Args),
    /// Profile and dimension tables
    #[command(subcommand)]
    Data(data_cmd::DataCommand),
    /// Drive realistic sessions against a group's runtime; thresholds make it pass or fail
    Loadtest(loadtest_cmd::Args),
    /// A flowchart test run: segment sizes and flowchart path counts over a profile table
    Segments(segments_cmd::Args),
    /// How a candidate channel version changes the offers and segments of a profile table's visitors
    Impact(impact_cmd::Args),
    /// Run scenario files (given this visitor and these calls, these offers come back)
    Test(test_cmd::Args),
    /// Demo data for the example channel
    #[command(subcommand)]
    Demo(DemoCommand),
}

#[derive(Subcommand)]
enum DemoCommand {
    /// Write the seeded demo profile tables (customers.csv, accounts.csv) into a folder
    Profiles {
        /// Folder to write into
        #[arg(long, default_value = "examples/bank")]
        out: PathBuf,
        /// Seed of the generator: the same seed writes the same files
        #[arg(long, default_value_t = demo::DEFAULT_SEED)]
        seed: u64,
        /// How many customers
        #[arg(long, default_value_t = demo::DEFAULT_CUSTOMERS)]
        customers: usize,
    },
    /// Write the synthetic benchmark channel (synthetic.yaml) and its customers.csv
    Synthetic {
        /// Folder to write into
        #[arg(long)]
        out: PathBuf,
        /// How many customers
        #[arg(long, default_value_t = 10_000)]
        customers: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(args) => up_cmd::run(args),
        Command::Validate(args) => validate::run(&args),
        Command::Test(args) => test_cmd::run(&args),
        Command::Impact(args) => impact_cmd::run(&args),
        Command::Segments(args) => segments_cmd::run(&args),
        Command::Loadtest(args) => loadtest_cmd::run(&args),
        Command::Runtime(args) => runtime_cmd::run(args),
        Command::Data(command) => data_cmd::run(command),
        Command::Demo(DemoCommand::Profiles {
            out,
            seed,
            customers,
        }) => demo::write_profiles(&out, seed, customers),
        Command::Demo(DemoCommand::Synthetic { out, customers }) => {
            demo::write_synthetic(&out, customers)
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
