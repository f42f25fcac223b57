//! `kairos loadtest --group GROUP --channel NAME`: realistic sessions (start, get offers, a
//! contact event, end) against a group's runtime, with a progress bar, throughput and latency
//! percentiles, and thresholds that make it pass or fail.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kairos_api::Client;
use kairos_api::control::{LoadtestSummary, ResultKind};
use kairos_api::runtime::{ChannelAnswer, Started};
use kairos_engine::random::{Random, SplitMix64};
use serde_json::{Value as J, json};

#[derive(clap::Args)]
pub struct Args {
    /// The server group whose runtime takes the load; the results are attached to the
    /// version it runs
    #[arg(long, required_unless_present = "url")]
    group: Option<String>,
    #[command(flatten)]
    control: crate::control_cmd::ControlArgs,
    /// Or the runtime at this address (http://HOST:PORT)
    #[arg(long, conflicts_with = "group")]
    url: Option<String>,
    /// The channel the sessions use
    #[arg(long)]
    channel: String,
    /// How long to run: 30s, 2m
    #[arg(long, default_value = "30s")]
    duration: String,
    /// Sessions running at once
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Fail when the 99th percentile latency is above this, in milliseconds
    #[arg(long)]
    max_p99_ms: Option<f64>,
    /// Fail when fewer requests per second were served
    #[arg(long)]
    min_rps: Option<f64>,
    /// Audience IDs to draw from, as FIRST-LAST (the demo's customers are 1001-4000)
    #[arg(long, default_value = "1001-4000")]
    audience_ids: String,
    /// Touchpoint token for the runtime
    #[arg(long, env = "KAIROS_TOUCHPOINT_TOKEN")]
    token: Option<String>,
}

/// What the sessions call: read from the runtime's description of the channel.
struct Plan {
    level: String,
    id_field: String,
    ips: Vec<String>,
    contact_event: Option<String>,
    ids: (u64, u64),
}

fn plan(client: &mut Client, channel: &str, ids: &str) -> Result<Plan> {
    let described: ChannelAnswer = client
        .call("GET", &format!("/v1/channels/{channel}"), None::<&()>)
        .with_context(|| format!("the runtime does not serve channel '{channel}'"))?;
    let level = described
        .default_audience_level
        .context("the channel has no audience level")?;
    let id_field = described
        .audience_levels
        .into_iter()
        .find(|l| l.name == level)
        .and_then(|l| l.id_fields.into_iter().next())
        .context("the audience level has no ID field")?;
    let ips = described.interaction_points;
    if ips.is_empty() {
        bail!("channel '{channel}' has no interaction point to ask for offers");
    }
    let contact_event = described
        .events
        .into_iter()
        .find(|e| e.logs_contact)
        .map(|e| e.name);
    let (first, last) = ids
        .split_once('-')
        .context("--audience-ids takes FIRST-LAST")?;
    let ids = (
        first
            .trim()
            .parse()
            .context("--audience-ids: FIRST is a number")?,
        last.trim()
            .parse()
            .context("--audience-ids: LAST is a number")?,
    );
    if ids.0 > ids.1 {
        bail!("--audience-ids: FIRST is above LAST");
    }
    Ok(Plan {
        level,
        id_field,
        ips,
        contact_event,
        ids,
    })
}

#[derive(Default)]
struct Totals {
    requests: AtomicU64,
    errors: AtomicU64,
}

/// One virtual touchpoint: sessions one after another until `stop`.
fn visitor(
    mut client: Client,
    plan: &Plan,
    channel: &str,
    seed: u64,
    stop: &AtomicBool,
    totals: &Totals,
) -> Vec<u32> {
    let mut rng = SplitMix64(seed);
    let mut latencies = Vec::new();
    let mut timed = |client: &mut Client, method: &str, path: &str, body: Option<J>| {
        let started = Instant::now();
        let result = client.request(method, path, body.as_ref());
        latencies.push(started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        totals.requests.fetch_add(1, Ordering::Relaxed);
        match result {
            Ok((200, reply)) => Some(reply),
            _ => {
                totals.errors.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    };
    while !stop.load(Ordering::Relaxed) {
        let id = plan.ids.0 + rng.next_u64() % (plan.ids.1 - plan.ids.0 + 1);
        let start = json!({ "channel": channel, "audience_level": plan.level, "audience_id": { plan.id_field.as_str(): id } });
        let Some(started) = timed(&mut client, "POST", "/v1/sessions", Some(start)) else {
            continue;
        };
        let Ok(Started {
            session_id: session,
            ..
        }) = serde_json::from_value(started)
        else {
            continue;
        };
        for _ in 0..1 + rng.next_u64() % 3 {
            let ip = &plan.ips[(rng.next_u64() % plan.ips.len() as u64) as usize];
            timed(
                &mut client,
                "GET",
                &format!("/v1/sessions/{session}/offers?ip={ip}&count=3"),
                None,
            );
            if let Some(event) = &plan.contact_event {
                timed(
                    &mut client,
                    "POST",
                    &format!("/v1/sessions/{session}/events"),
                    Some(json!({ "event": event })),
                );
            }
        }
        timed(
            &mut client,
            "DELETE",
            &format!("/v1/sessions/{session}"),
            None,
        );
    }
    latencies
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    f64::from(sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]) / 1000.0
}

pub fn run(args: &Args) -> Result<ExitCode> {
    let url = match (&args.url, &args.group) {
        (Some(url), _) => url.clone(),
        (None, Some(group)) => crate::test_cmd::group_url(&args.control, group)?,
        (None, None) => bail!("give --group GROUP or --url URL"),
    };
    let duration =
        kairos_rules::time::parse_duration(&args.duration).map_err(anyhow::Error::msg)?;
    let duration =
        Duration::from_nanos(u64::try_from(duration.0).context("--duration must be positive")?);
    let mut probe = Client::new(&url, args.token.clone())?;
    let plan = Arc::new(plan(&mut probe, &args.channel, &args.audience_ids)?);
    let stop = Arc::new(AtomicBool::new(false));
    let totals = Arc::new(Totals::default());
    let started = Instant::now();
    let workers: Vec<_> = (0..args.concurrency.max(1))
        .map(|n| {
            let client = Client::new(&url, args.token.clone())?;
            let (plan, stop, totals, channel) = (
                plan.clone(),
                stop.clone(),
                totals.clone(),
                args.channel.clone(),
            );
            Ok(std::thread::spawn(move || {
                visitor(client, &plan, &channel, n as u64 + 1, &stop, &totals)
            }))
        })
        .collect::<Result<_>>()?;
    // The progress bar, redrawn every 200 ms on standard error.
    while started.elapsed() < duration {
        std::thread::sleep(
            Duration::from_millis(200).min(duration.saturating_sub(started.elapsed())),
        );
        let done = (started.elapsed().as_secs_f64() / duration.as_secs_f64()).min(1.0);
        let bar = "#".repeat((done * 30.0) as usize);
        let requests = totals.requests.load(Ordering::Relaxed);
        eprint!(
            "\r[{bar:<30}] {:>5.1}s  {requests} requests  {:.0}/s ",
            started.elapsed().as_secs_f64(),
            requests as f64 / started.elapsed().as_secs_f64()
        );
        let _ = std::io::stderr().flush();
    }
    stop.store(true, Ordering::Relaxed);
    let mut latencies: Vec<u32> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap_or_default())
        .collect();
    let elapsed = started.elapsed().as_secs_f64();
    eprintln!();
    latencies.sort_unstable();
    let requests = latencies.len();
    let errors = totals.errors.load(Ordering::Relaxed);
    let rps = requests as f64 / elapsed;
    let p99 = percentile(&latencies, 0.99);
    println!(
        "channel {} at {url}: {requests} requests in {elapsed:.1}s with {} sessions at once",
        args.channel, args.concurrency
    );
    println!("  throughput {rps:.0} requests/s, {errors} errors");
    println!(
        "  latency p50 {:.2} ms, p90 {:.2} ms, p99 {p99:.2} ms, max {:.2} ms",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        latencies.last().map_or(0.0, |l| f64::from(*l) / 1000.0)
    );
    let mut failures = Vec::new();
    if let Some(max) = args.max_p99_ms
        && p99 > max
    {
        failures.push(format!("p99 {p99:.2} ms is above --max-p99-ms {max}"));
    }
    if let Some(min) = args.min_rps
        && rps < min
    {
        failures.push(format!("{rps:.0} requests/s is below --min-rps {min}"));
    }
    if errors > 0 {
        failures.push(format!("{errors} requests failed"));
    }
    for f in &failures {
        println!("FAIL {f}");
    }
    if failures.is_empty() {
        println!("loadtest passed");
    }
    if let Some(group) = &args.group {
        let summary = LoadtestSummary {
            requests: requests as u64,
            requests_per_second: rps,
            errors,
            p50_ms: percentile(&latencies, 0.5),
            p99_ms: p99,
            max_p99_ms: args.max_p99_ms,
            min_rps: args.min_rps,
            duration_seconds: elapsed,
            text: format!("{rps:.0} requests/s, p99 {p99:.2} ms, {errors} errors"),
            failures: failures.clone(),
        };
        crate::test_cmd::attach(
            &args.control,
            group,
            &args.channel,
            ResultKind::Loadtest,
            failures.is_empty(),
            serde_json::to_value(summary)?,
        );
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
