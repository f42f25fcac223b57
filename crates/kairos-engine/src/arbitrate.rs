//! Choosing the offers for one get-offers request: candidates from the rules of each
//! interaction point's zone for the visitor's segments, filters, scores, learning, no
//! duplicates across the requested points, top N, default strings.

use std::sync::Arc;

use kairos_model::model::Pick;
use kairos_rules::Value;
use kairos_rules::time::{NANOS_PER_SECOND, Timestamp};

use crate::deployment::{Deployment, HoldFor, Offer, Placement, Rule};
use crate::learning::sample_rate;
use crate::messages::{Message, MessageCode};
use crate::random::Random;
use crate::session::{Session, SessionActivation};
use crate::world::{INLINE_CODE_LEN, Treatment, TreatmentCode, World};

/// A get-offers call: interaction points, parameters to keep, and whether one offer may
/// appear at several points (each point may say otherwise for itself).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OffersRequest {
    pub requests: Vec<OfferRequest>,
    pub params: Vec<(String, Value)>,
    pub allow_duplicates: bool,
}

/// One interaction point and how many offers it wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferRequest {
    pub ip: String,
    pub count: usize,
    /// Whether this point may repeat offers the points before it in the call were given;
    /// `None` follows the call's `allow_duplicates`. Interact's clients set it per point
    /// (`dupPolicy`).
    pub allow_duplicates: Option<bool>,
}

impl OfferRequest {
    /// `count` offers for `ip`, under the call's duplicate policy.
    pub fn new(ip: impl Into<String>, count: usize) -> Self {
        OfferRequest {
            ip: ip.into(),
            count,
            allow_duplicates: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ServedOffer {
    /// The offer, its serving rule and what it is shown with, shared with the deployment.
    pub placement: Arc<Placement>,
    pub treatment_code: TreatmentCode,
    pub score: f64,
}

impl ServedOffer {
    pub fn code(&self) -> &str {
        &self.placement.origin.offer
    }

    pub fn name(&self) -> Option<&str> {
        self.placement.name.as_deref()
    }

    pub fn category(&self) -> Option<&str> {
        self.placement.origin.category.as_deref()
    }

    /// The offer's attributes with the serving rule's overrides, merged at deploy time.
    pub fn attributes(&self) -> &[(String, Value)] {
        &self.placement.attributes
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct OfferList {
    pub ip: Arc<str>,
    /// The interaction point's default string, served when no offer qualifies.
    pub default: Option<String>,
    pub offers: Vec<ServedOffer>,
}

/// Why a candidate was not served. Stable names, shown in the explain output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Filter {
    RuleDisabled,
    RuleNotYetEffective,
    RuleExpired,
    OfferNotYetEffective,
    OfferExpired,
    Ineligible,
    EligibilityError,
    ScoreError,
    SuppressedAfterAccept,
    SuppressedAfterReject,
    SuppressedMaxContacts,
    SuppressedByEvent,
    VisitCap,
    Constraint,
    ControlGroup,
    NotPicked,
    OutscoredByAnotherRule,
    Duplicate,
    BelowTopN,
}

impl Filter {
    pub const ALL: [Filter; 19] = [
        Filter::RuleDisabled,
        Filter::RuleNotYetEffective,
        Filter::RuleExpired,
        Filter::OfferNotYetEffective,
        Filter::OfferExpired,
        Filter::Ineligible,
        Filter::EligibilityError,
        Filter::ScoreError,
        Filter::SuppressedAfterAccept,
        Filter::SuppressedAfterReject,
        Filter::SuppressedMaxContacts,
        Filter::SuppressedByEvent,
        Filter::VisitCap,
        Filter::Constraint,
        Filter::ControlGroup,
        Filter::NotPicked,
        Filter::OutscoredByAnotherRule,
        Filter::Duplicate,
        Filter::BelowTopN,
    ];

    /// The filter with this stable name, as the explain output shows it.
    pub fn from_name(name: &str) -> Option<Filter> {
        Filter::ALL.into_iter().find(|f| f.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Filter::RuleDisabled => "rule_disabled",
            Filter::RuleNotYetEffective => "rule_not_yet_effective",
            Filter::RuleExpired => "rule_expired",
            Filter::OfferNotYetEffective => "offer_not_yet_effective",
            Filter::OfferExpired => "offer_expired",
            Filter::Ineligible => "ineligible",
            Filter::EligibilityError => "eligibility_error",
            Filter::ScoreError => "score_error",
            Filter::SuppressedAfterAccept => "suppressed_after_accept",
            Filter::SuppressedAfterReject => "suppressed_after_reject",
            Filter::SuppressedMaxContacts => "suppressed_max_contacts",
            Filter::SuppressedByEvent => "suppressed_by_event",
            Filter::VisitCap => "visit_cap",
            Filter::Constraint => "constraint",
            Filter::ControlGroup => "control_group",
            Filter::NotPicked => "not_picked",
            Filter::OutscoredByAnotherRule => "outscored_by_another_rule",
            Filter::Duplicate => "duplicate",
            Filter::BelowTopN => "below_top_n",
        }
    }
}

/// One candidate offer of one interaction point, for the explain output.
#[derive(Clone, Debug, PartialEq)]
pub struct CandidateExplain {
    pub offer: Arc<str>,
    pub rule: Arc<str>,
    pub removed_by: Option<Filter>,
    /// The failed expression's error, for `eligibility_error` and `score_error`.
    pub detail: Option<String>,
    /// The marketing score (or score expression's value).
    pub score: Option<f64>,
    /// The score after learning (or exploration).
    pub final_score: Option<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct IpExplain {
    pub ip: Arc<str>,
    pub control_group: bool,
    /// This request was served by pure exploration (learning's explore share).
    pub explored: bool,
    pub candidates: Vec<CandidateExplain>,
}

impl IpExplain {
    /// One line per candidate: `GOLD_CARD (rule gold): removed by suppressed_after_reject`.
    pub fn to_text(&self) -> String {
        let mut out = format!("{}:", self.ip);
        if self.control_group {
            out.push_str(" visitor is in the control group");
        }
        if self.explored {
            out.push_str(" served by exploration");
        }
        if self.candidates.is_empty() {
            out.push_str(" no candidate offers");
        }
        out.push('\n');
        for c in &self.candidates {
            out.push_str(&format!("  {} (rule {})", c.offer, c.rule));
            if let Some(score) = c.score {
                out.push_str(&format!(" score {score:.2}"));
            }
            if let Some(final_score) = c.final_score.filter(|f| Some(*f) != c.score) {
                out.push_str(&format!(" -> {final_score:.2} after learning"));
            }
            match c.removed_by {
                Some(f) => out.push_str(&format!(": removed by {}", f.name())),
                None => out.push_str(": served"),
            }
            if let Some(detail) = &c.detail {
                out.push_str(&format!(" ({detail})"));
            }
            out.push('\n');
        }
        out
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct OffersResponse {
    pub offer_lists: Vec<OfferList>,
    pub messages: Vec<Message>,
    /// Present when the session is in debug mode.
    pub explain: Option<Vec<IpExplain>>,
}

struct Candidate {
    offer: usize,
    rule: usize,
    /// The offer's place in its rule's offers (and placements).
    slot: usize,
    score: f64,
    final_score: f64,
    /// Orders candidates of equal final scores: drawn at random when the channel learns, so
    /// that tied offers share the traffic and each gathers the evidence learning needs;
    /// zero otherwise (rule and offer order decide).
    tie: u64,
}

fn seconds(s: i64) -> i64 {
    s.saturating_mul(NANOS_PER_SECOND)
}

impl Session {
    /// Decides the offers for the requested interaction points.
    pub fn get_offers(
        &mut self,
        dep: &Deployment,
        world: &dyn World,
        rng: &mut dyn Random,
        request: &OffersRequest,
        now: Timestamp,
    ) -> OffersResponse {
        self.bind(dep, now);
        self.merge_params(dep, &request.params);
        let mut messages = Vec::new();
        let mut explain = self.debug.then(Vec::new);
        // Offers served so far in this response: a handful, so a list beats a hash set.
        let mut chosen: Vec<usize> = Vec::new();
        let mut lists = Vec::with_capacity(request.requests.len());
        // Refilled in place: its buffer serves every get offers of the session.
        self.last_offers.clear();
        for point in &request.requests {
            let Some(ip_index) = dep.ip_index.find(&point.ip) else {
                messages.push(Message::warning(
                    MessageCode::UnknownInteractionPoint,
                    format!(
                        "interaction point '{}' is not defined in channel '{}'",
                        point.ip, dep.channel
                    ),
                ));
                lists.push(OfferList {
                    ip: point.ip.as_str().into(),
                    default: None,
                    offers: Vec::new(),
                });
                continue;
            };
            let ip = &dep.ips[ip_index];
            let mut ip_explain = IpExplain {
                ip: ip.name.clone(),
                control_group: self.bound().control_group,
                explored: false,
                candidates: Vec::new(),
            };
            let (picked, explored) = self.arbitrate_ip(
                dep,
                world,
                rng,
                ip.zone,
                point.count,
                point.allow_duplicates.unwrap_or(request.allow_duplicates),
                &chosen,
                now,
                &mut ip_explain,
            );
            ip_explain.explored = explored;
            let mut offers = Vec::with_capacity(picked.len());
            for c in picked {
                chosen.push(c.offer);
                let served = self.serve(dep, rng, &c, &ip.name, &dep.zones[ip.zone], now);
                self.last_offers.push(served.treatment_code.clone());
                offers.push(served);
            }
            lists.push(OfferList {
                ip: ip.name.clone(),
                default: ip.default.clone(),
                offers,
            });
            if let Some(explain) = explain.as_mut() {
                explain.push(ip_explain);
            }
        }
        OffersResponse {
            offer_lists: lists,
            messages,
            explain,
        }
    }

    /// Gives a chosen candidate a fresh treatment code and remembers it.
    fn serve(
        &mut self,
        dep: &Deployment,
        rng: &mut dyn Random,
        c: &Candidate,
        ip: &Arc<str>,
        zone: &Arc<str>,
        now: Timestamp,
    ) -> ServedOffer {
        let rule = &dep.rules[c.rule];
        let code = treatment_code(now, rng);
        let placement = &rule.placements[c.slot];
        self.remember(Treatment {
            code: code.clone(),
            origin: placement.origin.clone(),
            ip: ip.clone(),
            zone: zone.clone(),
            score: c.final_score,
            deployment: dep.version,
            session_id: self.id.clone(),
            audience: self.audience_key.clone(),
            issued_at: now,
        });
        ServedOffer {
            placement: placement.clone(),
            treatment_code: code,
            score: c.final_score,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn arbitrate_ip(
        &mut self,
        dep: &Deployment,
        world: &dyn World,
        rng: &mut dyn Random,
        zone: usize,
        count: usize,
        allow_duplicates: bool,
        chosen: &[usize],
        now: Timestamp,
        explain: &mut IpExplain,
    ) -> (Vec<Candidate>, bool) {
        let debug = self.debug;
        let bound = self.bound();
        let zone_rules = &dep.zone_rules[zone];
        // Sized up front: this and the buffers below are allocated on every get offers.
        let segment_rules = || bound.segments.iter().map(|s| &zone_rules.by_segment[s]);
        let mut rule_ids = Vec::with_capacity(
            zone_rules.any_segment.len() + segment_rules().map(Vec::len).sum::<usize>(),
        );
        rule_ids.extend_from_slice(&zone_rules.any_segment);
        for rules in segment_rules() {
            rule_ids.extend_from_slice(rules);
        }
        rule_ids.sort_unstable();
        let mut note = |offer: usize,
                        rule: usize,
                        filter: Option<Filter>,
                        detail: Option<String>,
                        score: Option<f64>| {
            if debug {
                explain.candidates.push(CandidateExplain {
                    offer: dep.offers[offer].code.clone(),
                    rule: dep.rules[rule].id.clone(),
                    removed_by: filter,
                    detail,
                    score,
                    final_score: None,
                });
            }
        };
        if bound.control_group {
            for &r in &rule_ids {
                for &o in &dep.rules[r].offers {
                    note(o, r, Some(Filter::ControlGroup), None, None);
                }
            }
            return (Vec::new(), false);
        }

        let mut errors = 0;
        // Best candidate per offer: the highest-scoring rule wins, the earlier rule on a tie.
        let mut best: Vec<Candidate> = Vec::with_capacity(rule_ids.len());
        // One buffer for every rule's surviving offers (offer, slot in the rule, score): this
        // loop is the hot path.
        let mut survivors: Vec<(usize, usize, f64)> = Vec::with_capacity(dep.max_offers_per_rule);
        for &r in &rule_ids {
            let rule = &dep.rules[r];
            let rule_filter = if !rule.enabled {
                Some(Filter::RuleDisabled)
            } else if rule.effective.is_some_and(|t| now < t) {
                Some(Filter::RuleNotYetEffective)
            } else if rule.expires.is_some_and(|t| now >= t) {
                Some(Filter::RuleExpired)
            } else {
                None
            };
            survivors.clear();
            for (slot, &o) in rule.offers.iter().enumerate() {
                if let Some(f) = rule_filter {
                    note(o, r, Some(f), None, None);
                    continue;
                }
                match self.offer_filter(dep, world, o, now) {
                    Some(f) => note(o, r, Some(f), None, None),
                    None => match score_candidate(dep, bound, rule, &dep.offers[o], now) {
                        Ok(score) => survivors.push((o, slot, score)),
                        Err((f, detail)) => {
                            if f != Filter::Ineligible {
                                errors += 1;
                            }
                            note(o, r, Some(f), detail, None);
                        }
                    },
                }
            }
            if rule.offers.len() > 1 && survivors.len() > 1 {
                let keep = match rule.pick {
                    Pick::Best => {
                        let top = survivors
                            .iter()
                            .map(|(_, _, s)| *s)
                            .fold(f64::MIN, f64::max);
                        survivors
                            .iter()
                            .position(|(_, _, s)| *s == top)
                            .expect("non-empty")
                    }
                    Pick::Random => (rng.next_u64() % survivors.len() as u64) as usize,
                };
                for (i, (o, _, s)) in survivors.iter().enumerate() {
                    if i != keep {
                        note(*o, r, Some(Filter::NotPicked), None, Some(*s));
                    }
                }
                survivors.swap(0, keep);
                survivors.truncate(1);
            }
            for &(o, slot, score) in &survivors {
                if !allow_duplicates && chosen.contains(&o) {
                    note(o, r, Some(Filter::Duplicate), None, Some(score));
                    continue;
                }
                let candidate = Candidate {
                    offer: o,
                    rule: r,
                    slot,
                    score,
                    final_score: score,
                    tie: 0,
                };
                match best.iter_mut().find(|c| c.offer == o) {
                    Some(existing) if existing.score >= score => {
                        note(
                            o,
                            r,
                            Some(Filter::OutscoredByAnotherRule),
                            None,
                            Some(score),
                        );
                    }
                    Some(existing) => {
                        note(
                            o,
                            existing.rule,
                            Some(Filter::OutscoredByAnotherRule),
                            None,
                            Some(existing.score),
                        );
                        *existing = candidate;
                    }
                    None => best.push(candidate),
                }
            }
        }

        let explored = self.learn(dep, world, rng, &mut best);
        best.sort_by(|a, b| {
            b.final_score
                .total_cmp(&a.final_score)
                .then(b.tie.cmp(&a.tie))
                .then(a.rule.cmp(&b.rule))
                .then(a.offer.cmp(&b.offer))
        });
        if debug {
            for (i, c) in best.iter().enumerate() {
                explain.candidates.push(CandidateExplain {
                    offer: dep.offers[c.offer].code.clone(),
                    rule: dep.rules[c.rule].id.clone(),
                    removed_by: (i >= count).then_some(Filter::BelowTopN),
                    detail: None,
                    score: Some(c.score),
                    final_score: Some(c.final_score),
                });
            }
        }
        best.truncate(count);
        self.eval_errors += errors;
        (best, explored)
    }

    /// Filters that depend on the offer and the visitor's history, not on the rule.
    fn offer_filter(
        &self,
        dep: &Deployment,
        world: &dyn World,
        o: usize,
        now: Timestamp,
    ) -> Option<Filter> {
        let offer = &dep.offers[o];
        if offer.effective.is_some_and(|t| now < t) {
            return Some(Filter::OfferNotYetEffective);
        }
        if offer.expires.is_some_and(|t| now >= t) {
            return Some(Filter::OfferExpired);
        }
        if let Some(history) = self.state.offers.get(&offer.code) {
            let held = |hold: &Option<HoldFor>, at: Option<Timestamp>| match (hold, at) {
                (Some(HoldFor::Forever), Some(_)) => true,
                (Some(HoldFor::Seconds(s)), Some(at)) => now.0 < at.0.saturating_add(seconds(*s)),
                _ => false,
            };
            if held(&offer.after_accept, history.last_accept) {
                return Some(Filter::SuppressedAfterAccept);
            }
            if held(&offer.after_reject, history.last_reject) {
                return Some(Filter::SuppressedAfterReject);
            }
            if let Some((max, within)) = offer.max_contacts {
                let contacts = match within {
                    None => history.total_contacts,
                    Some(w) => {
                        let since = now.0.saturating_sub(seconds(w));
                        history
                            .recent_contacts
                            .iter()
                            .filter(|t| t.0 > since)
                            .count() as u64
                    }
                };
                if contacts >= max {
                    return Some(Filter::SuppressedMaxContacts);
                }
            }
        }
        // Suppress actions store lowercase names; compare without allocating.
        let category = offer.category.map(|c| &*dep.categories[c]);
        if self.state.suppressions.iter().any(|s| {
            s.until > now
                && (s.offers.iter().any(|o| o.eq_ignore_ascii_case(&offer.code))
                    || s.category
                        .as_deref()
                        .zip(category)
                        .is_some_and(|(a, b)| a.eq_ignore_ascii_case(b)))
        }) {
            return Some(Filter::SuppressedByEvent);
        }
        if let Some(cap) = dep.max_contacts_per_visit
            && self.visit_contacts.get(&offer.code).copied().unwrap_or(0) >= cap
        {
            return Some(Filter::VisitCap);
        }
        for &k in &dep.constraints_by_offer[o] {
            let constraint = &dep.constraints[k];
            let since = constraint.since(now);
            let used: u64 = constraint
                .offers
                .iter()
                .map(|&o| world.offer_contacts_since(&dep.offers[o].code, since))
                .sum();
            if used >= constraint.max_contacts {
                return Some(Filter::Constraint);
            }
        }
        None
    }

    /// Applies learning to the candidates' scores; returns whether this request explores.
    fn learn(
        &self,
        dep: &Deployment,
        world: &dyn World,
        rng: &mut dyn Random,
        candidates: &mut [Candidate],
    ) -> bool {
        if !dep.learning.thompson || candidates.is_empty() {
            return false;
        }
        for c in candidates.iter_mut() {
            c.tie = rng.next_u64();
        }
        if dep.learning.explore > 0.0 && rng.unit() < dep.learning.explore {
            for c in candidates.iter_mut() {
                c.final_score = rng.unit() * 100.0;
            }
            return true;
        }
        // Thompson: draw each learned offer's acceptance rate and rescale its score by how
        // it compares with the other learned candidates; unlearned offers keep their score.
        let min = dep.learning.min_contacts.max(1);
        let draws: Vec<Option<f64>> = candidates
            .iter()
            .map(|c| {
                let code = &dep.offers[c.offer].code;
                let segment = dep.rules[c.rule].segment.map(|s| &*dep.segments[s]);
                let by_segment = segment
                    .map(|s| world.offer_stats(code, Some(s)))
                    .filter(|st| st.contacts >= min);
                let stats = by_segment.unwrap_or_else(|| world.offer_stats(code, None));
                (stats.contacts >= min).then(|| sample_rate(stats, rng))
            })
            .collect();
        let (learned, sum) = draws
            .iter()
            .flatten()
            .fold((0usize, 0.0), |(n, sum), rate| (n + 1, sum + rate));
        if learned < 2 {
            return false;
        }
        let mean = sum / learned as f64;
        for (c, draw) in candidates.iter_mut().zip(draws) {
            if let Some(rate) = draw
                && mean > 0.0
            {
                c.final_score = c.score * (rate / mean).clamp(0.1, 10.0);
            }
        }
        false
    }
}

/// The eligibility and score of one (rule, offer) pair.
fn score_candidate(
    dep: &Deployment,
    bound: &crate::session::Bound,
    rule: &Rule,
    offer: &Offer,
    now: Timestamp,
) -> Result<f64, (Filter, Option<String>)> {
    let act = SessionActivation {
        offer: &offer.slots,
        offer_overrides: &rule.slot_overrides,
        ..SessionActivation::new(dep, bound, now)
    };
    if let Some(eligibility) = &rule.eligibility {
        match eligibility.eval_bool(&act) {
            Ok(true) => {}
            Ok(false) => return Err((Filter::Ineligible, None)),
            Err(e) => return Err((Filter::EligibilityError, Some(e.to_string()))),
        }
    }
    match &rule.score_expr {
        None => Ok(rule.score),
        Some(expr) => match expr.eval_number(&act) {
            Ok(score) if score.is_finite() => Ok(score),
            Ok(score) => Err((Filter::ScoreError, Some(format!("score is {score}")))),
            Err(e) => Err((Filter::ScoreError, Some(e.to_string()))),
        },
    }
}

/// A fresh treatment code: the millisecond it was issued, then 48 random bits, as 24 hex
/// digits. Codes issued together sort together, so the history's index on them grows at its
/// end instead of dirtying a random page per contact; the random part keeps the codes of one
/// millisecond apart. Written by hand: through `format!` it took 7% of a get offers call.
fn treatment_code(now: Timestamp, rng: &mut dyn Random) -> TreatmentCode {
    let millis = (now.0.max(0) / 1_000_000) as u64;
    let random = rng.next_u64() >> 16;
    // Two digits per byte from a table: three codes are made for every get offers.
    let mut code = [0u8; INLINE_CODE_LEN];
    for (pair, byte) in code.chunks_exact_mut(2).zip(
        millis.to_be_bytes()[2..]
            .iter()
            .chain(&random.to_be_bytes()[2..]),
    ) {
        pair.copy_from_slice(&HEX_PAIRS[*byte as usize]);
    }
    TreatmentCode::ascii(code)
}

/// The two lowercase hex digits of every byte.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0u8; 2]; 256];
    let mut byte = 0;
    while byte < 256 {
        pairs[byte] = [HEX[byte >> 4], HEX[byte & 15]];
        byte += 1;
    }
    pairs
};

#[cfg(test)]
mod tests {
    use super::{Filter, treatment_code};
    use crate::random::SplitMix64;
    use kairos_rules::time::Timestamp;

    #[test]
    fn treatment_codes_are_distinct_and_sort_by_issue_time() {
        let mut rng = SplitMix64(7);
        let at = |ms: i64| Timestamp(ms * 1_000_000);
        let early = treatment_code(at(1_700_000_000_000), &mut rng);
        let same_ms = treatment_code(at(1_700_000_000_000), &mut rng);
        let later = treatment_code(at(1_700_000_000_001), &mut rng);
        assert_eq!(early.len(), 24);
        assert!(early.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(early, same_ms);
        assert!(
            early.as_str().max(same_ms.as_str()) < later.as_str(),
            "{later} sorts after codes of an earlier millisecond"
        );
        assert!(early.starts_with(&format!("{:012x}", 1_700_000_000_000u64)));
    }

    #[test]
    fn filter_names_are_distinct_and_read_back() {
        for f in Filter::ALL {
            assert_eq!(Filter::from_name(f.name()), Some(f));
        }
        let names: std::collections::HashSet<&str> = Filter::ALL.iter().map(|f| f.name()).collect();
        assert_eq!(names.len(), Filter::ALL.len());
        assert_eq!(Filter::from_name("nonsense"), None);
    }
}
