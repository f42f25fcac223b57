//! `kairos test FILE... (--channel-file FILE [--profiles TABLE=FILE.csv]... | --group GROUP |
//! --url URL)`: scenario files run in process against a channel file, or against a running
//! runtime over its API.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use kairos_api::Client;
use kairos_api::control::{ResultKind, ScenarioSummary};
use kairos_api::remote::Remote;
use kairos_engine::Deployment;
use kairos_engine::inprocess::{InProcess, MemoryTables};
use kairos_engine::scenario::{format_report, run_file};
use kairos_model::scenario::{ScenarioFile, parse_scenarios};
use serde_json::Value as J;

use crate::control_cmd::{Control, ControlArgs};
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
    /// Run against a server group's runtime, as the control plane reports it, and attach the
    /// results to the version the group runs
    #[arg(long, conflicts_with = "url")]
    group: Option<String>,
    #[command(flatten)]
    control: ControlArgs,
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

/// The runtime a group's calls go to: the instance that reported to the control plane last,
/// or, when the control plane cannot say, the address `kairos up` gives the group.
pub fn group_url(control: &ControlArgs, group: &str) -> Result<String> {
    if let Ok(mut control) = Control::connect(control)
        && let Ok(Some(address)) = control.group_address(group)
    {
        return Ok(address);
    }
    match group {
        "staging" => Ok("http://127.0.0.1:7701".into()),
        "production" => Ok("http://127.0.0.1:7702".into()),
        other => bail!(
            "no runtime of server group '{other}' has reported to {} (or give --url)",
            control.control
        ),
    }
}

/// Attaches a result to the version `group` runs, or says why it could not.
pub fn attach(
    control: &ControlArgs,
    group: &str,
    channel: &str,
    kind: ResultKind,
    passed: bool,
    summary: J,
) {
    let attached =
        Control::connect(control).and_then(|mut c| c.attach(group, channel, kind, passed, summary));
    match attached {
        Ok(version) => println!("results attached to {version} on {group}"),
        Err(e) => println!("results not attached: {e:#}"),
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
            .or_else(|| args.group.as_deref().map(|g| group_url(&args.control, g)))
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
                    .map_or_else(kairos_api::wall_clock, |d| d.value.at);
                Ok(run_file(
                    file,
                    &mut InProcess::new(deployment, tables, now, *seed),
                ))
            }
            Runner::Remote { url, token } => {
                let client = Client::new(url, token.clone())?;
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
    // Per channel: scenarios passed and failed, for the results attached to its version.
    let mut per_channel: Vec<(String, usize, usize)> = Vec::new();
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
                let ok = reports.iter().filter(|r| r.passed()).count();
                let bad = reports.len() - ok;
                passed += ok;
                failed += bad;
                let channel = file.channel.value.clone();
                match per_channel.iter_mut().find(|(c, _, _)| *c == channel) {
                    Some(entry) => (entry.1, entry.2) = (entry.1 + ok, entry.2 + bad),
                    None => per_channel.push((channel, ok, bad)),
                }
            }
            Err(e) => {
                println!("{e}");
                failed += 1;
            }
        }
    }
    println!("scenarios: {passed} passed, {failed} failed");
    if let Some(group) = &args.group {
        let files: Vec<String> = args.files.iter().map(|f| f.display().to_string()).collect();
        for (channel, ok, bad) in per_channel {
            let summary = serde_json::to_value(ScenarioSummary {
                passed: ok,
                failed: bad,
                files: files.clone(),
                text: format!("{ok} passed, {bad} failed"),
            })?;
            attach(
                &args.control,
                group,
                &channel,
                ResultKind::Scenarios,
                bad == 0 && failed == 0,
                summary,
            );
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
