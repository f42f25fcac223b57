//! Server groups, the audit log, unknown names, users and tokens.

use super::*;

pub(super) async fn groups_page(State(cp): Shared, Signed(caller): Signed) -> Response {
    let groups = match cp.groups().await {
        Ok(g) => g,
        Err(p) => return error_page(&caller, &p),
    };
    let mut body = String::new();
    for g in &groups {
        let active: Vec<String> = g
            .active
            .iter()
            .map(|a| format!("{} v{}", esc(&a.channel), a.version))
            .collect();
        let _ = write!(
            body,
            r#"<section class="card"><h2>{}{}</h2><p>Active: {} · gates {} · data {} · {} · browser pages from: {}</p>"#,
            esc(&g.name),
            if g.production { " (production)" } else { "" },
            if active.is_empty() {
                "nothing".into()
            } else {
                active.join(", ")
            },
            esc(&serde_json::to_string(&g.gates).unwrap_or_default()),
            g.data.as_deref().map_or("shared".to_string(), esc),
            if g.open {
                "open to any touchpoint"
            } else {
                "touchpoints need a token"
            },
            if g.cors_origins.is_empty() {
                "no other origin".to_string()
            } else {
                esc(&g.cors_origins.join(", "))
            }
        );
        body.push_str(r#"<div class="scroll"><table><thead><tr><th scope="col">Instance</th><th scope="col">Address</th><th scope="col">Runs</th><th scope="col">Last report</th></tr></thead><tbody>"#);
        for i in &g.instances {
            let runs: Vec<String> = i
                .running
                .iter()
                .map(|(c, v)| format!("{} v{}", esc(c), v.version))
                .collect();
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} ({}s ago){}</td></tr>",
                esc(&i.instance),
                esc(&i.address),
                runs.join(", "),
                when(&i.seen_at),
                i.seconds_since_seen,
                if i.is_live() {
                    ""
                } else {
                    r#" <span class="fail">not heard from: down?</span>"#
                }
            );
        }
        body.push_str("</tbody></table></div></section>");
    }
    page(Some(&caller), "Server groups", &body)
}

pub(super) async fn audit_page(State(cp): Shared, Signed(caller): Signed) -> Response {
    let log = match cp.audit_log(500).await {
        Ok(l) => l,
        Err(p) => return error_page(&caller, &p),
    };
    let mut body = String::from(
        r#"<div class="scroll"><table><thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">What</th><th scope="col">On</th><th scope="col">Detail</th></tr></thead><tbody>"#,
    );
    for e in &log {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            when(&e.at),
            esc(&e.actor),
            esc(&e.action),
            esc(&e.target),
            esc(&e.detail)
        );
    }
    body.push_str("</tbody></table></div>");
    page(Some(&caller), "Audit log", &body)
}

pub(super) async fn unknown_page(
    State(cp): Shared,
    Signed(caller): Signed,
    flash: Flash,
) -> Response {
    let names = match cp.unknown_names().await {
        Ok(n) => n,
        Err(p) => return error_page(&caller, &p),
    };
    let mut body = banner(&flash);
    body.push_str(r#"<p>Names touchpoints called that their channel does not define: a signal to the design team.</p><div class="scroll"><table><thead><tr><th scope="col">Channel</th><th scope="col">Kind</th><th scope="col">Name</th><th scope="col">Calls</th><th scope="col">Last</th><th scope="col"></th></tr></thead><tbody>"#);
    let designer = caller.roles.contains(&Role::Designer);
    for u in &names {
        let create = if designer {
            let zone = if u.kind == "interaction_point" {
                r#"<label class="inline">in zone <input name="zone" type="text" required size="10"></label>"#
            } else {
                ""
            };
            format!(
                r#"<form method="post" action="/ui/unknown/create"><input type="hidden" name="channel" value="{}"><input type="hidden" name="kind" value="{}"><input type="hidden" name="name" value="{}">{zone}<button type="submit" class="secondary">Create</button></form>"#,
                esc(&u.channel),
                esc(&u.kind),
                esc(&u.name)
            )
        } else {
            String::new()
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{create}</td></tr>",
            esc(&u.channel),
            esc(&u.kind),
            esc(&u.name),
            u.calls,
            when(&u.last_at)
        );
    }
    body.push_str("</tbody></table></div>");
    page(Some(&caller), "Unknown names", &body)
}

#[derive(Deserialize)]
pub(super) struct CreateForm {
    channel: String,
    kind: String,
    name: String,
    zone: Option<String>,
}

/// One click: an event with no actions, or an interaction point in a zone.
pub(super) async fn create_unknown(
    State(cp): Shared,
    Signed(caller): Signed,
    Form(f): Form<CreateForm>,
) -> Response {
    let (component, expect) = if f.kind == "interaction_point" {
        let zone = f.zone.clone().unwrap_or_default();
        let Ok((mut body, revision)) = cp.component(&f.channel, Kind::Zones, &zone).await else {
            return with_flash(
                "/ui/unknown",
                "error",
                &format!("channel {} has no zone '{zone}'", f.channel),
            );
        };
        body["interaction_points"][f.name.as_str()] = json!({});
        let zones = Component {
            kind: Kind::Zones,
            name: zone,
            body,
        };
        (zones, Expect::Revision(revision))
    } else {
        let event = Component {
            kind: Kind::Events,
            name: f.name.clone(),
            body: json!({ "actions": [] }),
        };
        (event, Expect::Absent)
    };
    let (kind, name) = (component.kind, component.name.clone());
    match cp
        .put_component(&caller, &f.channel, component, expect)
        .await
    {
        Ok(_) => with_flash(
            &format!(
                "/ui/channels/{}/edit/{}/{}",
                enc(&f.channel),
                kind.name(),
                enc(&name)
            ),
            "ok",
            &format!("created {} {}", f.kind.replace('_', " "), f.name),
        ),
        Err(p) => with_flash("/ui/unknown", "error", &problem_message(&p)),
    }
}

// ---- users and tokens ----

pub(super) async fn users_page(
    State(cp): Shared,
    Signed(caller): Signed,
    flash: Flash,
) -> Response {
    let users = match cp.users(&caller).await {
        Ok(u) => u,
        Err(p) => return error_page(&caller, &p),
    };
    let tokens = match cp.tokens(&caller).await {
        Ok(t) => t,
        Err(p) => return error_page(&caller, &p),
    };
    let mut body = banner(&flash);
    body.push_str(r#"<h2>Users</h2><div class="scroll"><table><thead><tr><th scope="col">User</th><th scope="col">Roles</th><th scope="col">Account</th></tr></thead><tbody>"#);
    for u in &users {
        let (state, action, verb) = if u.disabled {
            ("disabled", "enable", "Enable")
        } else {
            ("active", "disable", "Disable")
        };
        let _ = write!(
            body,
            r#"<tr><td>{0}</td><td>{1}</td><td>{state} <form method="post" action="/ui/users/{2}/{action}" class="inline"><button type="submit" class="secondary">{verb} {0}</button></form><form method="post" action="/ui/users/{2}/delete" class="inline"><button type="submit" class="danger">Delete {0}</button></form></td></tr>"#,
            esc(&u.name),
            esc(&u
                .roles
                .iter()
                .map(|r| r.name())
                .collect::<Vec<_>>()
                .join(", ")),
            enc(&u.name),
        );
    }
    body.push_str(r#"</tbody></table></div><form method="post" action="/ui/users" class="card"><h2>Add or change a user</h2><label for="new-name">User name</label><input id="new-name" name="name" type="text" required><label for="new-password">Password (at least 8 characters)</label><input id="new-password" name="password" type="password" autocomplete="new-password" required minlength="8"><fieldset><legend>Roles</legend>"#);
    for role in Role::ALL {
        let _ = write!(
            body,
            r#"<label class="inline"><input type="checkbox" name="role_{0}" value="on"> {0}</label>"#,
            role.name()
        );
    }
    body.push_str(r#"</fieldset><p><button type="submit">Save user</button></p></form><h2>Tokens</h2><div class="scroll"><table><thead><tr><th scope="col">ID</th><th scope="col">Kind</th><th scope="col">For</th><th scope="col">Label</th><th scope="col">Issued</th><th scope="col">Expires</th><th scope="col"></th></tr></thead><tbody>"#);
    for t in &tokens {
        let _ = write!(
            body,
            r#"<tr><td><code>{0}</code></td><td>{1}</td><td>{2}</td><td>{3}</td><td>{4} by {5}</td><td>{6}</td><td><form method="post" action="/ui/tokens/{0}/revoke"><button type="submit" class="danger">Revoke {0}</button></form></td></tr>"#,
            esc(&t.id),
            t.kind.name(),
            esc(&t.subject),
            esc(&t.label),
            when(&t.created_at),
            esc(&t.created_by),
            t.expires_at
                .as_deref()
                .map_or_else(|| "never".to_string(), when),
        );
    }
    body.push_str(r#"</tbody></table></div><form method="post" action="/ui/tokens" class="card"><h2>Issue a token</h2><label for="token-kind">Kind</label><select id="token-kind" name="kind"><option value="touchpoint">touchpoint (for a channel)</option><option value="runtime">runtime (for a server group)</option></select><label for="token-for">Channel or group</label><input id="token-for" name="for" type="text" required><label for="token-label">Label</label><input id="token-label" name="label" type="text"><p><button type="submit">Issue</button></p></form>"#);
    page(Some(&caller), "Users and tokens", &body)
}

/// Disables, enables or deletes a user, as `kairos user disable|enable|delete` does.
pub(super) async fn user_action(
    State(cp): Shared,
    Signed(caller): Signed,
    Path((name, action)): Path<(String, String)>,
) -> Response {
    let done = match action.as_str() {
        "disable" | "enable" => cp
            .set_user_disabled(&caller, &name, action == "disable")
            .await
            .map(|_| format!("{name} is {action}d")),
        "delete" => cp
            .delete_user(&caller, &name)
            .await
            .map(|()| format!("{name} is deleted")),
        other => Err(Problem::new(
            Code::NotFound,
            format!("'{other}' is not something done to a user"),
        )),
    };
    flash_after(done, "/ui/users", Clone::clone)
}

/// Revokes a token, as `kairos token revoke` does.
pub(super) async fn revoke_token(
    State(cp): Shared,
    Signed(caller): Signed,
    Path(id): Path<String>,
) -> Response {
    let revoked = cp.revoke(&caller, &id).await;
    flash_after(revoked, "/ui/users", |()| format!("token {id} is revoked"))
}

pub(super) async fn user_submit(
    State(cp): Shared,
    Signed(caller): Signed,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let roles = Role::ALL
        .into_iter()
        .filter(|r| form.contains_key(&format!("role_{}", r.name())))
        .collect();
    let name = form.get("name").cloned().unwrap_or_default();
    let new = NewUser {
        name,
        password: form.get("password").cloned().unwrap_or_default(),
        roles,
    };
    let saved = cp.create_user(&caller, new).await;
    flash_after(saved, "/ui/users", |user| {
        format!("saved user {}", user.name)
    })
}

pub(super) async fn token_submit(
    State(cp): Shared,
    Signed(caller): Signed,
    Form(f): Form<NewToken>,
) -> Response {
    match cp.create_token(&caller, f.clone()).await {
        // Shown once, on this page only: never in a URL.
        Ok(issued) => page(
            Some(&caller),
            "Token issued",
            &format!(
                r#"<p class="notice" role="status">A {} token for {}: copy it now, it is not shown again.</p><p><code id="secret">{}</code></p><p><a href="/ui/users">Back to users and tokens</a></p>"#,
                issued.kind.name(),
                esc(&issued.subject),
                esc(&issued.token)
            ),
        ),
        Err(p) => with_flash("/ui/users", "error", &problem_message(&p)),
    }
}
