//! The runtime's view of the rest of the world while deciding: learning statistics and global
//! contact counts kept in memory (warmed from storage, updated as history is written), and a
//! treatment from an earlier session looked up before the engine runs.

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use kairos_api::Problem;
use kairos_engine::Deployment;
use kairos_engine::world::{HistoryRecord, Origin, ResponseKind, Stats, Treatment, World};
use kairos_rules::time::{NANOS_PER_SECOND, Timestamp};
use kairos_store::{HistoryStore, OfferStats};

use crate::group::GroupCounts;

/// Maps keyed by offer and segment names, which the channel defines, not callers: a fast
/// hasher is safe here, and these are looked up for every candidate offer of every request.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

const BUCKET_NANOS: i64 = 60 * NANOS_PER_SECOND;
/// Minutes of contact counts kept; older ones are only in the offer's total, which a
/// constraint without a period (or one this long) reads.
const KEEP_MINUTES: i64 = 60 * 24 * 31;

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

/// Adds `change` to an offer's statistics, overall and within `segment`.
fn add_stats(map: &mut StatsMap, offer: &Arc<str>, segment: Option<&Arc<str>>, change: Stats) {
    let entry = Arc::make_mut(entry_mut(map, offer));
    let add = |s: &mut Stats| {
        s.contacts += change.contacts;
        s.accepts += change.accepts;
    };
    add(&mut entry.overall);
    if let Some(segment) = segment {
        add(entry_mut(&mut entry.by_segment, segment));
    }
}

const CONTACT_SHARDS: usize = 16;

/// One offer's logged contacts: per minute, oldest first, and in all.
struct OfferContacts {
    minutes: VecDeque<(i64, u64)>,
    /// The first minute `minutes` holds every contact from.
    complete_from: i64,
    total: u64,
}

impl Default for OfferContacts {
    fn default() -> Self {
        OfferContacts {
            minutes: VecDeque::new(),
            complete_from: i64::MIN,
            total: 0,
        }
    }
}

type ContactCounts = HashMap<Arc<str>, OfferContacts>;

/// How stale the learning snapshot requests read may get.
const PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// Learning statistics and contact counts: this process's own, or, for an instance of a
/// server group that shares sessions, the group's (see [`GroupCounts`]).
pub struct Live {
    /// Updated as history is written; requests never touch it.
    pending: Mutex<StatsMap>,
    /// What requests read, without a lock: replaced whole at most every [`PUBLISH_EVERY`].
    snapshot: ArcSwap<StatsMap>,
    epoch: Instant,
    published_ms: AtomicI64,
    /// `pending` holds changes `snapshot` does not.
    unpublished: AtomicBool,
    /// In shards by offer so that requests for different offers never wait on one lock.
    contacts: Vec<Mutex<ContactCounts>>,
    hasher: foldhash::fast::RandomState,
    group: Option<Arc<GroupCounts>>,
    /// Records committed to history that the group's counts missed.
    group_uncounted: AtomicU64,
}

impl Default for Live {
    fn default() -> Self {
        Live {
            pending: Mutex::default(),
            snapshot: ArcSwap::from_pointee(StatsMap::default()),
            epoch: Instant::now(),
            published_ms: AtomicI64::new(0),
            unpublished: AtomicBool::new(false),
            contacts: (0..CONTACT_SHARDS).map(|_| Mutex::default()).collect(),
            hasher: foldhash::fast::RandomState::default(),
            group: None,
            group_uncounted: AtomicU64::new(0),
        }
    }
}

impl Live {
    /// Counts shared by a server group: learning follows the group's statistics and
    /// constraints read the group's contacts.
    pub fn shared(group: GroupCounts) -> Live {
        Live {
            group: Some(Arc::new(group)),
            ..Live::default()
        }
    }

    fn contact_shard(&self, offer: &str) -> &Mutex<ContactCounts> {
        &self.contacts[(self.hasher.hash_one(offer) as usize) % CONTACT_SHARDS]
    }

    /// Loads what history holds (at start-up): learning statistics, contacts in all (from
    /// the overall statistics) and the recent contacts by minute. A group's instance fills
    /// the group's counters instead, when they are missing.
    pub async fn warm(&self, store: &HistoryStore, now: Timestamp) -> Result<(), Problem> {
        if let Some(group) = &self.group {
            return group.seed_if_missing(store, now).await;
        }
        let storage = |e: kairos_store::StoreError| {
            Problem::new(kairos_api::Code::StorageUnavailable, e.to_string())
        };
        let kept_from = Timestamp(now.0.saturating_sub(KEEP_MINUTES * BUCKET_NANOS));
        let stats = store.offer_stats().await.map_err(storage)?;
        let contacts = store.contacts_since(kept_from).await.map_err(storage)?;
        self.warm_with(stats, contacts, kept_from);
        Ok(())
    }

    /// `contacts` are those since `kept_from`; `stats` count all.
    fn warm_with(
        &self,
        stats: Vec<OfferStats>,
        contacts: Vec<(String, Timestamp)>,
        kept_from: Timestamp,
    ) {
        let mut map = self.pending.lock().expect("stats lock");
        for s in stats {
            let offer = Arc::from(s.offer);
            match s.segment {
                None => {
                    let mut shard = self.contact_shard(&offer).lock().expect("contacts lock");
                    let counts = entry_mut(&mut shard, &offer);
                    counts.total += s.stats.contacts;
                    counts.complete_from = kept_from.0.div_euclid(BUCKET_NANOS) + 1;
                    drop(shard);
                    Arc::make_mut(entry_mut(&mut map, &offer)).overall = s.stats;
                }
                Some(segment) => {
                    let entry = Arc::make_mut(entry_mut(&mut map, &offer));
                    entry.by_segment.insert(Arc::from(segment), s.stats);
                }
            }
        }
        self.snapshot.store(Arc::new(map.clone()));
        drop(map);
        for (offer, at) in contacts {
            self.count_contact(&Arc::from(offer), at, false);
        }
    }

    /// Counts a contact by its minute and, unless the total has it already, in the total.
    fn count_contact(&self, offer: &Arc<str>, at: Timestamp, in_total: bool) {
        let minute = at.0.div_euclid(BUCKET_NANOS);
        let mut contacts = self.contact_shard(offer).lock().expect("contacts lock");
        let counts = entry_mut(&mut contacts, offer);
        counts.total += u64::from(in_total);
        match counts.minutes.back_mut() {
            Some((m, n)) if *m == minute => *n += 1,
            _ => counts.minutes.push_back((minute, 1)),
        }
        while let Some(&(oldest, _)) = counts.minutes.front()
            && oldest < minute - KEEP_MINUTES
        {
            counts.minutes.pop_front();
            counts.complete_from = oldest + 1;
        }
    }

    /// Takes in records just committed to history: into this process's counts, or into the
    /// group's, which come back to every instance's learning through [`GroupCounts::follow`].
    /// A failure to count leaves history as it is: the write is durable and acknowledged.
    pub async fn commit(&self, records: &[Counted]) {
        match &self.group {
            Some(group) => {
                if let Err(e) = group.record(records).await {
                    tracing::error!(records = records.len(), "{e}; the group's counts miss them");
                    self.group_uncounted
                        .fetch_add(records.len() as u64, Ordering::Relaxed);
                }
            }
            None => self.record(records),
        }
    }

    fn record(&self, records: &[Counted]) {
        if records.is_empty() {
            return;
        }
        let mut stats = self.pending.lock().expect("stats lock");
        let mut changed = false;
        for r in records {
            let change = match r.kind {
                ResponseKind::Contact => Stats {
                    contacts: 1,
                    accepts: 0,
                },
                ResponseKind::Accept => Stats {
                    contacts: 0,
                    accepts: 1,
                },
                ResponseKind::Reject => continue,
            };
            add_stats(
                &mut stats,
                &r.origin.offer,
                r.origin.segment.as_ref(),
                change,
            );
            changed = true;
        }
        // Rejects alone change nothing learning reads: no new snapshot for them.
        self.publish_if_due(&stats, changed);
        drop(stats);
        for r in records.iter().filter(|r| r.kind == ResponseKind::Contact) {
            self.count_contact(&r.origin.offer, r.at, true);
        }
    }

    /// Publishes `pending` if it changed (or `changed` says it just did) and the last
    /// publish is [`PUBLISH_EVERY`] old.
    fn publish_if_due(&self, pending: &StatsMap, changed: bool) {
        if changed {
            self.unpublished.store(true, Ordering::Relaxed);
        }
        let now_ms = self.epoch.elapsed().as_millis() as i64;
        if self.unpublished.load(Ordering::Relaxed)
            && now_ms - self.published_ms.load(Ordering::Relaxed)
                >= PUBLISH_EVERY.as_millis() as i64
        {
            self.published_ms.store(now_ms, Ordering::Relaxed);
            self.unpublished.store(false, Ordering::Relaxed);
            self.snapshot.store(Arc::new(pending.clone()));
        }
    }

    /// Publishes changes left unpublished when writes stopped; called on a timer.
    pub fn publish_changes(&self) {
        let pending = self.pending.lock().expect("stats lock");
        self.publish_if_due(&pending, false);
    }

    /// Replaces the learning statistics with the group's totals per (offer, segment), the
    /// segment empty for rules of `*`, and publishes them.
    pub(crate) fn replace_learning(
        &self,
        totals: impl IntoIterator<Item = (String, String, Stats)>,
    ) {
        let mut map = StatsMap::default();
        Self::add_changes(&mut map, totals);
        let mut pending = self.pending.lock().expect("stats lock");
        *pending = map;
        self.snapshot.store(Arc::new(pending.clone()));
        self.unpublished.store(false, Ordering::Relaxed);
    }

    /// Adds changes per (offer, segment) to the learning statistics.
    pub(crate) fn add_learning(&self, changes: impl IntoIterator<Item = (String, String, Stats)>) {
        let mut pending = self.pending.lock().expect("stats lock");
        Self::add_changes(&mut pending, changes);
        self.unpublished.store(true, Ordering::Relaxed);
    }

    fn add_changes(map: &mut StatsMap, changes: impl IntoIterator<Item = (String, String, Stats)>) {
        for (offer, segment, change) in changes {
            let segment = (!segment.is_empty()).then(|| Arc::from(segment));
            add_stats(map, &Arc::from(offer), segment.as_ref(), change);
        }
    }

    /// Records committed to history that the group's counts missed; `None` outside a group.
    pub fn group_uncounted_records(&self) -> Option<u64> {
        self.group
            .as_ref()
            .map(|_| self.group_uncounted.load(Ordering::Relaxed))
    }

    /// The group's contact counts a get offers on `dep` at `now` may read, fetched now; none
    /// for a process that counts its own, or a channel without constraints.
    pub async fn group_contacts<'d>(
        &self,
        dep: &'d Deployment,
        now: Timestamp,
    ) -> Result<Option<GroupContacts<'d>>, Problem> {
        let Some(group) = &self.group else {
            return Ok(None);
        };
        let mut windows: Vec<(&str, Timestamp)> = dep.constraint_windows(now).collect();
        if windows.is_empty() {
            return Ok(None);
        }
        windows.sort_unstable();
        windows.dedup();
        let counts = group.contacts_since(&windows, now).await?;
        Ok(Some(
            windows
                .into_iter()
                .zip(counts)
                .map(|((offer, since), n)| ((offer, since.0), n))
                .collect(),
        ))
    }

    /// Follows the group's learning statistics, for as long as the future runs; `None` for a
    /// process that counts its own.
    pub fn follow_group(
        self: &Arc<Self>,
        store: HistoryStore,
        clock: fn() -> Timestamp,
    ) -> Option<impl Future<Output = ()> + Send + 'static> {
        let group = self.group.clone()?;
        Some(group.follow(self.clone(), store, clock))
    }
}

/// Contacts of (offer, since in nanoseconds) the whole group logged.
pub type GroupContacts<'d> = HashMap<(&'d str, i64), u64>;

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

    pub(crate) fn kind(&self) -> ResponseKind {
        self.kind
    }

    pub(crate) fn at(&self) -> Timestamp {
        self.at
    }

    pub(crate) fn offer_and_segment(&self) -> (&str, Option<&str>) {
        (&self.origin.offer, self.origin.segment.as_deref())
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
    /// The group's contact counts, fetched beforehand, where the group counts them.
    group_contacts: Option<GroupContacts<'a>>,
}

impl<'a> RequestWorld<'a> {
    pub fn new(live: &'a Live, earlier: Option<Treatment>) -> Self {
        RequestWorld {
            live,
            learning: live.snapshot.load(),
            earlier,
            group_contacts: None,
        }
    }

    pub fn with_group_contacts(mut self, contacts: Option<GroupContacts<'a>>) -> Self {
        self.group_contacts = contacts;
        self
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
        if let Some(group) = &self.group_contacts {
            let count = group.get(&(offer, since.0)).copied();
            debug_assert!(count.is_some(), "{offer} since {since:?} was fetched");
            return count.unwrap_or(0);
        }
        let first = since.0.div_euclid(BUCKET_NANOS);
        let contacts = self
            .live
            .contact_shard(offer)
            .lock()
            .expect("contacts lock");
        contacts.get(offer).map_or(0, |c| {
            if first < c.complete_from {
                return c.total;
            }
            c.minutes
                .iter()
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
        live.warm_with(
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
            Timestamp(0),
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
