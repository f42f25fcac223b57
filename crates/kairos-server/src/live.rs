//! The runtime's view of the rest of the world while deciding: learning statistics and global
//! contact counts kept in memory (warmed from storage, updated as history is written), and a
//! treatment from an earlier session looked up before the engine runs.

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use kairos_engine::world::{HistoryRecord, ResponseKind, Stats, Treatment, World};
use kairos_rules::time::{NANOS_PER_SECOND, Timestamp};
use kairos_store::OfferStats;

/// Maps keyed by offer and segment names, which the channel defines, not callers: a fast
/// hasher is safe here, and these are looked up for every candidate offer of every request.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

const BUCKET_NANOS: i64 = 60 * NANOS_PER_SECOND;
/// Contact counts older than this are dropped: no constraint period is longer.
const KEEP_BUCKETS: usize = 60 * 24 * 31;

/// Learning statistics of one offer: overall and per segment.
#[derive(Clone, Debug, Default)]
struct OfferLearning {
    overall: Stats,
    by_segment: HashMap<String, Stats>,
}

type StatsMap = HashMap<String, OfferLearning>;

const CONTACT_SHARDS: usize = 16;

/// Per offer: (minute, contacts), oldest first.
type ContactCounts = HashMap<String, VecDeque<(i64, u64)>>;

/// How stale the learning snapshot requests read may get.
const PUBLISH_EVERY: Duration = Duration::from_millis(250);

pub struct Live {
    /// Updated as history is written; requests never touch it.
    pending: Mutex<StatsMap>,
    /// What requests read, without a lock: replaced whole at most every [`PUBLISH_EVERY`].
    snapshot: ArcSwap<StatsMap>,
    epoch: Instant,
    published_ms: AtomicI64,
    /// Per offer: (minute, contacts) oldest first, in shards by offer so that requests for
    /// different offers never wait on one lock.
    contacts: Vec<Mutex<ContactCounts>>,
    hasher: foldhash::fast::RandomState,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            pending: Mutex::default(),
            snapshot: ArcSwap::from_pointee(StatsMap::default()),
            epoch: Instant::now(),
            published_ms: AtomicI64::new(0),
            contacts: (0..CONTACT_SHARDS).map(|_| Mutex::default()).collect(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }
}

impl Live {
    fn contact_shard(&self, offer: &str) -> &Mutex<ContactCounts> {
        &self.contacts[(self.hasher.hash_one(offer) as usize) % CONTACT_SHARDS]
    }

    pub fn warm(&self, stats: Vec<OfferStats>, contacts: Vec<(String, Timestamp)>) {
        let mut map = self.pending.lock().expect("stats lock");
        for s in stats {
            let entry = map.entry(s.offer).or_default();
            match s.segment {
                None => entry.overall = s.stats,
                Some(segment) => {
                    entry.by_segment.insert(segment, s.stats);
                }
            }
        }
        self.snapshot.store(std::sync::Arc::new(map.clone()));
        drop(map);
        for (offer, at) in contacts {
            self.count_contact(&offer, at);
        }
    }

    fn count_contact(&self, offer: &str, at: Timestamp) {
        let minute = at.0.div_euclid(BUCKET_NANOS);
        let mut contacts = self.contact_shard(offer).lock().expect("contacts lock");
        let buckets = contacts.entry(offer.to_string()).or_default();
        match buckets.back_mut() {
            Some((m, n)) if *m == minute => *n += 1,
            _ => buckets.push_back((minute, 1)),
        }
        while buckets.len() > KEEP_BUCKETS {
            buckets.pop_front();
        }
    }

    /// Takes in records just committed to history.
    pub fn record(&self, records: &[HistoryRecord]) {
        if records.is_empty() {
            return;
        }
        let mut stats = self.pending.lock().expect("stats lock");
        for r in records {
            let t = &r.treatment;
            let entry = stats.entry(t.origin.offer.to_string()).or_default();
            let bump = |s: &mut Stats| match r.kind {
                ResponseKind::Contact => s.contacts += 1,
                ResponseKind::Accept => s.accepts += 1,
                ResponseKind::Reject => {}
            };
            bump(&mut entry.overall);
            if let Some(segment) = &t.origin.segment {
                bump(entry.by_segment.entry(segment.to_string()).or_default());
            }
        }
        let now_ms = self.epoch.elapsed().as_millis() as i64;
        if now_ms - self.published_ms.load(Ordering::Relaxed) >= PUBLISH_EVERY.as_millis() as i64 {
            self.published_ms.store(now_ms, Ordering::Relaxed);
            self.snapshot.store(std::sync::Arc::new(stats.clone()));
        }
        drop(stats);
        for r in records.iter().filter(|r| r.kind == ResponseKind::Contact) {
            self.count_contact(&r.treatment.origin.offer, r.at);
        }
    }
}

/// The [`World`] one request sees while the engine decides. It holds a guard on the learning
/// snapshot, which is meant to be brief: drop it before awaiting anything.
pub struct RequestWorld<'a> {
    live: &'a Live,
    /// The learning statistics as of the request's start, read once for all its offers.
    learning: arc_swap::Guard<std::sync::Arc<StatsMap>>,
    /// A contact from an earlier session the request refers to, fetched beforehand.
    earlier: Option<Treatment>,
}

impl<'a> RequestWorld<'a> {
    pub fn new(live: &'a Live, earlier: Option<Treatment>) -> Self {
        RequestWorld {
            live,
            learning: live.snapshot.load(),
            earlier,
        }
    }
}

impl World for RequestWorld<'_> {
    fn offer_stats(&self, offer: &str, segment: Option<&str>) -> Stats {
        let Some(learning) = self.learning.get(offer) else {
            return Stats::default();
        };
        match segment {
            None => learning.overall,
            Some(s) => learning.by_segment.get(s).copied().unwrap_or_default(),
        }
    }

    fn offer_contacts_since(&self, offer: &str, since: Timestamp) -> u64 {
        let first = since.0.div_euclid(BUCKET_NANOS);
        let contacts = self
            .live
            .contact_shard(offer)
            .lock()
            .expect("contacts lock");
        contacts.get(offer).map_or(0, |b| {
            b.iter()
                .rev()
                .take_while(|(m, _)| *m >= first)
                .map(|(_, n)| n)
                .sum()
        })
    }

    fn find_treatment(&self, code: &str) -> Option<Treatment> {
        self.earlier.clone().filter(|t| *t.code == *code)
    }
}
