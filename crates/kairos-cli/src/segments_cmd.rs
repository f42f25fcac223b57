//! `kairos segments`: a flowchart test run over a profile table: how many visitors land in
//! each segment and take each flowchart path. On a channel file in process, or on a version
//! in the control plane over the tables the runtimes read (`--channel web --version 3`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use kairos_api::control::{SegmentCount, SegmentsReport};
use kairos_engine::inprocess::{Population, population};
use kairos_engine::report::{SegmentCounts, segment_counts};

use crate::control_cmd::{Control, ControlArgs};
use crate::tables::{compile_channel_file, read_tables};

#[derive(clap::Args)]
pub struct Args {
    /// The channel file whose segments and flowcharts run
    #[arg(
        long = "channel-file",
        value_name = "FILE",
        required_unless_present = "channel",
        requires = "profiles"
    )]
    channel_file: Option<PathBuf>,
    /// Profile and dimension tables: TABLE=FILE.csv (repeatable); every row of the audience
    /// level's profile table is one visitor
    #[arg(long = "profiles", value_name = "TABLE=FILE.csv")]
    profiles: Vec<String>,
    /// Or a channel in the control plane...
    #[arg(long, conflicts_with = "channel_file", requires = "version")]
    channel: Option<String>,
    /// ...and its version
    #[arg(long)]
    version: Option<i64>,
    /// The audience level (default: the channel's default level)
    #[arg(long)]
    level: Option<String>,
    #[command(flatten)]
    control: ControlArgs,
}

fn share(n: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        100.0 * n as f64 / total as f64
    }
}

pub fn run(args: &Args) -> Result<ExitCode> {
    if let (Some(channel), Some(version)) = (&args.channel, args.version) {
        let mut path = format!("/api/channels/{channel}/versions/{version}/segments");
        if let Some(level) = &args.level {
            path.push_str(&format!("?level={level}"));
        }
        let answer: SegmentsReport = Control::connect(&args.control)?.get(&path)?;
        let pairs = |rows: Vec<SegmentCount>| -> Vec<(String, u64)> {
            rows.into_iter().map(|r| (r.name, r.visitors)).collect()
        };
        let counts = SegmentCounts {
            visitors: answer.visitors,
            segments: pairs(answer.segments),
            branches: pairs(answer.branches),
            rejected: answer.rejected,
        };
        let described = format!(
            "{channel} version {version}: {} visitors of level {} (table {})",
            counts.visitors, answer.level, answer.table
        );
        print(&described, &counts);
        return Ok(ExitCode::SUCCESS);
    }
    let channel_file = args
        .channel_file
        .as_ref()
        .expect("clap requires --channel-file without --channel");
    let mut tables = read_tables(&args.profiles)?;
    let (dep, _) = compile_channel_file(channel_file, &tables.schemas(), 1)?;
    tables.prepare(&dep);
    let Population {
        level,
        table,
        visitors,
    } = population(&tables, &dep, args.level.as_deref()).map_err(anyhow::Error::msg)?;
    let counts = segment_counts(&dep, visitors, kairos_api::wall_clock());
    let described = format!(
        "{}: {} visitors of level {level} (table {table})",
        dep.channel, counts.visitors
    );
    print(&described, &counts);
    Ok(ExitCode::SUCCESS)
}

fn print(described: &str, counts: &SegmentCounts) {
    println!("flowchart test run of channel {described}");
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
}
