//! `kairos loadtest (--group GROUP | --url URL) --channel NAME`: realistic sessions (start,
//! get offers, a contact event, end) against a runtime, with a progress bar, throughput and
//! latency percentiles, and thresholds that make it pass or fail. With `--group` the control
//! plane runs it against the group's runtime and records the outcome for the gates; with
//! `--url` it runs from here and records nothing.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use kairos_api::loadtest;
use kairos_api::testrun::{IdRange, LoadProgress, LoadtestPlan, TestRunRequest};

use crate::control_cmd::{Control, ControlArgs};

#[derive(clap::Args)]
pub struct Args {
    /// Have the control plane load this server group's runtime and record the outcome with
    /// the version the group runs, for the gates
    #[arg(long, required_unless_present = "url")]
    group: Option<String>,
    #[command(flatten)]
    control: ControlArgs,
    /// Or load the runtime at this address (http://HOST:PORT) from here; nothing is recorded
    #[arg(long, conflicts_with = "group")]
    url: Option<String>,
    /// The channel the sessions use
    #[arg(long)]
    channel: String,
    /// How long to run: 30s, 2m (at most 10m)
    #[arg(long, default_value = "30s")]
    duration: String,
    /// Sessions running at once (at most 256)
    #[arg(long, default_value_t = 8)]
    concurrency: u32,
    /// Fail when the 99th percentile latency is above this, in milliseconds
    #[arg(long)]
    max_p99_ms: Option<f64>,
    /// Fail when fewer requests per second were served
    #[arg(long)]
    min_rps: Option<f64>,
    /// Audience IDs to draw from, as FIRST-LAST; with --group, without it, the IDs of the
    /// channel's profile table (the demo's customers are 1001-4000)
    #[arg(long, value_name = "FIRST-LAST")]
    audience_ids: Option<String>,
    /// Touchpoint token for the runtime at --url
    #[arg(long, env = "KAIROS_TOUCHPOINT_TOKEN")]
    token: Option<String>,
}

/// Progress bars only on a terminal, and never with `NO_COLOR`.
pub fn shows_progress() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Redraws the progress bar on standard error.
pub fn draw_progress(p: LoadProgress) {
    let done = (p.elapsed_seconds / p.duration_seconds.max(0.001)).min(1.0);
    eprint!(
        "\r[{:<30}] {:>5.1}s  {} requests  {:.0}/s ",
        "#".repeat((done * 30.0) as usize),
        p.elapsed_seconds,
        p.requests,
        p.requests as f64 / p.elapsed_seconds.max(0.001)
    );
    let _ = std::io::stderr().flush();
}

fn plan(args: &Args) -> Result<LoadtestPlan> {
    let duration =
        kairos_rules::time::parse_duration(&args.duration).map_err(anyhow::Error::msg)?;
    let seconds = u32::try_from(duration.0.saturating_add(999_999_999) / 1_000_000_000)
        .ok()
        .filter(|s| *s > 0)
        .context("--duration must be positive")?;
    let number = |text: &str, which| {
        text.trim()
            .parse::<u64>()
            .with_context(|| format!("--audience-ids: {which} is a number"))
    };
    let audience_ids = match &args.audience_ids {
        Some(range) => {
            let (first, last) = range
                .split_once('-')
                .context("--audience-ids takes FIRST-LAST")?;
            Some(IdRange {
                first: number(first, "FIRST")?,
                last: number(last, "LAST")?,
            })
        }
        None => None,
    };
    Ok(LoadtestPlan {
        channel: args.channel.clone(),
        duration_seconds: seconds,
        concurrency: args.concurrency,
        max_p99_ms: args.max_p99_ms,
        min_rps: args.min_rps,
        audience_ids,
    })
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let plan = plan(args)?;
    let Some(url) = &args.url else {
        let group = args
            .group
            .as_deref()
            .context("give --group GROUP or --url URL")?;
        return Control::connect(&args.control)?.run_tests(group, &TestRunRequest::Loadtest(plan));
    };
    let bar = shows_progress();
    // From here the profile tables are out of reach: a channel with one needs the IDs given.
    let measured = loadtest::drive(
        url,
        args.token.as_deref(),
        &plan,
        None,
        &mut |p| {
            if bar {
                draw_progress(p);
            }
        },
        &AtomicBool::new(false),
    )?;
    if bar {
        eprintln!();
    }
    print!("{}", measured.report);
    Ok(if measured.summary.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
