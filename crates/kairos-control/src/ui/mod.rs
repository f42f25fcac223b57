//! The design environment's web UI: server-rendered pages on the control plane, no script and
//! no build step. Every action calls the control plane's service, as the `/api/` routes do
//! (so roles, checks and the audit log are the service's); a page only adapts forms to it and
//! renders its typed answers. Signed in by a cookie holding a user token (`HttpOnly`,
//! `SameSite=Strict`).

mod admin;
mod channels;
mod editor;
mod guard;
mod login;
mod reports;
mod simulator;
mod testruns;
mod workflow;

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use kairos_api::control::*;
use kairos_api::{Code, Problem};
use kairos_model::components::{self, Component, Kind, SETTINGS};
use kairos_store::control::Expect;
use serde::Deserialize;
use serde_json::{Value as J, json};

use crate::auth::Role;
use crate::html::esc;
use crate::service::{Caller, ControlPlane, kind_of};
pub(crate) use guard::security_headers;
use guard::{Flash, STYLESHEET, banner, with_flash};

type Shared = State<Arc<ControlPlane>>;

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
fn when(text: &str) -> String {
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
    page_with(caller, title, "", body)
}

/// A page that reloads itself every `seconds` (a run in progress).
fn page_refreshing(caller: &Caller, title: &str, body: &str, seconds: u32) -> Response {
    let head = format!(r#"<meta http-equiv="refresh" content="{seconds}">"#);
    page_with(Some(caller), title, &head, body)
}

fn page_with(caller: Option<&Caller>, title: &str, head: &str, body: &str) -> Response {
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
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>{} · Kairos</title><link rel="stylesheet" href="{STYLESHEET}">{head}</head><body><header><strong>Kairos</strong>{nav}</header><main id="main"><h1>{}</h1>{body}</main></body></html>"#,
        esc(title),
        esc(title)
    );
    let html = match caller {
        Some(c) => guard::with_csrf(&html, c),
        None => html,
    };
    let mut response = Html(html).into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, guard::spent_flash());
    response
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

fn redirect(to: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response()
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
    guard::cookie(headers, COOKIE)
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
        match cp.caller(token).await {
            Ok(c) if c.runtime_group.is_none() => Ok(Signed(c)),
            _ => Err(redirect("/ui/login")),
        }
    }
}

/// After an action: back to `back` with what it did, or with why it was refused.
fn flash_after<T>(
    result: Result<T, Problem>,
    back: &str,
    done: impl FnOnce(&T) -> String,
) -> Response {
    match result {
        Ok(answer) => with_flash(back, "ok", &done(&answer)),
        Err(p) => with_flash(back, "error", &problem_message(&p)),
    }
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

/// The UI's pages, every post checked for its session's CSRF token.
pub(crate) fn routes(control: Arc<ControlPlane>) -> Router<Arc<ControlPlane>> {
    Router::new()
        .route("/", get(|| async { redirect("/ui/channels") }))
        .route(STYLESHEET, get(stylesheet))
        .route("/ui", get(|| async { redirect("/ui/channels") }))
        .route(
            "/ui/login",
            get(login::login_page).post(login::login_submit),
        )
        .route("/ui/logout", post(login::logout))
        .route("/ui/channels", get(channels::channels_page))
        .route("/ui/channels/apply", post(channels::apply_submit))
        .route("/ui/channels/new", post(channels::new_channel))
        .route("/ui/channels/{channel}", get(channels::channel_page))
        .route("/ui/channels/{channel}/add", post(channels::add_component))
        .route(
            "/ui/channels/{channel}/edit/{kind}/{name}",
            get(editor::editor_page).post(editor::editor_submit),
        )
        .route(
            "/ui/channels/{channel}/versions",
            get(workflow::versions_page),
        )
        .route(
            "/ui/channels/{channel}/deploy",
            post(workflow::deploy_submit),
        )
        .route(
            "/ui/channels/{channel}/rollback",
            post(workflow::rollback_submit),
        )
        .route(
            "/ui/channels/{channel}/versions/{number}/review",
            post(workflow::review_submit),
        )
        .route("/ui/channels/{channel}/diff", get(workflow::diff_page))
        .route(
            "/ui/channels/{channel}/export",
            get(workflow::export_download),
        )
        .route(
            "/ui/channels/{channel}/simulator",
            get(simulator::simulator_page).post(simulator::simulator_submit),
        )
        .route(
            "/ui/channels/{channel}/test-runs",
            post(testruns::run_submit),
        )
        .route("/ui/test-runs/{id}", get(testruns::run_page))
        .route("/ui/groups", get(admin::groups_page))
        .route("/ui/reports", get(reports::reports_page))
        .route("/ui/audit", get(admin::audit_page))
        .route("/ui/unknown", get(admin::unknown_page))
        .route("/ui/unknown/create", post(admin::create_unknown))
        .route("/ui/users", get(admin::users_page).post(admin::user_submit))
        .route("/ui/users/{name}/{action}", post(admin::user_action))
        .route("/ui/tokens", post(admin::token_submit))
        .route("/ui/tokens/{id}/revoke", post(admin::revoke_token))
        .route_layer(axum::middleware::from_fn_with_state(
            control,
            guard::check_csrf,
        ))
}

/// The items of a JSON array in a component body or a free-form answer; none for anything
/// else.
fn items(value: &J) -> Vec<&J> {
    value.as_array().into_iter().flatten().collect()
}
