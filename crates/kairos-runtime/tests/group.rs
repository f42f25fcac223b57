//! Several runtime instances of one server group decide as one instance would: history in
//! PostgreSQL (`KAIROS_TEST_POSTGRES_URL`), sessions and the group's counts in Redis
//! (`KAIROS_TEST_REDIS_URL`). The group channel caps LIMITED at 50 contacts a day and lets
//! learning choose between SLOW and STEADY.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{Keys, Server, call, codes, instance_of, shared_for};
use kairos_engine::inprocess::MemoryTables;
use kairos_engine::random::{Random, SplitMix64};
use kairos_engine::world::ResponseKind;
use kairos_engine::{Deployment, channel_hash};
use kairos_runtime::Config;
use kairos_store::HistoryStore;
use serde_json::{Value as J, json};

#[path = "../../kairos-store/tests/support/postgres.rs"]
mod postgres;

fn group_channel() -> (Deployment, String) {
    let path = common::scenarios().join("group/channel.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let schemas = MemoryTables::new([]).schemas();
    let channel = kairos_model::parse_channel("channel.yaml", &text, &schemas).unwrap();
    let dep = Deployment::compile(&channel, &schemas, 1).unwrap();
    (dep, channel_hash(&channel))
}

/// A group over one PostgreSQL schema and one Redis key prefix; instances join with
/// [`Group::instance`].
struct Group {
    database: String,
    prefix: String,
    _schema: postgres::Schema,
    _keys: Keys,
}

impl Group {
    async fn new(name: &str) -> Option<Group> {
        let (database, schema) = postgres::postgres().await?;
        let prefix = format!("kairos-test-group-{name}-{}", std::process::id());
        let keys = Keys(prefix.clone());
        // Skipped (and said so) without Redis.
        shared_for(&prefix, Duration::from_secs(60)).await?;
        Some(Group {
            database,
            prefix,
            _schema: schema,
            _keys: keys,
        })
    }

    /// An instance of its own (its own connections to both stores), warmed as at start-up.
    async fn instance(&self) -> Server {
        let store = self.history().await;
        let shared = shared_for(&self.prefix, Duration::from_secs(60)).await;
        let profiles = Box::new(MemoryTables::new([]));
        instance_of(group_channel(), profiles, Config::default(), store, shared).await
    }

    async fn history(&self) -> HistoryStore {
        HistoryStore::open(&self.database).await.unwrap()
    }

    /// Contacts of `offer` in history.
    async fn contacts(&self, offer: &str) -> usize {
        let history = self.history().await.history().await.unwrap();
        history
            .iter()
            .filter(|r| r.kind == ResponseKind::Contact && &*r.treatment.origin.offer == offer)
            .count()
    }
}

async fn start(addr: SocketAddr, visitor: u64) -> String {
    let body = json!({ "channel": "group", "audience_id": { "visitor_id": visitor } });
    let (status, started) = call(addr, "POST", "/v1/sessions", body).await;
    assert_eq!(status, 200, "{started}");
    started["session_id"].as_str().unwrap().to_string()
}

async fn offers(addr: SocketAddr, session: &str, query: &str) -> J {
    let path = format!("/v1/sessions/{session}/offers?{query}");
    let (status, offers) = call(addr, "GET", &path, J::Null).await;
    assert_eq!(status, 200, "{offers}");
    offers
}

async fn event(addr: SocketAddr, session: &str, name: &str, code: Option<&str>) {
    let params = code.map_or(json!({}), |c| json!({ "treatment_code": c }));
    let body = json!({ "event": name, "params": params });
    let path = format!("/v1/sessions/{session}/events");
    let (status, answer) = call(addr, "POST", &path, body).await;
    assert_eq!(status, 200, "{answer}");
}

async fn end(addr: SocketAddr, session: &str) {
    let (status, _) = call(addr, "DELETE", &format!("/v1/sessions/{session}"), J::Null).await;
    assert_eq!(status, 200);
}

/// A visit to the banner: LIMITED, while the cap allows, is shown and its contact logged.
/// Whether it was.
async fn banner_visit(addr: SocketAddr, visitor: u64) -> bool {
    let session = start(addr, visitor).await;
    let shown = codes(&offers(addr, &session, "ip=banner&count=1").await) == ["LIMITED"];
    if shown {
        event(addr, &session, "shown", None).await;
    }
    end(addr, &session).await;
    shown
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cap_holds_for_the_group_not_for_each_instance() {
    let Some(group) = Group::new("cap").await else {
        return;
    };
    let (a, b) = (group.instance().await, group.instance().await);
    let mut shown = 0;
    for visitor in 0..300 {
        let addr = if visitor % 2 == 0 { a.addr } else { b.addr };
        shown += usize::from(banner_visit(addr, visitor).await);
    }
    assert_eq!(
        shown, 50,
        "the group showed LIMITED as often as its cap allows"
    );
    assert_eq!(group.contacts("LIMITED").await, 50);

    // An instance that joins later counts what the group logged.
    let c = group.instance().await;
    assert!(!banner_visit(c.addr, 1000).await);

    // Redis loses the group's counters (it keeps nothing on disk): an instance that starts
    // then fills them from history, and the cap still holds for everyone.
    let url = std::env::var("KAIROS_TEST_REDIS_URL").unwrap();
    common::delete_keys(&url, &format!("{}:contacts:*", group.prefix))
        .await
        .unwrap();
    common::delete_keys(&url, &format!("{}:counts:*", group.prefix))
        .await
        .unwrap();
    let d = group.instance().await;
    for (visitor, addr) in [(1001, d.addr), (1002, a.addr), (1003, b.addr)] {
        assert!(!banner_visit(addr, visitor).await, "visit {visitor}");
    }
    assert_eq!(group.contacts("LIMITED").await, 50);
    for server in [a, b, c, d] {
        server.stop().await;
    }
}

/// Learning spread over instances, a visit on each in turn: two offers shown together,
/// STEADY accepted half the time, SLOW one time in twenty.
async fn train(instances: &[SocketAddr], visits: u64) {
    let mut rng = SplitMix64(11);
    for visitor in 0..visits {
        let addr = instances[visitor as usize % instances.len()];
        let session = start(addr, visitor).await;
        let shown = offers(addr, &session, "ip=hero&count=2").await;
        event(addr, &session, "shown", None).await;
        for offer in shown["offer_lists"][0]["offers"].as_array().unwrap() {
            let rate = if offer["code"] == "STEADY" { 0.5 } else { 0.05 };
            if rng.unit() < rate {
                let code = offer["treatment_code"].as_str().unwrap();
                event(addr, &session, "clicked", Some(code)).await;
            }
        }
        end(addr, &session).await;
    }
}

/// The offer one new visitor is shown at the hero.
async fn hero_pick(addr: SocketAddr, visitor: u64) -> String {
    let session = start(addr, visitor).await;
    let pick = codes(&offers(addr, &session, "ip=hero&count=1").await);
    end(addr, &session).await;
    pick.into_iter().next().unwrap()
}

/// Whether learning reorders the hero's offers on `addr`: a debug visit's explain shows a
/// score changed by learning (explored visits aside, which reorder at random).
async fn learning_applies(addr: SocketAddr, visitor: u64) -> bool {
    let body =
        json!({ "channel": "group", "audience_id": { "visitor_id": visitor }, "debug": true });
    let (_, started) = call(addr, "POST", "/v1/sessions", body).await;
    let session = started["session_id"].as_str().unwrap().to_string();
    let answer = offers(addr, &session, "ip=hero&count=2").await;
    end(addr, &session).await;
    let explain = &answer["explain"][0];
    explain["explored"] == false
        && explain["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["final_score"] != c["score"])
}

/// How often of 50 new visitors `addr` shows STEADY, once learning applies there (the
/// group's statistics reach an instance within about a second).
async fn steady_share(addr: SocketAddr, first_visitor: u64) -> usize {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut visitor = first_visitor;
    while !learning_applies(addr, visitor).await {
        assert!(
            std::time::Instant::now() < deadline,
            "learning never applied on {addr}"
        );
        visitor += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut steady = 0;
    for visitor in visitor + 1..=visitor + 50 {
        steady += usize::from(hero_pick(addr, visitor).await == "STEADY");
    }
    steady
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_learns_from_the_visits_of_all_its_instances() {
    let Some(group) = Group::new("learning").await else {
        return;
    };
    let (a, b, c) = (
        group.instance().await,
        group.instance().await,
        group.instance().await,
    );
    // Learning waits for 20 contacts of each offer: A and B see 15 each, the group 30. On
    // their own their scores tie (and ties go either way); with the group's statistics
    // STEADY wins.
    train(&[a.addr, b.addr], 30).await;
    for (n, server) in [&a, &b].into_iter().enumerate() {
        let steady = steady_share(server.addr, 10_000 * (n as u64 + 1)).await;
        assert!(
            steady >= 45,
            "instance {n} picked STEADY {steady} times in 50"
        );
    }
    // C, which served nothing of it, knows as much.
    let steady = steady_share(c.addr, 30_000).await;
    assert!(steady >= 45, "C picked STEADY {steady} times in 50");
    for server in [a, b, c] {
        server.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_is_ready_only_while_its_stores_answer() {
    let Some(group) = Group::new("ready").await else {
        return;
    };
    let a = group.instance().await;
    let ready = || async { call(a.addr, "GET", "/readyz", J::Null).await };
    assert_eq!(ready().await.0, 200);
    // The history table gone, as with a database that fails: the load balancer is told.
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&group.database)
        .await
        .unwrap();
    let rename = |from: &str, to: &str| format!("ALTER TABLE {from} RENAME TO {to}");
    sqlx::Executor::execute(
        &mut admin,
        rename("kairos_history", "kairos_history_away").as_str(),
    )
    .await
    .unwrap();
    let (status, problem) = ready().await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (503, Some("STORAGE_UNAVAILABLE")),
        "{problem}"
    );
    sqlx::Executor::execute(
        &mut admin,
        rename("kairos_history_away", "kairos_history").as_str(),
    )
    .await
    .unwrap();
    assert_eq!(ready().await.0, 200);
    a.stop().await;
}
