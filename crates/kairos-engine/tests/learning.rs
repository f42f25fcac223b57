//! Learning changes the order of offers only with enough evidence, follows the evidence when
//! it has it, and explores its configured share of requests.

use kairos_engine::random::SplitMix64;
use kairos_engine::world::{AudienceId, AudienceState, MemoryWorld, Stats};
use kairos_engine::{Deployment, OfferRequest, OffersRequest, Session, Start};
use kairos_model::{Schemas, parse_channel};
use kairos_rules::Value;
use kairos_rules::time::Timestamp;

fn deployment(explore: u32) -> Deployment {
    let yaml = format!(
        "channel: learn
audience_levels: {{ visitor: {{ id_fields: [cookie] }} }}
zones: {{ home: {{ interaction_points: {{ hero: {{}} }} }} }}
offers: {{ A: {{}}, B: {{}}, C: {{}} }}
rules:
  - {{ id: a, segment: \"*\", zone: home, offer: A, score: 60 }}
  - {{ id: b, segment: \"*\", zone: home, offer: B, score: 50 }}
  - {{ id: c, segment: \"*\", zone: home, offer: C, score: 40 }}
learning: {{ mode: thompson, explore_percent: {explore}, min_contacts: 100 }}
"
    );
    let channel = parse_channel("learn.yaml", &yaml, &Schemas::new()).unwrap();
    Deployment::compile(&channel, &Schemas::new(), 1).unwrap()
}

/// How often each offer came first over `n` requests, in the order A, B, C.
fn first_places(dep: &Deployment, world: &MemoryWorld, n: usize) -> [usize; 3] {
    let mut rng = SplitMix64(3);
    let start = Start {
        session_id: "s".into(),
        audience: AudienceId {
            level: "visitor".into(),
            fields: vec![("cookie".into(), Value::from("x"))],
        },
        profile: None,
        state: AudienceState::default(),
        params: vec![],
        debug: false,
    };
    let (mut session, _) = Session::start(dep, start, Timestamp(0)).unwrap();
    let request = OffersRequest {
        requests: vec![OfferRequest::new("hero", 3)],
        ..Default::default()
    };
    let mut firsts = [0; 3];
    for _ in 0..n {
        let response = session.get_offers(dep, world, &mut rng, &request, Timestamp(0));
        let first = &response.offer_lists[0].offers[0].code();
        firsts[["A", "B", "C"].iter().position(|c| *c == *first).unwrap()] += 1;
    }
    firsts
}

#[test]
fn without_enough_contacts_marketing_scores_decide() {
    let dep = deployment(0);
    let mut world = MemoryWorld::new();
    world.set_stats(
        "A",
        None,
        Stats {
            contacts: 99,
            accepts: 0,
        },
    );
    world.set_stats(
        "C",
        None,
        Stats {
            contacts: 99,
            accepts: 90,
        },
    );
    assert_eq!(first_places(&dep, &world, 200), [200, 0, 0]);
}

#[test]
fn with_evidence_the_better_offer_wins_most_requests() {
    let dep = deployment(0);
    let mut world = MemoryWorld::new();
    world.set_stats(
        "A",
        None,
        Stats {
            contacts: 5000,
            accepts: 50,
        },
    );
    world.set_stats(
        "B",
        None,
        Stats {
            contacts: 5000,
            accepts: 60,
        },
    );
    world.set_stats(
        "C",
        None,
        Stats {
            contacts: 5000,
            accepts: 900,
        },
    );
    let [a, b, c] = first_places(&dep, &world, 1000);
    assert!(c > 950, "C accepts 18% against 1%: {a} {b} {c}");
}

#[test]
fn close_evidence_keeps_some_uncertainty() {
    let dep = deployment(0);
    let mut world = MemoryWorld::new();
    // A and B are indistinguishable on 200 contacts each: Thompson draws let both lead.
    world.set_stats(
        "A",
        None,
        Stats {
            contacts: 200,
            accepts: 20,
        },
    );
    world.set_stats(
        "B",
        None,
        Stats {
            contacts: 200,
            accepts: 22,
        },
    );
    let [a, b, _] = first_places(&dep, &world, 2000);
    assert!(a > 200 && b > 200, "{a} {b}");
}

#[test]
fn exploration_serves_its_share_at_random() {
    let dep = deployment(30);
    let world = MemoryWorld::new();
    // Without learning evidence A always wins, except in explored requests (about a third of
    // which put B first and a third C).
    let [a, b, c] = first_places(&dep, &world, 3000);
    let others = b + c;
    assert!(
        (450..750).contains(&others),
        "about 30% x 2/3 of 3000: {a} {b} {c}"
    );
}
