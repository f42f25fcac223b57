//! Gate results are what the control plane itself ran: scenario files and load tests are
//! submitted to it, it runs them against the group's runtime (a real one, following it) and
//! records the outcome with the version; no client can post a result, and results that prove
//! nothing pass no gate.

mod support;

use serde_json::{Value as J, json};
use support::*;

/// The bank channel on staging, served by a runtime following the control plane; the
/// version number.
async fn staged(c: &Control) -> i64 {
    let (status, body) = apply(c, &c.admin, BANK).await;
    assert_eq!(status, 200, "{body}");
    runtime(c, "staging").await;
    let (status, body) = deploy(c, "staging", json!({ "channel": "web" })).await;
    assert_eq!(status, 200, "{body}");
    body["version"].as_i64().unwrap()
}

fn recorded(run: &J) -> Vec<(String, i64, bool)> {
    run["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["channel"].as_str().unwrap().to_string(),
                r["version"].as_i64().unwrap(),
                r["passed"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn only_results_the_control_plane_ran_and_that_prove_something_pass_the_gates() {
    let c = control().await;
    let v1 = staged(&c).await;
    production_gates(
        &c,
        json!({ "scenarios": true, "loadtest": true, "approvals": 0, "min_loadtest_seconds": 2 }),
    )
    .await;
    // The route clients once posted claims to is gone.
    let (status, _) = api(
        c.addr,
        "POST",
        &format!("/api/channels/web/versions/{v1}/results"),
        &c.admin,
        json!({ "group": "staging", "kind": "scenarios", "passed": true, "summary": { "passed": 9 } }),
    )
    .await;
    assert!(status == 404 || status == 405, "{status}");

    // An empty scenario file runs nothing, and passes nothing.
    let empty = scenarios(&c, "channel: web\nscenarios: []\n").await;
    assert_eq!(empty["state"], "failed", "{empty}");
    assert_eq!(recorded(&empty), [("web".to_string(), v1, false)]);
    assert!(
        empty["report"]
            .as_str()
            .unwrap()
            .contains("scenarios: 0 passed, 0 failed"),
        "{empty}"
    );
    // A load test without a threshold passes, and proves nothing.
    let unbounded = loadtest(&c, 2, None).await;
    assert_eq!(unbounded["state"], "passed", "{unbounded}");
    let refused = refusals(&c, v1).await;
    assert_eq!(
        refused,
        [
            "scenarios: the last scenario tests on staging failed",
            "loadtest: the last load test on staging had no threshold to meet (give --max-p99-ms or --min-rps)"
        ]
    );
    // Shorter than the group asks.
    let short = loadtest(&c, 1, Some(1000.0)).await;
    assert_eq!(short["state"], "passed", "{short}");
    assert_eq!(
        refusals(&c, v1).await[1],
        "loadtest: the last load test on staging ran 1 s, shorter than the 2 s the group asks"
    );

    // What passes: real scenarios against the runtime's real answers, a long enough load
    // test under a threshold it meets.
    let passed = scenarios(&c, PASSING).await;
    assert_eq!(passed["state"], "passed", "{passed}");
    assert_eq!(recorded(&passed), [("web".to_string(), v1, true)]);
    let report = passed["report"].as_str().unwrap();
    assert!(
        report.contains("ok   staging.scenarios.yaml: a mortgage holder is segmented"),
        "{report}"
    );
    let load = loadtest(&c, 2, Some(1000.0)).await;
    assert_eq!(load["state"], "passed", "{load}");
    assert!(
        load["report"].as_str().unwrap().contains("loadtest passed"),
        "{load}"
    );
    assert!(load["progress"]["requests"].as_u64().unwrap() > 0, "{load}");
    assert_eq!(refusals(&c, v1).await, Vec::<String>::new());

    // The version shows what was recorded, by whom, from which run.
    let (_, version) = api(
        c.addr,
        "GET",
        &format!("/api/channels/web/versions/{v1}"),
        &c.admin,
        J::Null,
    )
    .await;
    let last = version["results"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (&last["kind"], &last["by"], &last["summary"]["run"]),
        (&json!("loadtest"), &json!("admin"), &load["id"]),
        "{last}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_closed_group_is_tested_with_tokens_that_end_with_their_runs() {
    let c = control().await;
    let (status, body) = api(
        c.addr,
        "PUT",
        "/api/groups/staging",
        &c.admin,
        json!({ "open": false }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v1 = staged(&c).await;
    let failing = PASSING.replace(
        "contains: [ HOME_LOAN_REFI ]",
        "contains: [ NO_SUCH_OFFER ]",
    );
    let run = scenarios(&c, &failing).await;
    assert_eq!(run["state"], "failed", "{run}");
    assert_eq!(recorded(&run), [("web".to_string(), v1, false)]);
    let report = run["report"].as_str().unwrap();
    assert!(
        report.contains("FAIL staging.scenarios.yaml: a mortgage holder")
            && report.contains("NO_SUCH_OFFER"),
        "{report}"
    );
    // A load on audience IDs the channel's profile table lacks measures something else: it
    // fails, saying so.
    let strangers = json!({
        "kind": "loadtest", "channel": "web", "duration_seconds": 1, "concurrency": 1,
        "max_p99_ms": 1000, "audience_ids": { "first": 1, "last": 50 },
    });
    let load = test_run(&c, &c.admin, "staging", strangers).await;
    assert_eq!(load["state"], "failed", "{load}");
    assert!(
        load["report"]
            .as_str()
            .unwrap()
            .contains("found no profile: audience IDs 1-50 are not in channel web's profile table"),
        "{load}"
    );
    // The runtime refused nothing for want of a token, and the run's tokens are gone.
    assert!(!report.contains("UNAUTHORIZED"), "{report}");
    let (_, tokens) = api(c.addr, "GET", "/api/tokens", &c.admin, J::Null).await;
    let touchpoint: Vec<&J> = tokens
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == "touchpoint")
        .collect();
    assert!(touchpoint.is_empty(), "{touchpoint:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_that_cannot_run_says_why_and_records_nothing() {
    let c = control().await;
    let (status, _) = apply(&c, &c.admin, BANK).await;
    assert_eq!(status, 200);
    let (status, body) = deploy(&c, "staging", json!({ "channel": "web" })).await;
    assert_eq!(status, 200, "{body}");
    // No runtime follows staging.
    let run = scenarios(&c, PASSING).await;
    assert_eq!(run["state"], "error", "{run}");
    assert_eq!(run["results"], json!([]));
    assert!(
        run["report"]
            .as_str()
            .unwrap()
            .contains("no runtime of server group staging has reported"),
        "{run}"
    );
    // A channel the group does not run.
    let plan = json!({ "kind": "loadtest", "channel": "shop", "duration_seconds": 1 });
    let run = test_run(&c, &c.admin, "staging", plan).await;
    assert_eq!(run["state"], "error", "{run}");
    assert!(
        run["report"]
            .as_str()
            .unwrap()
            .contains("server group staging runs no version of channel 'shop'"),
        "{run}"
    );
    let (_, version) = api(
        c.addr,
        "GET",
        "/api/channels/web/versions/1",
        &c.admin,
        J::Null,
    )
    .await;
    assert_eq!(version["results"], json!([]));

    // Bounds, and who may run tests.
    for (plan, field) in [
        (
            json!({ "kind": "loadtest", "channel": "web", "duration_seconds": 0 }),
            "duration_seconds",
        ),
        (
            json!({ "kind": "loadtest", "channel": "web", "duration_seconds": 5, "concurrency": 1000 }),
            "concurrency",
        ),
        (
            json!({ "kind": "loadtest", "channel": "web", "duration_seconds": 5, "max_p99_ms": -1 }),
            "max_p99_ms",
        ),
        (json!({ "kind": "scenarios", "files": [] }), "files"),
    ] {
        let (status, body) = api(
            c.addr,
            "POST",
            "/api/groups/staging/test-runs",
            &c.admin,
            plan,
        )
        .await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["detail"].as_str().unwrap().starts_with(field),
            "{body}"
        );
    }
    let (status, body) = api(
        c.addr,
        "POST",
        "/api/groups/nowhere/test-runs",
        &c.admin,
        json!({ "kind": "scenarios", "files": [{ "name": "a", "text": "" }] }),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    // Tests write their sessions into the group's history: never a production group's.
    let (status, body) = api(
        c.addr,
        "POST",
        "/api/groups/production/test-runs",
        &c.admin,
        json!({ "kind": "loadtest", "channel": "web", "duration_seconds": 1 }),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("production is a production group"),
        "{body}"
    );
    let nobody = user(&c, "nobody", &[]).await;
    let (status, body) = api(
        c.addr,
        "POST",
        "/api/groups/staging/test-runs",
        &nobody,
        json!({ "kind": "scenarios", "files": [{ "name": "a", "text": "" }] }),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = api(
        c.addr,
        "GET",
        "/api/test-runs/0123456789abcdef",
        &c.admin,
        J::Null,
    )
    .await;
    assert_eq!(status, 404);
}
