//! The plain data that crosses the engine's boundary: what storage loads for a visitor, what
//! the engine asks of the rest of the system while deciding, and the records it hands back.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use kairos_rules::Value;
use kairos_rules::time::Timestamp;

/// A profile row with its dimension rows: field name -> value. Dimension tables appear under
/// their dimension name as a list of maps.
pub type Profile = HashMap<String, Value>;

/// One table row as (column, value) pairs, missing values left out.
pub type Row = Vec<(String, Value)>;

/// A profile from its row and its dimensions' rows (each a list of maps under its name).
pub fn assemble_profile(row: Row, dimensions: Vec<(String, Vec<Row>)>) -> Profile {
    let mut profile: Profile = row.into_iter().collect();
    for (name, rows) in dimensions {
        let list = rows
            .into_iter()
            .map(|r| Value::map(r.into_iter().map(|(k, v)| (Value::string(k), v))));
        profile.insert(name, Value::list(list));
    }
    profile
}

/// Whether a profile row holds every ID field of the audience (rows are found by the first).
pub fn matches_audience(row: &Row, audience: &AudienceId) -> bool {
    audience.fields.iter().all(|(f, v)| {
        row.iter()
            .any(|(c, cv)| c.eq_ignore_ascii_case(f) && id_text(cv) == id_text(v))
    })
}

/// Who a session is about: an audience level and the values of its ID fields.
#[derive(Clone, Debug, PartialEq)]
pub struct AudienceId {
    pub level: String,
    pub fields: Vec<(String, Value)>,
}

impl AudienceId {
    /// The canonical key of this audience ID: `1001` and `"1001"` name the same customer.
    pub fn key(&self) -> String {
        let mut key = self.level.to_ascii_lowercase();
        for (i, (field, value)) in self.fields.iter().enumerate() {
            key.push(if i == 0 { ':' } else { '|' });
            key.push_str(field);
            key.push('=');
            key.push_str(&id_text(value));
        }
        key
    }
}

/// An ID value as text, whatever JSON type it arrived as.
pub fn id_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.to_string(),
        Value::Double(d) if d.fract() == 0.0 && d.abs() < 1e15 => format!("{}", *d as i64),
        other => other.to_string(),
    }
}

/// Where a treatment came from, as history keeps it: the offer, its category, and the rule
/// (with its segment) that served it. The deployment builds one per rule and offer, shared by
/// every treatment issued from it: serving an offer counts one reference, not one per name,
/// and each name's count is a cache line the request would otherwise touch.
#[derive(Clone, Debug, PartialEq)]
pub struct Origin {
    pub offer: Arc<str>,
    pub category: Option<Arc<str>>,
    pub rule: Arc<str>,
    /// The segment of the rule that proposed the offer (`None` for a `*` rule).
    pub segment: Option<Arc<str>>,
}

/// A treatment code. The codes Kairos issues (24 hex digits) are kept inline: a get offers
/// issues three and a session keeps its last 64, and a code on the heap cost each of them an
/// allocation, a shared count to touch on every copy and, when a session drops its oldest
/// code, a cache miss to free it (0.6-0.9 us of the server's 13 us per get offers, measured).
/// Any other text, such as a code a touchpoint made up, is kept on the heap.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TreatmentCode(CodeText);

#[derive(Clone, PartialEq, Eq, Hash)]
enum CodeText {
    /// ASCII only: built by `From<&str>` after a check, or from hex digits.
    Inline([u8; INLINE_CODE_LEN]),
    Heap(Box<str>),
}

/// The length of the codes Kairos issues.
pub(crate) const INLINE_CODE_LEN: usize = 24;

impl TreatmentCode {
    /// A code of ASCII bytes, as the engine issues them.
    pub(crate) fn ascii(bytes: [u8; INLINE_CODE_LEN]) -> Self {
        assert!(bytes.is_ascii(), "treatment codes are issued in ASCII");
        TreatmentCode(CodeText::Inline(bytes))
    }

    pub fn as_str(&self) -> &str {
        match &self.0 {
            CodeText::Inline(bytes) => std::str::from_utf8(bytes).expect("inline codes are ASCII"),
            CodeText::Heap(text) => text,
        }
    }
}

impl From<&str> for TreatmentCode {
    fn from(text: &str) -> Self {
        match <[u8; INLINE_CODE_LEN]>::try_from(text.as_bytes()) {
            Ok(bytes) if text.is_ascii() => TreatmentCode(CodeText::Inline(bytes)),
            _ => TreatmentCode(CodeText::Heap(text.into())),
        }
    }
}

impl std::ops::Deref for TreatmentCode {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for TreatmentCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for TreatmentCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

/// One offer shown once: returned with the offer, echoed back with contacts and responses.
///
/// Names are shared with the deployment and the session (`Arc<str>`) and the code is kept
/// inline: issuing a treatment on the request path allocates nothing.
#[derive(Clone, Debug, PartialEq)]
pub struct Treatment {
    pub code: TreatmentCode,
    pub origin: Arc<Origin>,
    pub ip: Arc<str>,
    pub zone: Arc<str>,
    pub score: f64,
    pub deployment: u64,
    pub session_id: Arc<str>,
    pub audience: Arc<str>,
    pub issued_at: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResponseKind {
    Contact,
    Accept,
    Reject,
}

impl ResponseKind {
    pub fn name(self) -> &'static str {
        match self {
            ResponseKind::Contact => "contact",
            ResponseKind::Accept => "accept",
            ResponseKind::Reject => "reject",
        }
    }
}

/// A contact or response for the durable history.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryRecord {
    pub kind: ResponseKind,
    pub treatment: Treatment,
    pub at: Timestamp,
    /// The response names a treatment from an earlier session.
    pub cross_session: bool,
}

/// What one audience ID did with one offer, across sessions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OfferHistory {
    /// Times of the most recent contacts (bounded: only suppression windows need them).
    pub recent_contacts: Vec<Timestamp>,
    pub total_contacts: u64,
    pub last_accept: Option<Timestamp>,
    pub last_reject: Option<Timestamp>,
}

/// How many recent contact times an offer's history keeps.
pub const RECENT_CONTACTS_KEPT: usize = 64;

impl OfferHistory {
    pub fn record_contact(&mut self, at: Timestamp) {
        self.total_contacts += 1;
        self.recent_contacts.push(at);
        if self.recent_contacts.len() > RECENT_CONTACTS_KEPT {
            self.recent_contacts.remove(0);
        }
    }
}

/// The running state of one event pattern for one audience ID.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PatternState {
    /// Start of the current fixed window.
    pub window_start: Option<Timestamp>,
    /// Count or weighted sum within the window (fixed window or none).
    pub sum: f64,
    /// Distinct events seen within the window (for `all`).
    pub seen: BTreeSet<String>,
    /// Timestamped hits, kept only for rolling windows.
    pub hits: Vec<(String, Timestamp, f64)>,
    /// Whether the pattern was true after the last event (actions run on the change to true).
    pub matched: bool,
}

/// Offers suppressed for a while by an event's `suppress` action.
#[derive(Clone, Debug, PartialEq)]
pub struct TimedSuppression {
    pub offers: Vec<String>,
    pub category: Option<String>,
    pub until: Timestamp,
}

/// Everything kept per audience ID across sessions: loaded at session start, saved as it
/// changes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AudienceState {
    pub offers: NameMap<OfferHistory>,
    pub patterns: NameMap<PatternState>,
    pub suppressions: Vec<TimedSuppression>,
}

impl AudienceState {
    /// What `stored` becomes when a session that read `base` writes `mine`: the session's
    /// own changes (from `base` to `mine`) applied to what is stored now, so that sessions of
    /// one audience ID writing at once each keep what they did. Counts add, times take the
    /// later, suppressions and hits unite, and what the session removed goes.
    pub fn merged(stored: &AudienceState, base: &AudienceState, mine: &AudienceState) -> Self {
        let mut out = stored.clone();
        for (name, m) in mine.offers.iter() {
            let b = base.offers.get(name);
            if b == Some(m) {
                continue;
            }
            let b = b.cloned().unwrap_or_default();
            let o = out.offers.get_or_insert(name);
            o.total_contacts += m.total_contacts.saturating_sub(b.total_contacts);
            let mut recent: Vec<Timestamp> = o.recent_contacts.clone();
            recent.extend(
                m.recent_contacts
                    .iter()
                    .filter(|t| !b.recent_contacts.contains(t)),
            );
            recent.sort_unstable();
            recent.dedup();
            let keep_from = recent.len().saturating_sub(RECENT_CONTACTS_KEPT);
            o.recent_contacts = recent.split_off(keep_from);
            o.last_accept = o.last_accept.max(m.last_accept);
            o.last_reject = o.last_reject.max(m.last_reject);
        }
        for (name, b) in base.patterns.iter() {
            if mine.patterns.get(name).is_none() && out.patterns.get(name) == Some(b) {
                out.patterns.0.retain(|(n, _)| n != name);
            }
        }
        for (name, m) in mine.patterns.iter() {
            let b = base.patterns.get(name);
            if b == Some(m) {
                continue;
            }
            let merged = match out.patterns.get(name) {
                Some(now) if Some(now) != b && now.window_start == m.window_start => {
                    let base_sum = b
                        .filter(|b| b.window_start == m.window_start)
                        .map_or(0.0, |b| b.sum);
                    let mut hits = now.hits.clone();
                    hits.extend(
                        m.hits
                            .iter()
                            .filter(|h| !hits.contains(h))
                            .cloned()
                            .collect::<Vec<_>>(),
                    );
                    hits.sort_by_key(|h| h.1);
                    PatternState {
                        window_start: m.window_start,
                        sum: now.sum + (m.sum - base_sum),
                        seen: now.seen.union(&m.seen).cloned().collect(),
                        hits,
                        matched: now.matched || m.matched,
                    }
                }
                Some(now) if Some(now) != b && now.window_start > m.window_start => now.clone(),
                _ => m.clone(),
            };
            out.patterns.insert(name.to_string(), merged);
        }
        let dropped: Vec<&TimedSuppression> = base
            .suppressions
            .iter()
            .filter(|s| !mine.suppressions.contains(s))
            .collect();
        out.suppressions.retain(|s| !dropped.contains(&s));
        for s in &mine.suppressions {
            if !base.suppressions.contains(s) && !out.suppressions.contains(s) {
                out.suppressions.push(s.clone());
            }
        }
        out
    }
}

/// A map from names to values, in name order, kept as a sorted vector: an audience has met a
/// few offers and patterns, and a `BTreeMap`'s first node alone takes about a kilobyte
/// (eleven slots), for every session whose visitor saw an offer.
#[derive(Clone, Debug, PartialEq)]
pub struct NameMap<V>(Vec<(String, V)>);

impl<V> Default for NameMap<V> {
    fn default() -> Self {
        NameMap(Vec::new())
    }
}

impl<V> NameMap<V> {
    fn position(&self, name: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(n, _)| n.as_str().cmp(name))
    }

    pub fn get(&self, name: &str) -> Option<&V> {
        self.position(name).ok().map(|i| &self.0[i].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.position(name).is_ok()
    }

    /// The value under `name`, made if missing: the name is copied only then.
    pub fn get_or_insert(&mut self, name: &str) -> &mut V
    where
        V: Default,
    {
        let i = self.position(name).unwrap_or_else(|i| {
            self.0.insert(i, (name.to_string(), V::default()));
            i
        });
        &mut self.0[i].1
    }

    /// Sets the value under `name`, returning the one it replaces.
    pub fn insert(&mut self, name: String, value: V) -> Option<V> {
        match self.position(&name) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (name, value));
                None
            }
        }
    }

    /// Names and values in name order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &V)> {
        self.0.iter().map(|(name, value)| (name.as_str(), value))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }
}

/// Later pairs replace earlier ones of the same name, as in a map.
impl<V> FromIterator<(String, V)> for NameMap<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(pairs: I) -> Self {
        let mut map = NameMap::default();
        for (name, value) in pairs {
            map.insert(name, value);
        }
        map
    }
}

impl<V, const N: usize> From<[(String, V); N]> for NameMap<V> {
    fn from(pairs: [(String, V); N]) -> Self {
        pairs.into_iter().collect()
    }
}

/// Contacts and accepts of an offer, for learning.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub contacts: u64,
    pub accepts: u64,
}

/// What the engine reads from the rest of the system while deciding. The shell implements it
/// over its caches; every call must be cheap and must not block.
pub trait World {
    /// Learning statistics of an offer, overall (`segment: None`) or within a segment.
    fn offer_stats(&self, offer: &str, segment: Option<&str>) -> Stats;
    /// Contacts of an offer logged across all visitors since `since` (for constraints).
    fn offer_contacts_since(&self, offer: &str, since: Timestamp) -> u64;
    /// A contact logged in an earlier session, by treatment code (cross-session responses).
    fn find_treatment(&self, code: &str) -> Option<Treatment>;
}

/// An in-memory [`World`] and audience store: for in-process scenario runs, tests and
/// benchmarks. It keeps everything it is given.
#[derive(Clone, Debug, Default)]
pub struct MemoryWorld {
    stats: HashMap<(String, Option<String>), Stats>,
    contacts: HashMap<String, Vec<Timestamp>>,
    treatments: HashMap<String, Treatment>,
    audiences: HashMap<String, AudienceState>,
    pub records: Vec<HistoryRecord>,
}

impl MemoryWorld {
    pub fn new() -> Self {
        MemoryWorld::default()
    }

    /// Takes in a session's history records, as durable storage would.
    pub fn apply(&mut self, records: impl IntoIterator<Item = HistoryRecord>) {
        for record in records {
            let t = &record.treatment;
            for key in [
                (t.origin.offer.to_string(), None),
                (
                    t.origin.offer.to_string(),
                    t.origin.segment.as_deref().map(str::to_string),
                ),
            ] {
                let stats = self.stats.entry(key).or_default();
                match record.kind {
                    ResponseKind::Contact => stats.contacts += 1,
                    ResponseKind::Accept => stats.accepts += 1,
                    ResponseKind::Reject => {}
                }
                if t.origin.segment.is_none() {
                    break;
                }
            }
            if record.kind == ResponseKind::Contact {
                self.contacts
                    .entry(t.origin.offer.to_string())
                    .or_default()
                    .push(record.at);
                self.treatments.insert(t.code.to_string(), t.clone());
            }
            self.records.push(record);
        }
    }

    /// Sets learning statistics directly (benchmarks, tests).
    pub fn set_stats(&mut self, offer: &str, segment: Option<&str>, stats: Stats) {
        self.stats
            .insert((offer.to_string(), segment.map(str::to_string)), stats);
    }

    pub fn audience_state(&self, key: &str) -> AudienceState {
        self.audiences.get(key).cloned().unwrap_or_default()
    }

    pub fn save_audience_state(&mut self, key: &str, state: AudienceState) {
        self.audiences.insert(key.to_string(), state);
    }
}

impl World for MemoryWorld {
    fn offer_stats(&self, offer: &str, segment: Option<&str>) -> Stats {
        self.stats
            .get(&(offer.to_string(), segment.map(str::to_string)))
            .copied()
            .unwrap_or_default()
    }

    fn offer_contacts_since(&self, offer: &str, since: Timestamp) -> u64 {
        self.contacts.get(offer).map_or(0, |times| {
            times.iter().filter(|t| **t >= since).count() as u64
        })
    }

    fn find_treatment(&self, code: &str) -> Option<Treatment> {
        self.treatments.get(code).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A code reads back as the text it was made from, whether it is kept inline or not,
        /// and two codes are equal exactly when their texts are.
        #[test]
        fn a_treatment_code_keeps_its_text(a in "[0-9a-f]{24}|.{0,30}", b in "[0-9a-f]{24}|.{0,30}") {
            let (ca, cb) = (TreatmentCode::from(a.as_str()), TreatmentCode::from(b.as_str()));
            prop_assert_eq!(ca.as_str(), a.as_str());
            prop_assert_eq!(ca == cb, a == b);
            prop_assert_eq!(ca.to_string(), a);
        }

        /// Whatever order names come in, a name map answers as a `BTreeMap` would.
        #[test]
        fn a_name_map_answers_as_a_btree_map(
            steps in proptest::collection::vec(("[a-e]{1,2}", any::<u8>(), any::<bool>()), 0..40)
        ) {
            let mut map = NameMap::default();
            let mut oracle = std::collections::BTreeMap::new();
            for (name, value, replace) in steps {
                if replace {
                    prop_assert_eq!(map.insert(name.clone(), value), oracle.insert(name, value));
                } else {
                    *map.get_or_insert(&name) ^= value;
                    *oracle.entry(name).or_default() ^= value;
                }
            }
            let pairs: Vec<(&str, &u8)> = oracle.iter().map(|(k, v)| (k.as_str(), v)).collect();
            prop_assert_eq!(map.iter().collect::<Vec<_>>(), pairs);
            prop_assert_eq!(map.len(), oracle.len());
            for name in ["a", "b", "ee", "z"] {
                prop_assert_eq!(map.get(name), oracle.get(name));
                prop_assert_eq!(map.contains_key(name), oracle.contains_key(name));
            }
        }
    }

    #[test]
    fn sessions_of_one_audience_writing_at_once_each_keep_what_they_did() {
        let t = Timestamp;
        let mut base = AudienceState::default();
        base.offers.get_or_insert("GOLD").record_contact(t(1));
        // Session A: another contact of GOLD, then its accept and a suppression.
        let mut a = base.clone();
        a.offers.get_or_insert("GOLD").record_contact(t(5));
        a.offers.get_or_insert("GOLD").last_accept = Some(t(6));
        a.suppressions.push(TimedSuppression {
            offers: vec!["GOLD".into()],
            category: None,
            until: t(100),
        });
        // Session B, from the same base: a contact of GOLD and one of SILVER.
        let mut b = base.clone();
        b.offers.get_or_insert("GOLD").record_contact(t(7));
        b.offers.get_or_insert("SILVER").record_contact(t(8));
        b.patterns.get_or_insert("browsing").sum = 1.0;

        let after_a = AudienceState::merged(&base, &base, &a);
        assert_eq!(after_a, a, "alone, a session's state is what it wrote");
        let after_both = AudienceState::merged(&after_a, &base, &b);
        let gold = after_both.offers.get("GOLD").unwrap();
        assert_eq!(gold.total_contacts, 3, "1 before, one from each session");
        assert_eq!(gold.recent_contacts, vec![t(1), t(5), t(7)]);
        assert_eq!(gold.last_accept, Some(t(6)), "A's accept is kept");
        assert_eq!(after_both.suppressions.len(), 1, "A's suppression is kept");
        assert_eq!(after_both.offers.get("SILVER").unwrap().total_contacts, 1);
        assert_eq!(after_both.patterns.get("browsing").unwrap().sum, 1.0);

        // Two sessions counting into one pattern's window add up; a removal goes.
        let mut counted = base.clone();
        counted.patterns.get_or_insert("browsing").sum = 2.0;
        let again = AudienceState::merged(&after_both, &base, &counted);
        assert_eq!(again.patterns.get("browsing").unwrap().sum, 3.0);
        let mut lifted = after_both.clone();
        lifted.suppressions.clear();
        let cleared = AudienceState::merged(&again, &after_both, &lifted);
        assert!(cleared.suppressions.is_empty());
    }

    #[test]
    fn audience_keys_ignore_the_json_type_of_ids() {
        let a = AudienceId {
            level: "customer".into(),
            fields: vec![("customer_id".into(), Value::Int(1001))],
        };
        let b = AudienceId {
            level: "Customer".into(),
            fields: vec![("customer_id".into(), Value::from("1001"))],
        };
        let c = AudienceId {
            level: "customer".into(),
            fields: vec![("customer_id".into(), Value::Double(1001.0))],
        };
        assert_eq!(a.key(), b.key());
        assert_eq!(a.key(), c.key());
        assert_eq!(a.key(), "customer:customer_id=1001");
    }
}
