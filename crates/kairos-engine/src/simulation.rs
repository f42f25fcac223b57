//! Decision quality, measured by simulation: visitors whose acceptance rates are hidden meet a
//! channel's arbitration and learning through the engine's own session calls (start, get
//! offers, a contact, an accept with the hidden rate), and the acceptance the channel reaches
//! is set beside choosing at random, textbook Thompson sampling and the oracle on the same
//! visits. No HTTP and no clock: a run of 20,000 visits takes a fraction of a second.

use kairos_model::Schemas;
use kairos_rules::Value;
use kairos_rules::time::{NANOS_PER_SECOND, Timestamp};

use crate::learning::sample_rate;
use crate::random::{Random, SplitMix64};
use crate::world::{AudienceId, AudienceState, MemoryWorld, Stats};
use crate::{Deployment, OfferRequest, OffersRequest, Session, Start};

/// One problem: offers with marketing scores, and their hidden acceptance rates, which may
/// change as visits go on.
pub struct Problem {
    pub name: &'static str,
    /// (code, marketing score), in channel order.
    pub offers: Vec<(String, f64)>,
    /// The `learning:` block of the channel, as written in its file.
    pub learning: String,
    /// The hidden acceptance rate of each offer at a visit (0-based): `rates(visit)[o]`.
    pub rates: Box<dyn Fn(usize) -> Vec<f64>>,
}

impl Problem {
    /// The channel: one interaction point, a `*` rule per offer with its score, an event
    /// that logs the contact and one that logs the accept.
    pub fn channel_file(&self) -> String {
        let mut file = String::from(
            "channel: simulated\naudience_levels:\n  visitor:\n    id_fields: [visitor_id]\n\
             zones:\n  home:\n    interaction_points:\n      hero: {}\noffers:\n",
        );
        for (code, _) in &self.offers {
            file.push_str(&format!("  {code}: {{}}\n"));
        }
        file.push_str("rules:\n");
        for (code, score) in &self.offers {
            file.push_str(&format!(
                "  - {{ id: rule_{code}, segment: \"*\", zone: home, offer: {code}, score: {score} }}\n"
            ));
        }
        file.push_str(
            "events:\n  shown: { actions: [ log_contact ] }\n  accepted: { actions: [ log_accept ] }\n",
        );
        file.push_str(&self.learning);
        file
    }

    pub fn deployment(&self) -> Result<Deployment, String> {
        let schemas = Schemas::new();
        let channel = kairos_model::parse_channel("simulated.yaml", &self.channel_file(), &schemas)
            .map_err(|e| e.to_string())?;
        Deployment::compile(&channel, &schemas, 1).map_err(|e| e.to_string())
    }
}

/// Expected accepts per visit over one slice of the visits, for each policy.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Slice {
    /// The channel, deciding with its arbitration and learning.
    pub channel: f64,
    /// An offer chosen at random.
    pub random: f64,
    /// Textbook Thompson sampling: Beta(1, 1) priors, no warm-up, no scores.
    pub thompson: f64,
    /// The best offer at each visit.
    pub oracle: f64,
}

/// Runs `visits` visits of `problem` with `seed`, reporting each of `slices` equal slices.
/// Figures are expected accepts (the hidden rate of the offer chosen), which are what the
/// policies control, without the noise of the accepts themselves; the accepts that feed
/// learning are drawn with the hidden rates.
pub fn run(
    problem: &Problem,
    visits: usize,
    slices: usize,
    seed: u64,
) -> Result<Vec<Slice>, String> {
    let dep = problem.deployment()?;
    let codes: Vec<&str> = problem.offers.iter().map(|(c, _)| c.as_str()).collect();
    let mut world = MemoryWorld::new();
    let mut rng = SplitMix64(seed);
    let mut outcomes = SplitMix64(seed ^ 0x9E37_79B9_7F4A_7C15);
    let mut textbook = vec![Stats::default(); codes.len()];
    let per_slice = visits.div_ceil(slices.max(1));
    let mut report = vec![Slice::default(); slices.max(1)];
    let request = OffersRequest {
        requests: vec![OfferRequest::new("hero", 1)],
        params: Vec::new(),
        allow_duplicates: false,
    };
    for visit in 0..visits {
        let rates = (problem.rates)(visit);
        let now = Timestamp(1_781_524_800 * NANOS_PER_SECOND + visit as i64 * NANOS_PER_SECOND);
        let start = Start {
            session_id: format!("s{visit}"),
            audience: AudienceId {
                level: "visitor".into(),
                fields: vec![("visitor_id".into(), Value::Int(visit as i64))],
            },
            profile: None,
            state: AudienceState::default(),
            params: Vec::new(),
            debug: false,
        };
        let (mut session, _) = Session::start(&dep, start, now).map_err(|m| m.message)?;
        let served = session.get_offers(&dep, &world, &mut rng, &request, now);
        let slice = &mut report[visit / per_slice];
        if let Some(offer) = served.offer_lists.first().and_then(|l| l.offers.first()) {
            let o = codes
                .iter()
                .position(|c| *c == offer.code())
                .expect("a channel offer");
            slice.channel += rates[o];
            let code = vec![(
                "treatment_code".to_string(),
                Value::string(offer.treatment_code.as_str()),
            )];
            session.post_event(&dep, &world, "shown", &code, now);
            if outcomes.unit() < rates[o] {
                session.post_event(&dep, &world, "accepted", &code, now);
            }
            world.apply(session.take_records());
        }
        slice.random += rates.iter().sum::<f64>() / rates.len() as f64;
        slice.oracle += rates.iter().copied().fold(0.0, f64::max);
        let draws: Vec<f64> = textbook.iter().map(|s| sample_rate(*s, &mut rng)).collect();
        let pick = (0..draws.len())
            .max_by(|&a, &b| draws[a].total_cmp(&draws[b]))
            .expect("offers");
        slice.thompson += rates[pick];
        textbook[pick].contacts += 1;
        if outcomes.unit() < rates[pick] {
            textbook[pick].accepts += 1;
        }
    }
    for (i, slice) in report.iter_mut().enumerate() {
        let n = per_slice.min(visits - i * per_slice) as f64;
        for figure in [
            &mut slice.channel,
            &mut slice.random,
            &mut slice.thompson,
            &mut slice.oracle,
        ] {
            *figure /= n;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::{Problem, run};

    fn problem(learning: &str, scores: [f64; 3]) -> Problem {
        Problem {
            name: "test",
            offers: ["A", "B", "C"]
                .into_iter()
                .zip(scores)
                .map(|(c, s)| (c.to_string(), s))
                .collect(),
            learning: learning.to_string(),
            rates: Box::new(|_| vec![0.02, 0.05, 0.30]),
        }
    }

    #[test]
    fn the_baselines_and_a_channel_without_learning_come_out_as_computed() {
        // Scores alone, the best offer scored highest: the channel is the oracle.
        let slices = run(&problem("", [10.0, 20.0, 90.0]), 3000, 3, 1).unwrap();
        for s in &slices {
            assert!((s.oracle - 0.30).abs() < 1e-9);
            assert!((s.random - 0.37 / 3.0).abs() < 1e-9);
            assert!((s.channel - 0.30).abs() < 1e-9, "{s:?}");
        }
        // Textbook Thompson sampling finds the best offer by the last slice.
        assert!(slices[2].thompson > 0.28, "{slices:?}");
    }

    #[test]
    fn learning_overrides_misleading_scores() {
        let learning = "learning: { mode: thompson, explore_percent: 5, min_contacts: 20 }\n";
        let slices = run(&problem(learning, [90.0, 50.0, 10.0]), 6000, 3, 2).unwrap();
        // The scores alone would serve A (2%) for ever.
        assert!(slices[2].channel > 0.2, "{slices:?}");
    }
}
