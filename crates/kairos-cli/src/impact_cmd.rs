//! `kairos impact`: over the visitors of a profile table, how the offers a candidate version
//! serves differ from what the current version serves (which offers gain or lose how many
//! visitors, which segments change size), so a reviewer sees adverse effects before
//! approving. On channel files in process, or on a version in the control plane against what
//! a group runs (`--channel web --version 3 --against production`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use kairos_api::control::{ImpactReport, ImpactRow};
use kairos_engine::inprocess::{Population, population};
use kairos_engine::report::{Impact, impact};

use crate::control_cmd::{Control, ControlArgs};
use crate::tables::{compile_channel_file, read_tables};

#[derive(clap::Args)]
pub struct Args {
    /// The candidate version's channel file
    #[arg(
        long = "channel-file",
        value_name = "FILE",
        required_unless_present = "channel",
        requires_all = ["current", "profiles"]
    )]
    channel_file: Option<PathBuf>,
    /// The channel file of the version serving now
    #[arg(long, value_name = "FILE")]
    current: Option<PathBuf>,
    /// Profile and dimension tables: TABLE=FILE.csv (repeatable)
    #[arg(long = "profiles", value_name = "TABLE=FILE.csv")]
    profiles: Vec<String>,
    /// Or a channel in the control plane...
    #[arg(long, conflicts_with = "channel_file", requires = "version")]
    channel: Option<String>,
    /// ...its candidate version...
    #[arg(long)]
    version: Option<i64>,
    /// ...against what this group runs (or a version number), over the tables the
    /// runtimes read
    #[arg(long, default_value = "production")]
    against: String,
    /// Offers asked for at every interaction point
    #[arg(long, default_value_t = 3)]
    count: usize,
    /// The audience level (default: the channel's default level)
    #[arg(long)]
    level: Option<String>,
    #[command(flatten)]
    control: ControlArgs,
}

pub fn run(args: &Args) -> Result<ExitCode> {
    if let (Some(channel), Some(version)) = (&args.channel, args.version) {
        return remote(args, channel, version);
    }
    let (Some(candidate_file), Some(current_file)) = (&args.channel_file, &args.current) else {
        bail!(
            "give --channel-file FILE --current FILE --profiles ..., or --channel NAME --version N"
        );
    };
    let mut tables = read_tables(&args.profiles)?;
    let schemas = tables.schemas();
    let (current, _) = compile_channel_file(current_file, &schemas, 1)?;
    let (candidate, _) = compile_channel_file(candidate_file, &schemas, 2)?;
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
    } = population(&tables, &candidate, args.level.as_deref()).map_err(anyhow::Error::msg)?;
    let report = impact(
        &current,
        &candidate,
        visitors,
        args.count.max(1),
        kairos_api::wall_clock(),
    );
    let title = format!(
        "impact of {} against {} over {} visitors of level {level} (table {table})",
        candidate_file.display(),
        current_file.display(),
        report.visitors
    );
    print(&title, &report);
    Ok(ExitCode::SUCCESS)
}

fn remote(args: &Args, channel: &str, version: i64) -> Result<ExitCode> {
    let mut path = format!(
        "/api/channels/{channel}/versions/{version}/impact?against={}&count={}",
        args.against, args.count
    );
    if let Some(level) = &args.level {
        path.push_str(&format!("&level={level}"));
    }
    let answer: ImpactReport = Control::connect(&args.control)?.get(&path)?;
    let rows = |rows: Vec<ImpactRow>| -> Vec<(String, u64, u64)> {
        rows.into_iter()
            .map(|r| (r.name, r.current, r.candidate))
            .collect()
    };
    let report = Impact {
        visitors: answer.visitors,
        offers: rows(answer.offers),
        segments: rows(answer.segments),
    };
    let title = format!(
        "impact of {channel} version {version} against version {} ({}) over {} visitors of level {} (table {})",
        answer.against.version, answer.against.name, report.visitors, answer.level, answer.table
    );
    print(&title, &report);
    Ok(ExitCode::SUCCESS)
}

fn print(title: &str, report: &Impact) {
    println!("{title}");
    if report.offers.is_empty() && report.segments.is_empty() {
        println!("no offer and no segment changes reach");
        return;
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
}
