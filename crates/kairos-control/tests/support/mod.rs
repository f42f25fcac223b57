//! What the control plane's API tests share: a control plane on a random port over a
//! temporary SQLite repository, logged-in users, and calls with their answers as JSON.

#![allow(dead_code)] // each test file uses its own part

#[path = "../../../kairos-runtime/tests/common/http.rs"]
pub mod http;

use std::net::SocketAddr;
use std::sync::Arc;

use kairos_control::ControlPlane;
use serde_json::{Value as J, json};

pub const BANK: &str = include_str!("../../../../examples/bank/channel.yaml");

pub struct Control {
    pub addr: SocketAddr,
    pub admin: String,
    pub cp: Arc<ControlPlane>,
    /// Its database, which also holds the profile tables.
    pub database: String,
    pub dir: std::path::PathBuf,
}

impl Drop for Control {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub async fn control() -> Control {
    control_with_clock(kairos_api::wall_clock).await
}

/// A control plane whose time is what `clock` says.
pub async fn control_with_clock(clock: fn() -> kairos_rules::time::Timestamp) -> Control {
    let dir = std::env::temp_dir().join(format!(
        "kairos-control-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("control.db").display());
    let cp = ControlPlane::open(&url, clock).await.unwrap();
    assert!(cp.ensure_admin("admin-password").await.unwrap());
    assert!(!cp.ensure_admin("other").await.unwrap(), "created once");
    let cp = Arc::new(cp);
    let cp_handle = cp.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(kairos_control::run(listener, cp, std::future::pending()));
    let admin = login(addr, "admin", "admin-password").await;
    Control {
        addr,
        admin,
        cp: cp_handle,
        database: url,
        dir,
    }
}

pub async fn api(addr: SocketAddr, method: &str, path: &str, token: &str, body: J) -> (u16, J) {
    api_with(addr, method, path, token, &[], body).await
}

pub async fn api_with(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: J,
) -> (u16, J) {
    let auth = format!("Bearer {token}");
    let mut all = vec![("authorization", auth.as_str())];
    all.extend_from_slice(headers);
    let text = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let (status, body) = http::http(addr, method, path, &all, &text).await;
    (
        status,
        serde_json::from_str(&body).unwrap_or(J::String(body)),
    )
}

pub async fn login(addr: SocketAddr, user: &str, password: &str) -> String {
    let (status, body) = http::call(
        addr,
        "POST",
        "/api/login",
        json!({ "user": user, "password": password }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().unwrap().to_string()
}

/// A user with these roles, logged in.
pub async fn user(c: &Control, name: &str, roles: &[&str]) -> String {
    let (status, body) = api(
        c.addr,
        "POST",
        "/api/users",
        &c.admin,
        json!({ "name": name, "password": format!("{name}-password"), "roles": roles }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    login(c.addr, name, &format!("{name}-password")).await
}

pub async fn apply(c: &Control, token: &str, yaml: &str) -> (u16, J) {
    api(
        c.addr,
        "POST",
        "/api/channels/apply",
        token,
        json!({ "file": "bank.yaml", "yaml": yaml }),
    )
    .await
}

pub fn revision_of(channel: &J, path: &str) -> i64 {
    channel["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            format!(
                "{}/{}",
                c["kind"].as_str().unwrap(),
                c["name"].as_str().unwrap()
            ) == path
        })
        .map(|c| c["revision"].as_i64().unwrap())
        .unwrap()
}

pub async fn deploy(c: &Control, group: &str, body: J) -> (u16, J) {
    api(
        c.addr,
        "POST",
        &format!("/api/groups/{group}/deployments"),
        &c.admin,
        body,
    )
    .await
}

/// The production group's gates, as given (what is left out takes its default).
pub async fn production_gates(c: &Control, gates: J) {
    let (status, body) = api(
        c.addr,
        "PUT",
        "/api/groups/production",
        &c.admin,
        json!({ "gates": gates }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// What stops `version` going to production, one line per failed gate.
pub async fn refusals(c: &Control, version: i64) -> Vec<String> {
    let (status, body) = deploy(
        c,
        "production",
        json!({ "channel": "web", "version": version }),
    )
    .await;
    if status == 200 {
        return Vec::new();
    }
    assert_eq!(body["code"], "GATES_FAILED", "{body}");
    serde_json::from_value(body["errors"].clone()).unwrap()
}

/// A runtime of `group` following the control plane, as `kairos up` starts one, with the
/// bank's customers and accounts imported; it serves until the test ends. (Tests starting one run on the
/// multi-threaded runtime: following blocks on it from its own thread.)
pub async fn runtime(c: &Control, group: &str) -> SocketAddr {
    use kairos_runtime::follow::Follow;
    use kairos_runtime::profiles::StoreProfiles;
    use kairos_store::{HistoryStore, ProfileStore};
    for (table, csv) in [
        (
            "customers",
            include_str!("../../../../examples/bank/customers.csv"),
        ),
        (
            "accounts",
            include_str!("../../../../examples/bank/accounts.csv"),
        ),
    ] {
        let (status, body) = http::http(
            c.addr,
            "POST",
            &format!("/api/tables/{table}?key=customer_id"),
            &[
                ("authorization", &format!("Bearer {}", c.admin)),
                ("content-type", "text/csv"),
            ],
            csv,
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let history = format!("sqlite://{}", c.dir.join(format!("{group}.db")).display());
    let store = HistoryStore::open(&history).await.unwrap();
    let profiles = StoreProfiles::open(ProfileStore::open(&c.database).await.unwrap())
        .await
        .unwrap();
    let runtime = Arc::new(kairos_runtime::Runtime::new(
        store,
        Box::new(profiles),
        kairos_runtime::Config::default(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (token, _) =
        c.cp.issue_token(
            kairos_api::control::TokenKind::Runtime,
            group,
            "test",
            "admin",
            None,
        )
        .await
        .unwrap();
    Follow {
        control: format!("http://{}", c.addr),
        ca_file: None,
        token: Some(token),
        group: group.to_string(),
        instance: format!("{group}-test"),
        address: addr.to_string(),
        cache: c.dir.join("cache"),
        database: c.database.clone(),
    }
    .spawn(runtime.clone(), tokio::runtime::Handle::current());
    tokio::spawn(kairos_runtime::run(
        listener,
        runtime,
        std::future::pending(),
    ));
    addr
}

/// Submits a test run to the control plane and waits for its end; the run as it ended.
pub async fn test_run(c: &Control, token: &str, group: &str, request: J) -> J {
    let (status, run) = api(
        c.addr,
        "POST",
        &format!("/api/groups/{group}/test-runs"),
        token,
        request,
    )
    .await;
    assert_eq!(status, 202, "{run}");
    let id = run["id"].as_str().unwrap().to_string();
    for _ in 0..240 {
        let (status, run) = api(
            c.addr,
            "GET",
            &format!("/api/test-runs/{id}"),
            token,
            J::Null,
        )
        .await;
        assert_eq!(status, 200, "{run}");
        if run["state"] != "running" {
            return run;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    panic!("test run {id} did not end within a minute");
}

/// Scenarios that pass against the bank channel on a runtime with its customers.
pub const PASSING: &str = include_str!("../../../../examples/bank/staging.scenarios.yaml");

/// The control plane runs `text` as a scenario file against staging; the run as it ended.
pub async fn scenarios(c: &Control, text: &str) -> J {
    let files = json!([{ "name": "staging.scenarios.yaml", "text": text }]);
    test_run(
        c,
        &c.admin,
        "staging",
        json!({ "kind": "scenarios", "files": files }),
    )
    .await
}

/// The control plane loads staging's web channel for `seconds`; the run as it ended.
pub async fn loadtest(c: &Control, seconds: u32, max_p99_ms: Option<f64>) -> J {
    let plan = json!({
        "kind": "loadtest", "channel": "web", "duration_seconds": seconds, "concurrency": 2,
        "max_p99_ms": max_p99_ms,
    });
    test_run(c, &c.admin, "staging", plan).await
}
