//! `kairos test FILE... (--channel-file FILE [--profiles TABLE=FILE.csv]... | --group GROUP |
//! --url URL)`: scenario files run in process against a channel file, or against a running
//! runtime over its API.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use kairos_engine::Deployment;
use kairos_engine::inprocess::{InProcess, MemoryTables};
use kairos_engine::scenario::{format_report, run_file};
use kairos_model::scenario::{ScenarioFile, parse_scenarios};

use crate::remote::{Client, Remote};
use crate::tables::{compile_channel_file, read_tables};

#[derive(clap::Args)]
pub struct Args {
    /// Scenario files (YAML)
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Run in process against this channel file
    #[arg(long = "channel-file", value_name = "FILE", conflicts_with_all = ["group", "url"])]
    channel_file: Option<PathBuf>,
    /// Profile and dimension tables for the in-process run: TABLE=FILE.csv (repeatable)
    #[arg(long = "profiles", value_name = "TABLE=FILE.csv")]
    profiles: Vec<String>,
    /// Run against a server group's runtime (staging or production, as `kairos up` runs them)
    #[arg(long, conflicts_with = "url")]
    group: Option<String>,
    /// Run against the runtime at this address (http://HOST:PORT)
    #[arg(long)]
    url: Option<String>,
    /// Touchpoint token for the runtime
    #[arg(long, env = "KAIROS_TOUCHPOINT_TOKEN")]
    token: Option<String>,
    /// Seed for treatment codes, sampling and learning draws of an in-process run
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// The runtime a group's scenarios run against. Until the control plane can say where a group
/// runs, the groups are those `kairos up` starts.
pub fn group_url(group: &str) -> Result<String> {
    match group {
        "staging" => Ok("http://127.0.0.1:7701".into()),
        "production" => Ok("http://127.0.0.1:7702".into()),
        other => bail!(
            "unknown server group '{other}': the groups are staging and production (or give --url)"
        ),
    }
}

/// Where the scenarios run.
enum Runner {
    InProcess {
        deployment: Box<Deployment>,
        tables: MemoryTables,
        seed: u64,
    },
    Remote {
        url: String,
        token: Option<String>,
    },
}

impl Runner {
    fn from_args(args: &Args) -> Result<Runner> {
        if let Some(url) = args
            .url
            .clone()
            .map(Ok)
            .or_else(|| args.group.as_deref().map(group_url))
        {
            return Ok(Runner::Remote {
                url: url?,
                token: args.token.clone(),
            });
        }
        let Some(channel_file) = &args.channel_file else {
            bail!("say where to run: --channel-file FILE (in process), --group GROUP or --url URL");
        };
        let tables = read_tables(&args.profiles)?;
        let (deployment, _) = compile_channel_file(channel_file, &tables.schemas(), 1)?;
        let deployment = Box::new(deployment);
        Ok(Runner::InProcess {
            deployment,
            tables,
            seed: args.seed,
        })
    }

    fn run(
        &mut self,
        file: &ScenarioFile,
        shown: &str,
    ) -> Result<Vec<kairos_engine::scenario::ScenarioReport>> {
        match self {
            Runner::InProcess {
                deployment,
                tables,
                seed,
            } => {
                if !file.channel.value.eq_ignore_ascii_case(&deployment.channel) {
                    bail!(
                        "{shown}: scenarios are for channel '{}', the channel file is '{}'",
                        file.channel.value,
                        deployment.channel
                    );
                }
                // Each file starts from fresh state, at its own clock if it sets one.
                let now = file
                    .now
                    .as_ref()
                    .map_or_else(kairos_server::wall_clock, |d| d.value.at);
                Ok(run_file(
                    file,
                    &mut InProcess::new(deployment, tables, now, *seed),
                ))
            }
            Runner::Remote { url, token } => {
                let client = Client::new(url, token.clone()).map_err(anyhow::Error::msg)?;
                Ok(run_file(
                    file,
                    &mut Remote::new(client, &file.channel.value),
                ))
            }
        }
    }
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let mut runner = Runner::from_args(args)?;
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
        match runner.run(&file, &shown) {
            Ok(reports) => {
                print!("{}", format_report(&shown, &reports));
                passed += reports.iter().filter(|r| r.passed()).count();
                failed += reports.iter().filter(|r| !r.passed()).count();
            }
            Err(e) => {
                println!("{e}");
                failed += 1;
            }
        }
    }
    println!("scenarios: {passed} passed, {failed} failed");
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
