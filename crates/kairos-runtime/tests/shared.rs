//! Two runtime instances of one group sharing sessions through Redis (the server named by
//! `KAIROS_TEST_REDIS_URL`): a session started on one continues on the other, and calls for
//! one session are serialised across them.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use common::{
    Keys, call, codes, contacts_from_concurrent_calls, empty_history, get_offers, http, instance,
    shared_for,
};
use kairos_engine::SessionSnapshot;
use kairos_engine::world::{AudienceId, AudienceState};
use kairos_rules::Value;
use kairos_runtime::Config;
use kairos_runtime::shared::RedisSessions;
use serde_json::{Value as J, json};

async fn shared(prefix: &str) -> Option<RedisSessions> {
    shared_for(prefix, Duration::from_secs(60)).await
}

/// Two instances over one history database and one Redis key space.
async fn group(name: &str) -> Option<(common::Server, common::Server, Keys)> {
    group_with(name, Config::default).await
}

async fn group_with(
    name: &str,
    config: impl Fn() -> Config,
) -> Option<(common::Server, common::Server, Keys)> {
    let prefix = format!("kairos-test-{name}-{}", std::process::id());
    let store = empty_history(&prefix).await;
    let keys = Keys(prefix.clone());
    let a = instance(config(), store.clone(), Some(shared(&prefix).await?)).await;
    let b = instance(config(), store, Some(shared(&prefix).await?)).await;
    Some((a, b, keys))
}

async fn sessions_live(addr: std::net::SocketAddr) -> String {
    let (_, metrics) = http(addr, "GET", "/metrics", &[], "").await;
    metrics
        .lines()
        .find(|l| l.starts_with("kairos_sessions_live "))
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_continues_on_another_instance() {
    let Some((a, b, _keys)) = group("continue").await else {
        return;
    };
    let (_, started) = call(
        a.addr,
        "POST",
        "/v1/sessions",
        json!({ "channel": "shop", "audience_id": { "customer_id": 2 }, "debug": true }),
    )
    .await;
    let id = started["session_id"].as_str().unwrap().to_string();
    let (status, offers) = get_offers(b.addr, &id, "ip=hero&count=1").await;
    assert_eq!((status, codes(&offers)), (200, vec!["GOLD".to_string()]));
    let code = offers["offer_lists"][0]["offers"][0]["treatment_code"]
        .as_str()
        .unwrap()
        .to_string();
    // The treatment issued on B is known on A: a response in the same session.
    let (_, closed) = call(
        a.addr,
        "POST",
        &format!("/v1/sessions/{id}/events"),
        json!({ "event": "offer_closed", "params": { "treatment_code": code } }),
    )
    .await;
    assert_eq!(closed["messages"], json!([]), "{closed}");
    let (_, offers) = get_offers(b.addr, &id, "ip=hero&count=3").await;
    assert!(
        !codes(&offers).contains(&"GOLD".to_string()),
        "rejected on A, suppressed on B"
    );
    let (_, profile) = call(
        a.addr,
        "GET",
        &format!("/v1/sessions/{id}/profile"),
        J::Null,
    )
    .await;
    assert_eq!(
        profile["segments"],
        json!(["high_value", "big_spender", "regular", "vip"])
    );
    let (status, _) = call(b.addr, "DELETE", &format!("/v1/sessions/{id}"), J::Null).await;
    assert_eq!(status, 200);
    let (status, gone) = call(
        a.addr,
        "GET",
        &format!("/v1/sessions/{id}/profile"),
        J::Null,
    )
    .await;
    assert_eq!(
        (status, gone["code"].as_str()),
        (404, Some("INVALID_SESSION_ID"))
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_for_one_session_are_serialised_across_instances() {
    let Some((a, b, _keys)) = group("serial").await else {
        return;
    };
    contacts_from_concurrent_calls(&[a.addr, b.addr], &a.runtime.store).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_whose_call_was_dropped_is_released_all_the_same() {
    let prefix = format!("kairos-test-droplock-{}", std::process::id());
    let _keys = Keys(prefix.clone());
    let Some(sessions) = shared(&prefix).await else {
        return;
    };
    let sessions = std::sync::Arc::new(sessions);
    // A call dropped at an await while it holds the session's lock (its client hung up)
    // drops the lock unreleased.
    let (held, _) = sessions
        .lock_and_load("s1", "first call".into())
        .await
        .unwrap();
    drop(held);
    // The next call is not kept waiting for the lock's time to live (10 s; a call waits 5 s
    // for a busy session, then fails).
    let asked = std::time::Instant::now();
    let (next, _) = sessions
        .lock_and_load("s1", "next call".into())
        .await
        .unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "the session stayed locked for {:?}",
        asked.elapsed()
    );
    next.release().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_group_counts_its_sessions_together_and_keeps_one_maximum() {
    let Some((a, b, _keys)) = group_with("maximum", || Config {
        max_sessions: 2,
        ..Config::default()
    })
    .await
    else {
        return;
    };
    let start = |addr, id: &str| {
        let body =
            json!({ "session_id": id, "channel": "shop", "audience_id": { "customer_id": 2 } });
        async move { call(addr, "POST", "/v1/sessions", body).await }
    };
    assert_eq!(start(a.addr, "first").await.0, 200);
    assert_eq!(start(b.addr, "second").await.0, 200);
    assert_eq!(sessions_live(a.addr).await, "kairos_sessions_live 2");
    assert_eq!(sessions_live(b.addr).await, "kairos_sessions_live 2");
    let (status, refused) = start(a.addr, "third").await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (503, Some("TOO_MANY_SESSIONS")),
        "{refused}"
    );
    assert!(
        refused["detail"]
            .as_str()
            .is_some_and(|d| d.contains("server group")),
        "{refused}"
    );
    // A session already counted may start again under its ID.
    assert_eq!(start(b.addr, "first").await.0, 200);
    let (status, _) = call(b.addr, "DELETE", "/v1/sessions/second", J::Null).await;
    assert_eq!(status, 200);
    assert_eq!(sessions_live(a.addr).await, "kairos_sessions_live 1");
    assert_eq!(start(a.addr, "third").await.0, 200);
    a.stop().await;
    b.stop().await;
}

/// Two sessions of one customer at once on two instances sharing sessions: each keeps what
/// the other did to the customer's state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sessions_on_two_instances_keep_each_others_state() {
    let Some((a, b, _keys)) = group("audience").await else {
        return;
    };
    common::two_sessions_of_one_customer_keep_each_others_state(a.addr, b.addr).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_whose_keys_expired_no_longer_count() {
    let prefix = format!("kairos-test-expiry-{}", std::process::id());
    let _keys = Keys(prefix.clone());
    let Some(sessions) = shared_for(&prefix, Duration::from_millis(100)).await else {
        return;
    };
    let sessions = std::sync::Arc::new(sessions);
    let start = |id: &str| {
        let snapshot = SessionSnapshot {
            id: id.to_string(),
            audience: AudienceId {
                level: "customer".into(),
                fields: vec![("customer_id".into(), Value::Int(1))],
            },
            profile: HashMap::new(),
            params: BTreeMap::new(),
            state: AudienceState::default(),
            state_base: AudienceState::default(),
            state_changed: false,
            debug: false,
            visit_contacts: HashMap::new(),
            treatments: Vec::new(),
            last_offers: Vec::new(),
            eval_errors: 0,
            segments: None,
        };
        let sessions = &sessions;
        async move { sessions.start("shop", &snapshot, 1).await.unwrap() }
    };
    let stored = |id: &'static str| {
        let sessions = sessions.clone();
        async move {
            let (lock, found) = sessions.lock_and_load(id, "reader".into()).await.unwrap();
            lock.release().await;
            found.is_some()
        }
    };
    assert!(start("short").await);
    assert_eq!(sessions.live().await.unwrap(), 1);
    assert!(!start("another").await, "the group is full");
    assert!(!stored("another").await, "a refused session is not stored");
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(sessions.live().await.unwrap(), 0);
    assert!(start("another").await);
    assert!(stored("another").await);
}

/// A batch holds its session for its commands: what they did is stored once at its end, and
/// reaches the other instance; a batch that ends its session leaves nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_holds_its_session_and_stores_it_once() {
    let Some((a, b, _keys)) = group("batch").await else {
        return;
    };
    // Started and asked for offers in one batch on A, left open.
    let (status, answer) = call(
        a.addr,
        "POST",
        "/v1/batch",
        json!({ "commands": [
            { "start_session": { "channel": "shop", "audience_id": { "customer_id": 2 } } },
            { "get_offers": { "requests": [ { "ip": "hero", "count": 1 } ] } },
        ] }),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let id = answer["session_id"].as_str().unwrap().to_string();
    let code = answer["responses"][1]["offer_lists"][0]["offers"][0]["treatment_code"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(sessions_live(b.addr).await, "kairos_sessions_live 1");
    // On B, a batch on that session: the treatment A issued is known (the session was stored
    // with it), and the contact is logged.
    let (status, answer) = call(
        b.addr,
        "POST",
        "/v1/batch",
        json!({ "session_id": id, "commands": [
            { "post_event": { "event": "offer_shown", "params": { "treatment_code": code } } },
            { "get_profile": {} },
        ] }),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["responses"][0]["messages"], json!([]), "{answer}");
    // A whole visit in one batch on B: started, served, ended; nothing is left of it.
    let (status, answer) = call(
        b.addr,
        "POST",
        "/v1/batch",
        json!({ "commands": [
            { "start_session": { "channel": "shop", "audience_id": { "customer_id": 3 } } },
            { "get_offers": { "requests": [ { "ip": "hero", "count": 2 } ] } },
            { "end_session": {} },
        ] }),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let ended = answer["session_id"].as_str().unwrap().to_string();
    let (status, _) = call(
        a.addr,
        "GET",
        &format!("/v1/sessions/{ended}/profile"),
        J::Null,
    )
    .await;
    assert_eq!(status, 404, "an ended session is gone on every instance");
    assert_eq!(sessions_live(a.addr).await, "kairos_sessions_live 1");
    // The first session goes on, on A, with what B's batch logged in it.
    let (status, answer) = call(a.addr, "DELETE", &format!("/v1/sessions/{id}"), J::Null).await;
    assert_eq!(status, 200, "{answer}");
    let contacts = a.runtime.store.history().await.unwrap();
    assert_eq!(contacts.len(), 1, "one contact logged: {contacts:?}");
    a.stop().await;
    b.stop().await;
}
