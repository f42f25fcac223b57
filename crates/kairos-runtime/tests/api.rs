//! The real server on a random port, driven over HTTP: the native API, bad input, tokens,
//! durability of acknowledged events, idle expiry, and a hot swap under load.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::{
    call, codes, contacts_from_concurrent_calls, get_offers, http, server, shop, start, tables,
};
use kairos_api::control::TouchpointGrant;
use kairos_engine::world::ResponseKind;
use kairos_runtime::access::Grants;
use kairos_runtime::{Access, Config};
use serde_json::{Value as J, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_touchpoint_session_end_to_end() {
    let s = server(Config::default()).await;
    let id = start(s.addr, 2).await;
    let (status, offers) = call(
        s.addr,
        "POST",
        &format!("/v1/sessions/{id}/offers"),
        json!({ "requests": [ { "ip": "hero", "count": 3 } ] }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(codes(&offers), ["GOLD", "VIP_OFFER", "SILVER"]);
    assert_eq!(offers["offer_lists"][0]["default"], "Welcome");
    assert_eq!(
        offers["offer_lists"][0]["offers"][0]["attributes"]["apr"],
        19.9
    );
    let (_, by_get) = get_offers(s.addr, &id, "ip=hero&count=1").await;
    assert_eq!(codes(&by_get), ["GOLD"]);
    let code = by_get["offer_lists"][0]["offers"][0]["treatment_code"]
        .as_str()
        .unwrap()
        .to_string();

    let (status, event) = call(
        s.addr,
        "POST",
        &format!("/v1/sessions/{id}/events"),
        json!({ "event": "offer_shown", "params": { "treatment_code": code } }),
    )
    .await;
    assert_eq!((status, event["messages"].clone()), (200, json!([])));
    // Acknowledged means stored.
    let history = s.runtime.store.history().await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (
            history[0].kind,
            history[0].treatment.origin.offer.as_ref(),
            history[0].treatment.code.as_ref()
        ),
        (ResponseKind::Contact, "GOLD", code.as_str())
    );
    // Operators see the writer's work: the event's one write, with its one record.
    let (_, metrics) = http(s.addr, "GET", "/metrics", &[], "").await;
    for line in [
        "kairos_history_writes_total 1",
        "kairos_history_records_total 1",
        "kairos_history_commit_duration_seconds_count 1",
        "kairos_history_commit_failures_total 0",
        "kairos_history_queue_depth 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in {metrics}");
    }

    let (_, profile) = call(
        s.addr,
        "GET",
        &format!("/v1/sessions/{id}/profile"),
        J::Null,
    )
    .await;
    assert_eq!(profile["audience_id"]["customer_id"], 2);
    assert_eq!(profile["profile"]["balance"], 20000);
    assert_eq!(
        profile["segments"],
        json!(["high_value", "big_spender", "regular", "vip"])
    );

    let (status, _) = call(s.addr, "DELETE", &format!("/v1/sessions/{id}"), J::Null).await;
    assert_eq!(status, 200);
    let (status, gone) = call(
        s.addr,
        "GET",
        &format!("/v1/sessions/{id}/profile"),
        J::Null,
    )
    .await;
    assert_eq!(
        (status, gone["code"].as_str()),
        (404, Some("INVALID_SESSION_ID"))
    );

    // A later session answers the contact: a cross-session response.
    let id2 = start(s.addr, 2).await;
    let (_, accepted) = call(
        s.addr,
        "POST",
        &format!("/v1/sessions/{id2}/events"),
        json!({ "event": "offer_clicked", "params": { "treatment_code": code } }),
    )
    .await;
    assert_eq!(accepted["messages"], json!([]));
    let history = s.runtime.store.history().await.unwrap();
    assert_eq!(
        (history[1].kind, history[1].cross_session),
        (ResponseKind::Accept, true)
    );
    let (_, offers) = get_offers(s.addr, &id2, "ip=hero&count=3").await;
    assert!(
        !codes(&offers).contains(&"GOLD".to_string()),
        "accepted GOLD is suppressed"
    );
    s.stop().await;
}

/// Offers are unique across the interaction points of one call unless the call, or a point
/// for itself, allows duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_across_interaction_points_only_when_allowed() {
    let s = server(Config::default()).await;
    let id = start(s.addr, 2).await;
    // hero and sidebar are both in the home zone, where GOLD comes first.
    let offers = |body: J| {
        let path = format!("/v1/sessions/{id}/offers");
        async move {
            let (status, reply) = call(s.addr, "POST", &path, body).await;
            assert_eq!(status, 200, "{reply}");
            codes(&reply)
        }
    };
    let hero_then_sidebar = |sidebar: J| json!([ { "ip": "hero", "count": 1 }, sidebar ]);
    let unique = offers(json!({ "requests": hero_then_sidebar(json!({ "ip": "sidebar" })) })).await;
    assert_eq!(unique[0], "GOLD");
    assert_ne!(unique[1], "GOLD");
    let by_call = json!({ "requests": hero_then_sidebar(json!({ "ip": "sidebar" })), "allow_duplicates": true });
    assert_eq!(offers(by_call).await, ["GOLD", "GOLD"]);
    let by_point = json!({ "requests": hero_then_sidebar(json!({ "ip": "sidebar", "allow_duplicates": true })) });
    assert_eq!(offers(by_point).await, ["GOLD", "GOLD"]);
    let point_over_call = json!({
        "requests": hero_then_sidebar(json!({ "ip": "sidebar", "allow_duplicates": false })),
        "allow_duplicates": true
    });
    assert_eq!(offers(point_over_call).await, unique);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_names_are_warnings_and_counted() {
    let s = server(Config::default()).await;
    let id = start(s.addr, 4).await;
    let (status, body) = get_offers(s.addr, &id, "ip=footer").await;
    assert_eq!(status, 200);
    assert_eq!(body["messages"][0]["code"], "UNKNOWN_INTERACTION_POINT");
    assert_eq!(body["offer_lists"][0]["offers"], json!([]));
    let (status, body) = call(
        s.addr,
        "POST",
        &format!("/v1/sessions/{id}/events"),
        json!({ "event": "rocket_launch" }),
    )
    .await;
    assert_eq!(
        (status, body["messages"][0]["code"].as_str()),
        (200, Some("UNKNOWN_EVENT"))
    );
    let (_, metrics) = http(s.addr, "GET", "/metrics", &[], "").await;
    assert!(metrics.contains("kairos_unknown_names_total{kind=\"interaction_point\",channel=\"shop\",name=\"footer\"} 1"), "{metrics}");
    assert!(
        metrics.contains(
            "kairos_unknown_names_total{kind=\"event\",channel=\"shop\",name=\"rocket_launch\"} 1"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("kairos_sessions_live 1"), "{metrics}");
    // Get offers by GET, answered past the router, is counted and timed as its call.
    assert!(
        metrics.contains("kairos_requests_total{call=\"get_offers\",status=\"200\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("kairos_request_duration_seconds_bucket{call=\"get_offers\",le=\"+Inf\"} 1"),
        "{metrics}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_a_problem_naming_the_field() {
    let s = server(Config::default()).await;
    let id = start(s.addr, 4).await;
    let offers = format!("/v1/sessions/{id}/offers");
    let offers_without_ip = format!("{offers}?count=2");
    let offers_bad_count = format!("{offers}?ip=hero&count=two");
    let offers_zero_count = format!("{offers}?ip=hero&count=0");
    let offers_bad_escape = format!("{offers}?ip=he%7");
    let cases: Vec<(&str, &str, String, u16, &str, &str)> = vec![
        (
            "POST",
            "/v1/sessions",
            "{not json".into(),
            400,
            "MALFORMED_REQUEST",
            "json",
        ),
        (
            "POST",
            "/v1/sessions",
            json!({ "audience_id": { "customer_id": 1 } }).to_string(),
            400,
            "MALFORMED_REQUEST",
            "channel",
        ),
        (
            "POST",
            "/v1/sessions",
            json!({ "channel": "shop", "audience_id": { "customer_id": { "nested": 1 } } })
                .to_string(),
            400,
            "MALFORMED_REQUEST",
            "audience_id.customer_id",
        ),
        (
            "POST",
            "/v1/sessions",
            json!({ "channel": "shop", "audience_id": { "cookie": 1 } }).to_string(),
            400,
            "INVALID_AUDIENCE_ID",
            "customer_id",
        ),
        (
            "POST",
            "/v1/sessions",
            json!({ "channel": "nope", "audience_id": { "customer_id": 1 } }).to_string(),
            404,
            "INVALID_CHANNEL",
            "nope",
        ),
        (
            "POST",
            &offers,
            json!({ "requests": [ { "ip": "hero", "count": "x" } ] }).to_string(),
            400,
            "MALFORMED_REQUEST",
            "requests[0].count",
        ),
        (
            "POST",
            &offers,
            json!({ "requests": [ { "ip": "hero", "count": 0 } ] }).to_string(),
            400,
            "MALFORMED_REQUEST",
            "requests[0].count",
        ),
        (
            "POST",
            &offers,
            json!({ "requests": [ { "ip": "hero" } ], "params": { "x": [1] } }).to_string(),
            400,
            "MALFORMED_REQUEST",
            "params.x",
        ),
        (
            "POST",
            &offers,
            "x".repeat(100_000),
            413,
            "PAYLOAD_TOO_LARGE",
            "length limit",
        ),
        (
            "POST",
            "/v1/sessions/nope/events",
            json!({ "event": "page_view" }).to_string(),
            404,
            "INVALID_SESSION_ID",
            "nope",
        ),
        (
            "GET",
            "/v1/sessions/nope/offers?ip=hero",
            String::new(),
            404,
            "INVALID_SESSION_ID",
            "nope",
        ),
        (
            "GET",
            &offers_without_ip,
            String::new(),
            400,
            "MALFORMED_REQUEST",
            "ip: missing",
        ),
        (
            "GET",
            &offers_bad_count,
            String::new(),
            400,
            "MALFORMED_REQUEST",
            "count: 'two'",
        ),
        (
            "GET",
            &offers_zero_count,
            String::new(),
            400,
            "MALFORMED_REQUEST",
            "count: must be at least 1",
        ),
        (
            "GET",
            &offers_bad_escape,
            String::new(),
            400,
            "MALFORMED_REQUEST",
            "ip: malformed",
        ),
        (
            "GET",
            "/v2/whatever",
            String::new(),
            404,
            "NOT_FOUND",
            "openapi",
        ),
        // The router's own rejections are problem documents too.
        (
            "GET",
            "/v1/sessions/%FF/profile",
            String::new(),
            400,
            "MALFORMED_REQUEST",
            "utf-8",
        ),
        (
            "GET",
            "/interact/v2/profiles/%FF",
            String::new(),
            400,
            "MALFORMED_REQUEST",
            "utf-8",
        ),
        (
            "PATCH",
            "/v1/sessions/x",
            String::new(),
            405,
            "METHOD_NOT_ALLOWED",
            "method not allowed",
        ),
    ];
    for (method, path, body, status, code, mentions) in cases {
        let (got, text) = http(s.addr, method, path, &[], &body).await;
        let problem: J = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{path}: not a problem document: {text}"));
        assert_eq!(
            (got, problem["code"].as_str()),
            (status, Some(code)),
            "{method} {path} {body:.80}: {text}"
        );
        assert!(
            problem["detail"].as_str().unwrap().contains(mentions),
            "{path}: {text}"
        );
        assert_eq!(problem["status"], status);
        assert_eq!(
            (
                &problem["messages"][0]["code"],
                &problem["messages"][0]["level"]
            ),
            (&json!(code), &json!("error")),
            "every response carries its messages: {text}"
        );
    }
    // The session still works after all that, and an escaped name is decoded.
    let (status, body) = get_offers(s.addr, &id, "ip=he%72o&count=1").await;
    assert_eq!(
        (status, &body["offer_lists"][0]["ip"]),
        (200, &json!("hero"))
    );
    // So is an escaped session ID, which takes the router's way rather than the direct one.
    let escaped = format!("%{:02X}{}", id.as_bytes()[0], &id[1..]);
    let (status, body) = get_offers(s.addr, &escaped, "ip=hero&count=1").await;
    assert_eq!((status, codes(&body).len()), (200, 1), "{body}");
    let (status, _) = get_offers(s.addr, "nope%2Fnope", "ip=hero").await;
    assert_eq!(status, 404);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn touchpoint_tokens_are_checked() {
    let s = server(Config {
        tokens: vec!["secret-token".into()],
        ..Config::default()
    })
    .await;
    let body = json!({ "channel": "shop", "audience_id": { "customer_id": 1 } }).to_string();
    let (status, _) = http(s.addr, "POST", "/v1/sessions", &[], &body).await;
    assert_eq!(status, 401);
    let (status, _) = http(
        s.addr,
        "POST",
        "/v1/sessions",
        &[("authorization", "Bearer wrong")],
        &body,
    )
    .await;
    assert_eq!(status, 403);
    let token = [("authorization", "Bearer secret-token")];
    let (status, started) = http(s.addr, "POST", "/v1/sessions", &token, &body).await;
    assert_eq!(status, 200);
    let id = serde_json::from_str::<J>(&started).unwrap()["session_id"]
        .as_str()
        .unwrap()
        .to_string();
    let offers = format!("/v1/sessions/{id}/offers?ip=hero");
    let (status, _) = http(s.addr, "GET", &offers, &[], "").await;
    assert_eq!(status, 401, "every native call needs the token");
    let (status, _) = http(
        s.addr,
        "GET",
        &offers,
        &[("authorization", "Bearer wrong")],
        "",
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = http(s.addr, "GET", &offers, &token, "").await;
    assert_eq!(status, 200);
    for open in ["/healthz", "/readyz", "/metrics"] {
        let (status, _) = http(s.addr, "GET", open, &[], "").await;
        assert_eq!(status, 200, "{open} needs no token");
    }
    s.stop().await;
}

/// A touchpoint token issued for some channels reaches those and no other, and not after it
/// expires; an open group takes calls without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_touchpoint_token_reaches_only_its_channels() {
    let s = server(Config::default()).await;
    let grant = |token: &str, channels: &[&str], expires_at: Option<i64>| TouchpointGrant {
        digest: kairos_api::token_digest(token),
        channels: channels.iter().map(|c| c.to_string()).collect(),
        expires_at,
    };
    let june_15 = 1_781_524_800;
    s.runtime.set_grants(Grants::new(
        false,
        &[
            grant("kt_shop", &["shop"], Some(june_15 + 60)),
            grant("kt_web", &["web"], None),
            grant("kt_old", &["shop"], Some(june_15)),
        ],
    ));
    let bearer = |t: &'static str| [("authorization", format!("Bearer {t}"))];
    let start = json!({ "channel": "shop", "audience_id": { "customer_id": 1 } }).to_string();
    let send = |method: &'static str, path: String, token: &'static str, body: String| {
        let addr = s.addr;
        async move {
            let auth = bearer(token);
            let headers: Vec<(&str, &str)> = auth.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (status, body) = http(addr, method, &path, &headers, &body).await;
            (status, serde_json::from_str::<J>(&body).unwrap_or(J::Null))
        }
    };
    let (status, refused) = send("POST", "/v1/sessions".into(), "kt_web", start.clone()).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (403, Some("TOKEN_NOT_FOR_CHANNEL"))
    );
    assert_eq!(
        refused["detail"],
        "this touchpoint token is for web, not for shop"
    );
    let (status, refused) = send("POST", "/v1/sessions".into(), "kt_old", start.clone()).await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (401, Some("UNAUTHORIZED")),
        "expired"
    );
    let (status, started) = send("POST", "/v1/sessions".into(), "kt_shop", start.clone()).await;
    assert_eq!(status, 200, "{started}");
    let id = started["session_id"].as_str().unwrap().to_string();

    // The web token cannot reach the shop session by its ID, on any call.
    let offers = format!("/v1/sessions/{id}/offers?ip=hero");
    for (method, path, body) in [
        ("GET", offers.clone(), String::new()),
        (
            "POST",
            format!("/v1/sessions/{id}/events"),
            json!({ "event": "page_view" }).to_string(),
        ),
        ("GET", format!("/v1/sessions/{id}/profile"), String::new()),
        ("DELETE", format!("/v1/sessions/{id}"), String::new()),
        (
            "POST",
            "/v1/batch".into(),
            json!({ "session_id": id, "commands": [{ "get_profile": {} }] }).to_string(),
        ),
    ] {
        let (status, refused) = send(method, path.clone(), "kt_web", body).await;
        assert_eq!(
            (status, &refused["code"]),
            (403, &json!("TOKEN_NOT_FOR_CHANNEL")),
            "{method} {path}: {refused}"
        );
    }
    let (status, _) = send("GET", offers.clone(), "kt_shop", String::new()).await;
    assert_eq!(status, 200, "the session is still there");
    let interact = json!({ "sessionId": id, "commands": [{ "action": "getProfile" }] }).to_string();
    let (status, body) = http(
        s.addr,
        "POST",
        "/interact/servlet/RestServlet",
        &[("m_tokenId", "kt_web")],
        &interact,
    )
    .await;
    assert!(body.contains("TOKEN_NOT_FOR_CHANNEL"), "{status} {body}");

    // An open group takes calls without a token.
    s.runtime.set_grants(Grants::new(true, &[]));
    let (status, _) = http(s.addr, "POST", "/v1/sessions", &[], &start).await;
    assert_eq!(status, 200);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_version_readiness_and_openapi() {
    let s = server(Config::default()).await;
    let (status, body) = call(
        s.addr,
        "POST",
        "/v1/batch",
        json!({ "commands": [
            { "start_session": { "channel": "shop", "audience_id": { "customer_id": 2 } } },
            { "get_offers": { "requests": [ { "ip": "hero", "count": 1 } ] } },
            { "post_event": { "event": "nonsense" } },
            { "get_profile": {} },
            { "explode": {} },
            { "end_session": {} }
        ] }),
    )
    .await;
    // A failed command: the batch answers with its problem, never 200.
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "MALFORMED_REQUEST");
    assert!(
        body["detail"].as_str().unwrap().starts_with("commands[4]"),
        "{body}"
    );
    let responses = body["responses"].as_array().unwrap();
    assert_eq!(
        responses.len(),
        4,
        "stops at the first failing command: {body}"
    );
    assert_eq!(codes(&responses[1]), ["GOLD"]);
    assert_eq!(responses[2]["messages"][0]["code"], "UNKNOWN_EVENT");
    assert!(
        responses.iter().all(|r| r["messages"].is_array()),
        "every response carries its messages: {body}"
    );
    assert!(body["session_id"].is_string());

    let (_, version) = call(s.addr, "GET", "/v1/version", J::Null).await;
    assert_eq!(version["channels"]["shop"]["deployment"], 1);
    assert_eq!(version["messages"], json!([]));
    assert_eq!(
        version["channels"]["shop"]["hash"].as_str().unwrap().len(),
        16
    );
    let (status, _) = http(s.addr, "GET", "/readyz", &[], "").await;
    assert_eq!(status, 200);
    let (status, openapi) = call(s.addr, "GET", "/openapi.json", J::Null).await;
    assert_eq!(status, 200);
    for path in [
        "/v1/sessions",
        "/v1/sessions/{id}/offers",
        "/v1/sessions/{id}/events",
        "/v1/batch",
        "/v1/version",
        "/interact/servlet/RestServlet",
        "/interact/v2/sessions/{id}",
        "/interact/v2/audiences/{id}",
        "/interact/v2/offers/{id}/{ip}",
        "/interact/v2/offers/{id}",
        "/interact/v2/events/{id}/{event}",
        "/interact/v2/profiles/{id}",
        "/interact/v2/batch/{id}",
    ] {
        assert!(openapi["paths"][path].is_object(), "{path} documented");
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_expire_on_a_timer_and_are_flushed() {
    let s = server(Config {
        idle_timeout: Duration::from_millis(300),
        ..Config::default()
    })
    .await;
    let id = start(s.addr, 1).await;
    let (_, _) = call(
        s.addr,
        "POST",
        &format!("/v1/sessions/{id}/events"),
        json!({ "event": "loan_page" }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(s.runtime.sessions.len(), 0, "expired without any request");
    let (status, _) = call(
        s.addr,
        "GET",
        &format!("/v1/sessions/{id}/profile"),
        J::Null,
    )
    .await;
    assert_eq!(status, 404);
    let state = s
        .runtime
        .store
        .load_audience("customer:customer_id=1")
        .await
        .unwrap();
    assert!(
        state.patterns.contains_key("loan_browsing"),
        "pattern state was saved"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_on_one_session_are_serialised() {
    let s = server(Config::default()).await;
    contacts_from_concurrent_calls(&[s.addr], &s.runtime.store).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_swap_under_load_fails_no_request() {
    let s = server(Config::default()).await;
    let failures = Arc::new(AtomicU64::new(0));
    let served = Arc::new(AtomicU64::new(0));
    let mut load = Vec::new();
    for worker in 0..4 {
        let (addr, failures, served) = (s.addr, failures.clone(), served.clone());
        load.push(tokio::spawn(async move {
            for n in 0..40 {
                let id = start(addr, 1 + (worker + n) % 8).await;
                let (status, _) = get_offers(addr, &id, "ip=hero&count=2").await;
                let (status2, _) = call(
                    addr,
                    "POST",
                    &format!("/v1/sessions/{id}/events"),
                    json!({ "event": "page_view" }),
                )
                .await;
                if status == 200 && status2 == 200 {
                    served.fetch_add(1, Ordering::Relaxed);
                } else {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let mut tables = tables();
    for version in 2..=10 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (dep, hash) = shop(&mut tables, version);
        s.runtime.deploy(dep, hash);
    }
    for task in load {
        task.await.unwrap();
    }
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    assert_eq!(served.load(Ordering::Relaxed), 160);
    let (_, version) = call(s.addr, "GET", "/v1/version", J::Null).await;
    assert_eq!(version["channels"]["shop"]["deployment"], 10);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_new_sessions_is_refused_clearly_and_changes_nothing() {
    let s = server(Config {
        max_sessions: 5,
        ..Config::default()
    })
    .await;
    let mut ids = Vec::new();
    for customer in 1..=5 {
        ids.push(start(s.addr, customer).await);
    }
    let (status, problem) = call(
        s.addr,
        "POST",
        "/v1/sessions",
        json!({ "channel": "shop", "audience_id": { "customer_id": 6 } }),
    )
    .await;
    assert_eq!(
        (status, problem["code"].as_str()),
        (503, Some("TOO_MANY_SESSIONS"))
    );
    // The sessions already there keep working, and reusing an ID is not a new session.
    let (status, _) = get_offers(s.addr, &ids[0], "ip=hero").await;
    assert_eq!(status, 200);
    let (status, _) = call(
        s.addr,
        "POST",
        "/v1/sessions",
        json!({ "session_id": ids[1], "channel": "shop", "audience_id": { "customer_id": 2 } }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(s.runtime.sessions.len(), 5);
    s.stop().await;
}

/// Starts a session for `customer` and returns it with the treatment code of CAPPED, which
/// its get offers must include.
async fn offered_capped(addr: std::net::SocketAddr, customer: i64) -> (String, String) {
    let id = start(addr, customer).await;
    let (_, offers) = get_offers(addr, &id, "ip=upsell&count=3").await;
    let capped = offers["offer_lists"][0]["offers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["code"] == "CAPPED")
        .unwrap_or_else(|| panic!("customer {customer} is offered CAPPED: {offers}"))
        ["treatment_code"]
        .as_str()
        .unwrap()
        .to_string();
    (id, capped)
}

async fn capped_is_offered_to(addr: std::net::SocketAddr, customer: i64) -> bool {
    let id = start(addr, customer).await;
    let (_, offers) = get_offers(addr, &id, "ip=upsell&count=3").await;
    codes(&offers).contains(&"CAPPED".to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_cap_counts_contacts_across_sessions() {
    let s = server(Config::default()).await;
    // CAPPED may be contacted twice a day across all visitors.
    for customer in [1, 3] {
        let (id, capped) = offered_capped(s.addr, customer).await;
        let (status, _) = call(
            s.addr,
            "POST",
            &format!("/v1/sessions/{id}/events"),
            json!({ "event": "offer_shown", "params": { "treatment_code": capped } }),
        )
        .await;
        assert_eq!(status, 200);
    }
    assert!(!capped_is_offered_to(s.addr, 4).await, "the cap is reached");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_hangs_up_during_the_commit_still_has_its_contacts_counted() {
    let s = server(Config::default()).await;
    for customer in [1, 3] {
        let (id, capped) = offered_capped(s.addr, customer).await;
        // The caller goes away while its event waits for the commit (as the server drops a
        // call whose client hangs up): its first poll queues the write, then the call is gone.
        let event = std::pin::pin!(s.runtime.post_event(
            &id,
            &Access::Any,
            "offer_shown",
            vec![("treatment_code".into(), kairos_rules::Value::string(capped))],
        ));
        let answered = tokio::select! {
            biased;
            _ = event => true,
            () = std::future::ready(()) => false,
        };
        assert!(!answered, "the event waits for its commit");
    }
    // Both contacts are written all the same, and the cap counts them.
    let mut waited = Duration::ZERO;
    while s.runtime.store.history().await.unwrap().len() < 2
        || capped_is_offered_to(s.addr, 4).await
    {
        assert!(
            waited < Duration::from_secs(5),
            "the contacts of the callers that hung up are not both written and counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_hangs_up_while_the_history_queue_is_full_loses_nothing() {
    let name = format!("kairos-api-full-queue-{}", std::process::id());
    let s = common::instance(Config::default(), common::empty_history(&name).await, None).await;
    let (id, capped) = offered_capped(s.addr, 1).await;
    // Another connection holds the database's write lock: the history writer waits for it
    // with its first group, and writes queue up behind it until the queue is full.
    let db = rusqlite::Connection::open(common::history_file(&name)).unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    let store = &s.runtime.store;
    let mut fillers = tokio::task::JoinSet::new();
    let mut i = 0;
    while tokio::time::timeout(Duration::from_millis(20), store.reserve())
        .await
        .is_ok()
    {
        assert!(
            i < 1 << 20,
            "the queue never fills: the writer is not held up"
        );
        for _ in 0..4096 {
            let store = store.clone();
            i += 1;
            fillers.spawn(async move {
                let state = kairos_engine::world::AudienceState::default();
                store.save_audience(&format!("filler-{i}"), &state).await
            });
        }
        tokio::task::yield_now().await;
    }
    // The event waits for room in the queue, and its caller hangs up.
    let event = s.runtime.post_event(
        &id,
        &Access::Any,
        "offer_shown",
        vec![(
            "treatment_code".into(),
            kairos_rules::Value::string(capped.clone()),
        )],
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(50), event)
            .await
            .is_err(),
        "the event waits for room in the full queue"
    );
    db.execute_batch("COMMIT").unwrap();
    // A filler fails if the lock outlasted the writer's busy timeout (5 s) on a slow machine;
    // what this test checks is the event's contact.
    while let Some(filled) = fillers.join_next().await {
        let _ = filled.unwrap();
    }
    // The contact stayed with the session, and ending the session writes it.
    let (status, _) = call(s.addr, "DELETE", &format!("/v1/sessions/{id}"), J::Null).await;
    assert_eq!(status, 200);
    let history = store.history().await.unwrap();
    assert!(
        history
            .iter()
            .any(|r| r.kind == ResponseKind::Contact && r.treatment.code.as_str() == capped),
        "the contact of the caller that hung up is written when its session ends"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployed_channel_describes_what_touchpoints_may_call() {
    let s = server(Config::default()).await;
    let (status, body) = call(s.addr, "GET", "/v1/channels/SHOP", J::Null).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["interaction_points"],
        json!(["hero", "sidebar", "upsell"])
    );
    assert_eq!(body["default_audience_level"], "customer");
    assert_eq!(
        body["audience_levels"][0],
        json!({ "name": "customer", "id_fields": ["customer_id"], "profile_table": "people" })
    );
    assert!(
        body["segments"]
            .as_array()
            .unwrap()
            .contains(&json!("high_value")),
        "{body}"
    );
    let events = body["events"].as_array().unwrap();
    assert!(events.contains(&json!({ "name": "offer_shown", "logs_contact": true })));
    assert!(events.contains(&json!({ "name": "page_view", "logs_contact": false })));
    assert_eq!(body["messages"], json!([]));
    let (status, _) = call(s.addr, "GET", "/v1/channels/nope", J::Null).await;
    assert_eq!(status, 404);
    s.stop().await;
}

/// Two sessions of one customer at once on one instance (see
/// [`common::two_sessions_of_one_customer_keep_each_others_state`]).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sessions_of_one_customer_keep_each_others_state() {
    let s = server(Config::default()).await;
    common::two_sessions_of_one_customer_keep_each_others_state(s.addr, s.addr).await;
    s.stop().await;
}
