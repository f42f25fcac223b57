//! Shared by the server's integration tests: a server on a random port over the shop
//! channel, and a minimal HTTP/1.1 client.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use kairos_engine::Deployment;
use kairos_engine::channel_hash;
use kairos_engine::inprocess::MemoryTables;
use kairos_model::table::read_csv;
use kairos_runtime::shared::RedisSessions;
use kairos_runtime::{Config, ProfileSource, Runtime};
use kairos_store::HistoryStore;
use serde_json::{Value as J, json};

#[path = "http.rs"]
mod raw_http;
#[path = "redis_keys.rs"]
mod redis_keys;
#[allow(unused_imports)] // each test file uses its own part
pub use raw_http::{call, http, http_with_head};
#[allow(unused_imports)] // each test file uses its own part
pub use redis_keys::{Keys, delete_keys};

static COUNTER: AtomicU64 = AtomicU64::new(0);

pub fn scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios")
}

pub fn tables() -> MemoryTables {
    let read = |name: &str| {
        read_csv(
            name,
            std::fs::File::open(scenarios().join(format!("{name}.csv"))).unwrap(),
            &HashMap::new(),
        )
        .unwrap()
    };
    MemoryTables::new([read("people"), read("orders")])
}

pub fn shop(tables: &mut MemoryTables, version: u64) -> (Deployment, String) {
    let text = std::fs::read_to_string(scenarios().join("shop/channel.yaml")).unwrap();
    let channel = kairos_model::parse_channel("channel.yaml", &text, &tables.schemas()).unwrap();
    let dep = Deployment::compile(&channel, &tables.schemas(), version).unwrap();
    tables.prepare(&dep);
    (dep, channel_hash(&channel))
}

pub struct Server {
    pub addr: SocketAddr,
    pub runtime: Arc<Runtime>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

/// Mid-June 2026: the shop channel's dated offers are as its scenario files expect.
pub fn june_15() -> kairos_rules::time::Timestamp {
    kairos_rules::time::parse_instant("2026-06-15T12:00:00Z")
        .unwrap()
        .at
}

pub async fn server(config: Config) -> Server {
    let name = format!(
        "kairos-api-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    instance(config, empty_history(&name).await, None).await
}

/// The database file of [`empty_history`] of this name.
pub fn history_file(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(name).join("h.db")
}

/// An empty SQLite history in a temporary folder of this name. A folder left by an earlier
/// run whose process had the same id is cleared: its history would suppress offers.
pub async fn empty_history(name: &str) -> HistoryStore {
    let file = history_file(name);
    let dir = file.parent().unwrap();
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    HistoryStore::open(&format!("sqlite://{}", file.display()))
        .await
        .unwrap()
}

/// One runtime instance over `store` serving the shop channel, with sessions in memory or
/// shared through Redis.
pub async fn instance(
    config: Config,
    store: HistoryStore,
    shared: Option<RedisSessions>,
) -> Server {
    let mut tables = tables();
    let (dep, hash) = shop(&mut tables, 1);
    instance_of((dep, hash), Box::new(tables), config, store, shared).await
}

/// One runtime instance serving `deployment`, on mid-June 2026, warmed from `store` as the
/// command line does.
pub async fn instance_of(
    (dep, hash): (Deployment, String),
    profiles: Box<dyn ProfileSource>,
    config: Config,
    store: HistoryStore,
    shared: Option<RedisSessions>,
) -> Server {
    let config = Config {
        clock: june_15,
        ..config
    };
    let mut runtime = Runtime::new(store, profiles, config);
    if let Some(shared) = shared {
        runtime = runtime.with_shared_sessions(shared);
    }
    let runtime = Arc::new(runtime);
    runtime.warm().await.unwrap();
    runtime.deploy(dep, hash);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let rt = runtime.clone();
    let task = tokio::spawn(async move {
        kairos_runtime::run(listener, rt, async move {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    Server {
        addr,
        runtime,
        stop: Some(stop),
        task,
    }
}

impl Server {
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap();
    }

    /// Stops serving at once: calls in flight are dropped where they are, sessions are not
    /// ended.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Sessions shared through the Redis server `KAIROS_TEST_REDIS_URL` names, under `prefix`;
/// none, the skip reported, when it is not set (never in CI).
pub async fn shared_for(prefix: &str, ttl: std::time::Duration) -> Option<RedisSessions> {
    let Ok(url) = std::env::var("KAIROS_TEST_REDIS_URL") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set KAIROS_TEST_REDIS_URL"
        );
        // Written past the test harness's capture: a skip shows in every run, passed or not.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"SKIPPED KAIROS_TEST_REDIS_URL is not set: the shared-session tests\n",
        );
        return None;
    };
    Some(RedisSessions::connect(&url, prefix, ttl).await.unwrap())
}

/// Get offers by GET: `query` is `ip=hero&count=3`.
pub async fn get_offers(addr: SocketAddr, session: &str, query: &str) -> (u16, J) {
    call(
        addr,
        "GET",
        &format!("/v1/sessions/{session}/offers?{query}"),
        J::Null,
    )
    .await
}

pub async fn start(addr: SocketAddr, customer: i64) -> String {
    let (status, body) = call(
        addr,
        "POST",
        "/v1/sessions",
        json!({ "channel": "shop", "audience_id": { "customer_id": customer } }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["session_id"].as_str().unwrap().to_string()
}

pub fn codes(body: &J) -> Vec<String> {
    body["offer_lists"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| {
            l["offers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["code"].as_str().unwrap().to_string())
        })
        .collect()
}

/// Customer 4's session gets two offers on the first instance, then 20 contact events for it
/// are posted at once, spread over `instances`. Each logs both offers: 40 contacts must be
/// stored, none lost or doubled, however the calls interleave.
pub async fn contacts_from_concurrent_calls(instances: &[SocketAddr], store: &HistoryStore) {
    let id = start(instances[0], 4).await;
    let (_, offers) = call(
        instances[0],
        "GET",
        &format!("/v1/sessions/{id}/offers?ip=hero&count=2"),
        J::Null,
    )
    .await;
    assert_eq!(codes(&offers).len(), 2);
    let mut tasks = Vec::new();
    for n in 0..20 {
        let (addr, id) = (instances[n % instances.len()], id.clone());
        tasks.push(tokio::spawn(async move {
            call(
                addr,
                "POST",
                &format!("/v1/sessions/{id}/events"),
                json!({ "event": "offer_shown" }),
            )
            .await
            .0
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(store.history().await.unwrap().len(), 40);
}

/// Two sessions of one customer at once, on `a` and `b` (one instance or two): one accepts
/// GOLD (suppressed for ever after), the other, which read the state before, logs a contact
/// later. The later write keeps the accept: a new session is not offered GOLD again.
pub async fn two_sessions_of_one_customer_keep_each_others_state(a: SocketAddr, b: SocketAddr) {
    let (on_a, on_b) = (start(a, 2).await, start(b, 2).await);
    let treatment = |offers: &J, code: &str| {
        offers["offer_lists"][0]["offers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["code"] == code)
            .map(|o| o["treatment_code"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{code} is offered: {offers}"))
    };
    let (_, offers_a) = get_offers(a, &on_a, "ip=hero&count=3").await;
    let (_, offers_b) = get_offers(b, &on_b, "ip=hero&count=3").await;
    let event = |addr: SocketAddr, id: String, name: &'static str, code: String| async move {
        let path = format!("/v1/sessions/{id}/events");
        let body = json!({ "event": name, "params": { "treatment_code": code } });
        let (status, answer) = call(addr, "POST", &path, body).await;
        assert_eq!(status, 200, "{answer}");
    };
    event(
        a,
        on_a.clone(),
        "offer_clicked",
        treatment(&offers_a, "GOLD"),
    )
    .await;
    let other = codes(&offers_b).into_iter().find(|c| c != "GOLD").unwrap();
    event(b, on_b.clone(), "offer_shown", treatment(&offers_b, &other)).await;
    call(a, "DELETE", &format!("/v1/sessions/{on_a}"), J::Null).await;
    call(b, "DELETE", &format!("/v1/sessions/{on_b}"), J::Null).await;
    let later = start(b, 2).await;
    let (_, offers) = get_offers(b, &later, "ip=hero&count=3").await;
    assert!(
        !codes(&offers).contains(&"GOLD".to_string()),
        "the accepted GOLD stays suppressed: {offers}"
    );
}
