//! `kairos up` on a fresh data folder: staging serves the demo channel with its profiles on
//! 127.0.0.1:7701; production (7702) has nothing deployed yet.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{http, kairos, repo, temp_file};

#[test]
fn up_serves_the_demo_on_staging() {
    let data = std::env::temp_dir().join(format!("kairos-up-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let mut child = kairos()
        .current_dir(repo())
        .arg("up")
        .arg("--data")
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while http(7701, "GET", "/readyz", "").map(|r| r.0) != Some(200) {
        assert!(Instant::now() < deadline, "staging did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, started) = http(
        7701,
        "POST",
        "/v1/sessions",
        r#"{"channel":"web","audience_id":{"customer_id":1001},"debug":true}"#,
    )
    .unwrap();
    assert_eq!(status, 200, "{started}");
    assert_eq!(
        started["messages"],
        serde_json::json!([]),
        "the demo profiles are loaded"
    );
    assert!(
        started["segments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "mortgage_holder"),
        "{started}"
    );
    let id = started["session_id"].as_str().unwrap();
    let (status, offers) = http(
        7701,
        "GET",
        &format!("/v1/sessions/{id}/offers?ip=hero&count=2"),
        "",
    )
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        offers["offer_lists"][0]["offers"].as_array().unwrap().len(),
        2,
        "{offers}"
    );
    assert_eq!(
        http(7702, "GET", "/readyz", "").map(|r| r.0),
        Some(503),
        "production has nothing deployed"
    );
    let _ = child.kill();
    let _ = child.wait();
}
