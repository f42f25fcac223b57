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
    // Scenario files run against the staging group. Counts are large enough that learning's
    // exploration (which reorders offers) cannot change which offers come back.
    let scenarios = temp_file(
        "staging.scenarios.yaml",
        "channel: web\nscenarios:\n  - name: a loan shopper on staging\n    start: { audience_id: { customer_id: 1002 } }\n    steps:\n      - get_offers: { ip: hero, count: 10 }\n        expect: { absent: [ PERSONAL_LOAN ], warnings: [] }\n      - post_event: { event: loan_page_view }\n      - post_event: { event: loan_page_view }\n      - post_event: { event: loan_page_view }\n        expect: { segments: [ card_holder, prime, loan_intent ] }\n      - get_offers: { ip: hero, count: 10 }\n        expect: { contains: [ PERSONAL_LOAN ] }\n      - get_offers: { ip: promo_strip, count: 1 }\n        expect: { default: true, warnings: [ UNKNOWN_INTERACTION_POINT ] }\n      - end_session: {}\n",
    );
    let out = kairos()
        .arg("test")
        .arg(&scenarios)
        .args(["--group", "staging"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.trim_end().ends_with("scenarios: 1 passed, 0 failed"),
        "{stdout}"
    );
    let out = kairos()
        .arg("test")
        .arg(&scenarios)
        .args(["--group", "qa"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown server group 'qa'"));
    // A load test on the staging group: realistic sessions, thresholds decide the exit code.
    let load = |extra: &[&str]| {
        kairos()
            .args([
                "loadtest",
                "--group",
                "staging",
                "--channel",
                "web",
                "--duration",
                "2s",
                "--concurrency",
                "2",
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = load(&["--max-p99-ms", "2000"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains(", 0 errors")
            && stdout.contains("latency p50")
            && stdout.ends_with("loadtest passed\n"),
        "{stdout}"
    );
    let out = load(&["--min-rps", "100000000"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("is below --min-rps 100000000"));
    let _ = child.kill();
    let _ = child.wait();
}
