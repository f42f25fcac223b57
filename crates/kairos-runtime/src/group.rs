//! What the instances of one server group count together, in Redis beside their shared
//! sessions, so that the group decides as one instance would:
//!
//! - **Contacts per offer**, for global constraints: each logged contact is added to its
//!   minute, hour and day bucket (and the offer's total) after its history commit and before
//!   it is acknowledged; a get offers reads the buckets its channel's constraints cover,
//!   exactly. A cap is overspent only by visits in flight when it is reached (they read the
//!   count before the others logged), and by a contact whose instance died between its
//!   history commit and this write.
//! - **Learning statistics**: totals per offer and segment, and a stream of their changes.
//!   Every instance reads the totals and the stream's position in one transaction, then
//!   follows the stream into its [`Live`] snapshot: the group's accepts reach every instance
//!   within about a second. It reads the totals again every minute, so that a change it
//!   missed (the stream keeps ten minutes) does not stay missed.
//!
//! When the group's counters are missing (a new group, or a Redis that lost its data), the
//! first instance to notice fills them from history; writes in flight at that moment may be
//! counted twice.
//!
//! Keys, under the group's prefix `p`: `p:contacts:{offer}:{day}` (a hash of `m{minute}`,
//! `h{hour}` and `d` counts, kept 32 days), `p:contacts:{offer}:all`, `p:learning` (a hash of
//! `c|a` `\x1f` offer `\x1f` segment), `p:learning:changes` (the stream) and
//! `p:counts:seeded`.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kairos_engine::world::{ResponseKind, Stats};
use kairos_rules::time::{NANOS_PER_SECOND, Timestamp};
use kairos_store::HistoryStore;
use redis::aio::ConnectionManager;
use redis::streams::{StreamRangeReply, StreamReadReply};
use redis::{FromRedisValue, Value};

use kairos_api::{Code, Problem};

use crate::live::{Counted, Live};

const MINUTES_PER_DAY: i64 = 24 * 60;
const MINUTE_NANOS: i64 = 60 * NANOS_PER_SECOND;
/// Days of buckets kept: longer than any period but "for ever", which reads the total.
const KEEP_DAYS: i64 = 32;
/// How long changes stay in the stream.
const STREAM_KEEP_MS: i64 = 10 * 60 * 1000;
/// How often an instance reads the learning totals again.
const RESNAPSHOT: Duration = Duration::from_secs(60);
/// How long one read of the stream waits for changes.
const FOLLOW_BLOCK_MS: u64 = 250;
const SEPARATOR: char = '\x1f';

fn unavailable(e: impl std::fmt::Display) -> Problem {
    Problem::new(
        Code::SessionsUnavailable,
        format!("the server group's shared counts failed: {e}"),
    )
}

/// A key, a field and how much to add.
type Increment = (String, String, u64);

pub struct GroupCounts {
    conn: ConnectionManager,
    /// For the follower's own connection: its blocking reads would hold up the calls
    /// multiplexed on `conn`.
    client: redis::Client,
    prefix: String,
}

/// Which counters hold the contacts of one offer since some time.
#[derive(Debug, PartialEq)]
enum Reading {
    /// Further back than the buckets kept: the offer's total.
    Total,
    /// Fields of the first day's bucket (its minutes and hours from the start on), then the
    /// whole of each later day up to tomorrow (the instances' clocks may differ).
    Buckets {
        first_day: i64,
        fields: Vec<String>,
        later_days: RangeInclusive<i64>,
    },
}

fn reading(since: Timestamp, now: Timestamp) -> Reading {
    let today = now.0.div_euclid(MINUTE_NANOS).div_euclid(MINUTES_PER_DAY);
    let minute = since.0.div_euclid(MINUTE_NANOS);
    let first_day = minute.div_euclid(MINUTES_PER_DAY);
    if first_day <= today - KEEP_DAYS {
        return Reading::Total;
    }
    let hour = minute.div_euclid(60);
    let mut fields: Vec<String> = (minute..(hour + 1) * 60).map(|m| format!("m{m}")).collect();
    fields.extend((hour + 1..(first_day + 1) * 24).map(|h| format!("h{h}")));
    Reading::Buckets {
        first_day,
        fields,
        later_days: first_day + 1..=today + 1,
    }
}

/// The bucket fields a contact at `at` adds to, with the day whose key holds them.
fn bucket_fields(at: Timestamp) -> (i64, [String; 3]) {
    let minute = at.0.div_euclid(MINUTE_NANOS);
    (
        minute.div_euclid(MINUTES_PER_DAY),
        [
            format!("m{minute}"),
            format!("h{}", minute.div_euclid(60)),
            "d".to_string(),
        ],
    )
}

/// Learning changes as (offer, segment) -> counts, the segment empty for a rule of `*`.
type Changes = BTreeMap<(String, String), Stats>;

fn learning_field(kind: char, offer: &str, segment: &str) -> String {
    format!("{kind}{SEPARATOR}{offer}{SEPARATOR}{segment}")
}

/// Changes as the stream carries them: a line per (offer, segment), its counts after.
fn encode_changes(changes: &Changes) -> String {
    let mut text = String::new();
    for ((offer, segment), s) in changes {
        text.push_str(&format!(
            "{offer}{SEPARATOR}{segment}{SEPARATOR}{}{SEPARATOR}{}\n",
            s.contacts, s.accepts
        ));
    }
    text
}

fn decode_changes(text: &str) -> Changes {
    let mut changes = Changes::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split(SEPARATOR).collect();
        if let [offer, segment, contacts, accepts] = parts[..]
            && let (Ok(contacts), Ok(accepts)) = (contacts.parse::<u64>(), accepts.parse::<u64>())
        {
            let s = changes
                .entry((offer.to_string(), segment.to_string()))
                .or_default();
            s.contacts += contacts;
            s.accepts += accepts;
        }
    }
    changes
}

/// The learning totals hash read back as changes from nothing.
fn decode_totals(fields: BTreeMap<String, u64>) -> Changes {
    let mut totals = Changes::new();
    for (field, n) in fields {
        let mut parts = field.splitn(3, SEPARATOR);
        let (Some(kind), Some(offer), Some(segment)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let s = totals
            .entry((offer.to_string(), segment.to_string()))
            .or_default();
        match kind {
            "c" => s.contacts += n,
            "a" => s.accepts += n,
            _ => {}
        }
    }
    totals
}

impl GroupCounts {
    pub fn new(conn: ConnectionManager, client: redis::Client, prefix: &str) -> GroupCounts {
        GroupCounts {
            conn,
            client,
            prefix: prefix.to_string(),
        }
    }

    fn bucket_key(&self, offer: &str, day: i64) -> String {
        format!("{}:contacts:{offer}:{day}", self.prefix)
    }

    fn total_key(&self, offer: &str) -> String {
        format!("{}:contacts:{offer}:all", self.prefix)
    }

    fn learning_key(&self) -> String {
        format!("{}:learning", self.prefix)
    }

    fn stream_key(&self) -> String {
        format!("{}:learning:changes", self.prefix)
    }

    fn seeded_key(&self) -> String {
        format!("{}:counts:seeded", self.prefix)
    }

    /// Contacts of each (offer, since) logged by the whole group, read in one round trip.
    pub async fn contacts_since(
        &self,
        windows: &[(&str, Timestamp)],
        now: Timestamp,
    ) -> Result<Vec<u64>, Problem> {
        let mut pipe = redis::pipe();
        let mut replies_per_window = Vec::with_capacity(windows.len());
        for &(offer, since) in windows {
            match reading(since, now) {
                Reading::Total => {
                    pipe.get(self.total_key(offer));
                    replies_per_window.push(1);
                }
                Reading::Buckets {
                    first_day,
                    fields,
                    later_days,
                } => {
                    pipe.hget(self.bucket_key(offer, first_day), fields);
                    let days = later_days.clone().count();
                    for day in later_days {
                        pipe.hget(self.bucket_key(offer, day), "d");
                    }
                    replies_per_window.push(1 + days);
                }
            }
        }
        let mut conn = self.conn.clone();
        let replies: Vec<Value> = pipe.query_async(&mut conn).await.map_err(unavailable)?;
        let mut replies = replies.iter();
        replies_per_window
            .into_iter()
            .map(|n| {
                replies.by_ref().take(n).try_fold(0u64, |sum, reply| {
                    let counts = match reply {
                        Value::Array(_) => Vec::<Option<u64>>::from_redis_value(reply),
                        _ => Option::<u64>::from_redis_value(reply).map(|n| vec![n]),
                    }
                    .map_err(unavailable)?;
                    Ok(sum + counts.into_iter().flatten().sum::<u64>())
                })
            })
            .collect()
    }

    /// Adds records just committed to history to the group's counts, in one transaction.
    pub async fn record(&self, records: &[Counted]) -> Result<(), Problem> {
        let mut changes = Changes::new();
        let mut increments = Vec::new();
        for r in records {
            let (offer, segment) = r.offer_and_segment();
            let stats = changes
                .entry((offer.to_string(), segment.unwrap_or_default().to_string()))
                .or_default();
            match r.kind() {
                ResponseKind::Contact => {
                    stats.contacts += 1;
                    let (day, fields) = bucket_fields(r.at());
                    let key = self.bucket_key(offer, day);
                    increments.extend(fields.map(|f| (key.clone(), f, 1)));
                }
                ResponseKind::Accept => stats.accepts += 1,
                ResponseKind::Reject => {}
            }
        }
        changes.retain(|_, s| *s != Stats::default());
        if changes.is_empty() {
            return Ok(());
        }
        self.add(changes, increments).await
    }

    /// One transaction: contact buckets (and totals) and learning totals grow, and the
    /// learning changes go to the stream, so a reader of totals and stream position at once
    /// never counts a change twice or misses one.
    async fn add(&self, changes: Changes, buckets: Vec<Increment>) -> Result<(), Problem> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut days = std::collections::BTreeSet::new();
        for (key, field, n) in &buckets {
            pipe.hincr(key, field, *n).ignore();
            days.insert(key);
        }
        for key in days {
            pipe.expire(key, KEEP_DAYS * 86_400).ignore();
        }
        let learning = self.learning_key();
        for ((offer, segment), s) in &changes {
            if s.contacts > 0 {
                pipe.incr(self.total_key(offer), s.contacts).ignore();
                pipe.hincr(&learning, learning_field('c', offer, segment), s.contacts)
                    .ignore();
            }
            if s.accepts > 0 {
                pipe.hincr(&learning, learning_field('a', offer, segment), s.accepts)
                    .ignore();
            }
        }
        let oldest = now_ms() - STREAM_KEEP_MS;
        pipe.cmd("XADD")
            .arg(self.stream_key())
            .arg("MINID")
            .arg("~")
            .arg(oldest)
            .arg("*")
            .arg("d")
            .arg(encode_changes(&changes))
            .ignore();
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await.map_err(unavailable)
    }

    /// Fills the group's counters from history when they are missing: one instance does it.
    pub async fn seed_if_missing(
        &self,
        store: &HistoryStore,
        now: Timestamp,
    ) -> Result<(), Problem> {
        let mut conn = self.conn.clone();
        let won: Option<String> = redis::cmd("SET")
            .arg(self.seeded_key())
            .arg(1)
            .arg("NX")
            .query_async(&mut conn)
            .await
            .map_err(unavailable)?;
        if won.is_none() {
            return Ok(());
        }
        let filled = self.seed(store, now).await;
        if filled.is_err() {
            // Another instance tries again.
            let _: Result<(), _> = redis::cmd("DEL")
                .arg(self.seeded_key())
                .query_async(&mut conn)
                .await;
        }
        filled
    }

    async fn seed(&self, store: &HistoryStore, now: Timestamp) -> Result<(), Problem> {
        let storage = |e: kairos_store::StoreError| unavailable(format!("reading history: {e}"));
        let since = Timestamp(now.0.saturating_sub(KEEP_DAYS * 86_400 * NANOS_PER_SECOND));
        let (stats, contacts) =
            tokio::try_join!(store.offer_stats(), store.contacts_since(since)).map_err(storage)?;
        // History counts per offer overall and per segment; the counters per (offer, segment),
        // the overall less its segments kept under the empty segment.
        let mut changes: Changes = stats
            .iter()
            .filter_map(|s| Some(((s.offer.clone(), s.segment.clone()?), s.stats)))
            .collect();
        let unsegmented: Vec<_> = stats
            .iter()
            .filter(|s| s.segment.is_none())
            .map(|s| {
                let rest = changes
                    .iter()
                    .filter(|((offer, _), _)| *offer == s.offer)
                    .fold(s.stats, |rest, (_, segment)| Stats {
                        contacts: rest.contacts.saturating_sub(segment.contacts),
                        accepts: rest.accepts.saturating_sub(segment.accepts),
                    });
                ((s.offer.clone(), String::new()), rest)
            })
            .collect();
        changes.extend(unsegmented);
        changes.retain(|_, s| *s != Stats::default());
        let mut buckets: BTreeMap<(String, String), u64> = BTreeMap::new();
        for (offer, at) in contacts {
            let (day, fields) = bucket_fields(at);
            let key = self.bucket_key(&offer, day);
            for f in fields {
                *buckets.entry((key.clone(), f)).or_default() += 1;
            }
        }
        if changes.is_empty() {
            return Ok(());
        }
        let buckets = buckets.into_iter().map(|((k, f), n)| (k, f, n)).collect();
        self.add(changes, buckets).await
    }

    /// The learning totals and the stream position they include, read at once.
    async fn snapshot(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
    ) -> redis::RedisResult<(String, Changes)> {
        let (range, totals): (StreamRangeReply, BTreeMap<String, u64>) = redis::pipe()
            .atomic()
            .cmd("XREVRANGE")
            .arg(self.stream_key())
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .hgetall(self.learning_key())
            .query_async(conn)
            .await?;
        let position = range
            .ids
            .first()
            .map_or_else(|| "0-0".to_string(), |e| e.id.clone());
        Ok((position, decode_totals(totals)))
    }

    /// Keeps `live`'s learning statistics those of the whole group, until the task is
    /// dropped; fills missing counters from `store` first.
    pub async fn follow(
        self: Arc<Self>,
        live: Arc<Live>,
        store: HistoryStore,
        clock: fn() -> Timestamp,
    ) {
        loop {
            if let Err(e) = self.follow_once(&live, &store, clock).await {
                tracing::warn!("following the server group's learning statistics: {e}; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }

    /// Reads the totals, then the stream's changes until it is time to read the totals again.
    async fn follow_once(
        &self,
        live: &Live,
        store: &HistoryStore,
        clock: fn() -> Timestamp,
    ) -> Result<(), Problem> {
        self.seed_if_missing(store, clock()).await?;
        let mut conn = self
            .client
            .get_multiplexed_async_connection()
            .await
            .map_err(unavailable)?;
        let (mut position, totals) = self.snapshot(&mut conn).await.map_err(unavailable)?;
        live.replace_learning(totals.into_iter().map(|((o, s), stats)| (o, s, stats)));
        let started = Instant::now();
        while started.elapsed() < RESNAPSHOT {
            let reply: Option<StreamReadReply> = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(512)
                .arg("BLOCK")
                .arg(FOLLOW_BLOCK_MS)
                .arg("STREAMS")
                .arg(self.stream_key())
                .arg(&position)
                .query_async(&mut conn)
                .await
                .map_err(unavailable)?;
            for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
                if let Some(text) = entry.get::<String>("d") {
                    live.add_learning(
                        decode_changes(&text)
                            .into_iter()
                            .map(|((o, s), stats)| (o, s, stats)),
                    );
                }
                position = entry.id;
            }
            live.publish_changes();
        }
        Ok(())
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use kairos_engine::random::{Random, SplitMix64};
    use kairos_rules::time::Timestamp;

    use super::{MINUTE_NANOS, Reading, bucket_fields, reading};

    /// Buckets as Redis would hold them, filled by `bucket_fields` and read by `reading`,
    /// against counting contact times one by one.
    #[test]
    fn bucket_readings_count_every_contact_since_exactly_once() {
        let mut rng = SplitMix64(7);
        let now = Timestamp(1_781_524_800 * 1_000_000_000);
        let mut times = Vec::new();
        let mut buckets: HashMap<(i64, String), u64> = HashMap::new();
        let mut totals = 0u64;
        for _ in 0..3000 {
            // Up to 40 days back, at any second.
            let at = Timestamp(now.0 - (rng.unit() * 40.0 * 86_400.0) as i64 * 1_000_000_000);
            times.push(at);
            totals += 1;
            let (day, fields) = bucket_fields(at);
            for f in fields {
                *buckets.entry((day, f)).or_default() += 1;
            }
        }
        let count = |since: Timestamp| -> u64 {
            match reading(since, now) {
                Reading::Total => totals,
                Reading::Buckets {
                    first_day,
                    fields,
                    later_days,
                } => {
                    let first: u64 = fields
                        .iter()
                        .map(|f| buckets.get(&(first_day, f.clone())).copied().unwrap_or(0))
                        .sum();
                    let later: u64 = later_days
                        .map(|d| buckets.get(&(d, "d".to_string())).copied().unwrap_or(0))
                        .sum();
                    first + later
                }
            }
        };
        for back_seconds in [
            0,
            59,
            60,
            61,
            3_599,
            3_600,
            86_399,
            86_400,
            7 * 86_400,
            30 * 86_400,
        ] {
            let since = Timestamp(now.0 - back_seconds * 1_000_000_000);
            // Buckets are by minute: every contact from the start of since's minute counts.
            let from = Timestamp(since.0.div_euclid(MINUTE_NANOS) * MINUTE_NANOS);
            let expected = times.iter().filter(|t| **t >= from).count() as u64;
            assert_eq!(count(since), expected, "{back_seconds} s back");
        }
        assert_eq!(count(Timestamp(i64::MIN)), 3000, "for ever reads the total");
    }
}
