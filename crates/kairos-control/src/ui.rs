//! The design environment's web UI: server-rendered pages on the control plane, no script and
//! no build step. Every action goes through the same handler as its `/api/` call (so roles,
//! checks and the audit log are the API's); a page only adapts forms to them and renders the
//! answers. Signed in by a cookie holding a user token (`HttpOnly`, `SameSite=Strict`).

use std::fmt::Write;

use axum::Form;
use axum::response::Html;

use super::*;
use crate::html::esc;

const COOKIE: &str = "kairos_session";

const STYLE: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2430;background:#f6f7f9}
header{background:#1d2430;color:#fff;padding:.6rem 1rem;display:flex;flex-wrap:wrap;gap:.4rem 1.2rem;align-items:center}
header a{color:#fff;text-decoration:none;padding:.2rem .1rem}
header a:focus,header a:hover{text-decoration:underline}
header .who{margin-left:auto;display:flex;gap:.6rem;align-items:center}
main{max-width:1200px;margin:0 auto;padding:1rem}
h1{font-size:1.5rem;margin:.4rem 0 1rem}
h2{font-size:1.15rem;margin:1.4rem 0 .5rem}
a{color:#1b5fc1}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{border-bottom:1px solid #e3e6eb;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#eef1f5;font-weight:600}
.scroll{overflow-x:auto}
.card{background:#fff;border:1px solid #e3e6eb;border-radius:6px;padding:.8rem 1rem;margin:.6rem 0}
.notice{background:#e7f6ea;border:1px solid #9bd3a6;padding:.5rem .8rem;border-radius:6px}
.error{background:#fdecec;border:1px solid #f0a3a3;padding:.5rem .8rem;border-radius:6px}
.field-error{color:#a31919;font-weight:600;margin:.1rem 0 .3rem 3.2rem}
label{display:block;font-weight:600;margin:.5rem 0 .2rem}
input[type=text],input[type=password],select,textarea{font:inherit;padding:.35rem .5rem;border:1px solid #b9c0cb;border-radius:4px;width:100%;max-width:32rem;background:#fff}
textarea{max-width:none;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px}
button{font:inherit;padding:.35rem .9rem;border-radius:4px;border:1px solid #1b5fc1;background:#1b5fc1;color:#fff;cursor:pointer;margin:.3rem .3rem .3rem 0}
button.secondary{background:#fff;color:#1b5fc1}
button.danger{background:#b42318;border-color:#b42318}
:focus-visible{outline:3px solid #f5a524;outline-offset:2px}
.inline{display:inline-block;margin-right:.5rem}
.inline input,.inline select{width:auto}
ol.code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:13px;background:#fff;border:1px solid #e3e6eb;padding:.4rem .4rem .4rem 3.2rem;white-space:pre;overflow-x:auto}
ol.code li.bad{background:#fdecec}
.add{color:#0a7a2f}.del{color:#b42318}
.pass{color:#0a7a2f;font-weight:600}.fail{color:#b42318;font-weight:600}
.muted{color:#5b6472}
pre.caret{margin:.2rem 0 0;font-size:13px;color:#a31919;background:none}
input.expr{font-family:ui-monospace,Menlo,Consolas,monospace}
input[aria-invalid=true],textarea[aria-invalid=true]{border-color:#a31919;background:#fff8f8}
.field-error[data-field]{margin-left:0}
"#;

/// A value from an answer as text for a cell.
fn cell(value: &J) -> String {
    match value {
        J::Null => String::new(),
        J::String(s) => esc(s),
        other => esc(&other.to_string()),
    }
}

/// A time as people read it: `2026-11-29 08:53:11 UTC`, without the nanoseconds.
fn when(value: &J) -> String {
    let text = value.as_str().unwrap_or_default();
    let seconds = text.split('.').next().unwrap_or(text).trim_end_matches('Z');
    format!("{} UTC", esc(&seconds.replacen('T', " ", 1)))
}

/// A path segment or query value, percent-encoded.
fn enc(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn page(caller: Option<&Caller>, title: &str, body: &str) -> Response {
    let mut nav = String::new();
    if let Some(c) = caller {
        nav.push_str(r#"<nav aria-label="main"><a href="/ui/channels">Channels</a> <a href="/ui/groups">Server groups</a> <a href="/ui/reports">Reports</a> <a href="/ui/unknown">Unknown names</a> <a href="/ui/audit">Audit log</a>"#);
        if c.roles.contains(&Role::Administrator) {
            nav.push_str(r#" <a href="/ui/users">Users &amp; tokens</a>"#);
        }
        nav.push_str("</nav>");
        let roles: Vec<&str> = c.roles.iter().map(|r| r.name()).collect();
        let _ = write!(
            nav,
            r#"<div class="who"><span>{} <span class="muted">({})</span></span><form method="post" action="/ui/logout"><button class="secondary" type="submit">Log out</button></form></div>"#,
            esc(&c.name),
            esc(&roles.join(", "))
        );
    }
    let html = format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>{} · Kairos</title><style>{STYLE}</style></head><body><header><strong>Kairos</strong>{nav}</header><main id="main"><h1>{}</h1>{body}</main></body></html>"#,
        esc(title),
        esc(title)
    );
    Html(html).into_response()
}

fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
}

fn banner(q: &Flash) -> String {
    let mut out = String::new();
    if let Some(ok) = &q.ok {
        let _ = write!(out, r#"<p class="notice" role="status">{}</p>"#, esc(ok));
    }
    if let Some(error) = &q.error {
        let _ = write!(out, r#"<p class="error" role="alert">{}</p>"#, esc(error));
    }
    out
}

/// `?ok=` and `?error=`: what the last action did, shown once after its redirect.
#[derive(Deserialize, Default)]
struct Flash {
    ok: Option<String>,
    error: Option<String>,
}

fn with_flash(to: &str, key: &str, message: &str) -> Response {
    let separator = if to.contains('?') { '&' } else { '?' };
    redirect(&format!("{to}{separator}{key}={}", enc(message)))
}

fn problem_message(p: &Problem) -> String {
    let mut text = p.detail.clone();
    for e in &p.errors {
        text.push_str("; ");
        text.push_str(e);
    }
    text
}

fn token_of(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::COOKIE)?
        .to_str()
        .ok()?
        .split(';')
        .find_map(|c| c.trim().strip_prefix("kairos_session="))
}

/// The signed-in user of a page; without one, the page is the login page.
struct Signed(Caller);

impl axum::extract::FromRequestParts<Arc<ControlPlane>> for Signed {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        cp: &Arc<ControlPlane>,
    ) -> Result<Self, Response> {
        let Some(token) = token_of(&parts.headers) else {
            return Err(redirect("/ui/login"));
        };
        match caller_of(cp, token).await {
            Ok(c) if c.runtime_group.is_none() => Ok(Signed(c)),
            _ => Err(redirect("/ui/login")),
        }
    }
}

/// After an action: back to `back` with what it did, or with why it was refused.
async fn flash_after(reply: Reply, back: &str, done: impl FnOnce(&J) -> String) -> Response {
    match answer(reply).await {
        Ok(answer) => with_flash(back, "ok", &done(&answer)),
        Err(p) => with_flash(back, "error", &problem_message(&p)),
    }
}

/// The JSON an API handler answered, or its problem.
async fn answer(reply: Reply) -> Result<J, Problem> {
    let response = reply?;
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .map_err(|e| Problem::new(Code::Internal, e.to_string()))?;
    Ok(serde_json::from_slice(&bytes).unwrap_or(J::Null))
}

fn error_page(caller: &Caller, p: &Problem) -> Response {
    let mut response = page(
        Some(caller),
        "Something went wrong",
        &format!(
            r#"<p class="error" role="alert">{}</p><p><a href="/ui/channels">Back to the channels</a></p>"#,
            esc(&problem_message(p))
        ),
    );
    *response.status_mut() = p.status;
    response
}

pub(super) fn routes() -> Router<Arc<ControlPlane>> {
    Router::new()
        .route("/", get(|| async { redirect("/ui/channels") }))
        .route("/ui", get(|| async { redirect("/ui/channels") }))
        .route("/ui/login", get(login_page).post(login_submit))
        .route("/ui/logout", post(logout))
        .route("/ui/channels", get(channels_page))
        .route("/ui/channels/apply", post(apply_submit))
        .route("/ui/channels/new", post(new_channel))
        .route("/ui/channels/{channel}", get(channel_page))
        .route("/ui/channels/{channel}/add", post(add_component))
        .route(
            "/ui/channels/{channel}/edit/{kind}/{name}",
            get(editor_page).post(editor_submit),
        )
        .route("/ui/channels/{channel}/versions", get(versions_page))
        .route("/ui/channels/{channel}/deploy", post(deploy_submit))
        .route("/ui/channels/{channel}/rollback", post(rollback_submit))
        .route(
            "/ui/channels/{channel}/versions/{number}/review",
            post(review_submit),
        )
        .route("/ui/channels/{channel}/diff", get(diff_page))
        .route("/ui/channels/{channel}/export", get(export_download))
        .route(
            "/ui/channels/{channel}/simulator",
            get(simulator_page).post(simulator_submit),
        )
        .route("/ui/groups", get(groups_page))
        .route("/ui/reports", get(reports_page))
        .route("/ui/audit", get(audit_page))
        .route("/ui/unknown", get(unknown_page))
        .route("/ui/unknown/create", post(create_unknown))
        .route("/ui/users", get(users_page).post(user_submit))
        .route("/ui/tokens", post(token_submit))
}

// ---- login ----

async fn login_page(Query(flash): Query<Flash>) -> Response {
    page(
        None,
        "Log in",
        &format!(
            r#"{}<form method="post" action="/ui/login" class="card"><label for="user">User name</label><input id="user" name="user" type="text" autocomplete="username" required autofocus><label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required><p><button type="submit">Log in</button></p></form>"#,
            banner(&flash)
        ),
    )
}

async fn login_submit(State(cp): State<Arc<ControlPlane>>, Form(f): Form<LoginBody>) -> Response {
    let reply = login(State(cp), Ok(Json(f))).await;
    match answer(reply).await {
        Ok(body) => {
            let token = body["token"].as_str().unwrap_or_default();
            let mut response = redirect("/ui/channels");
            let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(p) => with_flash("/ui/login", "error", &p.detail),
    }
}

async fn logout() -> Response {
    let mut response = redirect("/ui/login");
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("kairos_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

// ---- channels ----

async fn channels_page(
    State(cp): State<Arc<ControlPlane>>,
    Signed(caller): Signed,
    Query(flash): Query<Flash>,
) -> Response {
    let channels = match answer(list_channels(State(cp.clone())).await).await {
        Ok(c) => c,
        Err(p) => return error_page(&caller, &p),
    };
    let mut body = banner(&flash);
    body.push_str(r#"<div class="scroll"><table><thead><tr><th scope="col">Channel</th><th scope="col">Revision</th><th scope="col">Last change</th><th scope="col"></th></tr></thead><tbody>"#);
    for c in items(&channels) {
        let name = c["name"].as_str().unwrap_or_default();
        let _ = write!(
            body,
            r#"<tr><td><a href="/ui/channels/{}">{}</a></td><td>{}</td><td>{} by {}</td><td><a href="/ui/channels/{}/versions">Versions</a></td></tr>"#,
            enc(name),
            esc(name),
            cell(&c["revision"]),
            when(&c["updated_at"]),
            cell(&c["updated_by"]),
            enc(name)
        );
    }
    if items(&channels).is_empty() {
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
struct NewChannelForm {
    name: String,
}

/// A channel starts as its settings; its components are added on its page.
async fn new_channel(
    State(cp): State<Arc<ControlPlane>>,
    Signed(caller): Signed,
    Form(f): Form<NewChannelForm>,
) -> Response {
    let name = f.name.trim().to_string();
    let mut create = HeaderMap::new();
    create.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
    let reply = put_component(
        State(cp),
        Extension(caller),
        Path((name.clone(), Kind::Settings.name().into(), SETTINGS.into())),
        create,
        Ok(Json(json!({}))),
    )
    .await;
    match answer(reply).await {
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

async fn apply_submit(
    State(cp): State<Arc<ControlPlane>>,
    Signed(caller): Signed,
    Form(f): Form<ApplyBody>,
) -> Response {
    let reply = apply(State(cp), Extension(caller.clone()), Ok(Json(f.clone()))).await;
    match answer(reply).await {
        Ok(done) => {
            let name = done["channel"].as_str().unwrap_or_default();
            with_flash(
                &format!("/ui/channels/{}", enc(name)),
                "ok",
                &format!("imported {} as revision {}", f.file, done["revision"]),
            )
        }
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
fn rules_table(channel: &str, components: &[&J]) -> String {
    let mut out = String::from(
        r#"<div class="scroll"><table><thead><tr><th scope="col">Rule</th><th scope="col">Segment</th><th scope="col">Zone</th><th scope="col">Offer</th><th scope="col">Score</th><th scope="col">Eligibility</th><th scope="col">Dates</th><th scope="col">Enabled</th></tr></thead><tbody>"#,
    );
    for c in components.iter().filter(|c| c["kind"] == "rules") {
        let b = &c["body"];
        let name = c["name"].as_str().unwrap_or_default();
        let offers = if b["offers"].is_array() {
            items(&b["offers"])
                .iter()
                .map(|o| cell(o))
                .collect::<Vec<_>>()
                .join(", ")
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

async fn channel_page(
    State(cp): State<Arc<ControlPlane>>,
    Signed(caller): Signed,
    Path(name): Path<String>,
    Query(flash): Query<Flash>,
) -> Response {
    let doc = match answer(channel(State(cp.clone()), Path(name.clone())).await).await {
        Ok(d) => d,
        Err(p) => return error_page(&caller, &p),
    };
    let checked = answer(validate(State(cp.clone()), Path(name.clone())).await)
        .await
        .unwrap_or(J::Null);
    let components = items(&doc["components"]);
    let mut body = banner(&flash);
    let _ = write!(
        body,
        r#"<p>Revision {} · last change by {} at {} · <a href="/ui/channels/{3}/versions">Versions and deployments</a> · <a href="/ui/channels/{3}/simulator">Simulator</a> · <a href="/ui/channels/{3}/export" download>Export as a channel file</a></p>"#,
        cell(&doc["revision"]),
        cell(&doc["updated_by"]),
        when(&doc["updated_at"]),
        enc(&name)
    );
    let errors = items(&checked["errors"]);
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
            let text = error_text(e);
            // The error's component (`kind/name`), linked to its editor.
            match e["component"]
                .as_str()
                .and_then(|path| path.split_once('/'))
            {
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
        let of_kind: Vec<&J> = components
            .iter()
            .copied()
            .filter(|c| c["kind"] == kind.name())
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
                let flowchart = c["name"].as_str().unwrap_or_default();
                let _ = write!(
                    body,
                    r#"<figure class="card scroll"><figcaption><a href="/ui/channels/{}/edit/flowcharts/{}">{}</a> <span class="muted">revision {}</span></figcaption>{}</figure>"#,
                    enc(&name),
                    enc(flowchart),
                    esc(flowchart),
                    cell(&c["revision"]),
                    super::flowchart::svg(flowchart, &c["body"])
                );
            }
        } else if !of_kind.is_empty() {
            body.push_str("<ul>");
            for c in &of_kind {
                let component = c["name"].as_str().unwrap_or_default();
                let _ = write!(
                    body,
                    r#"<li><a href="/ui/channels/{}/edit/{}/{}">{}</a> <span class="muted">revision {} by {}</span></li>"#,
                    enc(&name),
                    kind.name(),
                    enc(component),
                    esc(component),
                    cell(&c["revision"]),
                    cell(&c["updated_by"])
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
struct AddForm {
    kind: String,
    name: String,
}

async fn add_component(
    State(cp): State<Arc<ControlPlane>>,
    Signed(caller): Signed,
    Path(channel): Path<String>,
    Form(f): Form<AddForm>,
) -> Response {
    let back = format!("/ui/channels/{}", enc(&channel));
    let Some(kind) = Kind::from_name(&f.kind) else {
        return with_flash(&back, "error", "unknown component kind");
    };
    let mut create = HeaderMap::new();
    create.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
    let reply = put_component(
        State(cp),
        Extension(caller),
        Path((channel.clone(), f.kind.clone(), f.name.clone())),
        create,
        Ok(Json(template(kind, &f.name))),
    )
    .await;
    match answer(reply).await {
        Ok(_) => redirect(&format!("{back}/edit/{}/{}", kind.name(), enc(&f.name))),
        Err(p) => with_flash(&back, "error", &problem_message(&p)),
    }
}

/// The body's lines, numbered, each error under the line it is on.
fn annotated(text: &str, errors: &[(u32, u32, String)]) -> String {
    let mut out = String::from(
        r#"<ol class="code" id="line-errors" aria-label="the component with its errors">"#,
    );
    for (i, line) in text.lines().enumerate() {
        let n = i as u32 + 1;
        let here: Vec<&(u32, u32, String)> = errors.iter().filter(|e| e.0 == n).collect();
        let _ = write!(
            out,
            r#"<li id="line-{n}"{}>{}</li>"#,
            if here.is_empty() {
                ""
            } else {
                r#" class="bad""#
            },
            esc(line)
        );
        for (_, column, message) in here {
            let _ = write!(
                out,
                r#"<div class="field-error" role="alert" data-line="{n}" data-column="{column}">line {n}, column {column}: {}</div>"#,
                esc(message)
            );
        }
    }
    out.push_str("</ol>");
    out
}

struct Editor<'a> {
    channel: &'a str,
    kind: &'a str,
    name: &'a str,
    text: &'a str,
    revision: Option<i64>,
    /// Errors of this component: (line, column, message).
    errors: Vec<(u32, u32, String)>,
    /// Errors elsewhere in the channel.
    others: Vec<String>,
    message: String,
    /// The raw JSON even for a component that has a form.
    raw: bool,
    /// `<datalist>`s of the channel's names, for the form's suggestions.
    suggestions: String,
}

fn editor(caller: &Caller, e: &Editor) -> Response {
    let mut body = e.message.clone();
    let href = format!(
        "/ui/channels/{}/edit/{}/{}",
        enc(e.channel),
        enc(e.kind),
        enc(e.name)
    );
    let _ = write!(
        body,
        r#"<p><a href="/ui/channels/{}">Back to channel {}</a> · revision {}</p>"#,
        enc(e.channel),
        esc(e.channel),
        e.revision.map_or("new".to_string(), |r| r.to_string())
    );
    if e.kind == "flowcharts"
        && let Ok(parsed) = serde_json::from_str::<J>(e.text)
    {
        let _ = write!(
            body,
            r#"<figure class="card scroll">{}</figure>"#,
            super::flowchart::svg(e.name, &parsed)
        );
    }
    let form = fields_of(e.kind)
        .filter(|_| !e.raw)
        .and_then(|fields| Some((fields, serde_json::from_str::<J>(e.text).ok()?)));
    if form.is_none() && !e.errors.is_empty() {
        body.push_str(&annotated(e.text, &e.errors));
    }
    if !e.others.is_empty() {
        let _ = write!(
            body,
            r#"<details><summary>{} error(s) in other components</summary><ul>"#,
            e.others.len()
        );
        for o in &e.others {
            let _ = write!(body, "<li>{}</li>", esc(o));
        }
        body.push_str("</ul></details>");
    }
    if let Some((fields, current)) = form {
        body.push_str(&e.suggestions);
        body.push_str(&field_form(
            &href,
            e,
            fields,
            &current,
            caller.roles.contains(&Role::Designer),
        ));
    } else if caller.roles.contains(&Role::Designer) {
        if fields_of(e.kind).is_some() {
            let _ = write!(body, r#"<p><a href="{href}">Edit with the form</a></p>"#);
        }
        let _ = write!(
            body,
            r#"<form method="post" action="{href}" class="card"><input type="hidden" name="revision" value="{}"><label for="body">{} (JSON, shaped like its entry in the channel file)</label><textarea id="body" name="body" rows="{}" spellcheck="false"{}>{}</textarea><p><button type="submit" name="action" value="save">Save</button><button type="submit" name="action" value="delete" class="danger">Delete</button></p></form>"#,
            e.revision.map_or(String::new(), |r| r.to_string()),
            esc(&format!("{}/{}", e.kind, e.name)),
            e.text.lines().count().clamp(6, 40) + 2,
            if e.errors.is_empty() {
                ""
            } else {
                r#" aria-invalid="true" aria-describedby="line-errors""#
            },
            esc(e.text)
        );
    } else {
        let _ = write!(body, r#"<pre class="card">{}</pre>"#, esc(e.text));
    }
    page(Some(caller), &format!("{} {}", e.kind, e.name), &body)
}

/// How a form field edits its key of a component's body.
#[derive(Clone, Copy, PartialEq)]
enum FieldKind {
    Text,
    Number,
    /// An expression: its errors point at a character of it.
    Expr,
    /// `enabled`: absent means true.
    Enabled,
    /// A comma-separated list of names.
    Names,
    /// `name=value` lines (attributes).
    Pairs,
    /// Interaction points, a line each: `name`, or `name=default string`.
    Points,
}

struct Field {
    /// The key in the body; `a.b` for a key of a nested mapping.
    key: &'static str,
    label: &'static str,
    kind: FieldKind,
    /// Which names to suggest: `segments`, `zones`, `offers`, `categories`.
    suggest: Option<&'static str>,
}

const fn field(key: &'static str, label: &'static str, kind: FieldKind) -> Field {
    Field {
        key,
        label,
        kind,
        suggest: None,
    }
}

const fn suggested(key: &'static str, label: &'static str, from: &'static str) -> Field {
    Field {
        key,
        label,
        kind: FieldKind::Text,
        suggest: Some(from),
    }
}

const OFFER_FIELDS: &[Field] = &[
    field("name", "Name", FieldKind::Text),
    field("description", "Description", FieldKind::Text),
    suggested("category", "Category", "categories"),
    field(
        "attributes",
        "Attributes (one name=value per line)",
        FieldKind::Pairs,
    ),
    field("effective", "Effective from (date)", FieldKind::Text),
    field("expires", "Expires (date)", FieldKind::Text),
    field(
        "suppression.after_accept",
        "Suppress after an accept (forever or a duration: 30d)",
        FieldKind::Text,
    ),
    field(
        "suppression.after_reject",
        "Suppress after a reject (forever or a duration)",
        FieldKind::Text,
    ),
    field(
        "suppression.max_contacts",
        "Stop after this many contacts",
        FieldKind::Number,
    ),
    field(
        "suppression.within",
        "...within (a duration)",
        FieldKind::Text,
    ),
];

const RULE_FIELDS: &[Field] = &[
    suggested("segment", "Segment (* for every visitor)", "segments"),
    suggested("zone", "Zone (* for every zone)", "zones"),
    suggested("offer", "Offer", "offers"),
    field(
        "offers",
        "Or several offers (comma separated)",
        FieldKind::Names,
    ),
    field(
        "pick",
        "Pick among several (best or random)",
        FieldKind::Text,
    ),
    field("score", "Marketing score", FieldKind::Number),
    field(
        "eligibility",
        "Eligibility (an expression)",
        FieldKind::Expr,
    ),
    field("score_expr", "Score expression", FieldKind::Expr),
    field("effective", "Effective from (date)", FieldKind::Text),
    field("expires", "Expires (date)", FieldKind::Text),
    field("enabled", "Enabled", FieldKind::Enabled),
    field(
        "attributes",
        "Attribute overrides (one name=value per line)",
        FieldKind::Pairs,
    ),
];

const ZONE_FIELDS: &[Field] = &[field(
    "interaction_points",
    "Interaction points (one per line: name, or name=default string)",
    FieldKind::Points,
)];

/// A segment is one expression: the key `""` is the whole body.
const SEGMENT_FIELDS: &[Field] = &[field(
    "",
    "Who is in the segment (an expression)",
    FieldKind::Expr,
)];

fn fields_of(kind: &str) -> Option<&'static [Field]> {
    match kind {
        "offers" => Some(OFFER_FIELDS),
        "rules" => Some(RULE_FIELDS),
        "segments" => Some(SEGMENT_FIELDS),
        "zones" => Some(ZONE_FIELDS),
        _ => None,
    }
}

fn value_at<'a>(body: &'a J, key: &str) -> &'a J {
    if key.is_empty() {
        return body;
    }
    match key.split_once('.') {
        Some((outer, inner)) => &body[outer][inner],
        None => &body[key],
    }
}

fn scalar_text(v: &J) -> String {
    match v {
        J::Null => String::new(),
        J::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A typed value from a form: a number, true/false, or text.
fn typed(text: &str) -> J {
    if let Ok(i) = text.parse::<i64>() {
        return json!(i);
    }
    if let Ok(d) = text.parse::<f64>() {
        return json!(d);
    }
    match text {
        "true" => json!(true),
        "false" => json!(false),
        _ => json!(text),
    }
}

/// The key of `body` each line of its text is in (`suppression.within` for nested ones), so
/// an error's line names the field it belongs to.
fn keys_by_line(text: &str) -> Vec<Option<String>> {
    let mut outer: Option<String> = None;
    text.lines()
        .map(|line| {
            let indent = line.len() - line.trim_start().len();
            let key = line
                .trim_start()
                .strip_prefix('"')
                .and_then(|rest| rest.split_once("\":"))
                .map(|(k, _)| k.to_string());
            match (indent, key) {
                (2, Some(k)) => {
                    outer = Some(k.clone());
                    Some(k)
                }
                (4, Some(k)) => outer.as_ref().map(|o| format!("{o}.{k}")),
                _ => outer.clone(),
            }
        })
        .collect()
}

fn field_form(href: &str, e: &Editor, fields: &[Field], body: &J, editable: bool) -> String {
    let lines: Vec<&str> = e.text.lines().collect();
    let keys = keys_by_line(e.text);
    let mut out = format!(
        r#"<p><a href="{href}?view=json">Edit as JSON</a></p><form method="post" action="{href}" class="card"><input type="hidden" name="revision" value="{}"><input type="hidden" name="mode" value="form">"#,
        e.revision.map_or(String::new(), |r| r.to_string())
    );
    let mut placed = vec![false; e.errors.len()];
    for f in fields {
        let id = if f.key.is_empty() {
            "field-body".to_string()
        } else {
            format!("field-{}", f.key.replace('.', "-"))
        };
        let value = value_at(body, f.key);
        // The errors whose line is in this field's key, nested ones under their parent.
        let mut errors = String::new();
        for (i, (line, column, message)) in e.errors.iter().enumerate() {
            let key = keys.get(*line as usize - 1).cloned().flatten();
            let here = key.as_deref().is_some_and(|k| {
                k == f.key || (f.kind == FieldKind::Pairs && k.starts_with(&format!("{}.", f.key)))
            });
            if !here {
                continue;
            }
            placed[i] = true;
            let mut text = esc(message);
            if f.kind == FieldKind::Expr {
                // The column points into the quoted expression on its line.
                let line_text = lines.get(*line as usize - 1).copied().unwrap_or_default();
                let start = if f.key.is_empty() {
                    line_text.find('"').map_or(0, |p| p + 1)
                } else {
                    line_text.find(": \"").map_or(0, |p| p + 3)
                };
                let at = (*column as usize).saturating_sub(start + 1);
                let expr = scalar_text(value);
                text = format!(
                    "{text}<pre class=\"caret\">{}\n{}^</pre>",
                    esc(&expr),
                    " ".repeat(at.min(expr.chars().count()))
                );
            }
            let _ = write!(
                errors,
                r#"<div class="field-error" role="alert" id="{id}-error" data-field="{}">{text}</div>"#,
                f.key
            );
        }
        let invalid = if errors.is_empty() {
            String::new()
        } else {
            format!(r#" aria-invalid="true" aria-describedby="{id}-error""#)
        };
        let disabled = if editable { "" } else { " disabled" };
        match f.kind {
            FieldKind::Enabled => {
                let _ = write!(
                    out,
                    r#"<label for="{id}"><input id="{id}" name="f.{}" type="checkbox" value="on"{}{invalid}{disabled}> {}</label>{errors}"#,
                    f.key,
                    if value == &json!(false) {
                        ""
                    } else {
                        " checked"
                    },
                    esc(f.label)
                );
            }
            FieldKind::Pairs | FieldKind::Points => {
                let text: Vec<String> = value
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| match (f.kind, v["default"].as_str()) {
                        (FieldKind::Points, Some(default)) => format!("{k}={default}"),
                        (FieldKind::Points, None) => k.clone(),
                        _ => format!("{k}={}", scalar_text(v)),
                    })
                    .collect();
                let _ = write!(
                    out,
                    r#"<label for="{id}">{}</label><textarea id="{id}" name="f.{}" rows="{}"{invalid}{disabled}>{}</textarea>{errors}"#,
                    esc(f.label),
                    f.key,
                    text.len().max(2) + 1,
                    esc(&text.join("\n"))
                );
            }
            _ => {
                let text = match f.kind {
                    FieldKind::Names => items(value)
                        .iter()
                        .map(|v| scalar_text(v))
                        .collect::<Vec<_>>()
                        .join(", "),
                    _ => scalar_text(value),
                };
                let datalist = f
                    .suggest
                    .map_or(String::new(), |from| format!(r#" list="names-{from}""#));
                let _ = write!(
                    out,
                    r#"<label for="{id}">{}</label><input id="{id}" name="f.{}" type="text" value="{}"{datalist}{}{invalid}{disabled}>{errors}"#,
                    esc(f.label),
                    f.key,
                    esc(&text),
                    if f.kind == FieldKind::Expr {
                        r#" spellcheck="false" class="expr""#
                    } else {
                        ""
                    }
                );
            }
        }
    }
    // Errors the form could not place (a key it has no field for) are listed at the end.
    for ((line, column, message), placed) in e.errors.iter().zip(placed) {
        if !placed {
            let _ = write!(
                out,
                r#"<div class="field-error" role="alert">line {line}, column {column}: {}</div>"#,
                esc(message)
            );
        }
    }
    if editable {
        out.push_str(r#"<p><button type="submit" name="action" value="save">Save</button><button type="submit" name="action" value="delete" class="danger">Delete</button></p>"#);
    }
    out.push_str("</form>");
    out
}

/// The body a form describes: the current body with each field's key set from the form
/// (an empty field removes its key), keys the form has no field for kept.
fn body_from_form(fields: &[Field], current: &J, form: &HashMap<String, String>) -> J {
    if let [whole] = fields
        && whole.key.is_empty()
    {
        return json!(form.get("f.").map_or("", |s| s.trim()));
    }
    let mut body = if current.is_object() {
        current.clone()
    } else {
        json!({})
    };
    for f in fields {
        let raw = form
            .get(&format!("f.{}", f.key))
            .map(|s| s.trim())
            .unwrap_or("");
        let value = match f.kind {
            FieldKind::Enabled if form.contains_key(&format!("f.{}", f.key)) => None,
            FieldKind::Enabled => Some(json!(false)),
            _ if raw.is_empty() => None,
            FieldKind::Text | FieldKind::Expr => Some(json!(raw)),
            FieldKind::Number => Some(typed(raw)),
            FieldKind::Names => Some(J::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(|n| json!(n))
                    .collect(),
            )),
            FieldKind::Pairs => Some(J::Object(
                raw.lines()
                    .filter_map(|l| l.split_once('='))
                    .map(|(k, v)| (k.trim().to_string(), typed(v.trim())))
                    .collect(),
            )),
            FieldKind::Points => Some(J::Object(
                raw.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(|l| match l.split_once('=') {
                        Some((name, default)) => (
                            name.trim().to_string(),
                            json!({ "default": default.trim() }),
                        ),
                        None => (l.to_string(), json!({})),
                    })
                    .collect(),
            )),
        };
        let (outer, inner) = match f.key.split_once('.') {
            Some((o, i)) => (o, Some(i)),
            None => (f.key, None),
        };
        let object = body.as_object_mut().expect("made an object above");
        match (inner, value) {
            (None, Some(v)) => {
                object.insert(outer.to_string(), v);
            }
            (None, None) => {
                object.remove(outer);
            }
            (Some(inner), value) => {
                let nested = object.entry(outer.to_string()).or_insert_with(|| json!({}));
                if !nested.is_object() {
                    *nested = json!({});
                }
                let nested_map = nested.as_object_mut().expect("an object");
                match value {
                    Some(v) => {
                        nested_map.insert(inner.to_string(), v);
                    }
                    None => {
                        nested_map.remove(inner);
                    }
                }
                if nested_map.is_empty() {
                    object.remove(outer);
                }
            }
        }
    }
    body
}

/// Datalists of the channel's segment, zone, offer and category names.
fn suggestions(doc: &J) -> String {
    let mut out = String::new();
    for (id, kind) in [
        ("segments", "segments"),
        ("zones", "zones"),
        ("offers", "offers"),
    ] {
        let _ = write!(out, r#"<datalist id="names-{id}"><option value="*">"#);
        for c in items(&doc["components"])
            .iter()
            .filter(|c| c["kind"] == kind)
        {
            let _ = write!(out, r#"<option value="{}">"#, cell(&c["name"]));
        }
        out.push_str("</datalist>");
    }
    out.push_str(r#"<datalist id="names-categories">"#);
    for c in items(&doc["components"])
        .iter()
        .filter(|c| c["kind"] == "settings")
    {
        for category in items(&c["body"]["categories"]) {
            let _ = write!(out, r#"<option value="{}">"#, cell(category));
        }
    }
    out.push_str("</datalist>");
    out
}

/// A design error as `kind/name:line:column: message`.
fn error_text(e: &J) -> String {
    format!(
        "{}:{}:{}: {}",
        e["component"].as_str().unwrap_or_default(),
        e["line"],
        e["column"],
        e["message"].as_str().unwrap_or_default()
    )
}

/// This component's errors (line, column, message) and the others' as text.
fn split_errors(kind: &str, name: &str, errors: &J) -> (Vec<(u32, u32, String)>, Vec<String>) {
    let path = format!("{kind}/{name}");
    let (mine, others): (Vec<&J>, Vec<&J>) = items(errors)
        .into_iter()
        .partition(|e| e["component"] == path.as_str());
    let mine = mine
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().unwrap_or(1) as u32,
                e["column"].as_u64().unwrap_or(1) as u32,
                e["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    (mine, others.into_iter().map(error_text).collect())
}

#[derive(Deserialize, Default)]
struct EditorQuery {
    #[serde(flatten)]
    flash: Flash,
    /// `json` shows the raw body even where there is a form.
    view: Option<String>,
}

/// The channel document and one of its components, or the page saying why not.
async fn component_of(
    cp: &Arc<ControlPlane>,
    caller: &Caller,
    channel_name: &str,
    kind: &str,
    name: &str,
) -> Result<(J, Option<J>), Response> {
    let doc = answer(channel(State(cp.clone()), Path(channel_name.to_string())).await)
        .await
        .map_err(|p| error_page(caller, &p))?;
    let found = items(&doc["components"])
        .into_iter()
        .find(|c| c["kind"] == kind && c["name"] == name)
        .cloned();
    Ok((doc, found))
}

async fn editor_page(
    State(cp): State<Arc<ControlPlane>>,
    Signed(caller): Signed,
    Path((channel_name, kind, name)): Path<(String, String, String)>,
    Query(q): Query<EditorQuery>,
) -> Response {
    let (doc, found) = match component_of(&cp, &caller, &channel_name, &kind, &name).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(found) = found else {
        return error_page(
            &caller,
            &not_found(format!("{channel_name} has no {kind}/{name}")),
        );
    };
    let checked = answer(validate(State(cp.clone()), Path(channel_name.clone())).await)
        .await
        .unwrap_or(J::Null);
    let (errors, others) = split_errors(&kind, &name, &checked["errors"]);
    let text = components::body_text(&found["body"]);
    editor(
        &caller,
        &Editor {
            channel: &channel_name,
            kind: &kind,
            name: &name,
            text: &text,
            revision: found["revision"].as_i64(),
            errors,
            others,
            message: banner(&q.flash),
            raw: q.view.as_deref() == Some("json"),
            suggestions: suggestions(&doc),
        },
    )
}

async fn editor_submit(
    State(cp): State<Arc<ControlPlane>>,
    Signed(caller): Signed,
    Path((channel_name, kind, name)): Path<(String, String, String)>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let field = |key: &str| form.get(key).map(String::as_str).unwrap_or_default();
    let revision_text = field("revision").trim().to_string();
    let mut expect = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&format!("\"{revision_text}\"")) {
        expect.insert(header::IF_MATCH, value);
    }
    let here = format!(
        "/ui/channels/{}/edit/{}/{}",
        enc(&channel_name),
        enc(&kind),
        enc(&name)
    );
    if field("action") == "delete" {
        let reply = delete_component(
            State(cp),
            Extension(caller),
            Path((channel_name.clone(), kind.clone(), name.clone())),
            expect,
        )
        .await;
        return match answer(reply).await {
            Ok(_) => with_flash(
                &format!("/ui/channels/{}", enc(&channel_name)),
                "ok",
                &format!("deleted {kind}/{name}"),
            ),
            Err(p) => with_flash(&here, "error", &problem_message(&p)),
        };
    }
    let (doc, found) = match component_of(&cp, &caller, &channel_name, &kind, &name).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let revision = revision_text.parse::<i64>().ok();
    let from_form = field("mode") == "form";
    let base = Editor {
        channel: &channel_name,
        kind: &kind,
        name: &name,
        text: "",
        revision,
        errors: Vec::new(),
        others: Vec::new(),
        message: String::new(),
        raw: !from_form,
        suggestions: suggestions(&doc),
    };
    let body = match fields_of(&kind).filter(|_| from_form) {
        Some(fields) => {
            let current = found.as_ref().map_or(J::Null, |c| c["body"].clone());
            body_from_form(fields, &current, &form)
        }
        None => match serde_json::from_str::<J>(field("body")) {
            Ok(b) => b,
            Err(e) => {
                // Not JSON: nothing saved; the error sits on its line.
                let errors = vec![(
                    e.line() as u32,
                    e.column() as u32,
                    format!("not valid JSON: {e}"),
                )];
                let message =
                    r#"<p class="error" role="alert">Not saved: the text is not valid JSON.</p>"#;
                return editor(
                    &caller,
                    &Editor {
                        text: field("body"),
                        errors,
                        message: message.into(),
                        ..base
                    },
                );
            }
        },
    };
    let text = components::body_text(&body);
    let reply = put_component(
        State(cp.clone()),
        Extension(caller.clone()),
        Path((channel_name.clone(), kind.clone(), name.clone())),
        expect,
        Ok(Json(body.clone())),
    )
    .await;
    match answer(reply).await {
        Ok(saved) => {
            let (errors, others) = split_errors(&kind, &name, &saved["errors"]);
            let message = if errors.is_empty() {
                format!(
                    r#"<p class="notice" role="status">Saved as revision {}.</p>"#,
                    saved["revision"]
                )
            } else {
                format!(
                    r#"<p class="error" role="alert">Saved as revision {}, with {} error(s) that block a deployment.</p>"#,
                    saved["revision"],
                    errors.len()
                )
            };
            editor(
                &caller,
                &Editor {
                    text: &text,
                    revision: saved["revision"].as_i64(),
                    errors,
                    others,
                    message,
                    ..base
                },
            )
        }
        Err(p) if p.status == StatusCode::CONFLICT => {
            // Someone else saved first: show theirs, keep ours in the form, based on theirs,
            // so saving again is a conscious overwrite.
            let current = component_of(&cp, &caller, &channel_name, &kind, &name)
                .await
                .ok()
                .and_then(|(_, c)| c);
            let theirs = current.as_ref().map_or("(deleted)".to_string(), |c| {
                components::body_text(&c["body"])
            });
            let message = format!(
                r#"<div class="error" role="alert"><p>Not saved: {} changed this component since you opened it. Their version is below; yours is kept in the form, and saving it again replaces theirs.</p><pre>{}</pre></div>"#,
                esc(current
                    .as_ref()
                    .and_then(|c| c["updated_by"].as_str())
                    .unwrap_or("someone")),
                esc(&theirs)
            );
            editor(
                &caller,
                &Editor {
                    text: &text,
                    revision: current.and_then(|c| c["revision"].as_i64()),
                    message,
                    ..base
                },
            )
        }
        Err(p) => with_flash(&here, "error", &problem_message(&p)),
    }
}

// ---- versions and the workflow ----

async fn versions_page(
    State(cp): State<Arc<ControlPlane>>,
    Signed(caller): Signed,
    Path(name): Path<String>,
    Query(flash): Query<Flash>,
) -> Response {
    let versions = match answer(list_versions(State(cp.clone()), Path(name.clone())).await).await {
        Ok(v) => v,
        Err(p) => return error_page(&caller, &p),
    };
    let groups = answer(list_groups(State(cp.clone())).await)
        .await
        .unwrap_or(J::Null);
    let deployer = caller
        .roles
        .iter()
        .any(|r| matches!(r, Role::Administrator | Role::Manager));
    let reviewer = caller.roles.contains(&Role::Reviewer);
    let mut body = banner(&flash);
    let _ = write!(
        body,
        r#"<p><a href="/ui/channels/{}">The design of {}</a></p>"#,
        enc(&name),
        esc(&name)
    );
    // The server groups to deploy to or roll back, the same for every form on the page.
    let mut group_options = String::new();
    for g in items(&groups) {
        let _ = write!(
            group_options,
            r#"<option value="{0}">{0}</option>"#,
            cell(&g["name"])
        );
    }
    if deployer {
        let _ = write!(
            body,
            r#"<form method="post" action="/ui/channels/{}/rollback" class="card"><label for="rollback-group">Roll back a group to the version it ran before</label><select id="rollback-group" name="group">{group_options}</select> <button type="submit" class="secondary">Roll back</button></form>"#,
            enc(&name)
        );
    }
    let all = items(&versions);
    if all.len() > 1 {
        let mut options = String::from(r#"<option value="design">the design</option>"#);
        for v in all.iter().rev() {
            let _ = write!(
                options,
                r#"<option value="{0}">version {0}</option>"#,
                cell(&v["number"])
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
    }
    for v in all.iter().rev() {
        let number = v["number"].as_i64().unwrap_or_default();
        let active: Vec<String> = items(&v["active_in"]).iter().map(|g| cell(g)).collect();
        let _ = write!(
            body,
            r#"<section class="card" aria-labelledby="v{number}"><h2 id="v{number}">Version {number}{}</h2><p>{} by {} · hash <code>{}</code>{}</p>"#,
            if active.is_empty() {
                String::new()
            } else {
                format!(" · active on {}", active.join(", "))
            },
            when(&v["created_at"]),
            cell(&v["author"]),
            cell(&v["hash"]),
            v["note"]
                .as_str()
                .filter(|n| !n.is_empty())
                .map_or(String::new(), |n| format!(" · “{}”", esc(n)))
        );
        let results = items(&v["results"]);
        if !results.is_empty() {
            body.push_str("<ul>");
            for r in results {
                let passed = r["passed"] == true;
                let _ = write!(
                    body,
                    r#"<li>{} on {}: <span class="{}">{}</span> {} <span class="muted">by {} at {}</span></li>"#,
                    cell(&r["kind"]),
                    cell(&r["group"]),
                    if passed { "pass" } else { "fail" },
                    if passed { "passed" } else { "failed" },
                    cell(&r["summary"]["text"]),
                    cell(&r["by"]),
                    when(&r["at"])
                );
            }
            body.push_str("</ul>");
        }
        for r in items(&v["reviews"]) {
            let _ = write!(
                body,
                "<p>{} by {}: {}</p>",
                cell(&r["decision"]),
                cell(&r["reviewer"]),
                cell(&r["comment"])
            );
        }
        for d in items(&v["deployments"]) {
            let _ = write!(
                body,
                r#"<p class="muted">{} to {} by {} at {}{}</p>"#,
                cell(&d["action"]),
                cell(&d["group"]),
                cell(&d["by"]),
                when(&d["at"]),
                d["reason"]
                    .as_str()
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
struct DeployForm {
    group: String,
    version: Option<String>,
    #[serde(default)]
    note: String,
    override_reason: Option<String>,
}

async fn deploy_submit(
    State(cp): State<Arc<ControlPlane>>,
    Signed(caller): Signed,
    Path(name): Path<String>,
    Form(f): Form<DeployForm>,
) -> Response {
    let reply = deploy(
        State(cp),
        Extension(caller),
        Path(f.group.clone()),
        Ok(Json(DeployBody {
            channel: name.clone(),
            version: f.version.as_deref().and_then(|v| v.trim().parse().ok()),
            note: f.note,
            override_reason: f.override_reason.filter(|r| !r.trim().is_empty()),
        })),
    )
    .await;
    let back = format!("/ui/channels/{}/versions", enc(&name));
    flash_after(reply, &back, |done| {
        format!("version {} is now active on {}", done["version"], f.group)
    })
    .await
}

#[derive(Deserialize)]
struct RollbackForm {
    group: String,
}

async fn rollback_submit(
    State(cp): State<Arc<ControlPlane>>,
    Signed(caller): Signed,
    Path(name): Path<String>,
    Form(f): Form<RollbackForm>,
) -> Response {
    let reply = rollback(
        State(cp),
        Extension(caller),
        Path(f.group.clone()),
        Ok(Json(RollbackBody {
            channel: name.clone(),
            to: None,
        })),
    )
    .await;
    let back = format!("/ui/channels/{}/versions", enc(&name));
    flash_after(reply, &back, |done| {
        format!("{} rolled back to version {}", f.group, done["version"])
    })
    .await
}

async fn review_submit(
    State(cp): State<Arc<ControlPlane>>,
    Signed(caller): Signed,
    Path((name, number)): Path<(String, i64)>,
    Form(f): Form<ReviewBody>,
) -> Response {
    let decision = f.decision.clone();
    let reply = review(
        State(cp),
        Extension(caller),
        Path((name.clone(), number)),
        Ok(Json(f)),
    )
    .await;
    let back = format!("/ui/channels/{}/versions", enc(&name));
    flash_after(reply, &back, |_| format!("version {number}: {decision}d")).await
}

async fn diff_page(
    State(cp): State<Arc<ControlPlane>>,
    Signed(caller): Signed,
    Path(name): Path<String>,
    query: Result<Query<DiffQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = match query {
        Ok(q) => q,
        Err(e) => return error_page(&caller, &Problem::from(e)),
    };
    let title = format!("{name}: {} → {}", q.from, q.to);
    let d = match answer(diff(State(cp), Path(name.clone()), Ok(q)).await).await {
        Ok(d) => d,
        Err(p) => return error_page(&caller, &p),
    };
    let mut body = String::new();
    let changes = items(&d["changes"]);
    if changes.is_empty() {
        body.push_str(r#"<p class="muted">No differences.</p>"#);
    }
    for c in changes {
        let _ = write!(
            body,
            "<h2>{} {}</h2><pre class=\"card\">",
            cell(&c["change"]),
            cell(&c["path"])
        );
        for line in items(&c["lines"]) {
            let text = line.as_str().unwrap_or_default();
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
async fn export_download(
    State(cp): State<Arc<ControlPlane>>,
    Signed(caller): Signed,
    Path(name): Path<String>,
    query: Result<Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    match export(State(cp), Path(name.clone()), query).await {
        Ok(mut response) => {
            let disposition = format!("attachment; filename=\"{}.yaml\"", name.replace('"', ""));
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

// ---- groups, audit, unknown names ----

async fn groups_page(State(cp): State<Arc<ControlPlane>>, Signed(caller): Signed) -> Response {
    let groups = match answer(list_groups(State(cp)).await).await {
        Ok(g) => g,
        Err(p) => return error_page(&caller, &p),
    };
    let mut body = String::new();
    for g in items(&groups) {
        let active: Vec<String> = items(&g["active"])
            .iter()
            .map(|a| format!("{} v{}", cell(&a["channel"]), cell(&a["version"])))
            .collect();
        let _ = write!(
            body,
            r#"<section class="card"><h2>{}{}</h2><p>Active: {} · gates {} · data {}</p>"#,
            cell(&g["name"]),
            if g["production"] == true {
                " (production)"
            } else {
                ""
            },
            if active.is_empty() {
                "nothing".into()
            } else {
                active.join(", ")
            },
            cell(&g["gates"]),
            g["data"].as_str().map_or("shared".to_string(), esc)
        );
        body.push_str(r#"<div class="scroll"><table><thead><tr><th scope="col">Instance</th><th scope="col">Address</th><th scope="col">Runs</th><th scope="col">Last report</th></tr></thead><tbody>"#);
        for i in items(&g["instances"]) {
            let runs: Vec<String> = i["running"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(c, v)| format!("{} v{}", esc(c), cell(&v["version"])))
                .collect();
            let _ = write!(
                body,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} ({}s ago)</td></tr>",
                cell(&i["instance"]),
                cell(&i["address"]),
                runs.join(", "),
                when(&i["seen_at"]),
                cell(&i["seconds_since_seen"])
            );
        }
        body.push_str("</tbody></table></div></section>");
    }
    page(Some(&caller), "Server groups", &body)
}

async fn audit_page(State(cp): State<Arc<ControlPlane>>, Signed(caller): Signed) -> Response {
    let log = match answer(audit_log(State(cp), Ok(Query(AuditQuery { limit: 500 }))).await).await {
        Ok(l) => l,
        Err(p) => return error_page(&caller, &p),
    };
    let mut body = String::from(
        r#"<div class="scroll"><table><thead><tr><th scope="col">When</th><th scope="col">Who</th><th scope="col">What</th><th scope="col">On</th><th scope="col">Detail</th></tr></thead><tbody>"#,
    );
    for e in items(&log) {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            when(&e["at"]),
            cell(&e["actor"]),
            cell(&e["action"]),
            cell(&e["target"]),
            cell(&e["detail"])
        );
    }
    body.push_str("</tbody></table></div>");
    page(Some(&caller), "Audit log", &body)
}

async fn unknown_page(
    State(cp): State<Arc<ControlPlane>>,
    Signed(caller): Signed,
    Query(flash): Query<Flash>,
) -> Response {
    let names = match answer(unknown_names(State(cp)).await).await {
        Ok(n) => n,
        Err(p) => return error_page(&caller, &p),
    };
    let mut body = banner(&flash);
    body.push_str(r#"<p>Names touchpoints called that their channel does not define: a signal to the design team.</p><div class="scroll"><table><thead><tr><th scope="col">Channel</th><th scope="col">Kind</th><th scope="col">Name</th><th scope="col">Calls</th><th scope="col">Last</th><th scope="col"></th></tr></thead><tbody>"#);
    let designer = caller.roles.contains(&Role::Designer);
    for u in items(&names) {
        let create = if designer {
            let zone = if u["kind"] == "interaction_point" {
                r#"<label class="inline">in zone <input name="zone" type="text" required size="10"></label>"#
            } else {
                ""
            };
            format!(
                r#"<form method="post" action="/ui/unknown/create"><input type="hidden" name="channel" value="{}"><input type="hidden" name="kind" value="{}"><input type="hidden" name="name" value="{}">{zone}<button type="submit" class="secondary">Create</button></form>"#,
                cell(&u["channel"]),
                cell(&u["kind"]),
                cell(&u["name"])
            )
        } else {
            String::new()
        };
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{create}</td></tr>",
            cell(&u["channel"]),
            cell(&u["kind"]),
            cell(&u["name"]),
            cell(&u["calls"]),
            when(&u["last_at"])
        );
    }
    body.push_str("</tbody></table></div>");
    page(Some(&caller), "Unknown names", &body)
}

#[derive(Deserialize)]
struct CreateForm {
    channel: String,
    kind: String,
    name: String,
    zone: Option<String>,
}

/// One click: an event with no actions, or an interaction point in a zone.
async fn create_unknown(
    State(cp): State<Arc<ControlPlane>>,
    Signed(caller): Signed,
    Form(f): Form<CreateForm>,
) -> Response {
    let (kind, name, body, expect) = if f.kind == "interaction_point" {
        let zone = f.zone.clone().unwrap_or_default();
        let current = cp.store.components(&f.channel).await.ok().and_then(|all| {
            all.into_iter()
                .find(|c| c.component.kind == Kind::Zones && c.component.name == zone)
        });
        let Some(current) = current else {
            return with_flash(
                "/ui/unknown",
                "error",
                &format!("channel {} has no zone '{zone}'", f.channel),
            );
        };
        let mut body = current.component.body.clone();
        body["interaction_points"][f.name.as_str()] = json!({});
        let mut expect = HeaderMap::new();
        expect.insert(header::IF_MATCH, etag(current.revision));
        ("zones".to_string(), zone, body, expect)
    } else {
        let mut expect = HeaderMap::new();
        expect.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        (
            "events".to_string(),
            f.name.clone(),
            json!({ "actions": [] }),
            expect,
        )
    };
    let reply = put_component(
        State(cp),
        Extension(caller),
        Path((f.channel.clone(), kind.clone(), name.clone())),
        expect,
        Ok(Json(body)),
    )
    .await;
    match answer(reply).await {
        Ok(_) => redirect(&format!(
            "/ui/channels/{}/edit/{}/{}?ok={}",
            enc(&f.channel),
            kind,
            enc(&name),
            enc(&format!("created {} {}", f.kind.replace('_', " "), f.name))
        )),
        Err(p) => with_flash("/ui/unknown", "error", &problem_message(&p)),
    }
}

// ---- users and tokens ----

async fn users_page(
    State(cp): State<Arc<ControlPlane>>,
    Signed(caller): Signed,
    Query(flash): Query<Flash>,
) -> Response {
    let users = match answer(list_users(State(cp.clone()), Extension(caller.clone())).await).await {
        Ok(u) => u,
        Err(p) => return error_page(&caller, &p),
    };
    let tokens = answer(list_tokens(State(cp), Extension(caller.clone())).await)
        .await
        .unwrap_or(J::Null);
    let mut body = banner(&flash);
    body.push_str(r#"<h2>Users</h2><div class="scroll"><table><thead><tr><th scope="col">User</th><th scope="col">Roles</th></tr></thead><tbody>"#);
    for u in items(&users) {
        let roles: Vec<String> = items(&u["roles"]).iter().map(|r| cell(r)).collect();
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td></tr>",
            cell(&u["name"]),
            roles.join(", ")
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
    body.push_str(r#"</fieldset><p><button type="submit">Save user</button></p></form><h2>Tokens</h2><div class="scroll"><table><thead><tr><th scope="col">Kind</th><th scope="col">For</th><th scope="col">Label</th></tr></thead><tbody>"#);
    for t in items(&tokens) {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            cell(&t["kind"]),
            cell(&t["for"]),
            cell(&t["label"])
        );
    }
    body.push_str(r#"</tbody></table></div><form method="post" action="/ui/tokens" class="card"><h2>Issue a token</h2><label for="token-kind">Kind</label><select id="token-kind" name="kind"><option value="touchpoint">touchpoint (for a channel)</option><option value="runtime">runtime (for a server group)</option></select><label for="token-for">Channel or group</label><input id="token-for" name="for" type="text" required><label for="token-label">Label</label><input id="token-label" name="label" type="text"><p><button type="submit">Issue</button></p></form>"#);
    page(Some(&caller), "Users and tokens", &body)
}

async fn user_submit(
    State(cp): State<Arc<ControlPlane>>,
    Signed(caller): Signed,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let roles = Role::ALL
        .iter()
        .filter(|r| form.contains_key(&format!("role_{}", r.name())))
        .map(|r| r.name().to_string())
        .collect();
    let name = form.get("name").cloned().unwrap_or_default();
    let reply = create_user(
        State(cp),
        Extension(caller),
        Ok(Json(UserBody {
            name: name.clone(),
            password: form.get("password").cloned().unwrap_or_default(),
            roles,
        })),
    )
    .await;
    flash_after(reply, "/ui/users", |_| format!("saved user {name}")).await
}

async fn token_submit(
    State(cp): State<Arc<ControlPlane>>,
    Signed(caller): Signed,
    Form(f): Form<TokenBody>,
) -> Response {
    let reply = create_token(State(cp), Extension(caller.clone()), Ok(Json(f.clone()))).await;
    match answer(reply).await {
        // Shown once, on this page only: never in a URL.
        Ok(issued) => page(
            Some(&caller),
            "Token issued",
            &format!(
                r#"<p class="notice" role="status">A {} token for {}: copy it now, it is not shown again.</p><p><code id="secret">{}</code></p><p><a href="/ui/users">Back to users and tokens</a></p>"#,
                esc(&f.kind),
                esc(&f.subject),
                cell(&issued["token"])
            ),
        ),
        Err(p) => with_flash("/ui/users", "error", &problem_message(&p)),
    }
}

// ---- the simulator ----

#[derive(Deserialize, Default)]
struct SimulatorForm {
    #[serde(default)]
    group: String,
    #[serde(default)]
    audience: String,
    #[serde(default)]
    params: String,
    #[serde(default)]
    ip: String,
    #[serde(default)]
    count: String,
    #[serde(default)]
    event: String,
    #[serde(default)]
    event_params: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    download: String,
}

/// `a=1, b=x` as typed values: whole numbers, decimals, true/false, else text.
fn pairs(text: &str) -> Result<Vec<(String, kairos_rules::Value)>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| format!("'{p}' is not name=value"))?;
            let v = v.trim();
            let value = if let Ok(i) = v.parse::<i64>() {
                kairos_rules::Value::Int(i)
            } else if let Ok(d) = v.parse::<f64>() {
                kairos_rules::Value::Double(d)
            } else if v == "true" || v == "false" {
                kairos_rules::Value::Bool(v == "true")
            } else {
                kairos_rules::Value::string(v)
            };
            Ok((k.trim().to_string(), value))
        })
        .collect()
}

/// A YAML flow mapping of values: `{ customer_id: 1001, page: "home" }`.
fn flow(values: &[(String, kairos_rules::Value)]) -> String {
    if values.is_empty() {
        return "{}".into();
    }
    let inner: Vec<String> = values
        .iter()
        .map(|(k, v)| format!("{k}: {}", kairos_api::value_json(v)))
        .collect();
    format!("{{ {} }}", inner.join(", "))
}

fn simulator_form(channel: &str, groups: &J, f: &SimulatorForm) -> String {
    let mut options = String::new();
    for g in items(groups) {
        let name = g["name"].as_str().unwrap_or_default();
        let _ = write!(
            options,
            r#"<option value="{0}"{1}>{0}</option>"#,
            esc(name),
            if name == f.group || (f.group.is_empty() && name == "staging") {
                " selected"
            } else {
                ""
            }
        );
    }
    let field = |id: &str, label: &str, value: &str, placeholder: &str| {
        format!(
            r#"<label for="{id}">{label}</label><input id="{id}" name="{id}" type="text" value="{}" placeholder="{}">"#,
            esc(value),
            esc(placeholder)
        )
    };
    format!(
        r#"<form method="post" action="/ui/channels/{}/simulator" class="card"><label for="group">Server group</label><select id="group" name="group">{options}</select>{}{}{}{}{}{}<label for="token">Touchpoint token (when the runtime requires one)</label><input id="token" name="token" type="password" value="{}"><p><button type="submit">Run</button><button type="submit" name="download" value="1" class="secondary">Save as scenario file</button></p></form>"#,
        enc(channel),
        field(
            "audience",
            "Audience ID (field=value, comma separated)",
            &f.audience,
            "customer_id=1001"
        ),
        field(
            "params",
            "Real-time parameters (name=value, comma separated)",
            &f.params,
            "page=home"
        ),
        field("ip", "Interaction point", &f.ip, "hero"),
        field(
            "count",
            "Offers wanted",
            if f.count.is_empty() { "3" } else { &f.count },
            "3"
        ),
        field(
            "event",
            "Then post this event (optional)",
            &f.event,
            "offer_clicked"
        ),
        field(
            "event_params",
            "Event parameters (name=value, comma separated)",
            &f.event_params,
            ""
        ),
        esc(&f.token)
    )
}

async fn simulator_page(
    State(cp): State<Arc<ControlPlane>>,
    Signed(caller): Signed,
    Path(name): Path<String>,
) -> Response {
    let groups = answer(list_groups(State(cp)).await)
        .await
        .unwrap_or(J::Null);
    let body = format!(
        r#"<p>Play a visitor against a server group's runtime: start a session, ask for offers, post an event, and see what came back and why.</p>{}"#,
        simulator_form(&name, &groups, &SimulatorForm::default())
    );
    page(Some(&caller), &format!("Simulator: {name}"), &body)
}

/// One simulated call: what it was, and what came back.
struct Played {
    call: String,
    outcome: Result<kairos_engine::scenario::Outcome, String>,
    segments: Option<Vec<String>>,
}

async fn simulator_submit(
    State(cp): State<Arc<ControlPlane>>,
    Signed(caller): Signed,
    Path(name): Path<String>,
    Form(f): Form<SimulatorForm>,
) -> Response {
    use kairos_engine::scenario::{Call, Target};

    let groups = answer(list_groups(State(cp.clone())).await)
        .await
        .unwrap_or(J::Null);
    let address = freshest_address(&groups, &f.group);
    let form = simulator_form(&name, &groups, &f);
    let fail = |message: String| {
        page(
            Some(&caller),
            &format!("Simulator: {name}"),
            &format!(
                r#"<p class="error" role="alert">{}</p>{form}"#,
                esc(&message)
            ),
        )
    };
    let Some(address) = address else {
        return fail(format!(
            "no runtime of group '{}' has reported to the control plane",
            f.group
        ));
    };
    let parsed = (|| {
        Ok::<_, String>((
            pairs(&f.audience)?,
            pairs(&f.params)?,
            pairs(&f.event_params)?,
            f.count.trim().parse::<u32>().unwrap_or(3).clamp(1, 50),
        ))
    })();
    let (audience, params, event_params, count) = match parsed {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    if audience.is_empty() || f.ip.trim().is_empty() {
        return fail("give an audience ID and an interaction point".into());
    }
    let ip = f.ip.trim().to_string();
    let event = f.event.trim().to_string();
    let token = Some(f.token.trim().to_string()).filter(|t| !t.is_empty());
    let channel = name.clone();
    let calls = {
        let (audience, params, event_params, ip, event) = (
            audience.clone(),
            params.clone(),
            event_params.clone(),
            ip.clone(),
            event.clone(),
        );
        move || {
            let mut calls = vec![(
                "start session".to_string(),
                Call::StartSession {
                    session_id: None,
                    audience_level: None,
                    audience_id: audience,
                    params,
                },
            )];
            let offers = Call::GetOffers {
                requests: vec![(ip.clone(), count)],
                params: Vec::new(),
                allow_duplicates: false,
            };
            calls.push((format!("get offers: {ip}, {count}"), offers.clone()));
            if !event.is_empty() {
                calls.push((
                    format!("post event: {event}"),
                    Call::PostEvent {
                        event,
                        params: event_params,
                    },
                ));
                calls.push((format!("get offers: {ip}, {count}"), offers));
            }
            calls.push(("end session".to_string(), Call::EndSession));
            calls
        }
    };
    // Blocking HTTP calls to the runtime: off the async workers.
    let played = tokio::task::spawn_blocking(move || {
        let client = kairos_api::Client::new(&format!("http://{address}"), token)
            .map_err(|e| e.to_string())?;
        let mut remote = kairos_api::remote::Remote::new(client, &channel);
        let mut played = Vec::new();
        for (label, call) in calls() {
            let outcome = remote.call(&call);
            let failed = outcome.is_err();
            let segments = match call {
                Call::StartSession { .. } | Call::PostEvent { .. } if !failed => {
                    remote.segments().ok()
                }
                _ => None,
            };
            played.push(Played {
                call: label,
                outcome,
                segments,
            });
            if failed {
                break;
            }
        }
        Ok::<_, String>(played)
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r);
    let played = match played {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let scenario = scenario_yaml(
        &name,
        &f.group,
        &audience,
        &params,
        &played,
        &event,
        &event_params,
    );
    if f.download == "1" {
        return (
            [
                (header::CONTENT_TYPE, "application/yaml".to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{}-simulated.scenarios.yaml\"", name),
                ),
            ],
            scenario,
        )
            .into_response();
    }
    let mut body = String::new();
    for p in &played {
        let _ = write!(body, r#"<section class="card"><h2>{}</h2>"#, esc(&p.call));
        match &p.outcome {
            Err(e) => {
                let _ = write!(body, r#"<p class="error" role="alert">{}</p>"#, esc(e));
            }
            Ok(outcome) => {
                if let Some(segments) = &p.segments {
                    let _ = write!(body, "<p>Segments: {}</p>", esc(&segments.join(", ")));
                }
                if !outcome.messages.is_empty() {
                    let _ = write!(
                        body,
                        "<p>Messages: {}</p>",
                        esc(&outcome.messages.join(", "))
                    );
                }
                for (ip, offers) in &outcome.offers {
                    let _ = write!(
                        body,
                        r#"<table class="offers"><caption>Offers for {}</caption><thead><tr><th scope="col">#</th><th scope="col">Offer</th><th scope="col">Treatment code</th></tr></thead><tbody>"#,
                        esc(ip)
                    );
                    for (n, (code, treatment)) in offers.iter().enumerate() {
                        let _ = write!(
                            body,
                            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                            n + 1,
                            esc(code),
                            esc(treatment)
                        );
                    }
                    if offers.is_empty() {
                        body.push_str(r#"<tr><td colspan="3" class="muted">none: the default string is served</td></tr>"#);
                    }
                    body.push_str("</tbody></table>");
                }
                if let Some(explain) = &outcome.explain {
                    let _ = write!(
                        body,
                        r#"<details open><summary>Why (explain)</summary><pre class="explain">{}</pre></details>"#,
                        esc(explain)
                    );
                }
            }
        }
        body.push_str("</section>");
    }
    let _ = write!(
        body,
        r#"<h2>As a scenario file</h2><label for="scenario">Scenario file (kairos test FILE --group {})</label><textarea id="scenario" readonly rows="{}">{}</textarea>{form}"#,
        esc(&f.group),
        scenario.lines().count() + 1,
        esc(&scenario)
    );
    page(Some(&caller), &format!("Simulator: {name}"), &body)
}

/// The simulated visit as a scenario, its expectations what came back this time.
fn scenario_yaml(
    channel: &str,
    group: &str,
    audience: &[(String, kairos_rules::Value)],
    params: &[(String, kairos_rules::Value)],
    played: &[Played],
    event: &str,
    event_params: &[(String, kairos_rules::Value)],
) -> String {
    let mut out = format!(
        "channel: {channel}\nscenarios:\n  - name: simulated on {group}\n    start: {{ audience_id: {}, params: {} }}\n    steps:\n",
        flow(audience),
        flow(params)
    );
    for p in played.iter().skip(1) {
        let Ok(outcome) = &p.outcome else { break };
        if let Some(rest) = p.call.strip_prefix("get offers: ") {
            let (ip, count) = rest.split_once(", ").unwrap_or((rest, "3"));
            let codes: Vec<&str> = outcome
                .offers
                .iter()
                .flat_map(|(_, offers)| offers.iter().map(|(code, _)| code.as_str()))
                .collect();
            let _ = write!(
                out,
                "      - get_offers: {{ ip: {ip}, count: {count} }}\n        expect: {{ codes: [ {} ] }}\n",
                codes.join(", ")
            );
        } else if p.call.starts_with("post event") {
            let _ = writeln!(
                out,
                "      - post_event: {{ event: {event}, params: {} }}",
                flow(event_params)
            );
        } else if p.call == "end session" {
            out.push_str("      - end_session: {}\n");
        }
    }
    out
}

// ---- reports ----

/// One bar of a chart: its label, its value, and an interval around it when there is one.
struct Bar {
    label: String,
    value: f64,
    interval: Option<(f64, f64)>,
}

/// A horizontal bar chart drawn on the server: no script, nothing to download.
fn bar_chart(title: &str, bars: &[Bar], format: fn(f64) -> String) -> String {
    if bars.is_empty() {
        return format!(
            r#"<p class="muted">{}: nothing to show yet.</p>"#,
            esc(title)
        );
    }
    let (label_width, plot_width, row) = (190.0, 420.0, 22.0);
    let max = bars
        .iter()
        .map(|b| b.interval.map_or(b.value, |(_, high)| high.max(b.value)))
        .fold(0.0f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let height = row * bars.len() as f64 + 8.0;
    let width = label_width + plot_width + 90.0;
    let mut svg = format!(
        r#"<figure class="card scroll"><figcaption>{}</figcaption><svg class="chart" role="img" aria-label="{}" viewBox="0 0 {width} {height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        esc(title),
        esc(title),
        esc(title)
    );
    for (i, b) in bars.iter().enumerate() {
        let y = 4.0 + row * i as f64;
        let w = plot_width * b.value / max;
        let label: String = b.label.chars().take(26).collect();
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="end" font-size="12" fill="#1d2430">{}</text><rect class="bar" x="{label_width}" y="{}" width="{w:.1}" height="{}" fill="#1b5fc1"><title>{}: {}</title></rect>"##,
            label_width - 6.0,
            y + 14.0,
            esc(&label),
            y + 3.0,
            row - 8.0,
            esc(&b.label),
            esc(&format(b.value))
        );
        if let Some((low, high)) = b.interval {
            let (x1, x2) = (
                label_width + plot_width * low / max,
                label_width + plot_width * high / max,
            );
            let mid = y + row / 2.0;
            let _ = write!(
                svg,
                r##"<line x1="{x1:.1}" y1="{mid}" x2="{x2:.1}" y2="{mid}" stroke="#b42318" stroke-width="1.5"/><line x1="{x1:.1}" y1="{}" x2="{x1:.1}" y2="{}" stroke="#b42318"/><line x1="{x2:.1}" y1="{}" x2="{x2:.1}" y2="{}" stroke="#b42318"/>"##,
                mid - 4.0,
                mid + 4.0,
                mid - 4.0,
                mid + 4.0
            );
        }
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" font-size="12" fill="#1d2430">{}</text>"##,
            label_width + plot_width + 6.0,
            y + 14.0,
            esc(&format(b.value))
        );
    }
    svg.push_str("</svg></figure>");
    svg
}

fn percent(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

fn count(v: f64) -> String {
    format!("{v:.0}")
}

fn millis(v: f64) -> String {
    format!("{v:.2} ms")
}

#[derive(Deserialize)]
struct ReportsQuery {
    group: Option<String>,
    by: Option<String>,
    days: Option<i64>,
}

async fn reports_page(
    State(cp): State<Arc<ControlPlane>>,
    Signed(caller): Signed,
    Query(q): Query<ReportsQuery>,
) -> Response {
    let groups = match answer(list_groups(State(cp.clone())).await).await {
        Ok(g) => g,
        Err(p) => return error_page(&caller, &p),
    };
    let group = q.group.unwrap_or_else(|| "staging".into());
    let by = q.by.unwrap_or_else(|| "offer".into());
    let days = q.days.unwrap_or(30);
    let mut group_options = String::new();
    for g in items(&groups) {
        let name = g["name"].as_str().unwrap_or_default();
        let _ = write!(
            group_options,
            r#"<option value="{0}"{1}>{0}</option>"#,
            esc(name),
            if name == group { " selected" } else { "" }
        );
    }
    let mut by_options = String::new();
    for b in ["offer", "segment", "zone", "day"] {
        let _ = write!(
            by_options,
            r#"<option value="{b}"{}>{b}</option>"#,
            if b == by { " selected" } else { "" }
        );
    }
    let mut body = format!(
        r#"<form method="get" action="/ui/reports" class="card"><label class="inline" for="report-group">Server group <select id="report-group" name="group">{group_options}</select></label><label class="inline" for="report-by">By <select id="report-by" name="by">{by_options}</select></label><label class="inline" for="report-days">Last days <input id="report-days" name="days" type="text" size="4" value="{days}"></label><button type="submit">Show</button></form>"#
    );

    // Offer performance, with the Beta posterior learning draws from.
    let _ = write!(
        body,
        "<h2>Offer performance on {} by {}</h2>",
        esc(&group),
        esc(&by)
    );
    let performance = performance_report(
        State(cp.clone()),
        Ok(Query(PerformanceQuery {
            group: group.clone(),
            by: by.clone(),
            days,
        })),
    )
    .await;
    match answer(performance).await {
        Err(p) => {
            let _ = write!(body, r#"<p class="muted">{}</p>"#, esc(&p.detail));
        }
        Ok(report) => {
            let rows = items(&report["rows"]);
            let bars: Vec<Bar> = rows
                .iter()
                .take(25)
                .map(|r| Bar {
                    label: r["key"].as_str().unwrap_or_default().to_string(),
                    value: r["rate"].as_f64().unwrap_or(0.0),
                    interval: Some((
                        r["low"].as_f64().unwrap_or(0.0),
                        r["high"].as_f64().unwrap_or(0.0),
                    )),
                })
                .collect();
            body.push_str(&bar_chart(
                "Acceptance rate with its 95% interval (the posterior learning uses)",
                &bars,
                percent,
            ));
            let contacts: Vec<Bar> = rows
                .iter()
                .take(25)
                .map(|r| Bar {
                    label: r["key"].as_str().unwrap_or_default().to_string(),
                    value: r["contacts"].as_f64().unwrap_or(0.0),
                    interval: None,
                })
                .collect();
            body.push_str(&bar_chart("Contacts", &contacts, count));
            body.push_str(
                r#"<div class="scroll"><table class="performance"><thead><tr><th scope="col">"#,
            );
            body.push_str(&esc(&by));
            body.push_str(r#"</th><th scope="col">Contacts</th><th scope="col">Accepts</th><th scope="col">Rejects</th><th scope="col">Acceptance</th><th scope="col">95% interval</th></tr></thead><tbody>"#);
            for r in &rows {
                let _ = write!(
                    body,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} – {}</td></tr>",
                    cell(&r["key"]),
                    cell(&r["contacts"]),
                    cell(&r["accepts"]),
                    cell(&r["rejects"]),
                    percent(r["rate"].as_f64().unwrap_or(0.0)),
                    percent(r["low"].as_f64().unwrap_or(0.0)),
                    percent(r["high"].as_f64().unwrap_or(0.0))
                );
            }
            body.push_str("</tbody></table></div>");
        }
    }

    // Runtime latency and throughput, as each instance last reported it.
    let _ = write!(
        body,
        "<h2>Runtime latency and throughput on {}</h2>",
        esc(&group)
    );
    let instances: Vec<&J> = items(&groups)
        .into_iter()
        .find(|g| g["name"] == group.as_str())
        .map(|g| items(&g["instances"]))
        .unwrap_or_default();
    let p99: Vec<Bar> = instances
        .iter()
        .filter_map(|i| {
            Some(Bar {
                label: i["instance"].as_str()?.to_string(),
                value: i["stats"]["get_offers_p99_ms"].as_f64()?,
                interval: None,
            })
        })
        .collect();
    body.push_str(&bar_chart(
        "Get offers p99 latency since start, per instance",
        &p99,
        millis,
    ));
    body.push_str(r#"<div class="scroll"><table><thead><tr><th scope="col">Instance</th><th scope="col">Requests/s</th><th scope="col">Requests</th><th scope="col">Get offers p50</th><th scope="col">p99</th><th scope="col">Live sessions</th></tr></thead><tbody>"#);
    for i in &instances {
        let s = &i["stats"];
        let ms = |v: &J| v.as_f64().map_or(String::new(), millis);
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            cell(&i["instance"]),
            s["requests_per_second"]
                .as_f64()
                .map_or(String::new(), |r| format!("{r:.1}")),
            cell(&s["requests_total"]),
            ms(&s["get_offers_p50_ms"]),
            ms(&s["get_offers_p99_ms"]),
            cell(&s["sessions_live"])
        );
    }
    body.push_str("</tbody></table></div>");

    // Segment sizes: a flowchart test run of each version the group runs.
    let active: Vec<(String, i64)> = items(&groups)
        .into_iter()
        .find(|g| g["name"] == group.as_str())
        .map(|g| {
            items(&g["active"])
                .iter()
                .filter_map(|a| Some((a["channel"].as_str()?.to_string(), a["version"].as_i64()?)))
                .collect()
        })
        .unwrap_or_default();
    for (channel, version) in active {
        let _ = write!(
            body,
            "<h2>Segment sizes: {} version {version}</h2>",
            esc(&channel)
        );
        let run = segments_report(
            State(cp.clone()),
            Path((channel.clone(), version)),
            Ok(Query(ReportQuery {
                against: None,
                count: 3,
                level: None,
                limit: 100_000,
            })),
        )
        .await;
        match answer(run).await {
            Ok(counts) => {
                let bars: Vec<Bar> = items(&counts["segments"])
                    .iter()
                    .map(|s| Bar {
                        label: s["name"].as_str().unwrap_or_default().to_string(),
                        value: s["visitors"].as_f64().unwrap_or(0.0),
                        interval: None,
                    })
                    .collect();
                let title = format!(
                    "Visitors per segment over {} rows of {}",
                    counts["visitors"],
                    counts["table"].as_str().unwrap_or_default()
                );
                body.push_str(&bar_chart(&title, &bars, count));
            }
            Err(p) => {
                let _ = write!(body, r#"<p class="muted">{}</p>"#, esc(&p.detail));
            }
        }
    }
    page(Some(&caller), "Reports", &body)
}

#[cfg(test)]
mod tests {
    use kairos_engine::scenario::Outcome;

    use super::*;

    #[test]
    fn a_form_sets_its_fields_and_keeps_the_rest() {
        let current = json!({
            "name": "Gold", "category": "cards", "unknown_to_the_form": 1,
            "suppression": { "after_reject": "30d" },
        });
        let form: HashMap<String, String> = [
            ("f.name", "Gold card"),
            ("f.category", ""),
            ("f.attributes", "apr=19.9\nfee=95\nimage=gold.png"),
            ("f.suppression.after_reject", ""),
            ("f.suppression.max_contacts", "3"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let body = body_from_form(OFFER_FIELDS, &current, &form);
        assert_eq!(
            body,
            json!({
                "name": "Gold card", "unknown_to_the_form": 1,
                "attributes": { "apr": 19.9, "fee": 95, "image": "gold.png" },
                "suppression": { "max_contacts": 3 },
            })
        );
        let points: HashMap<String, String> = [(
            "f.interaction_points".to_string(),
            "hero=Welcome, friend\n\nsidebar\n".to_string(),
        )]
        .into();
        assert_eq!(
            body_from_form(ZONE_FIELDS, &json!({}), &points),
            json!({ "interaction_points": { "hero": { "default": "Welcome, friend" }, "sidebar": {} } })
        );
        let unchecked = body_from_form(RULE_FIELDS, &json!({ "score": 5 }), &HashMap::new());
        assert_eq!(
            unchecked,
            json!({ "enabled": false }),
            "an unticked box disables"
        );
        let segment: HashMap<String, String> =
            [("f.".to_string(), " profile.age < 40 ".to_string())].into();
        assert_eq!(
            body_from_form(SEGMENT_FIELDS, &json!("true"), &segment),
            json!("profile.age < 40")
        );
    }

    #[test]
    fn each_line_of_a_body_names_its_field() {
        let text = components::body_text(&json!({
            "name": "Gold", "suppression": { "after_accept": "forever", "within": "7d" },
        }));
        let keys = keys_by_line(&text);
        let of =
            |needle: &str| keys[text.lines().position(|l| l.contains(needle)).unwrap()].clone();
        assert_eq!(of("\"name\"").as_deref(), Some("name"));
        assert_eq!(of("\"within\"").as_deref(), Some("suppression.within"));
    }

    #[test]
    fn a_simulated_visit_is_a_scenario_file_that_reads_back() {
        let offers = |codes: &[&str]| Outcome {
            offers: vec![(
                "hero".into(),
                codes.iter().map(|c| (c.to_string(), "t".into())).collect(),
            )],
            ..Outcome::default()
        };
        let played = [
            ("start session", Outcome::default()),
            ("get offers: hero, 2", offers(&["GOLD", "SILVER"])),
            ("post event: clicked", Outcome::default()),
            ("get offers: hero, 2", offers(&["SILVER"])),
            ("end session", Outcome::default()),
        ]
        .map(|(call, outcome)| Played {
            call: call.into(),
            outcome: Ok(outcome),
            segments: None,
        });
        let audience = pairs("customer_id=1001").unwrap();
        let params = pairs("page=home, vip=true, spend=10.5").unwrap();
        let yaml = scenario_yaml(
            "web",
            "staging",
            &audience,
            &params,
            &played,
            "clicked",
            &[],
        );
        let file = kairos_model::scenario::parse_scenarios("simulated.yaml", &yaml)
            .unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        let steps = &file.scenarios[0].steps;
        assert_eq!(steps.len(), 4, "{yaml}");
        assert!(
            yaml.contains("params: { page: \"home\", vip: true, spend: 10.5 }"),
            "{yaml}"
        );
        assert!(
            yaml.contains("expect: { codes: [ GOLD, SILVER ] }"),
            "{yaml}"
        );
        assert!(
            yaml.contains("post_event: { event: clicked, params: {} }"),
            "{yaml}"
        );
    }
}
