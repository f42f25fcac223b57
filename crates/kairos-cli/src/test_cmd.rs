//! `kairos test FILE... (--group GROUP | --channel-file FILE [--profiles TABLE=FILE.csv]... |
//! --url URL)`: scenario files submitted to the control plane, which runs them against a
//! group's runtime and records the outcome for the gates; or run here, in process against a
//! channel file or against a runtime's API, recording nothing.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use kairos_api::Client;
use kairos_api::remote::Remote;
use kairos_api::testrun::{SubmittedFile, TestRunRequest};
use kairos_engine::Deployment;
use kairos_engine::inprocess::{InProcess, MemoryTables};
use kairos_engine::scenario::{ScenarioReport, run_file, run_files};
use kairos_model::scenario::{ScenarioFile, parse_scenarios};

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
    /// Have the control plane run them against this server group's runtime and record the
    /// results with the versions the group runs, for the gates
    #[arg(long, conflicts_with = "url")]
    group: Option<String>,
    #[command(flatten)]
    control: ControlArgs,
    /// Run them from here against the runtime at this address (http://HOST:PORT); nothing
    /// is recorded
    #[arg(long)]
    url: Option<String>,
    /// Touchpoint token for the runtime at --url
    #[arg(long, env = "KAIROS_TOUCHPOINT_TOKEN")]
    token: Option<String>,
    /// Seed for treatment codes, sampling and learning draws of an in-process run
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Where scenarios run from here.
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
    fn run(&mut self, file: &ScenarioFile, shown: &str) -> Result<Vec<ScenarioReport>, String> {
        match self {
            Runner::InProcess {
                deployment,
                tables,
                seed,
            } => {
                if !file.channel.value.eq_ignore_ascii_case(&deployment.channel) {
                    return Err(format!(
                        "{shown}: scenarios are for channel '{}', the channel file is '{}'",
                        file.channel.value, deployment.channel
                    ));
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
                let client = Client::new(url, token.clone()).map_err(|e| e.to_string())?;
                Ok(run_file(
                    file,
                    &mut Remote::new(client, &file.channel.value),
                ))
            }
        }
    }
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let mut files = Vec::new();
    for path in &args.files {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {name}"))?;
        files.push(SubmittedFile { name, text });
    }
    if let Some(group) = &args.group {
        let request = TestRunRequest::Scenarios { files };
        return Control::connect(&args.control)?.run_tests(group, &request);
    }
    let mut runner = match (&args.url, &args.channel_file) {
        (Some(url), _) => Runner::Remote {
            url: url.clone(),
            token: args.token.clone(),
        },
        (None, Some(channel_file)) => {
            let tables = read_tables(&args.profiles)?;
            let (deployment, _) = compile_channel_file(channel_file, &tables.schemas(), 1)?;
            Runner::InProcess {
                deployment: Box::new(deployment),
                tables,
                seed: args.seed,
            }
        }
        (None, None) => {
            bail!("say where to run: --group GROUP, --channel-file FILE (in process) or --url URL")
        }
    };
    let parsed: Vec<_> = files
        .into_iter()
        .map(|f| {
            let file = parse_scenarios(&f.name, &f.text);
            (f.name, file)
        })
        .collect();
    let totals = run_files(
        &parsed,
        &mut |file, shown| runner.run(file, shown),
        &mut |text| print!("{text}"),
    );
    Ok(if totals.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
