//! Versions and the workflow: deploy, review, promote, roll back, diff, export.

use super::*;

pub(super) async fn versions_page(
    State(cp): Shared,
    Signed(caller): Signed,
    Path(name): Path<String>,
    flash: Flash,
) -> Response {
    let versions = match cp.versions(&name).await {
        Ok(v) => v,
        Err(p) => return error_page(&caller, &p),
    };
    let groups = match cp.groups().await {
        Ok(g) => g,
        Err(p) => return error_page(&caller, &p),
    };
    let deployer = caller
        .roles
        .iter()
        .any(|r| matches!(r, Role::Administrator | Role::Manager));
    let reviewer = caller.has(Role::Reviewer) || caller.has(Role::Manager);
    let mut body = banner(&flash);
    let _ = write!(
        body,
        r#"<p><a href="/ui/channels/{}">The design of {}</a></p>"#,
        enc(&name),
        esc(&name)
    );
    // The server groups to deploy to or roll back, the same for every form on the page.
    let mut group_options = String::new();
    for g in &groups {
        let _ = write!(
            group_options,
            r#"<option value="{0}">{0}</option>"#,
            esc(&g.name)
        );
    }
    if deployer {
        let _ = write!(
            body,
            r#"<form method="post" action="/ui/channels/{}/rollback" class="card"><label for="rollback-group">Roll back a group to the version it ran before</label><select id="rollback-group" name="group">{group_options}</select> <button type="submit" class="secondary">Roll back</button></form>"#,
            enc(&name)
        );
    }
    let all = &versions;
    if all.len() > 1 {
        let mut options = String::from(r#"<option value="design">the design</option>"#);
        for v in all.iter().rev() {
            let _ = write!(
                options,
                r#"<option value="{0}">version {0}</option>"#,
                v.number
            );
        }
        let _ = write!(
            body,
            r#"<form method="get" action="/ui/channels/{}/diff" class="card"><label class="inline" for="diff-from">Compare</label><select id="diff-from" name="from">{options}</select> <label class="inline" for="diff-to">with version</label><select id="diff-to" name="to">{options}</select> <button type="submit" class="secondary">Show the differences</button></form>"#,
            enc(&name)
        );
    }
    if all.is_empty() {
        body.push_str(r#"<p class="muted">No versions yet: deploy the design to staging to make version 1.</p>"#);
    } else {
        body.push_str(&super::testruns::forms(&name, &groups));
    }
    for v in all.iter().rev() {
        let number = v.number;
        let active: Vec<String> = v.active_in.iter().map(|g| esc(g)).collect();
        let _ = write!(
            body,
            r#"<section class="card" aria-labelledby="v{number}"><h2 id="v{number}">Version {number}{}</h2><p>{} by {} · hash <code>{}</code>{}</p>"#,
            if active.is_empty() {
                String::new()
            } else {
                format!(" · active on {}", active.join(", "))
            },
            when(&v.created_at),
            esc(&v.author),
            esc(&v.hash),
            Some(&v.note)
                .filter(|n| !n.is_empty())
                .map_or(String::new(), |n| format!(" · “{}”", esc(n)))
        );
        if !v.results.is_empty() {
            body.push_str("<ul>");
            for r in &v.results {
                let _ = write!(
                    body,
                    r#"<li>{} on {}: <span class="{}">{}</span> {} <span class="muted">by {} at {}</span></li>"#,
                    esc(&r.kind),
                    esc(&r.group),
                    if r.passed { "pass" } else { "fail" },
                    if r.passed { "passed" } else { "failed" },
                    cell(&r.summary["text"]),
                    esc(&r.by),
                    when(&r.at)
                );
            }
            body.push_str("</ul>");
        }
        for r in &v.reviews {
            let _ = write!(
                body,
                "<p>{} by {}: {}</p>",
                esc(&r.decision),
                esc(&r.reviewer),
                esc(&r.comment)
            );
        }
        for d in &v.deployments {
            let _ = write!(
                body,
                r#"<p class="muted">{} to {} by {} at {}{}</p>"#,
                esc(&d.action),
                esc(&d.group),
                esc(&d.by),
                when(&d.at),
                d.reason
                    .as_deref()
                    .map_or(String::new(), |r| format!(" ({})", esc(r)))
            );
        }
        if number > 1 {
            let _ = write!(
                body,
                r#"<p><a href="/ui/channels/{}/diff?from={}&amp;to={number}">What changed since version {}</a></p>"#,
                enc(&name),
                number - 1,
                number - 1
            );
        }
        if reviewer {
            let _ = write!(
                body,
                r#"<form method="post" action="/ui/channels/{}/versions/{number}/review"><label for="comment-{number}">Review comment</label><input id="comment-{number}" name="comment" type="text"><button type="submit" name="decision" value="approve">Approve version {number}</button><button type="submit" name="decision" value="reject" class="danger">Reject</button></form>"#,
                enc(&name)
            );
        }
        if deployer {
            let _ = write!(
                body,
                r#"<form method="post" action="/ui/channels/{}/deploy"><input type="hidden" name="version" value="{number}"><label for="group-{number}">Deploy version {number} to</label><select id="group-{number}" name="group">{group_options}</select>"#,
                enc(&name)
            );
            if caller.roles.contains(&Role::Administrator) {
                let _ = write!(
                    body,
                    r#"<label for="override-{number}">Override failed gates, with this reason (administrators)</label><input id="override-{number}" name="override_reason" type="text">"#
                );
            }
            let _ = write!(
                body,
                r#"<button type="submit">Deploy version {number}</button></form>"#
            );
        }
        body.push_str("</section>");
    }
    page(Some(&caller), &format!("Versions of {name}"), &body)
}

#[derive(Deserialize)]
pub(super) struct DeployForm {
    group: String,
    version: Option<String>,
    #[serde(default)]
    note: String,
    override_reason: Option<String>,
}

pub(super) async fn deploy_submit(
    State(cp): Shared,
    Signed(caller): Signed,
    Path(name): Path<String>,
    Form(f): Form<DeployForm>,
) -> Response {
    let request = DeployRequest {
        channel: name.clone(),
        version: f.version.as_deref().and_then(|v| v.trim().parse().ok()),
        note: f.note,
        override_reason: f.override_reason.filter(|r| !r.trim().is_empty()),
    };
    let deployed = cp.deploy(&caller, &f.group, request).await;
    let back = format!("/ui/channels/{}/versions", enc(&name));
    flash_after(deployed, &back, |done| {
        format!("version {} is now active on {}", done.version, f.group)
    })
}

#[derive(Deserialize)]
pub(super) struct RollbackForm {
    group: String,
}

pub(super) async fn rollback_submit(
    State(cp): Shared,
    Signed(caller): Signed,
    Path(name): Path<String>,
    Form(f): Form<RollbackForm>,
) -> Response {
    let request = RollbackRequest {
        channel: name.clone(),
        to: None,
    };
    let rolled_back = cp.rollback(&caller, &f.group, request).await;
    let back = format!("/ui/channels/{}/versions", enc(&name));
    flash_after(rolled_back, &back, |done| {
        format!("{} rolled back to version {}", f.group, done.version)
    })
}

pub(super) async fn review_submit(
    State(cp): Shared,
    Signed(caller): Signed,
    Path((name, number)): Path<(String, i64)>,
    Form(f): Form<ReviewRequest>,
) -> Response {
    let reviewed = cp.review(&caller, &name, number, f).await;
    let back = format!("/ui/channels/{}/versions", enc(&name));
    flash_after(reviewed, &back, |done| {
        format!("version {number}: {}d", done.decision.name())
    })
}

pub(super) async fn diff_page(
    State(cp): Shared,
    Signed(caller): Signed,
    Path(name): Path<String>,
    query: Result<Query<DiffQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = match query {
        Ok(q) => q,
        Err(e) => return error_page(&caller, &Problem::from(e)),
    };
    let title = format!("{name}: {} → {}", q.from, q.to);
    let d = match cp.diff(&name, q.0).await {
        Ok(d) => d,
        Err(p) => return error_page(&caller, &p),
    };
    let mut body = String::new();
    if d.changes.is_empty() {
        body.push_str(r#"<p class="muted">No differences.</p>"#);
    }
    for c in &d.changes {
        let _ = write!(
            body,
            "<h2>{} {}</h2><pre class=\"card\">",
            esc(&c.change),
            esc(&c.path)
        );
        for text in &c.lines {
            let class = if text.starts_with('+') {
                "add"
            } else if text.starts_with('-') {
                "del"
            } else {
                ""
            };
            let _ = writeln!(body, r#"<span class="{class}">{}</span>"#, esc(text));
        }
        body.push_str("</pre>");
    }
    page(Some(&caller), &title, &body)
}

/// The design (or `?version=N`) as a channel file, downloaded.
pub(super) async fn export_download(
    State(cp): Shared,
    Signed(caller): Signed,
    Path(name): Path<String>,
    query: Result<Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let version = match query {
        Ok(q) => q.0.version,
        Err(e) => return error_page(&caller, &Problem::from(e)),
    };
    match cp.export(&name, version).await {
        Ok(yaml) => {
            let disposition = format!("attachment; filename=\"{}.yaml\"", name.replace('"', ""));
            let mut response = ([(header::CONTENT_TYPE, "application/yaml")], yaml).into_response();
            if let Ok(value) = HeaderValue::from_str(&disposition) {
                response
                    .headers_mut()
                    .insert(header::CONTENT_DISPOSITION, value);
            }
            response
        }
        Err(p) => error_page(&caller, &p),
    }
}
