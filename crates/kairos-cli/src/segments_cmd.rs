//! `kairos segments --channel-file FILE --profiles TABLE=FILE.csv...`: a flowchart test run
//! over a profile table: how many visitors land in each segment and take each flowchart path.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use kairos_engine::report::segment_counts;

use crate::tables::{Population, compile_channel_file, population, read_tables};

#[derive(clap::Args)]
pub struct Args {
    /// The channel file whose segments and flowcharts run
    #[arg(long = "channel-file", value_name = "FILE")]
    channel_file: PathBuf,
    /// Profile and dimension tables: TABLE=FILE.csv (repeatable); every row of the audience
    /// level's profile table is one visitor
    #[arg(long = "profiles", value_name = "TABLE=FILE.csv", required = true)]
    profiles: Vec<String>,
    /// The audience level (default: the channel's default level)
    #[arg(long)]
    level: Option<String>,
}

fn share(n: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        100.0 * n as f64 / total as f64
    }
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let mut tables = read_tables(&args.profiles)?;
    let (dep, _) = compile_channel_file(&args.channel_file, &tables.schemas(), 1)?;
    tables.prepare(&dep);
    let Population {
        level,
        table,
        visitors,
    } = population(&tables, &dep, args.level.as_deref())?;
    let counts = segment_counts(&dep, visitors, kairos_server::wall_clock());
    println!(
        "flowchart test run of channel {}: {} visitors of level {level} (table {table})",
        dep.channel, counts.visitors
    );
    let width = counts
        .branches
        .iter()
        .map(|(b, _)| b.chars().count())
        .chain(counts.segments.iter().map(|(s, _)| s.len()))
        .max()
        .unwrap_or(10)
        .max(10);
    println!("\n{:<width$}  {:>9}  {:>6}", "segment", "visitors", "share");
    for (segment, n) in &counts.segments {
        println!(
            "{segment:<width$}  {n:>9}  {:>5.1}%",
            share(*n, counts.visitors)
        );
    }
    println!(
        "\n{:<width$}  {:>9}  {:>6}",
        "flowchart path", "visitors", "share"
    );
    for (path, n) in &counts.branches {
        println!(
            "{path:<width$}  {n:>9}  {:>5.1}%",
            share(*n, counts.visitors)
        );
    }
    if counts.rejected > 0 {
        println!(
            "\n{} rows could not start a session (their audience ID is incomplete)",
            counts.rejected
        );
    }
    Ok(ExitCode::SUCCESS)
}
