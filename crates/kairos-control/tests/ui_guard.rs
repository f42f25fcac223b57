//! The design UI beyond `SameSite`: every post carries its session's CSRF token, every
//! answer carries security headers, a banner never comes from the URL, logging out ends the
//! token, and guessing passwords is slowed and audited.

mod support;

use std::net::SocketAddr;

use serde_json::{Value as J, json};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One raw request; the whole answer, head and body.
async fn raw(addr: SocketAddr, method: &str, path: &str, cookie: &str, form: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: k\r\nconnection: close\r\ncookie: {cookie}\r\n\
         content-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n{form}",
        form.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    answer
}

fn session_of(answer: &str) -> String {
    answer
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: kairos_session="))
        .and_then(|v| v.split(';').next())
        .map(|t| format!("kairos_session={t}"))
        .unwrap_or_else(|| panic!("no session cookie: {answer}"))
}

fn csrf_of(page: &str) -> String {
    let at = page.find(r#"name="csrf" value=""#).expect("a csrf field") + 19;
    page[at..at + 32].to_string()
}

#[tokio::test]
async fn ui_posts_need_their_csrf_token_and_pages_carry_security_headers() {
    let c = control().await;
    let login = raw(
        c.addr,
        "POST",
        "/ui/login",
        "",
        "user=admin&password=admin-password",
    )
    .await;
    let session = session_of(&login);
    for answer in [
        raw(c.addr, "GET", "/ui/channels", &session, "").await,
        raw(c.addr, "GET", "/api/openapi.json", "", "").await,
    ] {
        for header in [
            "content-security-policy: default-src 'none'; style-src 'self';",
            "x-content-type-options: nosniff",
            "referrer-policy: no-referrer",
            "x-frame-options: DENY",
        ] {
            assert!(
                answer.contains(header),
                "{header}: {}",
                &answer[..answer.len().min(600)]
            );
        }
    }
    // A form another site posts, without the token: refused, nothing made.
    let forged = raw(c.addr, "POST", "/ui/channels/new", &session, "name=forged").await;
    assert!(forged.starts_with("HTTP/1.1 403"), "{forged}");
    let (_, channels) = api(c.addr, "GET", "/api/channels", &c.admin, J::Null).await;
    assert_eq!(channels, json!([]), "nothing was created");
    let page = raw(c.addr, "GET", "/ui/channels", &session, "").await;
    let token = csrf_of(&page);
    let made = raw(
        c.addr,
        "POST",
        "/ui/channels/new",
        &session,
        &format!("name=kiosk&csrf={token}"),
    )
    .await;
    assert!(made.starts_with("HTTP/1.1 303"), "{made}");
    let (_, channels) = api(c.addr, "GET", "/api/channels", &c.admin, J::Null).await;
    assert_eq!(channels[0]["name"], "kiosk");

    // What an action did comes in a cookie; a message in the URL is never shown.
    let page = raw(
        c.addr,
        "GET",
        "/ui/channels?error=Call+555-0100+now",
        &session,
        "",
    )
    .await;
    assert!(!page.contains("555-0100"), "the URL wrote the banner");

    // Logging out ends the session's token on the server.
    let out = raw(
        c.addr,
        "POST",
        "/ui/logout",
        &session,
        &format!("csrf={token}"),
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 303"), "{out}");
    let after = raw(c.addr, "GET", "/ui/channels", &session, "").await;
    assert!(after.contains("location: /ui/login"), "{after}");
}

#[tokio::test]
async fn password_guessing_is_slowed_and_audited() {
    let c = control().await;
    let attempt = |password: &'static str| {
        let addr = c.addr;
        async move {
            http::call(
                addr,
                "POST",
                "/api/login",
                json!({ "user": "admin", "password": password }),
            )
            .await
        }
    };
    for _ in 0..5 {
        assert_eq!(attempt("guess").await.0, 401);
    }
    let (status, refused) = attempt("admin-password").await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (429, Some("TOO_MANY_ATTEMPTS")),
        "even the right password waits: {refused}"
    );
    let (_, log) = api(c.addr, "GET", "/api/audit", &c.admin, J::Null).await;
    let failures = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "login failed")
        .count();
    assert_eq!(failures, 5);
    assert!(
        log.to_string().contains("(from 127.0.0.1)"),
        "the address is recorded"
    );
}
