//! Unica Interact clients, by the request bodies they send: the RestServlet batch and the
//! REST v2 paths, name/value pairs in and out, numeric status codes, tracking codes.

mod common;

use common::{call, http, http_with_head, server};
use kairos_engine::world::ResponseKind;
use kairos_runtime::Config;
use serde_json::{Value as J, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_servlet_runs_an_interact_batch() {
    let s = server(Config::default()).await;
    // The shape the Interact JavaScript and Java clients send.
    let body = json!({
        "sessionId": "7d9f0a2c-1",
        "commands": [
            { "action": "startSession", "ic": "shop", "audienceID": [ { "n": "customer_id", "v": "2", "t": "numeric" } ],
              "audienceLevel": "customer", "parameters": [ { "n": "page", "v": "home", "t": "string" } ],
              "relyOnExistingSession": false, "debug": false },
            { "action": "getOffers", "ip": "hero", "numberRequested": 2 },
            { "action": "getOffersForMultipleInteractionPoints",
              "getOfferRequests": [ { "ip": "hero", "numberRequested": 1, "dupPolicy": 2 }, { "ip": "upsell", "numberRequested": 1, "dupPolicy": 2 } ] },
            { "action": "getProfile" },
            { "action": "getVersion" }
        ]
    });
    let (status, reply) = call(s.addr, "POST", "/interact/servlet/RestServlet", body).await;
    assert_eq!(status, 200);
    assert_eq!(reply["batchStatusCode"], 0, "{reply}");
    let responses = reply["responses"].as_array().unwrap();
    assert_eq!(responses.len(), 5);
    assert!(
        responses
            .iter()
            .all(|r| r["sessionId"] == "7d9f0a2c-1" && r["statusCode"] == 0)
    );
    let hero = &responses[1]["offerLists"][0];
    assert_eq!(
        (hero["ip"].as_str(), hero["defaultString"].as_str()),
        (Some("hero"), Some("Welcome"))
    );
    let gold = &hero["offers"][0];
    assert_eq!(gold["code"], json!(["GOLD"]));
    assert_eq!(gold["score"], 88);
    assert!(
        gold["treatmentCode"]
            .as_str()
            .is_some_and(|c| !c.is_empty())
    );
    assert_eq!(
        gold["attributes"],
        json!([ { "n": "apr", "t": "numeric", "v": 19.9 } ])
    );
    let lists = responses[2]["offerLists"].as_array().unwrap();
    assert_eq!(lists.len(), 2);
    let profile = responses[3]["profile"].as_array().unwrap();
    assert!(
        profile.contains(&json!({ "n": "country", "t": "string", "v": "CA" })),
        "{profile:?}"
    );
    assert!(
        profile.contains(&json!({ "n": "page", "t": "string", "v": "home" })),
        "parameters are in the profile"
    );
    // A "string" pair holds a string, even for a dimension's rows (as JSON text), so typed
    // Interact clients can read every pair.
    assert!(
        profile
            .iter()
            .all(|p| p["t"] != "string" || p["v"].is_string() || p["v"].is_null()),
        "{profile:?}"
    );
    let orders = profile.iter().find(|p| p["n"] == "orders").unwrap();
    let rows: J = serde_json::from_str(orders["v"].as_str().unwrap()).unwrap();
    assert_eq!(rows.as_array().map(Vec::len), Some(2), "{rows}");
    assert_eq!(
        responses[4]["version"],
        format!(
            "Kairos {} (Unica Interact API 12.1)",
            env!("CARGO_PKG_VERSION")
        )
    );

    // A generic event with Interact's tracking and response type codes logs an accept.
    let code = gold["treatmentCode"].as_str().unwrap();
    let accept = json!({
        "sessionId": "7d9f0a2c-1",
        "commands": [ { "action": "postEvent", "event": "page_view", "parameters": [
            { "n": "UACIOfferTrackingCode", "v": code, "t": "string" },
            { "n": "UACIResponseTypeCode", "v": "ACC", "t": "string" } ] } ]
    });
    let (_, reply) = call(s.addr, "POST", "/interact/servlet/RestServlet", accept).await;
    assert_eq!(reply["batchStatusCode"], 0, "{reply}");
    let history = s.runtime.store.history().await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (history[0].kind, history[0].treatment.origin.offer.as_ref()),
        (ResponseKind::Accept, "GOLD")
    );
    s.stop().await;
}

/// Interact numbers its duplication policies 1 (NO_DUPLICATION: leave out the offers the
/// requests before it were given) and 2 (ALLOW_DUPLICATION), and sets one per request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplication_policies_apply_per_request_as_interact_numbers_them() {
    let s = server(Config::default()).await;
    // hero and sidebar are both in the home zone: the same offer tops both.
    let top_offers = |sidebar_policy: i64| {
        let body = json!({
            "sessionId": format!("dup-{sidebar_policy}"),
            "commands": [
                { "action": "startSession", "ic": "shop", "audienceID": [ { "n": "customer_id", "v": 2, "t": "numeric" } ] },
                { "action": "getOffersForMultipleInteractionPoints", "getOfferRequests": [
                    { "ip": "hero", "numberRequested": 1, "dupPolicy": 1 },
                    { "ip": "sidebar", "numberRequested": 1, "dupPolicy": sidebar_policy } ] }
            ]
        });
        async move {
            let (_, reply) = call(s.addr, "POST", "/interact/servlet/RestServlet", body).await;
            let lists = &reply["responses"][1]["offerLists"];
            let code = |i: usize| {
                lists[i]["offers"][0]["code"][0]
                    .as_str()
                    .map(str::to_string)
            };
            (code(0), code(1))
        }
    };
    let (hero, sidebar) = top_offers(2).await;
    assert_eq!(hero.as_deref(), Some("GOLD"));
    assert_eq!(sidebar, hero, "ALLOW_DUPLICATION repeats the hero's offer");
    let (hero, sidebar) = top_offers(1).await;
    assert_eq!(hero.as_deref(), Some("GOLD"));
    assert!(
        sidebar.is_some() && sidebar != hero,
        "NO_DUPLICATION leaves it out: {sidebar:?}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warnings_and_errors_carry_interact_status_codes() {
    let s = server(Config::default()).await;
    let body = json!({
        "sessionId": "s-2",
        "commands": [
            { "action": "startSession", "ic": "shop", "audienceID": [ { "n": "customer_id", "v": 4, "t": "numeric" } ] },
            { "action": "getOffers", "ip": "nowhere", "numberRequested": 1 },
            { "action": "postEvent", "event": "page_view" },
            { "action": "teleport" },
            { "action": "endSession" }
        ]
    });
    let (_, reply) = call(s.addr, "POST", "/interact/servlet/RestServlet", body).await;
    let responses = reply["responses"].as_array().unwrap();
    // Every command runs, as HCL documents a batch: the unknown one fails alone.
    assert_eq!(responses.len(), 5, "{reply}");
    assert_eq!(responses[1]["statusCode"], 1);
    // Interact's numbers; Kairos' own code follows in detailMsg.
    let unknown_ip = &responses[1]["messages"][0];
    assert_eq!(
        (&unknown_ip["msgCode"], &unknown_ip["msgLevel"]),
        (&json!(5), &json!(1))
    );
    assert!(
        unknown_ip["detailMsg"]
            .as_str()
            .unwrap()
            .starts_with("UNKNOWN_INTERACTION_POINT: "),
        "{unknown_ip}"
    );
    assert_eq!(responses[2]["statusCode"], 0);
    assert_eq!(responses[3]["statusCode"], 2);
    assert_eq!(responses[3]["messages"][0]["msgCode"], 10);
    assert_eq!(responses[4]["statusCode"], 0, "the batch went on: {reply}");
    assert_eq!(reply["batchStatusCode"], 2);
    let (_, reply) = call(
        s.addr,
        "POST",
        "/interact/servlet/RestServlet",
        json!({ "sessionId": "unknown", "commands": [ { "action": "getOffers", "ip": "hero" } ] }),
    )
    .await;
    // What Interact clients recover an expired session by: code 1, a message that says so.
    let expired = &reply["responses"][0]["messages"][0];
    assert_eq!(expired["msgCode"], 1);
    assert!(
        expired["msg"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("invalid session id"),
        "{expired}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_v2_paths_serve_the_same_calls() {
    let s = server(Config::default()).await;
    let (status, started) = call(
        s.addr,
        "POST",
        "/interact/v2/sessions/v2-session",
        json!({ "ic": "shop", "audienceID": [ { "n": "customer_id", "v": "2", "t": "numeric" } ], "audienceLevel": "customer" }),
    )
    .await;
    assert_eq!(
        (status, started["statusCode"].as_u64()),
        (200, Some(0)),
        "{started}"
    );
    let (_, offers) = call(
        s.addr,
        "GET",
        "/interact/v2/offers/v2-session/hero?number=1",
        J::Null,
    )
    .await;
    let code = offers["offerLists"][0]["offers"][0]["treatmentCode"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        offers["offerLists"][0]["offers"][0]["code"],
        json!(["GOLD"])
    );
    let (_, event) = call(
        s.addr,
        "POST",
        "/interact/v2/events/v2-session/offer_shown",
        json!({ "parameters": [ { "n": "UACIOfferTrackingCode", "v": code, "t": "string" } ] }),
    )
    .await;
    assert_eq!(event["statusCode"], 0, "{event}");
    let (_, profile) = call(s.addr, "GET", "/interact/v2/profiles/v2-session", J::Null).await;
    let pairs = profile["profile"].as_array().unwrap();
    assert!(
        pairs.contains(&json!({ "n": "vip", "t": "string", "v": "true" })),
        "{profile}"
    );
    assert!(
        pairs.contains(&json!({ "n": "balance", "t": "numeric", "v": 20000 })),
        "{profile}"
    );
    let (_, ended) = call(
        s.addr,
        "DELETE",
        "/interact/v2/sessions/v2-session",
        J::Null,
    )
    .await;
    assert_eq!(ended["statusCode"], 0);
    assert_eq!(
        s.runtime.store.history().await.unwrap().len(),
        1,
        "the contact was logged"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_v2_body_is_a_problem_document_and_starts_nothing() {
    // JSON without a content type (a legacy XHR) is read as JSON; broken JSON is refused.
    let s = server(Config::default()).await;
    let (status, problem) = http(
        s.addr,
        "POST",
        "/interact/v2/sessions/broken",
        &[],
        r#"{"ic":"shop","#,
    )
    .await;
    assert_eq!(status, 400, "{problem}");
    let problem: J = serde_json::from_str(&problem).expect("a JSON problem document");
    assert_eq!(problem["code"], "MALFORMED_REQUEST");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("line 1 column"),
        "{problem}"
    );
    let (status, problem) = http(
        s.addr,
        "POST",
        "/interact/v2/events/broken/offer_shown",
        &[("content-type", "application/xml")],
        "<event/>",
    )
    .await;
    assert_eq!(status, 415, "{problem}");
    let problem: J = serde_json::from_str(&problem).expect("a JSON problem document");
    assert_eq!(problem["status"], 415);
    assert_eq!(s.runtime.sessions.len(), 0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interact_credentials_map_onto_touchpoint_tokens() {
    let s = server(Config {
        tokens: vec!["tp-token".into()],
        ..Config::default()
    })
    .await;
    let body = json!({ "commands": [ { "action": "getVersion" } ] }).to_string();
    let (status, _) = http(s.addr, "POST", "/interact/servlet/RestServlet", &[], &body).await;
    assert_eq!(status, 401);
    let (status, _) = http(
        s.addr,
        "POST",
        "/interact/servlet/RestServlet",
        &[("m_tokenId", "tp-token")],
        &body,
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = http(
        s.addr,
        "POST",
        "/interact/servlet/RestServlet",
        &[("m_user_name", "web"), ("m_user_password", "tp-token")],
        &body,
    )
    .await;
    assert_eq!(status, 200);
    s.stop().await;
}

/// A page of an allowed origin calls the runtime from a browser: its preflight is answered
/// without a token, with its credentials headers allowed, and its calls carry the CORS
/// headers; a page of another origin gets none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_allowed_origins_call_across_origins() {
    let s = server(Config {
        tokens: vec!["shop-token".into()],
        cors_origins: vec!["https://Shop.example.com/".into()],
        ..Config::default()
    })
    .await;
    let addr = s.addr;
    let preflight = async move |origin: &'static str| {
        http_with_head(
            addr,
            "OPTIONS",
            "/interact/servlet/RestServlet",
            &[
                ("origin", origin),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type,m_tokenid"),
            ],
            "",
        )
        .await
    };
    let (status, head, _) = preflight("https://shop.example.com").await;
    assert_eq!(status, 200, "{head}");
    for expected in [
        "access-control-allow-origin: https://shop.example.com",
        "access-control-allow-credentials: true",
        "access-control-allow-headers: content-type,m_tokenid",
    ] {
        assert!(head.contains(expected), "{expected} in {head}");
    }
    assert!(
        head.contains("access-control-allow-methods: ") && head.contains("post"),
        "{head}"
    );
    let (_, head, _) = preflight("https://evil.example.com").await;
    assert!(!head.contains("access-control-allow-origin"), "{head}");

    // The call itself, with Interact's token header, as sendBeacon sends it: text/plain.
    let body = r#"{"sessionId":"x","commands":[{"action":"getVersion"}]}"#;
    let (status, head, reply) = http_with_head(
        s.addr,
        "POST",
        "/interact/servlet/RestServlet",
        &[
            ("origin", "https://shop.example.com"),
            ("m_tokenId", "shop-token"),
            ("content-type", "text/plain;charset=UTF-8"),
        ],
        body,
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert!(
        head.contains("access-control-allow-origin: https://shop.example.com"),
        "{head}"
    );
    let reply: J = serde_json::from_str(&reply).unwrap();
    assert_eq!(reply["batchStatusCode"], 0, "{reply}");
    // A call from a server (no Origin) carries no CORS headers.
    let (_, head, _) = http_with_head(
        s.addr,
        "POST",
        "/interact/servlet/RestServlet",
        &[("m_tokenId", "shop-token")],
        body,
    )
    .await;
    assert!(!head.contains("access-control-"), "{head}");
    // Without a token the call is refused even from an allowed origin.
    let (status, _, _) = http_with_head(
        s.addr,
        "POST",
        "/interact/servlet/RestServlet",
        &[("origin", "https://shop.example.com")],
        body,
    )
    .await;
    assert_eq!(status, 401);
    s.stop().await;
}
