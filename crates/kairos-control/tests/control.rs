//! The control plane's API on a random port over a temporary SQLite repository: logins and
//! roles, concurrent edits, versions, gates, reviews, rollback, the runtimes' long poll.

mod support;

use serde_json::{Value as J, json};
use support::http as common;
use support::http::http;
use support::*;

#[tokio::test]
async fn logins_and_roles_are_checked_on_every_action() {
    let c = control().await;
    let (status, body) = common::call(
        c.addr,
        "POST",
        "/api/login",
        json!({ "user": "admin", "password": "wrong" }),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("BAD_CREDENTIALS"))
    );
    let (status, _) = api(c.addr, "GET", "/api/channels", "ku_forged", J::Null).await;
    assert_eq!(status, 401);
    let (status, _) = common::call(c.addr, "GET", "/api/channels", J::Null).await;
    assert_eq!(status, 401);
    let (status, openapi) = common::call(c.addr, "GET", "/api/openapi.json", J::Null).await;
    assert_eq!(status, 200, "the API description needs no login");
    let (status, _) = common::call(c.addr, "GET", "/readyz", J::Null).await;
    assert_eq!(
        status, 200,
        "readiness needs no login: its database answers"
    );
    assert!(openapi["paths"]["/api/groups/{group}/deployments"]["post"].is_object());

    let designer = user(&c, "dana", &["designer"]).await;
    let reviewer = user(&c, "rex", &["reviewer"]).await;
    // A reviewer cannot edit; a designer can.
    let (status, body) = apply(&c, &reviewer, BANK).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("designer"),
        "{body}"
    );
    assert_eq!(apply(&c, &designer, BANK).await.0, 200);
    // A designer cannot deploy, create users or issue tokens.
    let (status, _) = api(
        c.addr,
        "POST",
        "/api/groups/staging/deployments",
        &designer,
        json!({ "channel": "web" }),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = api(
        c.addr,
        "POST",
        "/api/users",
        &designer,
        json!({ "name": "x", "password": "12345678", "roles": [] }),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = api(
        c.addr,
        "POST",
        "/api/tokens",
        &designer,
        json!({ "kind": "touchpoint", "for": "web" }),
    )
    .await;
    assert_eq!(status, 403);
    // A designer cannot approve.
    let (status, _) = api(
        c.addr,
        "POST",
        "/api/channels/web/versions",
        &designer,
        json!({ "note": "first" }),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = api(
        c.addr,
        "POST",
        "/api/channels/web/versions/1/reviews",
        &designer,
        json!({ "decision": "approve" }),
    )
    .await;
    assert_eq!(status, 403);
    let (status, body) = api(
        c.addr,
        "POST",
        "/api/users",
        &c.admin,
        json!({ "name": "eve", "password": "long enough", "roles": ["superuser"] }),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("roles[0]: unknown variant `superuser`"),
        "{body}"
    );
    let (_, log) = api(c.addr, "GET", "/api/audit", &designer, J::Null).await;
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"apply") && actions.contains(&"snapshot"),
        "{actions:?}"
    );
}

/// Requests are read as the types the API document gives: what the schema allows is taken
/// (an integer written `1.0`), what it does not is refused, naming the field.
#[tokio::test]
async fn requests_are_read_as_the_documented_types() {
    let c = control().await;
    let (status, _) = apply(&c, &c.admin, BANK).await;
    assert_eq!(status, 200);
    let (status, body) = deploy(&c, "staging", json!(["web", 1])).await;
    assert_eq!(status, 400, "a list is no request: {body}");
    assert_eq!(body["detail"], "the body must be a JSON object");
    let (status, body) = deploy(&c, "staging", json!({ "channel": "web" })).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = deploy(&c, "staging", json!({ "channel": "web", "version": 1.0 })).await;
    assert_eq!(status, 200, "an integer may be written 1.0: {body}");
    let (status, body) = deploy(&c, "staging", json!({ "channel": "web", "version": 1.5 })).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"].as_str().unwrap().starts_with("version:"),
        "{body}"
    );
    let (status, body) = api(
        c.addr,
        "GET",
        "/api/groups/staging/active?wait=21",
        &c.admin,
        J::Null,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["detail"], "wait: 21 is not within 0 to 20");
    let (status, body) = api(
        c.addr,
        "PUT",
        "/api/groups/staging",
        &c.admin,
        json!({ "history": "/var/lib/kairos.db" }),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"].as_str().unwrap().starts_with("history:"),
        "{body}"
    );
    let (status, openapi) = api(c.addr, "GET", "/api/openapi.json", "", J::Null).await;
    assert_eq!(status, 200);
    let deploy = &openapi["paths"]["/api/groups/{group}/deployments"]["post"];
    let gates_failed = deploy["responses"]["409"]["description"].as_str().unwrap();
    assert!(gates_failed.contains("`GATES_FAILED`"), "{gates_failed}");
    assert!(deploy["responses"]["403"].is_object(), "a role is needed");
    assert_eq!(
        openapi["paths"]["/api/login"]["post"]["security"],
        json!([]),
        "login needs no token"
    );
}

#[tokio::test]
async fn a_bad_channel_file_is_rejected_whole_with_located_errors() {
    let c = control().await;
    let bad = BANK
        .replace(
            "category: cards\n    attributes: { apr: 19.9",
            "category: gadgets\n    attributes: { apr: 19.9",
        )
        .replace("score: 85", "score: high");
    let (status, body) = apply(&c, &c.admin, &bad).await;
    assert_eq!(status, 422, "{body}");
    let errors: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors.iter().all(|e| e.starts_with("bank.yaml:")),
        "{errors:?}"
    );
    assert!(errors.iter().any(|e| e.contains("gadgets")), "{errors:?}");
    let (_, channels) = api(c.addr, "GET", "/api/channels", &c.admin, J::Null).await;
    assert_eq!(channels, json!([]), "nothing was stored");
}

#[tokio::test]
async fn edits_of_different_components_both_land_and_the_same_one_conflicts() {
    let c = control().await;
    let ana = user(&c, "ana", &["designer"]).await;
    let ben = user(&c, "ben", &["designer"]).await;
    apply(&c, &ana, BANK).await;
    let (_, channel) = api(c.addr, "GET", "/api/channels/web", &ana, J::Null).await;
    let gold = revision_of(&channel, "offers/GOLD_CARD");
    let platinum = revision_of(&channel, "offers/PLATINUM_CARD");
    let (_, mut gold_body) = api(
        c.addr,
        "GET",
        "/api/channels/web/components/offers/GOLD_CARD",
        &ana,
        J::Null,
    )
    .await;
    gold_body["name"] = json!("Gold card, new look");
    let if_match = format!("\"{gold}\"");
    let (status, saved) = api_with(
        c.addr,
        "PUT",
        "/api/channels/web/components/offers/GOLD_CARD",
        &ana,
        &[("if-match", &if_match)],
        gold_body.clone(),
    )
    .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["errors"], json!([]));
    let (_, mut platinum_body) = api(
        c.addr,
        "GET",
        "/api/channels/web/components/offers/PLATINUM_CARD",
        &ben,
        J::Null,
    )
    .await;
    platinum_body["category"] = json!("gadgets");
    let if_match = format!("\"{platinum}\"");
    let (status, saved) = api_with(
        c.addr,
        "PUT",
        "/api/channels/web/components/offers/PLATINUM_CARD",
        &ben,
        &[("if-match", &if_match)],
        platinum_body,
    )
    .await;
    assert_eq!(status, 200, "ben's edit of another offer lands: {saved}");
    // Saved, but the design now has an error, placed in the component.
    let error = &saved["errors"][0];
    assert_eq!(error["component"], "offers/PLATINUM_CARD");
    assert!(
        error["message"].as_str().unwrap().contains("gadgets"),
        "{error}"
    );
    // Ben edits GOLD_CARD from the revision he read before Ana's change: a conflict.
    gold_body["name"] = json!("ben's gold");
    let if_match = format!("\"{gold}\"");
    let (status, body) = api_with(
        c.addr,
        "PUT",
        "/api/channels/web/components/offers/GOLD_CARD",
        &ben,
        &[("if-match", &if_match)],
        gold_body,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("CONFLICT")),
        "{body}"
    );
    let (_, now) = api(
        c.addr,
        "GET",
        "/api/channels/web/components/offers/GOLD_CARD",
        &ana,
        J::Null,
    )
    .await;
    assert_eq!(now["name"], "Gold card, new look", "ana's edit is kept");
    // The design cannot be snapshotted while it has errors.
    let (status, body) = api(
        c.addr,
        "POST",
        "/api/channels/web/versions",
        &c.admin,
        json!({}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap()
            .starts_with("offers/PLATINUM_CARD:"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn production_gates_approvals_promotion_and_rollback() {
    let c = control().await;
    let rex = user(&c, "rex", &["reviewer"]).await;
    apply(&c, &c.admin, BANK).await;
    runtime(&c, "staging").await;
    production_gates(
        &c,
        json!({ "staged": true, "scenarios": true, "loadtest": true, "approvals": 1, "min_loadtest_seconds": 1 }),
    )
    .await;
    let (status, v1) = deploy(&c, "staging", json!({ "channel": "web", "note": "first" })).await;
    assert_eq!((status, v1["version"].as_i64()), (200, Some(1)), "{v1}");
    // Unchanged design: the same version, not a new one.
    let (_, again) = deploy(&c, "staging", json!({ "channel": "web" })).await;
    assert_eq!(again["version"], 1);

    let (status, refused) =
        deploy(&c, "production", json!({ "channel": "web", "version": 1 })).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (409, Some("GATES_FAILED")),
        "{refused}"
    );
    let failed: Vec<&str> = refused["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(
        failed.len(),
        3,
        "tests and approval are missing: {failed:?}"
    );
    assert!(failed.iter().any(|f| f.starts_with("scenarios:")));
    assert!(failed.iter().any(|f| f.starts_with("loadtest:")));
    assert!(failed.iter().any(|f| f.starts_with("approvals:")));

    let run = scenarios(&c, PASSING).await;
    assert_eq!(run["state"], "passed", "{run}");
    // A threshold no runtime meets.
    assert_eq!(loadtest(&c, 1, Some(0.0001)).await["state"], "failed");
    let review = |decision: &'static str| {
        let rex = rex.clone();
        let addr = c.addr;
        async move {
            api(
                addr,
                "POST",
                "/api/channels/web/versions/1/reviews",
                &rex,
                json!({ "decision": decision, "comment": "checked the impact report" }),
            )
            .await
        }
    };
    assert_eq!(review("approve").await.0, 200);
    let (_, refused) = deploy(&c, "production", json!({ "channel": "web", "version": 1 })).await;
    assert_eq!(
        refused["errors"],
        json!(["loadtest: the last load test on staging failed"])
    );
    assert_eq!(loadtest(&c, 1, Some(1000.0)).await["state"], "passed");
    let (status, promoted) =
        deploy(&c, "production", json!({ "channel": "web", "version": 1 })).await;
    assert_eq!(status, 200, "{promoted}");

    // A change, staged as version 2, then forced to production by an administrator.
    let (_, mut gold) = api(
        c.addr,
        "GET",
        "/api/channels/web/components/offers/GOLD_CARD",
        &c.admin,
        J::Null,
    )
    .await;
    gold["name"] = json!("Gold card 2");
    api(
        c.addr,
        "PUT",
        "/api/channels/web/components/offers/GOLD_CARD",
        &c.admin,
        gold,
    )
    .await;
    let (_, v2) = deploy(
        &c,
        "staging",
        json!({ "channel": "web", "note": "new name" }),
    )
    .await;
    assert_eq!(v2["version"], 2);
    let (_, diff) = api(
        c.addr,
        "GET",
        "/api/channels/web/diff?from=1&to=2",
        &rex,
        J::Null,
    )
    .await;
    assert_eq!(diff["changes"].as_array().unwrap().len(), 1, "{diff}");
    assert_eq!(diff["changes"][0]["path"], "offers/GOLD_CARD");
    let (status, _) = deploy(&c, "production", json!({ "channel": "web", "version": 2 })).await;
    assert_eq!(status, 409);
    let (status, forced) = deploy(
        &c,
        "production",
        json!({ "channel": "web", "version": 2, "override_reason": "typo fix, tested by hand" }),
    )
    .await;
    assert_eq!(status, 200, "{forced}");

    let (status, back) = api(
        c.addr,
        "POST",
        "/api/groups/production/rollback",
        &c.admin,
        json!({ "channel": "web" }),
    )
    .await;
    assert_eq!(
        (status, back["version"].as_i64(), back["previous"].as_i64()),
        (200, Some(1), Some(2))
    );
    let (_, groups) = api(c.addr, "GET", "/api/groups", &rex, J::Null).await;
    let production = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "production")
        .unwrap();
    assert_eq!(
        production["active"],
        json!([{ "channel": "web", "version": 1 }])
    );
    let (_, versions) = api(c.addr, "GET", "/api/channels/web/versions", &rex, J::Null).await;
    let v2 = &versions[1];
    assert_eq!(v2["active_in"], json!(["staging"]));
    let override_reason = v2["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|d| d["reason"].as_str())
        .unwrap();
    assert!(override_reason.contains("typo fix"), "{override_reason}");
    let (status, _) = api(
        c.addr,
        "POST",
        "/api/groups/production/rollback",
        &c.admin,
        json!({ "channel": "web", "to": 7 }),
    )
    .await;
    assert_eq!(
        status, 409,
        "a version production never ran cannot be rolled back to"
    );
}

#[tokio::test]
async fn runtimes_long_poll_for_their_group_and_report_status() {
    let c = control().await;
    apply(&c, &c.admin, BANK).await;
    let (_, token) = api(
        c.addr,
        "POST",
        "/api/tokens",
        &c.admin,
        json!({ "kind": "runtime", "for": "staging", "label": "staging runtimes" }),
    )
    .await;
    let runtime = token["token"].as_str().unwrap().to_string();
    let (status, first) = api(
        c.addr,
        "GET",
        "/api/groups/staging/active",
        &runtime,
        J::Null,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(first["deployments"], json!([]));
    let generation = first["generation"].as_i64().unwrap();
    let (status, _) = api(
        c.addr,
        "GET",
        "/api/groups/production/active",
        &runtime,
        J::Null,
    )
    .await;
    assert_eq!(
        status, 403,
        "a staging runtime token cannot read production"
    );

    let addr = c.addr;
    let waiting = tokio::spawn(async move {
        let started = std::time::Instant::now();
        let reply = api(
            addr,
            "GET",
            &format!("/api/groups/staging/active?after={generation}&wait=20"),
            &runtime,
            J::Null,
        )
        .await;
        (reply, started.elapsed())
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    deploy(&c, "staging", json!({ "channel": "web" })).await;
    let ((status, changed), waited) = waiting.await.unwrap();
    assert_eq!(status, 200);
    assert!(
        waited < std::time::Duration::from_secs(5),
        "answered on the change: {waited:?}"
    );
    assert_eq!(changed["deployments"][0]["version"], 1);
    assert!(
        changed["deployments"][0]["yaml"]
            .as_str()
            .unwrap()
            .contains("GOLD_CARD")
    );

    let (_, touchpoint) = api(
        c.addr,
        "POST",
        "/api/tokens",
        &c.admin,
        json!({ "kind": "touchpoint", "for": "web", "label": "website" }),
    )
    .await;
    let secret = touchpoint["token"].as_str().unwrap();
    assert!(secret.starts_with("kt_"));
    let (status, _) = api(c.addr, "GET", "/api/channels", secret, J::Null).await;
    assert_eq!(status, 401, "a touchpoint token is not a user");
    let runtime = token["token"].as_str().unwrap();
    let (_, now) = api(
        c.addr,
        "GET",
        "/api/groups/staging/active",
        runtime,
        J::Null,
    )
    .await;
    assert!(now["generation"].as_i64().unwrap() > changed["generation"].as_i64().unwrap());
    assert_eq!(now["touchpoint_tokens"][0]["channels"], json!(["web"]));
    assert_eq!(now["open"], true, "staging is open");
    let (status, refused) = api(c.addr, "GET", "/api/channels", runtime, J::Null).await;
    assert_eq!(
        status, 403,
        "a runtime reads only what its group runs: {refused}"
    );

    let (status, _) = api(
        c.addr,
        "POST",
        "/api/groups/staging/instances/host-a",
        runtime,
        json!({
            "address": "127.0.0.1:7701",
            "running": { "web": { "version": 1 } },
            "unknown": [{ "channel": "web", "kind": "event", "name": "basket_viewed", "calls": 2 }],
        }),
    )
    .await;
    assert_eq!(status, 204);
    let (_, groups) = api(c.addr, "GET", "/api/groups", &c.admin, J::Null).await;
    let staging = &groups[0];
    assert_eq!(staging["instances"][0]["instance"], "host-a");
    assert_eq!(staging["instances"][0]["running"]["web"]["version"], 1);
    let (_, unknown) = api(c.addr, "GET", "/api/unknown-names", &c.admin, J::Null).await;
    assert_eq!(unknown[0]["name"], "basket_viewed");
    assert_eq!(unknown[0]["calls"], 2);
}

#[tokio::test]
async fn a_group_may_keep_its_own_profile_tables() {
    let c = control().await;
    let data = std::env::temp_dir().join(format!(
        "kairos-control-data-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&data).unwrap();
    let url = format!("sqlite://{}", data.join("test-data.db").display());
    let (status, body) = api(
        c.addr,
        "PUT",
        "/api/groups/staging",
        &c.admin,
        json!({ "data": url }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let dana = user(&c, "dana", &["designer"]).await;
    let csv = "customer_id,age\n1,30\n2,41\n";
    let import = |token: String, query: &'static str| {
        let addr = c.addr;
        async move {
            let auth = format!("Bearer {token}");
            http(
                addr,
                "POST",
                &format!("/api/tables/testers?key=customer_id{query}"),
                &[("authorization", &auth), ("content-type", "text/csv")],
                csv,
            )
            .await
        }
    };
    let (status, _) = import(dana, "&group=staging").await;
    assert_eq!(status, 403, "only a data administrator imports");
    let (status, body) = import(c.admin.clone(), "&group=staging&schema=age:double").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("\"type\":\"double\""),
        "the declared type wins: {body}"
    );
    let names = |tables: J| -> Vec<String> {
        tables
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, staging) = api(
        c.addr,
        "GET",
        "/api/tables?group=staging",
        &c.admin,
        J::Null,
    )
    .await;
    assert_eq!(names(staging), ["testers"]);
    let (_, shared) = api(c.addr, "GET", "/api/tables", &c.admin, J::Null).await;
    assert_eq!(
        names(shared),
        Vec::<String>::new(),
        "production's data is untouched"
    );
    let (_, active) = api(
        c.addr,
        "GET",
        "/api/groups/staging/active",
        &c.admin,
        J::Null,
    )
    .await;
    assert_eq!(active["data"], json!(url), "the group's runtimes read it");
    let (status, body) = api(
        c.addr,
        "PUT",
        "/api/groups/qa",
        &c.admin,
        json!({ "data": "mysql://nope" }),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"].as_str().unwrap().starts_with("data:"),
        "{body}"
    );
}

/// A group's browser origins are checked, kept, and reach its runtimes within a poll.
#[tokio::test(flavor = "multi_thread")]
async fn a_groups_browser_origins_reach_its_runtimes() {
    let c = control().await;
    let origins = |list: J| json!({ "cors_origins": list });
    let (status, body) = api(
        c.addr,
        "PUT",
        "/api/groups/staging",
        &c.admin,
        origins(json!(["shop.example.com"])),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .starts_with("cors_origins[0]: "),
        "{body}"
    );
    let (status, body) = api(
        c.addr,
        "PUT",
        "/api/groups/staging",
        &c.admin,
        origins(json!([
            "https://Shop.example.com/",
            "https://shop.example.com"
        ])),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["cors_origins"], json!(["https://shop.example.com"]));
    apply(&c, &c.admin, BANK).await;
    let runtime = runtime(&c, "staging").await;
    let (status, body) = deploy(&c, "staging", json!({ "channel": "web" })).await;
    assert_eq!(status, 200, "{body}");
    let allowed = async || {
        let (_, head, _) = common::http_with_head(
            runtime,
            "OPTIONS",
            "/v1/sessions",
            &[
                ("origin", "https://shop.example.com"),
                ("access-control-request-method", "POST"),
            ],
            "",
        )
        .await;
        head.contains("access-control-allow-origin: https://shop.example.com")
    };
    let within_a_poll = async |wanted: bool| {
        for _ in 0..40 {
            if allowed().await == wanted {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
        panic!("the runtime did not follow the group's origins ({wanted})");
    };
    within_a_poll(true).await;
    let (status, _) = api(
        c.addr,
        "PUT",
        "/api/groups/staging",
        &c.admin,
        origins(json!([])),
    )
    .await;
    assert_eq!(status, 200);
    within_a_poll(false).await;
}
