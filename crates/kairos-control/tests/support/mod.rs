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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(kairos_control::run(listener, cp, std::future::pending()));
    let admin = login(addr, "admin", "admin-password").await;
    Control { addr, admin }
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

/// A result on staging as `kairos test` or `kairos loadtest` attaches it: one scenario run,
/// or a 30 s load test with a p99 threshold.
pub async fn result(c: &Control, version: i64, kind: &str, passed: bool) {
    let summary = if kind == "scenarios" {
        json!({ "passed": 1, "failed": u8::from(!passed) })
    } else {
        loadtest_summary(30.0, Some(100.0))
    };
    result_with(c, version, kind, passed, summary).await;
}

pub fn loadtest_summary(seconds: f64, max_p99_ms: Option<f64>) -> J {
    json!({
        "requests": 3000, "requests_per_second": 100.0, "errors": 0, "p50_ms": 1.0,
        "p99_ms": 5.0, "max_p99_ms": max_p99_ms, "min_rps": null, "duration_seconds": seconds,
    })
}

pub async fn result_with(c: &Control, version: i64, kind: &str, passed: bool, summary: J) {
    let (status, _) = api(
        c.addr,
        "POST",
        &format!("/api/channels/web/versions/{version}/results"),
        &c.admin,
        json!({ "group": "staging", "kind": kind, "passed": passed, "summary": summary }),
    )
    .await;
    assert_eq!(status, 201);
}
