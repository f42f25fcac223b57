//! `kairos impact --channel-file CANDIDATE --current FILE --profiles TABLE=FILE.csv...`: over
//! the visitors of a profile table, how the offers a candidate version serves differ from what
//! the current version serves (which offers gain or lose how many visitors, which segments
//! change size), so a reviewer sees adverse effects before approving.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use kairos_engine::report::impact;

use crate::tables::{Population, compile_channel_file, population, read_tables};

#[derive(clap::Args)]
pub struct Args {
    /// The candidate version's channel file
    #[arg(long = "channel-file", value_name = "FILE")]
    channel_file: PathBuf,
    /// The channel file of the version serving now
    #[arg(long, value_name = "FILE")]
    current: PathBuf,
    /// Profile and dimension tables: TABLE=FILE.csv (repeatable)
    #[arg(long = "profiles", value_name = "TABLE=FILE.csv", required = true)]
    profiles: Vec<String>,
    /// Offers asked for at every interaction point
    #[arg(long, default_value_t = 3)]
    count: usize,
    /// The audience level (default: the channel's default level)
    #[arg(long)]
    level: Option<String>,
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let mut tables = read_tables(&args.profiles)?;
    let schemas = tables.schemas();
    let (current, _) = compile_channel_file(&args.current, &schemas, 1)?;
    let (candidate, _) = compile_channel_file(&args.channel_file, &schemas, 2)?;
    if !current.channel.eq_ignore_ascii_case(&candidate.channel) {
        bail!(
            "the files are different channels: '{}' and '{}'",
            current.channel,
            candidate.channel
        );
    }
    tables.prepare(&current);
    tables.prepare(&candidate);
    let Population {
        level,
        table,
        visitors,
    } = population(&tables, &candidate, args.level.as_deref())?;
    let report = impact(
        &current,
        &candidate,
        visitors,
        args.count.max(1),
        kairos_server::wall_clock(),
    );
    println!(
        "impact of {} against {} over {} visitors of level {level} (table {table})",
        args.channel_file.display(),
        args.current.display(),
        report.visitors
    );
    if report.offers.is_empty() && report.segments.is_empty() {
        println!("no offer and no segment changes reach");
        return Ok(ExitCode::SUCCESS);
    }
    let (offers_title, segments_title) = ("offer (visitors served)", "segment (visitors in it)");
    let names = report
        .offers
        .iter()
        .map(|(o, ..)| o.len())
        .chain(report.segments.iter().map(|(s, ..)| s.len()));
    let width = names
        .chain([offers_title.len(), segments_title.len()])
        .max()
        .unwrap_or(8);
    let print = |title: &str, rows: &[(String, u64, u64)]| {
        if rows.is_empty() {
            return;
        }
        println!(
            "\n{title:<width$}  {:>9}  {:>9}  {:>8}",
            "now", "candidate", "change"
        );
        for (name, now, next) in rows {
            println!(
                "{name:<width$}  {now:>9}  {next:>9}  {:>+8}",
                *next as i64 - *now as i64
            );
        }
    };
    print(offers_title, &report.offers);
    print(segments_title, &report.segments);
    Ok(ExitCode::SUCCESS)
}
