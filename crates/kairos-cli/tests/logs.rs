//! The runtime's logs as JSON lines: every call in a `request` span with its ID (the caller's
//! `x-request-id`, answered back), and nothing a caller sent about a visitor in them.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;

use common::{KillOnDrop, SHOP, free_port, kairos, repo};

/// A request with an `x-request-id`; the whole answer, head and body.
fn call_with_id(port: u16, method: &str, path: &str, id: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: k\r\nconnection: close\r\nx-request-id: {id}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn calls_are_logged_as_json_with_their_request_id_and_no_visitor_data() {
    let dir = std::env::temp_dir().join(format!("kairos-logs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("runtime.log");
    let port = free_port();
    let mut runtime = KillOnDrop(
        kairos()
            .current_dir(repo())
            .arg("runtime")
            .args(SHOP)
            .args(["--data", dir.to_str().unwrap()])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--log-format", "json", "--log", "info,kairos_runtime=debug"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    common::wait_until_ready(port, "/readyz", "the runtime");
    let start = r#"{"channel":"shop","audience_id":{"customer_id":2},"params":{"campaign":"secret-campaign-x"}}"#;
    let answer = call_with_id(port, "POST", "/v1/sessions", "touchpoint-42", start);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("x-request-id: touchpoint-42"),
        "{answer}"
    );
    let session = answer
        .split("\"session_id\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    // A call without an ID of its own gets one.
    let (head, _) = call_with_id(
        port,
        "GET",
        &format!("/v1/sessions/{session}/offers?ip=hero"),
        "bad id!",
        "",
    )
    .split_once("\r\n\r\n")
    .map(|(h, b)| (h.to_ascii_lowercase(), b.to_string()))
    .unwrap();
    let made = head
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .expect("an ID is answered");
    assert!(
        made.len() == 16 && made.chars().all(|c| c.is_ascii_hexdigit()),
        "{made}"
    );

    let _ = runtime.0.kill();
    let _ = runtime.0.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    let answered = |id: &str| {
        lines.iter().any(|l| {
            l["message"] == "answered" && l["span"]["id"] == id && l["span"]["name"] == "request"
        })
    };
    assert!(answered("touchpoint-42"), "{text}");
    assert!(answered(made), "{text}");
    assert!(
        lines
            .iter()
            .any(|l| l["span"]["call"] == "get_offers" && l["status"] == 200),
        "{text}"
    );
    for secret in ["secret-campaign-x", session, "customer_id"] {
        assert!(!text.contains(secret), "the logs hold {secret}: {text}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
