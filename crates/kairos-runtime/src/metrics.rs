//! Prometheus metrics: request counts and latency histograms per call, live sessions, offers
//! served, names touchpoints called that the channel lacks, and the history writer: its queue
//! depth, commits, commit time and the writes and records committed.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kairos_store::WriterStats;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// The calls a runtime serves, each with its own counters.
pub const CALLS: [&str; 10] = [
    "start_session",
    "get_offers",
    "post_event",
    "set_audience",
    "get_profile",
    "end_session",
    "batch",
    "version",
    "interact",
    "other",
];

/// How many distinct unknown names are counted; more are lumped together (bounded labels).
const MAX_UNKNOWN_NAMES: usize = 1000;

/// Each request counts in its own bucket only, summed up when read: one counter to bump per
/// request instead of every bucket above its latency.
#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; 12],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Requests at or under each bucket's bound, as Prometheus histograms count them.
    fn cumulative(&self) -> [u64; 12] {
        let mut total = 0;
        std::array::from_fn(|i| {
            total += self.buckets[i].load(Ordering::Relaxed);
            total
        })
    }
}

/// The statuses counted one by one; others are counted as `other`.
const STATUSES: [u16; 8] = [200, 400, 401, 403, 404, 413, 500, 503];

#[derive(Default)]
pub struct Metrics {
    latency: [Histogram; 10],
    /// Per call, per status in [`STATUSES`] and a last slot for any other.
    statuses: [[AtomicU64; 9]; 10],
    offers_served: AtomicU64,
    unknown: Mutex<BTreeMap<(&'static str, String, String), u64>>,
}

impl Metrics {
    pub fn call_index(call: &str) -> usize {
        CALLS
            .iter()
            .position(|c| *c == call)
            .unwrap_or(CALLS.len() - 1)
    }

    pub fn observe(&self, call: usize, status: u16, elapsed: Duration) {
        let h = &self.latency[call];
        let secs = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|bound| secs <= *bound) {
            h.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        h.count.fetch_add(1, Ordering::Relaxed);
        h.sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        let slot = STATUSES
            .iter()
            .position(|s| *s == status)
            .unwrap_or(STATUSES.len());
        self.statuses[call][slot].fetch_add(1, Ordering::Relaxed);
    }

    pub fn offers_served(&self, n: usize) {
        self.offers_served.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Counts a name a touchpoint called that the channel does not define.
    pub fn unknown_name(&self, kind: &'static str, channel: &str, name: &str) {
        let mut unknown = self.unknown.lock().expect("metrics lock");
        let key = (kind, channel.to_string(), name.to_string());
        if unknown.len() >= MAX_UNKNOWN_NAMES && !unknown.contains_key(&key) {
            *unknown
                .entry((kind, channel.to_string(), "(other)".to_string()))
                .or_default() += 1;
        } else {
            *unknown.entry(key).or_default() += 1;
        }
    }

    /// Unknown names seen so far: (kind, channel, name, count).
    pub fn unknown_names(&self) -> Vec<(&'static str, String, String, u64)> {
        self.unknown
            .lock()
            .expect("metrics lock")
            .iter()
            .map(|((k, c, n), v)| (*k, c.clone(), n.clone(), *v))
            .collect()
    }

    /// Requests served so far, over every call.
    pub fn requests(&self) -> u64 {
        self.latency
            .iter()
            .map(|h| h.count.load(Ordering::Relaxed))
            .sum()
    }

    /// The `q` quantile of one call's latency since start, in seconds: the upper bound of
    /// the bucket it falls in (`None` before any request, or past the last bucket).
    pub fn quantile(&self, call: &str, q: f64) -> Option<f64> {
        let h = &self.latency[Self::call_index(call)];
        let count = h.count.load(Ordering::Relaxed);
        if count == 0 {
            return None;
        }
        let wanted = (q * count as f64).ceil() as u64;
        BUCKETS
            .iter()
            .zip(h.cumulative())
            .find(|(_, n)| *n >= wanted)
            .map(|(bound, _)| *bound)
    }

    /// `sessions_live` is `None` when it cannot be known (the shared session store is down);
    /// `group_uncounted` is `None` for a runtime that is not part of a group sharing counts.
    pub fn render(
        &self,
        sessions_live: Option<usize>,
        writer: &WriterStats,
        group_uncounted: Option<u64>,
    ) -> String {
        let mut out = String::new();
        out.push_str("# HELP kairos_requests_total Requests by call and HTTP status.\n# TYPE kairos_requests_total counter\n");
        for (call, counts) in self.statuses.iter().enumerate() {
            for (slot, n) in counts.iter().enumerate() {
                let n = n.load(Ordering::Relaxed);
                if n > 0 {
                    let status = STATUSES
                        .get(slot)
                        .map_or("other".to_string(), u16::to_string);
                    let _ = writeln!(
                        out,
                        "kairos_requests_total{{call=\"{}\",status=\"{status}\"}} {n}",
                        CALLS[call]
                    );
                }
            }
        }
        out.push_str("# HELP kairos_request_duration_seconds Request latency by call.\n# TYPE kairos_request_duration_seconds histogram\n");
        for (i, h) in self.latency.iter().enumerate() {
            let count = h.count.load(Ordering::Relaxed);
            if count == 0 {
                continue;
            }
            for (bound, n) in BUCKETS.iter().zip(h.cumulative()) {
                let _ = writeln!(
                    out,
                    "kairos_request_duration_seconds_bucket{{call=\"{}\",le=\"{bound}\"}} {n}",
                    CALLS[i]
                );
            }
            let _ = writeln!(
                out,
                "kairos_request_duration_seconds_bucket{{call=\"{}\",le=\"+Inf\"}} {count}",
                CALLS[i]
            );
            let _ = writeln!(
                out,
                "kairos_request_duration_seconds_sum{{call=\"{}\"}} {}",
                CALLS[i],
                h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "kairos_request_duration_seconds_count{{call=\"{}\"}} {count}",
                CALLS[i]
            );
        }
        single(
            &mut out,
            "kairos_sessions_live",
            "gauge",
            "Live sessions: in this runtime's memory, or the server group's in the shared session store.",
            sessions_live.map_or("NaN".to_string(), |n| n.to_string()),
        );
        single(
            &mut out,
            "kairos_offers_served_total",
            "counter",
            "Offers returned to touchpoints.",
            self.offers_served.load(Ordering::Relaxed),
        );
        out.push_str("# HELP kairos_unknown_names_total Interaction points and events touchpoints called that the channel does not define.\n# TYPE kairos_unknown_names_total counter\n");
        for (kind, channel, name, n) in self.unknown_names() {
            let _ = writeln!(
                out,
                "kairos_unknown_names_total{{kind=\"{kind}\",channel=\"{}\",name=\"{}\"}} {n}",
                escape(&channel),
                escape(&name)
            );
        }
        single(
            &mut out,
            "kairos_history_queue_depth",
            "gauge",
            "History records waiting to be committed.",
            writer.queue_depth,
        );
        // A summary without quantiles: its rate of sum over rate of count is the mean commit
        // time, and writes per commit show how many requests each sync serves.
        let _ = writeln!(
            out,
            "# HELP kairos_history_commit_duration_seconds History commits (group commits), from gathering the group to acknowledging it.\n# TYPE kairos_history_commit_duration_seconds summary\nkairos_history_commit_duration_seconds_sum {}\nkairos_history_commit_duration_seconds_count {}",
            writer.commit_time.as_secs_f64(),
            writer.commits
        );
        single(
            &mut out,
            "kairos_history_commit_failures_total",
            "counter",
            "History commits that failed (their writes were answered with an error).",
            writer.failed_commits,
        );
        single(
            &mut out,
            "kairos_history_writes_total",
            "counter",
            "Writes committed (an event's records and audience state, a session's flush).",
            writer.writes,
        );
        single(
            &mut out,
            "kairos_history_records_total",
            "counter",
            "Contact and response records committed.",
            writer.records,
        );
        if let Some(uncounted) = group_uncounted {
            single(
                &mut out,
                "kairos_group_uncounted_records_total",
                "counter",
                "Committed records the server group's shared counts missed (Redis failed after the commit).",
                uncounted,
            );
        }
        out
    }
}

/// A metric of one unlabelled sample, with its help and type (`gauge`, `counter`) lines.
fn single(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

/// Prometheus label values escape backslash, quote and newline.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Metrics, WriterStats};

    #[test]
    fn latency_buckets_count_every_request_at_or_under_their_bound() {
        let m = Metrics::default();
        let offers = Metrics::call_index("get_offers");
        for micros in [50, 300, 2_000_000] {
            m.observe(offers, 200, Duration::from_micros(micros));
        }
        let text = m.render(Some(0), &WriterStats::default(), None);
        let bucket = |le: &str| {
            let line = format!(
                "kairos_request_duration_seconds_bucket{{call=\"get_offers\",le=\"{le}\"}} "
            );
            text.lines()
                .find_map(|l| l.strip_prefix(&line))
                .unwrap_or_else(|| panic!("no bucket {le} in {text}"))
                .to_string()
        };
        assert_eq!(
            [
                bucket("0.0001"),
                bucket("0.00025"),
                bucket("0.0005"),
                bucket("1"),
                bucket("+Inf")
            ],
            ["1", "1", "2", "2", "3"]
        );
        assert_eq!(m.quantile("get_offers", 0.5), Some(0.0005));
        assert_eq!(m.quantile("get_offers", 1.0), None, "past the last bucket");
    }
}
