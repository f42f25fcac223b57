//! The runtime's view of the rest of the world while deciding: learning statistics and global
//! contact counts kept in memory (warmed from storage, updated as history is written), and a
//! treatment from an earlier session looked up before the engine runs.

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use kairos_engine::world::{HistoryRecord, Origin, ResponseKind, Stats, Treatment, World};
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
    by_segment: HashMap<Arc<str>, Stats>,
}

/// Keys are the deployment's shared names and values are shared with the published snapshot
/// until written (`Arc::make_mut`): publishing copies a pointer per offer, and recording a
/// history row allocates nothing once its offer and segment are known.
type StatsMap = HashMap<Arc<str>, Arc<OfferLearning>>;

/// The entry under `key`, made if missing; the key is only cloned then.
fn entry_mut<'m, V: Default>(map: &'m mut HashMap<Arc<str>, V>, key: &Arc<str>) -> &'m mut V {
    if !map.contains_key(&**key) {
        map.insert(key.clone(), V::default());
    }
    map.get_mut(&**key).expect("inserted above")
}

const CONTACT_SHARDS: usize = 16;

/// Per offer: (minute, contacts), oldest first.
type ContactCounts = HashMap<Arc<str>, VecDeque<(i64, u64)>>;

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
            let entry = Arc::make_mut(entry_mut(&mut map, &Arc::from(s.offer)));
            match s.segment {
                None => entry.overall = s.stats,
                Some(segment) => {
                    entry.by_segment.insert(Arc::from(segment), s.stats);
                }
            }
        }
        self.snapshot.store(Arc::new(map.clone()));
        drop(map);
        for (offer, at) in contacts {
            self.count_contact(&Arc::from(offer), at);
        }
    }

    fn count_contact(&self, offer: &Arc<str>, at: Timestamp) {
        let minute = at.0.div_euclid(BUCKET_NANOS);
        let mut contacts = self.contact_shard(offer).lock().expect("contacts lock");
        let buckets = entry_mut(&mut contacts, offer);
        match buckets.back_mut() {
            Some((m, n)) if *m == minute => *n += 1,
            _ => buckets.push_back((minute, 1)),
        }
        while buckets.len() > KEEP_BUCKETS {
            buckets.pop_front();
        }
    }

    /// Takes in records just committed to history.
    pub fn record(&self, records: &[Counted]) {
        if records.is_empty() {
            return;
        }
        let mut stats = self.pending.lock().expect("stats lock");
        for r in records {
            let entry = Arc::make_mut(entry_mut(&mut stats, &r.origin.offer));
            let bump = |s: &mut Stats| match r.kind {
                ResponseKind::Contact => s.contacts += 1,
                ResponseKind::Accept => s.accepts += 1,
                ResponseKind::Reject => {}
            };
            bump(&mut entry.overall);
            if let Some(segment) = &r.origin.segment {
                bump(entry_mut(&mut entry.by_segment, segment));
            }
        }
        let now_ms = self.epoch.elapsed().as_millis() as i64;
        if now_ms - self.published_ms.load(Ordering::Relaxed) >= PUBLISH_EVERY.as_millis() as i64 {
            self.published_ms.store(now_ms, Ordering::Relaxed);
            self.snapshot.store(Arc::new(stats.clone()));
        }
        drop(stats);
        for r in records.iter().filter(|r| r.kind == ResponseKind::Contact) {
            self.count_contact(&r.origin.offer, r.at);
        }
    }
}

/// What learning and global constraints count of a history record, kept while the record's
/// write goes to disk. A whole record holds five shared names whose counts the request path,
/// the history writer and this would all touch; this holds one.
pub struct Counted {
    kind: ResponseKind,
    origin: Arc<Origin>,
    at: Timestamp,
}

impl Counted {
    pub fn of(record: &HistoryRecord) -> Counted {
        Counted {
            kind: record.kind,
            origin: record.treatment.origin.clone(),
            at: record.at,
        }
    }
}

/// The [`World`] one request sees while the engine decides. It holds a guard on the learning
/// snapshot, which is meant to be brief: drop it before awaiting anything.
pub struct RequestWorld<'a> {
    live: &'a Live,
    /// The learning statistics as of the request's start, read once for all its offers.
    learning: arc_swap::Guard<Arc<StatsMap>>,
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use kairos_engine::world::{HistoryRecord, Origin, ResponseKind, Stats, Treatment, World};
    use kairos_rules::time::Timestamp;
    use kairos_store::OfferStats;

    use super::{Counted, Live, PUBLISH_EVERY, RequestWorld};

    fn contact(offer: &str, segment: &str, at: Timestamp) -> Counted {
        Counted::of(&HistoryRecord {
            kind: ResponseKind::Contact,
            treatment: Treatment {
                code: "t1".into(),
                origin: Arc::new(Origin {
                    offer: offer.into(),
                    category: None,
                    rule: "r1".into(),
                    segment: Some(segment.into()),
                }),
                ip: "hero".into(),
                zone: "home".into(),
                score: 1.0,
                deployment: 1,
                session_id: "s1".into(),
                audience: "customer:1".into(),
                issued_at: at,
            },
            at,
            cross_session: false,
        })
    }

    #[test]
    fn a_request_reads_one_snapshot_while_history_keeps_counting() {
        let live = Live::default();
        let at = Timestamp(1_000_000_000_000);
        let stats = |contacts, accepts| Stats { contacts, accepts };
        live.warm(
            vec![
                OfferStats {
                    offer: "GOLD".into(),
                    segment: None,
                    stats: stats(60, 6),
                },
                OfferStats {
                    offer: "GOLD".into(),
                    segment: Some("vip".into()),
                    stats: stats(50, 5),
                },
            ],
            vec![("GOLD".into(), at)],
        );
        let before = RequestWorld::new(&live, None);
        assert_eq!(before.offer_stats("GOLD", None), stats(60, 6));
        assert_eq!(before.offer_stats("GOLD", Some("vip")), stats(50, 5));
        assert_eq!(before.offer_stats("SILVER", None), stats(0, 0));

        // Contact counts for constraints are live; learning waits for the next publish, and a
        // snapshot a request holds never changes under it.
        live.record(&[contact("GOLD", "vip", at)]);
        assert_eq!(before.offer_contacts_since("GOLD", at), 2);
        std::thread::sleep(PUBLISH_EVERY);
        live.record(&[contact("GOLD", "vip", at), contact("SILVER", "vip", at)]);
        assert_eq!(before.offer_stats("GOLD", None), stats(60, 6));
        let after = RequestWorld::new(&live, None);
        assert_eq!(after.offer_stats("GOLD", None), stats(62, 6));
        assert_eq!(after.offer_stats("GOLD", Some("vip")), stats(52, 5));
        assert_eq!(after.offer_stats("SILVER", Some("vip")), stats(1, 0));
        assert_eq!(after.offer_contacts_since("GOLD", at), 3);
    }
}
