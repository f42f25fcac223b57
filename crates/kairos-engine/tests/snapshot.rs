//! A session taken to plain data and back behaves as if it had never left memory: same
//! segments (not recomputed), same suppression, same treatments for responses.

use std::collections::HashMap;

use kairos_engine::inprocess::MemoryTables;
use kairos_engine::random::SplitMix64;
use kairos_engine::world::{AudienceId, AudienceState, MemoryWorld};
use kairos_engine::{Deployment, OfferRequest, OffersRequest, Session, Start};
use kairos_model::table::read_csv;
use kairos_rules::Value;
use kairos_rules::time::parse_instant;

#[test]
fn a_restored_session_keeps_segments_suppression_and_treatments() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/scenarios");
    let read = |n: &str| {
        read_csv(
            n,
            std::fs::File::open(format!("{dir}/{n}.csv")).unwrap(),
            &HashMap::new(),
        )
        .unwrap()
    };
    let mut tables = MemoryTables::new([read("people"), read("orders")]);
    let text = std::fs::read_to_string(format!("{dir}/shop/channel.yaml")).unwrap();
    let channel = kairos_model::parse_channel("channel.yaml", &text, &tables.schemas()).unwrap();
    let dep = Deployment::compile(&channel, &tables.schemas(), 1).unwrap();
    tables.prepare(&dep);
    let now = parse_instant("2026-06-15T12:00:00Z").unwrap().at;
    let audience = AudienceId {
        level: "customer".into(),
        fields: vec![("customer_id".into(), Value::Int(2))],
    };
    let start = Start {
        session_id: "s".into(),
        profile: tables.load_profile(&dep, &audience),
        audience,
        state: AudienceState::default(),
        params: vec![],
        debug: false,
    };
    let (mut session, _) = Session::start(&dep, start, now).unwrap();
    let world = MemoryWorld::new();
    let mut rng = SplitMix64(1);
    let hero = OffersRequest {
        requests: vec![OfferRequest::new("hero", 1)],
        ..Default::default()
    };
    let gold = session
        .get_offers(&dep, &world, &mut rng, &hero, now)
        .offer_lists[0]
        .offers[0]
        .clone();
    assert_eq!(gold.code(), "GOLD");
    // A parameter that would change the segments on re-segmentation, without a resegment.
    session.set_params(&dep, &[("campaign".into(), Value::from("spring"))], now);
    let before = session.segments(&dep, now);

    let mut restored = Session::restore(session.snapshot(&dep));
    assert_eq!(
        restored.segments(&dep, now),
        before,
        "segments are carried, not recomputed"
    );
    let closed = vec![(
        "treatment_code".to_string(),
        Value::from(&*gold.treatment_code),
    )];
    let response = restored.post_event(&dep, &world, "offer_closed", &closed, now);
    assert!(
        response.messages.is_empty(),
        "the treatment is known: {:?}",
        response.messages
    );
    let codes: Vec<String> = restored
        .get_offers(&dep, &world, &mut rng, &hero, now)
        .offer_lists[0]
        .offers
        .iter()
        .map(|o| o.code().to_string())
        .collect();
    assert!(
        !codes.contains(&"GOLD".to_string()),
        "the reject suppresses GOLD: {codes:?}"
    );
    assert_eq!(restored.take_records().len(), 1);
}
