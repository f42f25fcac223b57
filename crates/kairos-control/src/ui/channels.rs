//! The channels, a channel's components, adding one.

use super::*;

pub(super) async fn channels_page(
    State(cp): Shared,
    Signed(caller): Signed,
    flash: Flash,
) -> Response {
    let channels = match cp.channels().await {
        Ok(c) => c,
        Err(p) => return error_page(&caller, &p),
    };
    let mut body = banner(&flash);
    body.push_str(r#"<div class="scroll"><table><thead><tr><th scope="col">Channel</th><th scope="col">Revision</th><th scope="col">Last change</th><th scope="col"></th></tr></thead><tbody>"#);
    for c in &channels {
        let name = &c.name;
        let _ = write!(
            body,
            r#"<tr><td><a href="/ui/channels/{}">{}</a></td><td>{}</td><td>{} by {}</td><td><a href="/ui/channels/{}/versions">Versions</a></td></tr>"#,
            enc(name),
            esc(name),
            c.revision,
            when(&c.updated_at),
            esc(&c.updated_by),
            enc(name)
        );
    }
    if channels.is_empty() {
        body.push_str(r#"<tr><td colspan="4" class="muted">No channels yet: import a channel file below.</td></tr>"#);
    }
    body.push_str("</tbody></table></div>");
    if caller.roles.contains(&Role::Designer) {
        body.push_str(r#"<form method="post" action="/ui/channels/new" class="card"><label for="new-channel">New channel (its name, as touchpoints will send it)</label><input id="new-channel" name="name" type="text" required pattern="[A-Za-z_][A-Za-z0-9_\-]*"><p><button type="submit">Create the channel</button></p></form>"#);
        body.push_str(r#"<h2>Import a channel file</h2><form method="post" action="/ui/channels/apply" class="card"><label for="file">File name (errors are reported against it)</label><input id="file" name="file" type="text" value="channel.yaml"><label for="yaml">Channel file (YAML)</label><textarea id="yaml" name="yaml" rows="14" required></textarea><p><button type="submit">Import as a new revision</button></p></form>"#);
    }
    page(Some(&caller), "Channels", &body)
}

#[derive(Deserialize)]
pub(super) struct NewChannelForm {
    name: String,
}

/// A channel starts as its settings; its components are added on its page.
pub(super) async fn new_channel(
    State(cp): Shared,
    Signed(caller): Signed,
    Form(f): Form<NewChannelForm>,
) -> Response {
    let name = f.name.trim().to_string();
    let settings = Component {
        kind: Kind::Settings,
        name: SETTINGS.into(),
        body: json!({}),
    };
    match cp
        .put_component(&caller, &name, settings, Expect::Absent)
        .await
    {
        Ok(_) => with_flash(
            &format!("/ui/channels/{}", enc(&name)),
            "ok",
            &format!("created channel {name}"),
        ),
        Err(p) if p.status == StatusCode::CONFLICT => with_flash(
            "/ui/channels",
            "error",
            &format!("channel {name} exists already"),
        ),
        Err(p) => with_flash("/ui/channels", "error", &problem_message(&p)),
    }
}

pub(super) async fn apply_submit(
    State(cp): Shared,
    Signed(caller): Signed,
    Form(f): Form<ApplyRequest>,
) -> Response {
    match cp.apply(&caller, f.clone()).await {
        Ok(done) => with_flash(
            &format!("/ui/channels/{}", enc(&done.channel)),
            "ok",
            &format!("imported {} as revision {}", f.file, done.revision),
        ),
        Err(p) => {
            let mut body = format!(
                r#"<p class="error" role="alert">{}</p><ul id="errors">"#,
                esc(&p.detail)
            );
            for e in &p.errors {
                let _ = write!(body, "<li>{}</li>", esc(e));
            }
            let _ = write!(
                body,
                r#"</ul><form method="post" action="/ui/channels/apply" class="card"><label for="file">File name</label><input id="file" name="file" type="text" value="{}"><label for="yaml">Channel file (YAML)</label><textarea id="yaml" name="yaml" rows="20" aria-describedby="errors">{}</textarea><p><button type="submit">Import as a new revision</button></p></form>"#,
                esc(&f.file),
                esc(&f.yaml)
            );
            let mut response = page(Some(&caller), "The file was not imported", &body);
            *response.status_mut() = p.status;
            response
        }
    }
}

/// A new component's first body: the smallest shape of its kind.
fn template(kind: Kind, name: &str) -> J {
    match kind {
        Kind::Settings => json!({}),
        Kind::AudienceLevels => json!({ "id_fields": [] }),
        Kind::Zones => json!({ "interaction_points": {} }),
        Kind::Offers => json!({ "name": name }),
        Kind::Segments => json!("true"),
        Kind::Flowcharts => json!({ "steps": [] }),
        Kind::Rules => json!({ "segment": "*", "zone": "*", "offer": "", "score": 50 }),
        Kind::Events => json!({ "actions": [] }),
        Kind::EventPatterns => json!({ "kind": "all", "events": [], "actions": [] }),
    }
}

fn kind_title(kind: Kind) -> &'static str {
    match kind {
        Kind::Settings => "Settings",
        Kind::AudienceLevels => "Audience levels",
        Kind::Zones => "Zones and interaction points",
        Kind::Offers => "Offers",
        Kind::Segments => "Segments",
        Kind::Flowcharts => "Interactive flowcharts",
        Kind::Rules => "Treatment rules",
        Kind::Events => "Events",
        Kind::EventPatterns => "Event patterns",
    }
}

/// The treatment rules as a table a marketer can scan.
fn rules_table(channel: &str, rules: &[&ComponentView]) -> String {
    let mut out = String::from(
        r#"<div class="scroll"><table><thead><tr><th scope="col">Rule</th><th scope="col">Segment</th><th scope="col">Zone</th><th scope="col">Offer</th><th scope="col">Score</th><th scope="col">Eligibility</th><th scope="col">Dates</th><th scope="col">Enabled</th></tr></thead><tbody>"#,
    );
    for c in rules {
        let b = &c.body;
        let name = &c.name;
        let offers = if let Some(offers) = b["offers"].as_array() {
            offers.iter().map(cell).collect::<Vec<_>>().join(", ")
        } else {
            cell(&b["offer"])
        };
        let dates = match (b["effective"].as_str(), b["expires"].as_str()) {
            (None, None) => String::new(),
            (from, to) => format!("{} – {}", esc(from.unwrap_or("")), esc(to.unwrap_or(""))),
        };
        let _ = write!(
            out,
            r#"<tr><td><a href="/ui/channels/{}/edit/rules/{}">{}</a></td><td>{}</td><td>{}</td><td>{offers}</td><td>{}</td><td><code>{}</code></td><td>{dates}</td><td>{}</td></tr>"#,
            enc(channel),
            enc(name),
            esc(name),
            cell(&b["segment"]),
            cell(&b["zone"]),
            cell(&b["score"]),
            cell(&b["eligibility"]),
            if b["enabled"] == false { "no" } else { "yes" }
        );
    }
    out.push_str("</tbody></table></div>");
    out
}

pub(super) async fn channel_page(
    State(cp): Shared,
    Signed(caller): Signed,
    Path(name): Path<String>,
    flash: Flash,
) -> Response {
    let doc = match cp.channel(&name).await {
        Ok(d) => d,
        Err(p) => return error_page(&caller, &p),
    };
    let errors = match cp.validate(&name).await {
        Ok(checked) => checked.errors,
        Err(p) => return error_page(&caller, &p),
    };
    let mut body = banner(&flash);
    let _ = write!(
        body,
        r#"<p>Revision {} · last change by {} at {} · <a href="/ui/channels/{3}/versions">Versions and deployments</a> · <a href="/ui/channels/{3}/simulator">Simulator</a> · <a href="/ui/channels/{3}/export" download>Export as a channel file</a></p>"#,
        doc.revision,
        esc(&doc.updated_by),
        when(&doc.updated_at),
        enc(&name)
    );
    if errors.is_empty() {
        body.push_str(
            r#"<p class="notice" role="status">The design is valid: it can be deployed.</p>"#,
        );
    } else {
        let _ = write!(
            body,
            r#"<div class="error" role="alert"><p>{} error(s) block a deployment:</p><ul>"#,
            errors.len()
        );
        for e in &errors {
            let text = super::editor::error_text(e);
            // The error's component (`kind/name`), linked to its editor.
            match e.component.split_once('/') {
                Some((kind, component)) => {
                    let _ = write!(
                        body,
                        r#"<li><a href="/ui/channels/{}/edit/{}/{}">{}</a></li>"#,
                        enc(&name),
                        enc(kind),
                        enc(component),
                        esc(&text)
                    );
                }
                None => {
                    let _ = write!(body, "<li>{}</li>", esc(&text));
                }
            }
        }
        body.push_str("</ul></div>");
    }
    if caller
        .roles
        .iter()
        .any(|r| matches!(r, Role::Administrator | Role::Manager))
    {
        let _ = write!(
            body,
            r#"<form method="post" action="/ui/channels/{}/deploy" class="card"><input type="hidden" name="group" value="staging"><label for="note">Deploy the design to staging, with a note</label><input id="note" name="note" type="text" placeholder="what changed"><p><button type="submit">Deploy to staging</button></p></form>"#,
            enc(&name)
        );
    }
    let designer = caller.roles.contains(&Role::Designer);
    for kind in Kind::ALL {
        let of_kind: Vec<&ComponentView> = doc
            .components
            .iter()
            .filter(|c| c.kind == kind.name())
            .collect();
        let _ = write!(
            body,
            r#"<h2 id="{}">{}</h2>"#,
            kind.name(),
            kind_title(kind)
        );
        if kind == Kind::Rules && !of_kind.is_empty() {
            body.push_str(&rules_table(&name, &of_kind));
        } else if kind == Kind::Flowcharts && !of_kind.is_empty() {
            for c in &of_kind {
                let flowchart = &c.name;
                let _ = write!(
                    body,
                    r#"<figure class="card scroll"><figcaption><a href="/ui/channels/{}/edit/flowcharts/{}">{}</a> <span class="muted">revision {}</span></figcaption>{}</figure>"#,
                    enc(&name),
                    enc(flowchart),
                    esc(flowchart),
                    c.revision,
                    crate::flowchart::svg(flowchart, &c.body)
                );
            }
        } else if !of_kind.is_empty() {
            body.push_str("<ul>");
            for c in &of_kind {
                let component = &c.name;
                let _ = write!(
                    body,
                    r#"<li><a href="/ui/channels/{}/edit/{}/{}">{}</a> <span class="muted">revision {} by {}</span></li>"#,
                    enc(&name),
                    kind.name(),
                    enc(component),
                    esc(component),
                    c.revision,
                    esc(&c.updated_by)
                );
            }
            body.push_str("</ul>");
        } else {
            body.push_str(r#"<p class="muted">None yet.</p>"#);
        }
        if designer && kind != Kind::Settings {
            let _ = write!(
                body,
                r#"<form method="post" action="/ui/channels/{}/add" class="inline"><input type="hidden" name="kind" value="{}"><label class="inline" for="add-{}">New {}</label><input id="add-{}" name="name" type="text" required pattern="[A-Za-z_][A-Za-z0-9_]*"><button type="submit" class="secondary">Add</button></form>"#,
                enc(&name),
                kind.name(),
                kind.name(),
                esc(&kind_title(kind).to_lowercase()),
                kind.name()
            );
        }
    }
    page(Some(&caller), &format!("Channel {name}"), &body)
}

#[derive(Deserialize)]
pub(super) struct AddForm {
    kind: String,
    name: String,
}

pub(super) async fn add_component(
    State(cp): Shared,
    Signed(caller): Signed,
    Path(channel): Path<String>,
    Form(f): Form<AddForm>,
) -> Response {
    let back = format!("/ui/channels/{}", enc(&channel));
    let Some(kind) = Kind::from_name(&f.kind) else {
        return with_flash(&back, "error", "unknown component kind");
    };
    let component = Component {
        kind,
        name: f.name.clone(),
        body: template(kind, &f.name),
    };
    match cp
        .put_component(&caller, &channel, component, Expect::Absent)
        .await
    {
        Ok(_) => redirect(&format!("{back}/edit/{}/{}", kind.name(), enc(&f.name))),
        Err(p) => with_flash(&back, "error", &problem_message(&p)),
    }
}
