//! The runtime's view of the rest of the world while deciding: learning statistics and global
//! contact counts kept in memory (warmed from storage, updated as history is written), and a
//! treatment from an earlier session looked up before the engine runs.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, RwLock};

use kairos_engine::world::{HistoryRecord, ResponseKind, Stats, Treatment, World};
use kairos_rules::time::{NANOS_PER_SECOND, Timestamp};
use kairos_store::OfferStats;

const BUCKET_NANOS: i64 = 60 * NANOS_PER_SECOND;
/// Contact counts older than this are dropped: no constraint period is longer.
const KEEP_BUCKETS: usize = 60 * 24 * 31;

#[derive(Default)]
pub struct Live {
    stats: RwLock<HashMap<(String, Option<String>), Stats>>,
    /// Per offer: (minute, contacts) oldest first.
    contacts: Mutex<HashMap<String, VecDeque<(i64, u64)>>>,
}

impl Live {
    pub fn warm(&self, stats: Vec<OfferStats>, contacts: Vec<(String, Timestamp)>) {
        let mut map = self.stats.write().expect("stats lock");
        for s in stats {
            map.insert((s.offer, s.segment), s.stats);
        }
        drop(map);
        for (offer, at) in contacts {
            self.count_contact(&offer, at);
        }
    }

    fn count_contact(&self, offer: &str, at: Timestamp) {
        let minute = at.0.div_euclid(BUCKET_NANOS);
        let mut contacts = self.contacts.lock().expect("contacts lock");
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
        let mut stats = self.stats.write().expect("stats lock");
        for r in records {
            let t = &r.treatment;
            let keys = [
                Some((t.offer.clone(), None)),
                t.segment.clone().map(|s| (t.offer.clone(), Some(s))),
            ];
            for key in keys.into_iter().flatten() {
                let s = stats.entry(key).or_default();
                match r.kind {
                    ResponseKind::Contact => s.contacts += 1,
                    ResponseKind::Accept => s.accepts += 1,
                    ResponseKind::Reject => {}
                }
            }
        }
        drop(stats);
        for r in records.iter().filter(|r| r.kind == ResponseKind::Contact) {
            self.count_contact(&r.treatment.offer, r.at);
        }
    }

    pub fn stats(&self) -> Vec<(String, Option<String>, Stats)> {
        self.stats
            .read()
            .expect("stats lock")
            .iter()
            .map(|((o, s), st)| (o.clone(), s.clone(), *st))
            .collect()
    }
}

/// The [`World`] one request sees.
pub struct RequestWorld<'a> {
    pub live: &'a Live,
    /// A contact from an earlier session the request refers to, fetched beforehand.
    pub earlier: Option<Treatment>,
}

impl World for RequestWorld<'_> {
    fn offer_stats(&self, offer: &str, segment: Option<&str>) -> Stats {
        let key = (offer.to_string(), segment.map(str::to_string));
        self.live
            .stats
            .read()
            .expect("stats lock")
            .get(&key)
            .copied()
            .unwrap_or_default()
    }

    fn offer_contacts_since(&self, offer: &str, since: Timestamp) -> u64 {
        let first = since.0.div_euclid(BUCKET_NANOS);
        let contacts = self.live.contacts.lock().expect("contacts lock");
        contacts.get(offer).map_or(0, |b| {
            b.iter()
                .rev()
                .take_while(|(m, _)| *m >= first)
                .map(|(_, n)| n)
                .sum()
        })
    }

    fn find_treatment(&self, code: &str) -> Option<Treatment> {
        self.earlier.clone().filter(|t| t.code == code)
    }
}
