//! Review integrity: nobody approves their own change, whatever roles they hold; one
//! approval per reviewer; a group's count and reviewing role are what it says.

mod support;

use serde_json::{Value as J, json};
use support::*;

/// Renames an offer as `token`'s user, through the component API.
async fn edit_offer(c: &Control, token: &str, offer: &str, name: &str) {
    let path = format!("/api/channels/web/components/offers/{offer}");
    let (_, mut body) = api(c.addr, "GET", &path, token, J::Null).await;
    body["name"] = json!(name);
    let (status, saved) = api(c.addr, "PUT", &path, token, body).await;
    assert_eq!(status, 200, "{saved}");
}

async fn snapshot(c: &Control, token: &str) -> i64 {
    let (status, v) = api(
        c.addr,
        "POST",
        "/api/channels/web/versions",
        token,
        json!({ "note": "for review" }),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    v["number"].as_i64().unwrap()
}

async fn review(c: &Control, token: &str, version: i64, decision: &str) -> (u16, J) {
    api(
        c.addr,
        "POST",
        &format!("/api/channels/web/versions/{version}/reviews"),
        token,
        json!({ "decision": decision, "comment": "looked at it" }),
    )
    .await
}

#[tokio::test]
async fn an_author_cannot_approve_their_own_change_whatever_roles_they_hold() {
    let c = control().await;
    let dana = user(&c, "dana", &["designer", "reviewer"]).await;
    let rex = user(&c, "rex", &["reviewer"]).await;
    let (status, _) = apply(&c, &dana, BANK).await;
    assert_eq!(status, 200);
    let v1 = snapshot(&c, &dana).await;
    let (status, refused) = review(&c, &dana, v1, "approve").await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(
        refused["detail"],
        "dana changed web in version 1: an author cannot review it"
    );
    let (status, _) = review(&c, &dana, v1, "reject").await;
    assert_eq!(status, 403, "rejecting is reviewing too");

    // The administrator holds every role; an edit of theirs is still theirs.
    edit_offer(&c, &c.admin, "GOLD_CARD", "Gold, by the admin").await;
    let v2 = snapshot(&c, &c.admin).await;
    let (status, refused) = review(&c, &c.admin, v2, "approve").await;
    assert_eq!(status, 403, "{refused}");
    let (status, refused) = review(&c, &dana, v2, "approve").await;
    assert_eq!(status, 403, "dana wrote the rest of v2: {refused}");
    assert_eq!(review(&c, &rex, v2, "approve").await.0, 200);

    production_gates(&c, json!({ "approvals": 1 })).await;
    assert_eq!(refusals(&c, v2).await, Vec::<String>::new());

    // Authors are counted from what production runs: dana wrote none of v3's change.
    let ivy = user(&c, "ivy", &["designer"]).await;
    edit_offer(&c, &ivy, "PLATINUM_CARD", "Platinum, by ivy").await;
    let v3 = snapshot(&c, &c.admin).await;
    assert_eq!(review(&c, &dana, v3, "approve").await.0, 200);
    let (status, _) = review(&c, &c.admin, v3, "approve").await;
    assert_eq!(status, 200, "the admin changed nothing since v2 either");
    let log = api(c.addr, "GET", "/api/audit", &c.admin, J::Null).await.1;
    let approvals = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "approve")
        .count();
    assert_eq!(approvals, 3, "refused reviews are not recorded");
}

#[tokio::test]
async fn approvals_count_once_per_reviewer_and_only_with_the_groups_role() {
    let c = control().await;
    let ana = user(&c, "ana", &["designer"]).await;
    let rex = user(&c, "rex", &["reviewer"]).await;
    let ray = user(&c, "ray", &["reviewer"]).await;
    let mia = user(&c, "mia", &["manager"]).await;
    apply(&c, &ana, BANK).await;
    let v1 = snapshot(&c, &ana).await;
    production_gates(&c, json!({ "approvals": 2 })).await;
    assert_eq!(
        refusals(&c, v1).await,
        ["approvals: 0 of 2 required approval(s) by a reviewer who authored none of it"]
    );
    assert_eq!(review(&c, &rex, v1, "approve").await.0, 200);
    assert_eq!(review(&c, &rex, v1, "approve").await.0, 200);
    assert_eq!(
        refusals(&c, v1).await,
        ["approvals: 1 of 2 required approval(s) by a reviewer who authored none of it"],
        "one reviewer approving twice is one approval"
    );
    assert_eq!(review(&c, &ray, v1, "approve").await.0, 200);
    assert_eq!(refusals(&c, v1).await, Vec::<String>::new());

    // A group reviewed by managers counts only managers' approvals.
    production_gates(&c, json!({ "approvals": 1, "review_role": "manager" })).await;
    assert_eq!(
        refusals(&c, v1).await,
        ["approvals: 0 of 1 required approval(s) by a manager who authored none of it"]
    );
    assert_eq!(review(&c, &mia, v1, "approve").await.0, 200);
    // A reviewer's later rejection stands while it is their latest word.
    assert_eq!(review(&c, &mia, v1, "reject").await.0, 200);
    assert_eq!(
        refusals(&c, v1).await,
        [
            "approvals: rejected by mia: looked at it",
            "approvals: 0 of 1 required approval(s) by a manager who authored none of it"
        ]
    );
    let (status, body) = api(
        c.addr,
        "PUT",
        "/api/groups/production",
        &c.admin,
        json!({ "gates": { "approvals": 1, "review_role": "designer" } }),
    )
    .await;
    assert_eq!(status, 400, "{body}");
}
