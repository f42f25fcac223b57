//! Tokens of every kind are listed without secrets, expire and can be revoked; a user's
//! tokens end with their password, their account or their logout; a user with no role and a
//! runtime read nothing of the design.

mod support;

use std::sync::atomic::{AtomicI64, Ordering};

use kairos_rules::time::Timestamp;
use serde_json::{Value as J, json};
use support::*;

/// The control plane's clock in these tests, in seconds; moved by hand.
static NOW: AtomicI64 = AtomicI64::new(1_900_000_000);

fn clock() -> Timestamp {
    Timestamp(NOW.load(Ordering::SeqCst) * 1_000_000_000)
}

async fn me(c: &Control, token: &str) -> u16 {
    api(c.addr, "GET", "/api/me", token, J::Null).await.0
}

async fn set_password(c: &Control, name: &str, password: &str, roles: J) {
    let (status, body) = api(
        c.addr,
        "POST",
        "/api/users",
        &c.admin,
        json!({ "name": name, "password": password, "roles": roles }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn tokens_are_listed_expire_and_are_revoked() {
    let c = control_with_clock(clock).await;
    let (status, issued) = api(
        c.addr,
        "POST",
        "/api/tokens",
        &c.admin,
        json!({ "kind": "touchpoint", "for": "web, shop", "label": "kiosk", "expires_in_seconds": 3600 }),
    )
    .await;
    assert_eq!(status, 201, "{issued}");
    assert_eq!(issued["for"], "web,shop");
    let id = issued["id"].as_str().unwrap().to_string();
    let (_, runtime) = api(
        c.addr,
        "POST",
        "/api/tokens",
        &c.admin,
        json!({ "kind": "runtime", "for": "staging", "expires_in_seconds": 60 }),
    )
    .await;
    let runtime_token = runtime["token"].as_str().unwrap().to_string();
    let active = "/api/groups/staging/active";
    assert_eq!(
        api(c.addr, "GET", active, &runtime_token, J::Null).await.0,
        200
    );

    let (_, list) = api(c.addr, "GET", "/api/tokens", &c.admin, J::Null).await;
    let kinds: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["touchpoint", "runtime", "user"], "{list}");
    let listed = &list[0];
    assert_eq!(
        (listed["id"].as_str(), listed["label"].as_str()),
        (Some(id.as_str()), Some("kiosk"))
    );
    assert_eq!(listed["expires_at"], "2030-03-17T18:46:40Z");
    assert!(
        !list.to_string().contains(issued["token"].as_str().unwrap()),
        "no secret is listed"
    );

    // A minute on, the runtime token has expired; the touchpoint token has not.
    NOW.fetch_add(61, Ordering::SeqCst);
    let (status, expired) = api(c.addr, "GET", active, &runtime_token, J::Null).await;
    assert_eq!(status, 401, "{expired}");
    let (_, answer) = api(c.addr, "GET", active, &c.admin, J::Null).await;
    assert_eq!(
        answer["touchpoint_tokens"],
        json!([]),
        "staging runs neither web nor shop"
    );

    let revoke = format!("/api/tokens/{id}");
    assert_eq!(
        api(c.addr, "DELETE", &revoke, &c.admin, J::Null).await.0,
        204
    );
    assert_eq!(
        api(c.addr, "DELETE", &revoke, &c.admin, J::Null).await.0,
        404
    );
    let (_, list) = api(c.addr, "GET", "/api/tokens", &c.admin, J::Null).await;
    assert!(!list.to_string().contains(&id), "revoked: {list}");
    let (_, log) = api(c.addr, "GET", "/api/audit", &c.admin, J::Null).await;
    assert!(log.to_string().contains("revoke token"), "audited");
}

#[tokio::test]
async fn a_users_tokens_end_with_a_new_password_disable_delete_and_logout() {
    let c = control().await;
    let ana = user(&c, "ana", &["designer"]).await;
    assert_eq!(me(&c, &ana).await, 200);
    set_password(&c, "ana", "a new password", json!(["designer"])).await;
    assert_eq!(
        me(&c, &ana).await,
        401,
        "a new password ends the old logins"
    );

    let ana = login(c.addr, "ana", "a new password").await;
    let disable = |disabled: bool| {
        let admin = c.admin.clone();
        let addr = c.addr;
        async move {
            api(
                addr,
                "PUT",
                "/api/users/ana/disabled",
                &admin,
                json!({ "disabled": disabled }),
            )
            .await
        }
    };
    let (status, view) = disable(true).await;
    assert_eq!((status, &view["disabled"]), (200, &json!(true)));
    assert_eq!(me(&c, &ana).await, 401, "disabling ends the logins");
    let (status, refused) = http::call(
        c.addr,
        "POST",
        "/api/login",
        json!({ "user": "ana", "password": "a new password" }),
    )
    .await;
    assert_eq!(
        (status, refused["code"].as_str()),
        (401, Some("BAD_CREDENTIALS"))
    );
    disable(false).await;
    let ana = login(c.addr, "ana", "a new password").await;

    // Logging out ends this token only.
    let other = login(c.addr, "ana", "a new password").await;
    assert_eq!(
        api(c.addr, "POST", "/api/logout", &ana, J::Null).await.0,
        204
    );
    assert_eq!(me(&c, &ana).await, 401);
    assert_eq!(me(&c, &other).await, 200);

    assert_eq!(
        api(c.addr, "DELETE", "/api/users/ana", &c.admin, J::Null)
            .await
            .0,
        204
    );
    assert_eq!(me(&c, &other).await, 401, "deleting ends the logins");
    let (status, _) = api(c.addr, "DELETE", "/api/users/admin", &c.admin, J::Null).await;
    assert_eq!(status, 403, "an administrator cannot delete themself");
    let (_, log) = api(c.addr, "GET", "/api/audit", &c.admin, J::Null).await;
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for action in [
        "login failed",
        "disable user",
        "enable user",
        "logout",
        "delete user",
    ] {
        assert!(
            actions.contains(&action),
            "{action} is audited: {actions:?}"
        );
    }
}

#[tokio::test]
async fn a_user_with_no_role_and_a_runtime_read_nothing_of_the_design() {
    let c = control().await;
    apply(&c, &c.admin, BANK).await;
    let nobody = user(&c, "nobody", &[]).await;
    let (_, runtime) = api(
        c.addr,
        "POST",
        "/api/tokens",
        &c.admin,
        json!({ "kind": "runtime", "for": "staging" }),
    )
    .await;
    let runtime = runtime["token"].as_str().unwrap();
    for path in [
        "/api/channels",
        "/api/channels/web",
        "/api/channels/web/export",
        "/api/channels/web/versions",
        "/api/groups",
        "/api/tables",
        "/api/audit",
        "/api/groups/production/active",
    ] {
        for token in [nobody.as_str(), runtime] {
            let (status, body) = api(c.addr, "GET", path, token, J::Null).await;
            assert_eq!(status, 403, "{path}: {body}");
        }
    }
    assert_eq!(
        me(&c, &nobody).await,
        200,
        "they may still ask who they are"
    );
}
