//! Arbitration invariants over generated visitors, histories and requests on a synthetic
//! channel: never more than N offers, never a duplicate across interaction points (unless
//! allowed), never a suppressed, expired, not-yet-effective, disabled or ineligible offer.
//! The checks use the channel model and the rule compiler directly, not the engine's filters.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use kairos_engine::random::SplitMix64;
use kairos_engine::synthetic::{self, Size};
use kairos_engine::world::{AudienceId, AudienceState, MemoryWorld, OfferHistory};
use kairos_engine::{Deployment, OfferRequest, OffersRequest, Session, Start};
use kairos_model::model::{Channel, Scalar};
use kairos_model::{Schemas, channel_env};
use kairos_rules::time::{NANOS_PER_SECOND, Timestamp};
use kairos_rules::{Bindings, Expected, Root, Scope, Value};
use proptest::prelude::*;

const SIZE: Size = Size {
    offers: 60,
    rules: 240,
    segments: 20,
    interaction_points: 10,
    eligibility_share: 0.3,
};
const NOW: Timestamp = Timestamp(1_781_524_800 * NANOS_PER_SECOND);
const DAY: i64 = 86_400 * NANOS_PER_SECOND;

struct Fixture {
    channel: Channel,
    schemas: Schemas,
    deployment: Deployment,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut schemas = Schemas::new();
        schemas.insert(synthetic::profile_schema());
        let channel =
            kairos_model::parse_channel("s.yaml", &synthetic::channel_yaml(11, SIZE), &schemas)
                .unwrap();
        let deployment = Deployment::compile(&channel, &schemas, 1).unwrap();
        Fixture {
            channel,
            schemas,
            deployment,
        }
    })
}

/// Whether a (rule, offer) pair may be served to this visitor, judged from the model.
fn allowed(
    f: &Fixture,
    rule_id: &str,
    code: &str,
    profile: &HashMap<String, Value>,
    page: &str,
    state: &AudienceState,
) -> Result<(), String> {
    let rule = f
        .channel
        .rules
        .iter()
        .find(|r| r.id.value == rule_id)
        .ok_or("unknown rule")?;
    let offer = f
        .channel
        .offers
        .iter()
        .find(|o| o.code.value == code)
        .ok_or("unknown offer")?;
    if rule.enabled.is_some_and(|e| !e.value) {
        return Err(format!("rule {rule_id} is disabled"));
    }
    if rule.offers.codes().iter().all(|c| c.value != code) {
        return Err(format!("rule {rule_id} does not propose {code}"));
    }
    if offer
        .expires
        .as_ref()
        .is_some_and(|d| NOW.0 >= d.value.at.0 + DAY)
    {
        return Err(format!("{code} has expired"));
    }
    if offer
        .effective
        .as_ref()
        .is_some_and(|d| NOW.0 < d.value.at.0)
    {
        return Err(format!("{code} is not effective yet"));
    }
    if let Some(h) = state.offers.get(code) {
        if h.last_accept.is_some_and(|t| NOW.0 - t.0 < 30 * DAY) {
            return Err(format!("{code} was accepted less than 30 days ago"));
        }
        if h.last_reject.is_some_and(|t| NOW.0 - t.0 < 7 * DAY) {
            return Err(format!("{code} was rejected less than 7 days ago"));
        }
        if h.recent_contacts
            .iter()
            .filter(|t| NOW.0 - t.0 < DAY)
            .count()
            >= 5
        {
            return Err(format!("{code} reached 5 contacts within a day"));
        }
    }
    if let Some(eligibility) = &rule.eligibility {
        let segments: Vec<&str> = f
            .channel
            .segment_names()
            .iter()
            .map(|n| n.value.as_str())
            .collect();
        let mut env = channel_env(&f.channel, &f.schemas, &segments);
        let program = kairos_rules::compile(
            &eligibility.src,
            &mut env,
            Scope {
                event: false,
                offer: true,
            },
            Expected::Bool,
        )
        .unwrap();
        let mut b = Bindings::new(&env);
        for (name, value) in profile {
            b.set(&env, Root::Profile, name, value.clone());
        }
        b.set(&env, Root::Session, "page", Value::from(page));
        for attribute in &offer.attributes {
            if let Scalar::Int(i) = attribute.value.value {
                b.set(&env, Root::Offer, &attribute.name.value, Value::Int(i));
            }
        }
        if program.eval_bool(&b) != Ok(true) {
            return Err(format!(
                "rule {rule_id} is not eligible: {}",
                eligibility.src
            ));
        }
    }
    Ok(())
}

fn history() -> impl Strategy<Value = Vec<(usize, Option<i64>, Option<i64>, u8)>> {
    // (offer, days since accept, days since reject, contacts in the last hours)
    prop::collection::vec(
        (
            0..SIZE.offers,
            prop::option::of(0i64..60),
            prop::option::of(0i64..14),
            0u8..8,
        ),
        0..30,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn arbitration_invariants_hold(
        visitor in 0u64..10_000,
        page in 0u32..12,
        history in history(),
        requests in prop::collection::vec((0..SIZE.interaction_points, 0usize..6), 1..4),
        allow_duplicates in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let f = fixture();
        let mut state = AudienceState::default();
        for (offer, accept, reject, contacts) in history {
            let h: &mut OfferHistory = state.offers.get_or_insert(&format!("OFFER{offer}"));
            h.last_accept = accept.map(|d| Timestamp(NOW.0 - d * DAY - 1));
            h.last_reject = reject.map(|d| Timestamp(NOW.0 - d * DAY - 1));
            for c in 0..contacts {
                h.record_contact(Timestamp(NOW.0 - i64::from(c) * 3_600 * NANOS_PER_SECOND));
            }
        }
        let profile = synthetic::profile(visitor);
        let page = format!("p{page}");
        let start = Start {
            session_id: "s".into(),
            audience: AudienceId { level: "customer".into(), fields: vec![("customer_id".into(), Value::Int(visitor as i64))] },
            profile: Some(profile.clone()),
            state: state.clone(),
            params: vec![("page".into(), Value::from(page.as_str()))],
            debug: true,
        };
        let (mut session, _) = Session::start(&f.deployment, start, NOW).unwrap();
        let request = OffersRequest {
            requests: requests.iter().map(|(ip, count)| OfferRequest::new(format!("ip{ip}"), *count)).collect(),
            params: vec![],
            allow_duplicates,
        };
        let response = session.get_offers(&f.deployment, &MemoryWorld::new(), &mut SplitMix64(seed), &request, NOW);
        let explain = response.explain.expect("debug session");
        let mut seen = HashSet::new();
        let mut treatment_codes = HashSet::new();
        for ((list, (_, count)), ip_explain) in response.offer_lists.iter().zip(&requests).zip(&explain) {
            prop_assert!(list.offers.len() <= *count, "{} offers for count {count}", list.offers.len());
            let served: Vec<_> = ip_explain.candidates.iter().filter(|c| c.removed_by.is_none()).collect();
            prop_assert_eq!(served.len(), list.offers.len(), "explain agrees with the response");
            for offer in &list.offers {
                prop_assert!(treatment_codes.insert(offer.treatment_code.clone()), "treatment codes are unique");
                if !allow_duplicates {
                    prop_assert!(seen.insert(offer.code().to_string()), "{} served twice", offer.code());
                }
                let candidate = served.iter().find(|c| *c.offer == *offer.code()).expect("served offers are explained");
                if let Err(why) = allowed(f, &candidate.rule, offer.code(), &profile, &page, &state) {
                    prop_assert!(false, "{} served at {}: {why}", offer.code(), list.ip);
                }
            }
            let scores: Vec<f64> = list.offers.iter().map(|o| o.score).collect();
            prop_assert!(scores.windows(2).all(|w| w[0] >= w[1]), "offers come best first: {scores:?}");
        }
    }
}
