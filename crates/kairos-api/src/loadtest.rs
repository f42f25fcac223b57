//! The load test driver: virtual touchpoints, each on its own connection, running realistic
//! sessions (start, one to three get offers each followed by a contact event, end) against a
//! runtime for a duration; throughput, latency percentiles and the plan's thresholds. The
//! control plane runs it for the gates; `kairos loadtest --url` runs it from the CLI.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kairos_engine::random::{Random, SplitMix64};
use serde::de::IgnoredAny;
use serde_json::{Map, Value as J};

use crate::runtime::{ChannelAnswer, EventRequest, StartRequest, Started, Values};
use crate::testrun::{IdRange, LoadProgress, LoadtestPlan, LoadtestSummary};
use crate::{Client, ClientError, Code};

/// Why a load test could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadtestError {
    #[error("the runtime does not serve channel '{channel}': {source}")]
    NotServed {
        channel: String,
        source: ClientError,
    },
    #[error("channel '{0}' has no audience level with an ID field")]
    NoAudience(String),
    #[error("channel '{0}' has no interaction point to ask for offers")]
    NoInteractionPoint(String),
    #[error("audience IDs: the first, {}, is above the last, {}", .0.first, .0.last)]
    Ids(IdRange),
    #[error(
        "channel '{channel}' reads its visitors' profiles from table {table}, which cannot be \
         read from here: give the audience IDs to draw (--audience-ids FIRST-LAST)"
    )]
    TableOutOfReach { channel: String, table: String },
    #[error("reading the audience IDs of table {table}: {reason}")]
    Table { table: String, reason: String },
    #[error("table {table} holds no audience ID for the load test")]
    EmptyTable { table: String },
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Reads up to `limit` values of a table's column: the audience IDs of a channel's profile
/// table, for a load test of its visitors. (table, column, limit) -> values.
pub type ReadIds<'a> = &'a mut dyn FnMut(&str, &str, usize) -> Result<Vec<J>, String>;

/// The most audience IDs read from a profile table.
const MOST_TABLE_IDS: usize = 10_000;

/// The audience IDs sessions draw from.
enum Ids {
    Range(IdRange),
    /// Read from the profile table named.
    Table(String, Vec<J>),
}

impl Ids {
    fn draw(&self, rng: &mut SplitMix64) -> J {
        match self {
            Ids::Range(r) => (r.first + rng.next_u64() % (r.last - r.first + 1)).into(),
            Ids::Table(_, ids) => ids[(rng.next_u64() % ids.len() as u64) as usize].clone(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Ids::Range(r) => format!("audience IDs {}-{}", r.first, r.last),
            Ids::Table(table, _) => format!("the IDs of table {table}"),
        }
    }
}

/// What the sessions call: read from the runtime's description of the channel.
struct Calls {
    channel: String,
    level: String,
    id_field: String,
    ips: Vec<String>,
    contact_event: Option<String>,
    ids: Ids,
}

impl Calls {
    fn read(
        client: &Client,
        plan: &LoadtestPlan,
        read_ids: Option<ReadIds>,
    ) -> Result<Calls, LoadtestError> {
        let channel = plan.channel.clone();
        if let Some(range) = plan.audience_ids
            && range.first > range.last
        {
            return Err(LoadtestError::Ids(range));
        }
        let described: ChannelAnswer = client
            .call("GET", &format!("/v1/channels/{channel}"), None::<&()>)
            .map_err(|source| LoadtestError::NotServed {
                channel: channel.clone(),
                source,
            })?;
        let level = described.default_audience_level;
        let (id_field, table) = described
            .audience_levels
            .into_iter()
            .find(|l| Some(&l.name) == level.as_ref())
            .map_or((None, None), |l| {
                (l.id_fields.into_iter().next(), l.profile_table)
            });
        let (Some(level), Some(id_field)) = (level, id_field) else {
            return Err(LoadtestError::NoAudience(channel));
        };
        let ids = match (plan.audience_ids, table, read_ids) {
            (Some(range), _, _) => Ids::Range(range),
            (None, Some(table), Some(read)) => {
                let ids = read(&table, &id_field, MOST_TABLE_IDS).map_err(|reason| {
                    LoadtestError::Table {
                        table: table.clone(),
                        reason,
                    }
                })?;
                if ids.is_empty() {
                    return Err(LoadtestError::EmptyTable { table });
                }
                Ids::Table(table, ids)
            }
            // Visitors without a profile table: any ID is one.
            (None, None, _) => Ids::Range(IdRange {
                first: 1,
                last: 1_000_000,
            }),
            (None, Some(table), None) => {
                return Err(LoadtestError::TableOutOfReach { channel, table });
            }
        };
        if described.interaction_points.is_empty() {
            return Err(LoadtestError::NoInteractionPoint(channel));
        }
        let contact_event = described
            .events
            .into_iter()
            .find(|e| e.logs_contact)
            .map(|e| e.name);
        Ok(Calls {
            channel,
            level,
            id_field,
            ips: described.interaction_points,
            contact_event,
            ids,
        })
    }
}

#[derive(Default)]
struct Totals {
    requests: AtomicU64,
    errors: AtomicU64,
    sessions: AtomicU64,
    /// Sessions whose audience ID had no profile: IDs of another channel, or of no one.
    without_profile: AtomicU64,
}

/// One virtual touchpoint's connection, timing each call.
struct Touchpoint<'a> {
    client: Client,
    totals: &'a Totals,
    latencies: Vec<u32>,
}

impl Touchpoint<'_> {
    fn timed<T>(&mut self, call: impl FnOnce(&Client) -> Result<T, ClientError>) -> Option<T> {
        let started = Instant::now();
        let result = call(&self.client);
        self.latencies
            .push(started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        self.totals.requests.fetch_add(1, Ordering::Relaxed);
        if result.is_err() {
            self.totals.errors.fetch_add(1, Ordering::Relaxed);
        }
        result.ok()
    }
}

/// One virtual touchpoint: sessions one after another until `stop`; its latencies in µs.
fn visitor(
    client: Client,
    calls: &Calls,
    seed: u64,
    stop: &AtomicBool,
    totals: &Totals,
) -> Vec<u32> {
    let mut rng = SplitMix64(seed);
    let mut tp = Touchpoint {
        client,
        totals,
        latencies: Vec::new(),
    };
    let nothing = None::<&()>;
    while !stop.load(Ordering::Relaxed) {
        let id = calls.ids.draw(&mut rng);
        let start = StartRequest {
            session_id: None,
            channel: calls.channel.clone(),
            audience_level: Some(calls.level.clone()),
            audience_id: Values(Map::from_iter([(calls.id_field.clone(), id)])),
            params: None,
            rely_on_existing_session: None,
            debug: None,
        };
        let Some(Started {
            session_id,
            messages,
            ..
        }) = tp.timed(|c| c.call("POST", "/v1/sessions", Some(&start)))
        else {
            continue;
        };
        totals.sessions.fetch_add(1, Ordering::Relaxed);
        if messages.iter().any(|m| m.code == Code::ProfileNotFound) {
            totals.without_profile.fetch_add(1, Ordering::Relaxed);
        }
        for _ in 0..1 + rng.next_u64() % 3 {
            let ip = &calls.ips[(rng.next_u64() % calls.ips.len() as u64) as usize];
            let offers = format!("/v1/sessions/{session_id}/offers?ip={ip}&count=3");
            tp.timed(|c| c.call::<IgnoredAny>("GET", &offers, nothing));
            if let Some(event) = &calls.contact_event {
                let contact = EventRequest {
                    event: event.clone(),
                    params: None,
                };
                let events = format!("/v1/sessions/{session_id}/events");
                tp.timed(|c| c.call::<IgnoredAny>("POST", &events, Some(&contact)));
            }
        }
        let end = format!("/v1/sessions/{session_id}");
        tp.timed(|c| c.call::<IgnoredAny>("DELETE", &end, nothing));
    }
    tp.latencies
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    f64::from(sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]) / 1000.0
}

/// What a load test measured: the summary the gates read, and a report for people.
pub struct Measured {
    pub summary: LoadtestSummary,
    pub report: String,
}

/// Runs `plan` against the runtime at `url`, calling `progress` about five times a second,
/// until its duration is over or `cancel` is set; the summary says whether it met the
/// plan's thresholds (`failures` empty). A plan without audience IDs draws them from the
/// channel's profile table through `read_ids`.
pub fn drive(
    url: &str,
    token: Option<&str>,
    plan: &LoadtestPlan,
    read_ids: Option<ReadIds>,
    progress: &mut dyn FnMut(LoadProgress),
    cancel: &AtomicBool,
) -> Result<Measured, LoadtestError> {
    let client = |_| Client::new(url, token.map(str::to_string));
    let calls = Arc::new(Calls::read(&client(())?, plan, read_ids)?);
    let stop = Arc::new(AtomicBool::new(false));
    let totals = Arc::new(Totals::default());
    let duration = Duration::from_secs(u64::from(plan.duration_seconds));
    let started = Instant::now();
    let workers: Vec<_> = (0..plan.concurrency.max(1))
        .map(|n| {
            let client = client(())?;
            let (calls, stop, totals) = (calls.clone(), stop.clone(), totals.clone());
            Ok(std::thread::spawn(move || {
                visitor(client, &calls, u64::from(n) + 1, &stop, &totals)
            }))
        })
        .collect::<Result<_, ClientError>>()?;
    while started.elapsed() < duration && !cancel.load(Ordering::Relaxed) {
        std::thread::sleep(
            Duration::from_millis(200).min(duration.saturating_sub(started.elapsed())),
        );
        progress(LoadProgress {
            elapsed_seconds: started.elapsed().as_secs_f64(),
            duration_seconds: duration.as_secs_f64(),
            requests: totals.requests.load(Ordering::Relaxed),
        });
    }
    stop.store(true, Ordering::Relaxed);
    let mut latencies: Vec<u32> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap_or_default())
        .collect();
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let requests = latencies.len() as u64;
    let errors = totals.errors.load(Ordering::Relaxed);
    let rps = requests as f64 / elapsed;
    let (p50, p90, p99) = (
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.9),
        percentile(&latencies, 0.99),
    );
    let max = latencies.last().map_or(0.0, |l| f64::from(*l) / 1000.0);
    let mut failures = Vec::new();
    if let Some(max) = plan.max_p99_ms
        && p99 > max
    {
        failures.push(format!("p99 {p99:.2} ms is above the maximum of {max} ms"));
    }
    if let Some(min) = plan.min_rps
        && rps < min
    {
        failures.push(format!("{rps:.0} requests/s is below the minimum of {min}"));
    }
    if errors > 0 {
        failures.push(format!("{errors} requests failed"));
    }
    // A load on visitors with no profile measures another workload: say so, and fail.
    let sessions = totals.sessions.load(Ordering::Relaxed);
    let without_profile = totals.without_profile.load(Ordering::Relaxed);
    if without_profile * 2 > sessions {
        failures.push(format!(
            "{without_profile} of {sessions} sessions found no profile: {} are not in \
             channel {}'s profile table (give the IDs of its visitors)",
            calls.ids.describe(),
            plan.channel
        ));
    }
    let mut report = format!(
        "channel {} at {url}: {requests} requests in {elapsed:.1}s with {} sessions at once\n  \
         throughput {rps:.0} requests/s, {errors} errors\n  \
         latency p50 {p50:.2} ms, p90 {p90:.2} ms, p99 {p99:.2} ms, max {max:.2} ms\n",
        plan.channel, plan.concurrency
    );
    for f in &failures {
        report.push_str(&format!("FAIL {f}\n"));
    }
    if failures.is_empty() {
        report.push_str("loadtest passed\n");
    }
    let summary = LoadtestSummary {
        requests,
        requests_per_second: rps,
        errors,
        p50_ms: p50,
        p99_ms: p99,
        max_p99_ms: plan.max_p99_ms,
        min_rps: plan.min_rps,
        duration_seconds: elapsed,
        failures,
        text: format!("{rps:.0} requests/s, p99 {p99:.2} ms, {errors} errors"),
        run: None,
    };
    Ok(Measured { summary, report })
}
