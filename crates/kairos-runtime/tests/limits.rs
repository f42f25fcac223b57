//! Every input has a bound: a call past one is refused with 422 `LIMIT_EXCEEDED` naming it
//! and changes nothing; connections that never finish a request, or sit idle, are closed; no
//! more connections are served at once than the limit.

mod common;

use std::time::Duration;

use common::{call, server};
use kairos_api::serve::ConnectionLimits;
use kairos_runtime::{Config, Limits};
use serde_json::{Value as J, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn limited(limits: Limits) -> Config {
    Config {
        limits,
        ..Config::default()
    }
}

fn params(names: std::ops::Range<usize>) -> J {
    J::Object(names.map(|i| (format!("p{i}"), json!(i))).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_ids_and_params_are_bounded() {
    let s = server(limited(Limits {
        params_per_session: 10,
        param_bytes: 64,
        ..Limits::default()
    }))
    .await;
    let start = |id: String, p: J| json!({ "session_id": id, "channel": "shop", "audience_id": { "customer_id": 1 }, "params": p });
    let (status, refused) = call(
        s.addr,
        "POST",
        "/v1/sessions",
        start("x".repeat(129), json!({})),
    )
    .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (422, Some("LIMIT_EXCEEDED"))
    );
    assert_eq!(
        refused["detail"],
        "session_id: 129 characters, more than the limit of 128"
    );
    let (status, _) = call(
        s.addr,
        "POST",
        "/v1/sessions",
        start("y".repeat(128), params(0..8)),
    )
    .await;
    assert_eq!(status, 200);
    let id = "y".repeat(128);

    // Three new names would make 11: refused, and nothing of it kept.
    let event = |p: J| json!({ "event": "page_view", "params": p });
    let events = format!("/v1/sessions/{id}/events");
    let (status, refused) = call(s.addr, "POST", &events, event(params(6..11))).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (422, Some("LIMIT_EXCEEDED")),
        "{refused}"
    );
    assert_eq!(
        refused["detail"],
        "params: the session would hold 11 parameters, more than the limit of 10"
    );
    let (_, profile) = call(
        s.addr,
        "GET",
        &format!("/v1/sessions/{id}/profile"),
        J::Null,
    )
    .await;
    assert_eq!(profile["params"].as_object().unwrap().len(), 8, "{profile}");
    // Names it holds already cost nothing; two new ones fit.
    let (status, _) = call(s.addr, "POST", &events, event(params(0..10))).await;
    assert_eq!(status, 200);
    let offers = json!({ "requests": [{ "ip": "hero" }], "params": { "one_more": 1 } });
    let (status, refused) =
        call(s.addr, "POST", &format!("/v1/sessions/{id}/offers"), offers).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (422, Some("LIMIT_EXCEEDED"))
    );
    // One parameter too large: its name and its text together.
    let (status, refused) = call(
        s.addr,
        "POST",
        &events,
        event(json!({ "p0": "x".repeat(63) })),
    )
    .await;
    assert_eq!(
        (status, refused["detail"].as_str()),
        (
            422,
            Some("params: 'p0' takes 65 bytes, more than the limit of 64")
        )
    );
    let (status, _) = call(
        s.addr,
        "POST",
        &events,
        event(json!({ "p0": "x".repeat(62) })),
    )
    .await;
    assert_eq!(status, 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_bounded_in_commands_and_answer_bytes() {
    let s = server(limited(Limits {
        batch_commands: 5,
        answer_bytes: 600,
        ..Limits::default()
    }))
    .await;
    let start = json!({ "start_session": { "session_id": "b1", "channel": "shop", "audience_id": { "customer_id": 1 } } });
    let mut commands = vec![start.clone()];
    commands.extend(std::iter::repeat_n(json!({ "get_profile": {} }), 5));
    let (status, refused) =
        call(s.addr, "POST", "/v1/batch", json!({ "commands": commands })).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (422, Some("LIMIT_EXCEEDED"))
    );
    assert_eq!(
        refused["detail"],
        "commands: 6 commands, more than the limit of 5"
    );
    let (status, _) = call(s.addr, "GET", "/v1/sessions/b1/profile", J::Null).await;
    assert_eq!(status, 404, "no command of a refused batch ran");

    let mut commands = vec![start];
    commands.extend(std::iter::repeat_n(json!({ "get_profile": {} }), 4));
    let (status, failed) = call(s.addr, "POST", "/v1/batch", json!({ "commands": commands })).await;
    assert_eq!(
        (status, failed["code"].as_str()),
        (422, Some("LIMIT_EXCEEDED")),
        "{failed}"
    );
    let answered = failed["responses"].as_array().unwrap().len();
    assert!(
        (1..5).contains(&answered),
        "the answers that fit: {answered}"
    );
    assert!(
        failed["detail"]
            .as_str()
            .unwrap()
            .ends_with("the answer would pass the limit of 600 bytes"),
        "{failed}"
    );
    let interact =
        json!({ "sessionId": "i1", "commands": vec![json!({ "action": "getVersion" }); 6] });
    let (status, refused) = call(s.addr, "POST", "/interact/servlet/RestServlet", interact).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (422, Some("LIMIT_EXCEEDED"))
    );
    s.stop().await;
}

/// Reads until the server closes the connection; how long that took.
async fn closed_after(mut stream: TcpStream) -> Duration {
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest))
        .await
        .expect("the server closes the connection")
        .ok();
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_idle_and_surplus_connections_are_bounded() {
    let s = server(limited(Limits {
        connections: ConnectionLimits {
            max_connections: 3,
            header_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(2),
        },
        ..Limits::default()
    }))
    .await;
    // Headers that never end, and a connection that never says anything: both closed.
    let mut slow = TcpStream::connect(s.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: k\r\n")
        .await
        .unwrap();
    let silent = TcpStream::connect(s.addr).await.unwrap();
    let (slow, silent) = tokio::join!(closed_after(slow), closed_after(silent));
    assert!(slow < Duration::from_secs(5), "{slow:?}");
    assert!(silent < Duration::from_secs(5), "{silent:?}");

    // Three connections held open: a fourth is served only once one of them closes.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nhost: k\r\n\r\n")
            .await
            .unwrap();
        let mut answer = [0u8; 12];
        c.read_exact(&mut answer).await.unwrap();
        held.push(c);
    }
    let waiting = tokio::spawn(async move {
        let mut c = TcpStream::connect(s.addr).await.unwrap();
        c.write_all(b"GET /healthz HTTP/1.1\r\nhost: k\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        c.read_to_end(&mut answer).await.unwrap();
        String::from_utf8_lossy(&answer).to_string()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "a fourth connection waits");
    drop(held.pop());
    let answer = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("served once a connection closed")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    s.stop().await;
}
