//! `kairos test FILE... --channel-file FILE [--profiles TABLE=FILE.csv]...`: scenario files
//! run in process against a channel file.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use crate::tables::read_tables;
use kairos_engine::Deployment;
use kairos_engine::inprocess::InProcess;
use kairos_engine::scenario::{format_report, run_file};
use kairos_model::scenario::parse_scenarios;
use kairos_rules::time::Timestamp;

#[derive(clap::Args)]
pub struct Args {
    /// Scenario files (YAML)
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Run in process against this channel file
    #[arg(long = "channel-file", value_name = "FILE", required = true)]
    channel_file: PathBuf,
    /// Profile and dimension tables for the in-process run: TABLE=FILE.csv (repeatable)
    #[arg(long = "profiles", value_name = "TABLE=FILE.csv")]
    profiles: Vec<String>,
    /// Seed for treatment codes, sampling and learning draws: the same seed, the same run
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn wall_clock() -> Timestamp {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    Timestamp(i64::try_from(nanos).unwrap_or(i64::MAX))
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let mut tables = read_tables(&args.profiles)?;
    let channel_path = args.channel_file.display().to_string();
    let text = std::fs::read_to_string(&args.channel_file)
        .with_context(|| format!("cannot read {channel_path}"))?;
    let channel = match kairos_model::parse_channel(&channel_path, &text, &tables.schemas()) {
        Ok(channel) => channel,
        Err(rejected) => {
            for d in &rejected.0 {
                println!("{d}");
            }
            bail!(
                "{channel_path} is not a valid channel file ({} error(s))",
                rejected.0.len()
            );
        }
    };
    let deployment = Deployment::compile(&channel, &tables.schemas(), 1)?;
    let (mut passed, mut failed) = (0, 0);
    for path in &args.files {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {shown}"))?;
        let file = match parse_scenarios(&shown, &text) {
            Ok(file) => file,
            Err(rejected) => {
                for d in &rejected.0 {
                    println!("{d}");
                }
                failed += 1;
                continue;
            }
        };
        if !file.channel.value.eq_ignore_ascii_case(&deployment.channel) {
            println!(
                "{shown}: scenarios are for channel '{}', the channel file is '{}'",
                file.channel.value, deployment.channel
            );
            failed += 1;
            continue;
        }
        // Each file starts from fresh state, at its own clock if it sets one.
        let now = file.now.as_ref().map_or_else(wall_clock, |d| d.value.at);
        let mut target = InProcess::new(&deployment, &mut tables, now, args.seed);
        let reports = run_file(&file, &mut target);
        print!("{}", format_report(&shown, &reports));
        passed += reports.iter().filter(|r| r.passed()).count();
        failed += reports.iter().filter(|r| !r.passed()).count();
    }
    println!("scenarios: {passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
