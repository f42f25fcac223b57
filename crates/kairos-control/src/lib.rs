//! The control plane: the design and deployment API under `/api/` that the CLI and the UI
//! both use. Users log in for a token; every action checks the caller's role and goes to
//! the audit log. Runtimes of a server group long-poll `/api/groups/{group}/active` for
//! what to serve and report their status back.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::Listener;
use axum::{Extension, Json, Router};
use kairos_engine::inprocess::{MemoryTables, population};
use kairos_engine::report::{impact, segment_counts};
use kairos_model::components::{self, Component, Kind, SETTINGS};
use kairos_model::{Rejected, Schemas};
use kairos_rules::time::Timestamp;
use kairos_store::control::{
    Activation, AuditEntry, ControlStore, Expect, Instance, Review, TestResult, Token, UnknownName,
    User, Version,
};
use kairos_store::{ProfileStore, StoreError};
use serde::Deserialize;
use serde_json::{Value as J, json};

pub mod auth;
mod flowchart;
mod html;
mod ui;

use kairos_api::{Code, Problem};
use kairos_engine::channel_hash;

use crate::auth::Role;

const OPENAPI: &str = include_str!("openapi.json");

/// The gates a production group checks unless configured otherwise.
pub fn default_gates() -> J {
    json!({ "staged": true, "scenarios": true, "loadtest": true, "approvals": 1 })
}

pub struct ControlPlane {
    pub store: ControlStore,
    /// The profile and dimension tables the runtimes read: their schemas type-check
    /// channels; the data administrator imports into them here.
    profiles: Arc<ProfileStore>,
    /// What an unknown user's password is checked against.
    no_user_hash: String,
    /// Groups' own data sources, opened when first used, by URL.
    group_data: tokio::sync::Mutex<HashMap<String, Arc<ProfileStore>>>,
    /// Groups' history databases, for reports, opened when first used, by URL.
    histories: tokio::sync::Mutex<HashMap<String, Arc<kairos_store::Sql>>>,
    clock: fn() -> Timestamp,
    /// Bumped on every activation or token change, so long polls answer at once.
    changed: tokio::sync::watch::Sender<u64>,
    /// Set when the server shuts down: long polls answer at once.
    stopping: std::sync::atomic::AtomicBool,
}

/// Who is calling: a user with roles, or a runtime of a group.
#[derive(Clone, Debug)]
pub struct Caller {
    pub name: String,
    pub roles: Vec<Role>,
    /// For a runtime token: the group it serves.
    pub runtime_group: Option<String>,
}

impl Caller {
    fn require(&self, any_of: &[Role]) -> Result<(), Problem> {
        if any_of.iter().any(|r| self.roles.contains(r)) {
            return Ok(());
        }
        let wanted: Vec<&str> = any_of.iter().map(|r| r.name()).collect();
        let held: Vec<&str> = self.roles.iter().map(|r| r.name()).collect();
        Err(Problem::new(
            Code::Forbidden,
            format!(
                "this needs the {} role; {} has {}",
                wanted.join(" or "),
                self.name,
                if held.is_empty() {
                    "none".to_string()
                } else {
                    held.join(", ")
                }
            ),
        ))
    }
}

fn storage(e: StoreError) -> Problem {
    match e {
        StoreError::Conflict { .. } => Problem::new(Code::Conflict, e.to_string()),
        StoreError::NotFound(_) => Problem::new(Code::NotFound, e.to_string()),
        other => Problem::new(Code::StorageUnavailable, other.to_string()),
    }
}

/// Password hashing takes tens of milliseconds on purpose: off the async workers.
async fn slow<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, Problem> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Problem::internal(format!("hashing the password failed: {e}")))
}

fn rejected(what: &str, r: Rejected) -> Problem {
    Problem::new(
        Code::InvalidChannelFile,
        format!("{what}: {} error(s)", r.0.len()),
    )
    .with_errors(r.0.iter().map(ToString::to_string).collect())
}

fn not_found(what: String) -> Problem {
    Problem::new(Code::NotFound, what)
}

type Reply = Result<Response, Problem>;

fn ok(value: J) -> Reply {
    Ok(Json(value).into_response())
}

/// The items of a JSON array; none for anything else. For reading the API's answers.
pub fn items(value: &J) -> Vec<&J> {
    value.as_array().into_iter().flatten().collect()
}

/// In an answer of `GET /api/groups`, the address of `group`'s instance that reported last.
pub fn freshest_address(groups: &J, group: &str) -> Option<String> {
    items(groups)
        .into_iter()
        .find(|g| g["name"] == group)
        .and_then(|g| {
            items(&g["instances"])
                .into_iter()
                .min_by_key(|i| i["seconds_since_seen"].as_i64().unwrap_or(i64::MAX))
                .and_then(|i| i["address"].as_str().map(str::to_string))
        })
}

fn time(t: Timestamp) -> J {
    J::String(kairos_rules::time::format_timestamp(t))
}

impl ControlPlane {
    pub async fn open(
        database: &str,
        clock: fn() -> Timestamp,
    ) -> Result<ControlPlane, StoreError> {
        Ok(ControlPlane {
            store: ControlStore::open(database, &default_gates()).await?,
            profiles: Arc::new(ProfileStore::open(database).await?),
            no_user_hash: auth::hash_password(&auth::new_password()),
            group_data: tokio::sync::Mutex::new(HashMap::new()),
            histories: tokio::sync::Mutex::new(HashMap::new()),
            clock,
            changed: tokio::sync::watch::channel(0).0,
            stopping: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// Creates the `admin` user with every role, unless it exists; returns whether it did.
    pub async fn ensure_admin(&self, password: &str) -> Result<bool, StoreError> {
        if self.store.user("admin").await?.is_some() {
            return Ok(false);
        }
        let user = User {
            name: "admin".into(),
            password_hash: auth::hash_password(password),
            roles: Role::ALL.iter().map(|r| r.name().to_string()).collect(),
        };
        self.store.put_user(&user, self.now()).await?;
        Ok(true)
    }

    /// Issues a token; only its digest is stored.
    pub async fn issue_token(
        &self,
        kind: &str,
        subject: &str,
        label: &str,
        by: &str,
    ) -> Result<String, StoreError> {
        let secret = auth::new_token(match kind {
            "user" => "ku",
            "runtime" => "kr",
            _ => "kt",
        });
        let token = Token {
            kind: kind.to_string(),
            subject: subject.to_string(),
            label: label.to_string(),
            digest: auth::token_digest(&secret),
        };
        self.store.add_token(&token, by, self.now()).await?;
        if kind == "touchpoint" {
            // Every group's runtimes must learn of it: what they serve changed.
            self.store.touch_groups().await?;
            self.signal();
        }
        Ok(secret)
    }

    /// Imports a channel file, snapshots it and activates it on `group`, unless a channel of
    /// that name exists already (`kairos up`'s demo). Returns whether it did.
    pub async fn seed_channel(&self, file: &str, yaml: &str, group: &str) -> Result<bool, Problem> {
        let channel = kairos_model::parse_channel(file, yaml, &self.schemas().await?)
            .map_err(|e| rejected(file, e))?;
        let name = channel.name.value.clone();
        if self.store.channel(&name).await.map_err(storage)?.is_some() {
            return Ok(false);
        }
        let actor = "admin";
        self.store
            .replace_channel(&name, &components::split(&channel), actor, self.now())
            .await
            .map_err(storage)?;
        self.audit(actor, "apply", &name, file.to_string()).await?;
        let (version, _) = self.snapshot(&name, "the demo channel", actor).await?;
        let caller = Caller {
            name: actor.to_string(),
            roles: Role::ALL.to_vec(),
            runtime_group: None,
        };
        activate(self, &caller, group, &version, "deploy", None).await?;
        Ok(true)
    }

    /// Records where `group`'s runtimes keep their history, so reports can read it.
    pub async fn set_history(&self, group: &str, url: &str) -> Result<(), Problem> {
        let mut g = group_named(self, group).await?;
        if g.history.as_deref() != Some(url) {
            g.history = Some(url.to_string());
            self.store.put_group(&g).await.map_err(storage)?;
        }
        Ok(())
    }

    fn signal(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        detail: String,
    ) -> Result<(), Problem> {
        self.store
            .audit(&AuditEntry {
                at: self.now(),
                actor: actor.to_string(),
                action: action.to_string(),
                target: target.to_string(),
                detail,
            })
            .await
            .map_err(storage)
    }

    /// The tables of `group`'s data source: its own, or the default one.
    async fn profiles_for(&self, group: Option<&str>) -> Result<Arc<ProfileStore>, Problem> {
        let Some(group) = group else {
            return Ok(self.profiles.clone());
        };
        let Some(url) = group_named(self, group).await?.data else {
            return Ok(self.profiles.clone());
        };
        let mut open = self.group_data.lock().await;
        if let Some(store) = open.get(&url) {
            return Ok(store.clone());
        }
        let store = Arc::new(ProfileStore::open(&url).await.map_err(storage)?);
        open.insert(url, store.clone());
        Ok(store)
    }

    async fn schemas(&self) -> Result<Schemas, Problem> {
        let mut schemas = Schemas::new();
        for s in self.profiles.schemas().await.map_err(storage)? {
            schemas.insert(s);
        }
        Ok(schemas)
    }

    async fn design(&self, channel: &str) -> Result<Vec<Component>, Problem> {
        if self
            .store
            .channel(channel)
            .await
            .map_err(storage)?
            .is_none()
        {
            return Err(not_found(format!("channel '{channel}' does not exist")));
        }
        Ok(self
            .store
            .components(channel)
            .await
            .map_err(storage)?
            .into_iter()
            .map(|c| c.component)
            .collect())
    }

    async fn version(&self, channel: &str, number: i64) -> Result<Version, Problem> {
        self.store
            .version(channel, number)
            .await
            .map_err(storage)?
            .ok_or_else(|| not_found(format!("channel '{channel}' has no version {number}")))
    }

    /// Every error of the design, each in its component: {component, line, column, message}.
    async fn design_errors(&self, channel: &str) -> Result<Vec<J>, Problem> {
        let design = self.design(channel).await?;
        Ok(match components::check(channel, &design, &self.schemas().await?) {
            Ok(_) => Vec::new(),
            Err(r) => r
                .0
                .iter()
                .map(|d| json!({ "component": d.file, "line": d.line, "column": d.column, "message": d.message }))
                .collect(),
        })
    }

    /// Components of a version, or of the current design for `design`.
    async fn components_of(&self, channel: &str, which: &str) -> Result<Vec<Component>, Problem> {
        if which == "design" {
            return self.design(channel).await;
        }
        let number: i64 = which.parse().map_err(|_| {
            Problem::bad_request(format!("'{which}' is not a version number or 'design'"))
        })?;
        let v = self.version(channel, number).await?;
        let parsed = kairos_model::read_channel(&format!("{channel} v{number}"), &v.yaml)
            .map_err(|e| rejected("stored version", e))?;
        Ok(components::split(&parsed))
    }

    /// Snapshots the design as a version, reusing the newest one when nothing changed.
    async fn snapshot(
        &self,
        channel: &str,
        note: &str,
        author: &str,
    ) -> Result<(Version, bool), Problem> {
        let design = self.design(channel).await?;
        let checked = components::check(channel, &design, &self.schemas().await?)
            .map_err(|e| rejected(&format!("the design of '{channel}' is not deployable"), e))?;
        let hash = channel_hash(&checked);
        let versions = self.store.versions(channel).await.map_err(storage)?;
        if let Some(last) = versions.last().filter(|v| v.hash == hash) {
            return Ok((last.clone(), false));
        }
        let mut version = Version {
            channel: channel.to_string(),
            number: 0,
            yaml: kairos_model::to_yaml(&checked),
            hash,
            author: author.to_string(),
            created_at: self.now(),
            note: note.to_string(),
            report: json!({
                "errors": [],
                "zones": checked.zones.len(),
                "offers": checked.offers.len(),
                "segments": checked.segments.len(),
                "flowcharts": checked.flowcharts.len(),
                "rules": checked.rules.len(),
                "events": checked.events.len(),
            }),
        };
        version.number = self.store.create_version(&version).await.map_err(storage)?;
        self.audit(
            author,
            "snapshot",
            &format!("{channel} v{}", version.number),
            note.to_string(),
        )
        .await?;
        Ok((version, true))
    }

    /// The gates `version` fails on its way to `group`: one line each.
    async fn failed_gates(
        &self,
        group: &kairos_store::control::Group,
        channel: &str,
        version: i64,
    ) -> Result<Vec<String>, Problem> {
        let gates = &group.gates;
        let mut failed = Vec::new();
        let groups = self.store.groups().await.map_err(storage)?;
        let staging: Vec<&str> = groups
            .iter()
            .filter(|g| !g.production)
            .map(|g| g.name.as_str())
            .collect();
        if gates["staged"].as_bool().unwrap_or(false) {
            let activations = self
                .store
                .activations(channel, None)
                .await
                .map_err(storage)?;
            if !activations
                .iter()
                .any(|a| a.version == version && staging.contains(&a.group.as_str()))
            {
                failed.push(format!(
                    "staged: version {version} has not been active on a staging group"
                ));
            }
        }
        let results = self
            .store
            .results(channel, version)
            .await
            .map_err(storage)?;
        for (gate, kind, what) in [
            ("scenarios", "scenarios", "scenario tests"),
            ("loadtest", "loadtest", "load test"),
        ] {
            if !gates[gate].as_bool().unwrap_or(false) {
                continue;
            }
            let latest = results
                .iter()
                .rev()
                .find(|r| r.kind == kind && staging.contains(&r.group.as_str()));
            match latest {
                None => failed.push(format!(
                    "{gate}: no {what} result on staging for version {version}"
                )),
                Some(r) if !r.passed => {
                    failed.push(format!("{gate}: the last {what} on {} failed", r.group))
                }
                Some(_) => {}
            }
        }
        let needed = gates["approvals"].as_u64().unwrap_or(0);
        let reviews = self
            .store
            .reviews(channel, version)
            .await
            .map_err(storage)?;
        let mut latest: HashMap<&str, &Review> = HashMap::new();
        for r in &reviews {
            latest.insert(&r.reviewer, r);
        }
        let approvals = latest.values().filter(|r| r.approved).count() as u64;
        for r in latest.values().filter(|r| !r.approved) {
            failed.push(format!(
                "approvals: rejected by {}: {}",
                r.reviewer, r.comment
            ));
        }
        if approvals < needed {
            failed.push(format!(
                "approvals: {approvals} of {needed} required approval(s)"
            ));
        }
        Ok(failed)
    }
}

/// Serves the control plane until `shutdown` resolves.
pub async fn run<L>(
    listener: L,
    control: Arc<ControlPlane>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: Listener,
    L::Addr: std::fmt::Debug,
{
    let stopping = control.clone();
    axum::serve(listener, router(control))
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Long polls in flight answer now rather than hold the shutdown for their wait.
            stopping
                .stopping
                .store(true, std::sync::atomic::Ordering::Relaxed);
            stopping.signal();
        })
        .await
}

pub fn router(control: Arc<ControlPlane>) -> Router {
    let api = Router::new()
        .route("/api/me", get(me))
        .route("/api/users", get(list_users).post(create_user))
        .route("/api/tokens", get(list_tokens).post(create_token))
        .route("/api/channels", get(list_channels))
        .route("/api/channels/apply", post(apply))
        .route("/api/channels/{channel}", get(channel))
        .route("/api/channels/{channel}/export", get(export))
        .route("/api/channels/{channel}/validate", get(validate))
        .route(
            "/api/channels/{channel}/components/{kind}/{name}",
            get(get_component)
                .put(put_component)
                .delete(delete_component),
        )
        .route(
            "/api/channels/{channel}/versions",
            get(list_versions).post(create_version),
        )
        .route(
            "/api/channels/{channel}/versions/{number}",
            get(get_version),
        )
        .route(
            "/api/channels/{channel}/versions/{number}/reviews",
            post(review),
        )
        .route(
            "/api/channels/{channel}/versions/{number}/results",
            post(attach_result),
        )
        .route(
            "/api/channels/{channel}/versions/{number}/impact",
            get(impact_report),
        )
        .route(
            "/api/channels/{channel}/versions/{number}/segments",
            get(segments_report),
        )
        .route("/api/channels/{channel}/diff", get(diff))
        .route("/api/groups", get(list_groups))
        .route("/api/groups/{group}", axum::routing::put(put_group))
        .route("/api/groups/{group}/deployments", post(deploy))
        .route("/api/groups/{group}/rollback", post(rollback))
        .route("/api/groups/{group}/active", get(active))
        .route("/api/groups/{group}/instances/{instance}", post(heartbeat))
        .route("/api/tables", get(list_tables))
        .route("/api/tables/{name}", post(import_table))
        .route("/api/unknown-names", get(unknown_names))
        .route("/api/reports/performance", get(performance_report))
        .route("/api/audit", get(audit_log))
        .route_layer(middleware::from_fn_with_state(
            control.clone(),
            authenticate,
        ));
    Router::new()
        .merge(api)
        .merge(ui::routes())
        .route("/api/login", post(login))
        .route(
            "/api/openapi.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], OPENAPI) }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .fallback(|| async {
            Problem::new(Code::NotFound, "no such endpoint; see /api/openapi.json")
        })
        .layer(DefaultBodyLimit::max(32 * 1024 * 1024))
        .layer(middleware::map_response(
            kairos_api::problem::bare_error_as_problem,
        ))
        .with_state(control)
}

async fn authenticate(
    State(cp): State<Arc<ControlPlane>>,
    headers: HeaderMap,
    mut request: Request,
    next: Next,
) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(secret) = given else {
        return Problem::new(
            Code::Unauthorized,
            "log in first: send Authorization: Bearer <token> (kairos login)",
        )
        .into_response();
    };
    match caller_of(&cp, secret).await {
        Ok(caller) => {
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(problem) => problem.into_response(),
    }
}

/// Who holds this token: a user, or a group's runtime. Touchpoint tokens are for runtimes,
/// not for the control plane.
async fn caller_of(cp: &ControlPlane, secret: &str) -> Result<Caller, Problem> {
    let invalid = || Problem::new(Code::Unauthorized, "this token is not valid; log in again");
    let token = cp
        .store
        .token(&auth::token_digest(secret))
        .await
        .map_err(storage)?
        .ok_or_else(invalid)?;
    match token.kind.as_str() {
        "user" => {
            let user = cp
                .store
                .user(&token.subject)
                .await
                .map_err(storage)?
                .ok_or_else(invalid)?;
            Ok(Caller {
                name: user.name,
                roles: user
                    .roles
                    .iter()
                    .filter_map(|r| Role::from_name(r))
                    .collect(),
                runtime_group: None,
            })
        }
        "runtime" => Ok(Caller {
            name: format!("runtime of {}", token.subject),
            roles: Vec::new(),
            runtime_group: Some(token.subject),
        }),
        _ => Err(invalid()),
    }
}

fn body<T: serde::de::DeserializeOwned>(
    json: Result<Json<T>, axum::extract::rejection::JsonRejection>,
) -> Result<T, Problem> {
    Ok(json?.0)
}

/// Also the fields of the UI's form for the same action.
#[derive(Deserialize)]
struct LoginBody {
    user: String,
    password: String,
}

async fn login(
    State(cp): State<Arc<ControlPlane>>,
    json: Result<Json<LoginBody>, axum::extract::rejection::JsonRejection>,
) -> Reply {
    let b = body(json)?;
    let user = cp.store.user(&b.user).await.map_err(storage)?;
    // The same answer, after the same work, for an unknown user and a wrong password: an
    // unknown user is checked against a hash of nothing, so timing tells nobody who exists.
    let stored = user
        .as_ref()
        .map_or_else(|| cp.no_user_hash.clone(), |u| u.password_hash.clone());
    let matches = slow(move || auth::verify_password(&b.password, &stored)).await?;
    let Some(user) = user.filter(|_| matches) else {
        return Err(Problem::new(
            Code::BadCredentials,
            "unknown user or wrong password",
        ));
    };
    let token = cp
        .issue_token("user", &user.name, "login", &user.name)
        .await
        .map_err(storage)?;
    cp.audit(&user.name, "login", &user.name, String::new())
        .await?;
    ok(json!({ "token": token, "user": user.name, "roles": user.roles }))
}

async fn me(Extension(caller): Extension<Caller>) -> Reply {
    let roles: Vec<&str> = caller.roles.iter().map(|r| r.name()).collect();
    ok(json!({ "user": caller.name, "roles": roles }))
}

async fn list_users(
    State(cp): State<Arc<ControlPlane>>,
    Extension(caller): Extension<Caller>,
) -> Reply {
    caller.require(&[Role::Administrator])?;
    let users = cp.store.users().await.map_err(storage)?;
    ok(J::Array(
        users
            .iter()
            .map(|u| json!({ "name": u.name, "roles": u.roles }))
            .collect(),
    ))
}

#[derive(Deserialize)]
struct UserBody {
    name: String,
    password: String,
    roles: Vec<String>,
}

async fn create_user(
    State(cp): State<Arc<ControlPlane>>,
    Extension(caller): Extension<Caller>,
    json: Result<Json<UserBody>, axum::extract::rejection::JsonRejection>,
) -> Reply {
    caller.require(&[Role::Administrator])?;
    let b = body(json)?;
    if let Some(bad) = b.roles.iter().find(|r| Role::from_name(r).is_none()) {
        let known: Vec<&str> = Role::ALL.iter().map(|r| r.name()).collect();
        return Err(Problem::bad_request(format!(
            "roles: '{bad}' is not a role; roles are {}",
            known.join(", ")
        )));
    }
    if b.name.trim().is_empty() || b.password.len() < 8 {
        return Err(Problem::bad_request(
            "name and password: a name and a password of at least 8 characters are needed",
        ));
    }
    let password = b.password;
    let user = User {
        name: b.name.trim().to_string(),
        password_hash: slow(move || auth::hash_password(&password)).await?,
        roles: b.roles,
    };
    cp.store.put_user(&user, cp.now()).await.map_err(storage)?;
    cp.audit(
        &caller.name,
        "user",
        &user.name,
        format!("roles: {}", user.roles.join(", ")),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "name": user.name, "roles": user.roles })),
    )
        .into_response())
}

async fn list_tokens(
    State(cp): State<Arc<ControlPlane>>,
    Extension(caller): Extension<Caller>,
) -> Reply {
    caller.require(&[Role::Administrator])?;
    let mut out = Vec::new();
    for kind in ["touchpoint", "runtime"] {
        for t in cp.store.tokens(kind).await.map_err(storage)? {
            out.push(json!({ "kind": t.kind, "for": t.subject, "label": t.label }));
        }
    }
    ok(J::Array(out))
}

/// Also the fields of the UI's form for the same action.
#[derive(Clone, Deserialize)]
struct TokenBody {
    /// `touchpoint` (for a channel) or `runtime` (for a server group).
    kind: String,
    /// The channel or group it is for.
    #[serde(rename = "for")]
    subject: String,
    #[serde(default)]
    label: String,
}

async fn create_token(
    State(cp): State<Arc<ControlPlane>>,
    Extension(caller): Extension<Caller>,
    json: Result<Json<TokenBody>, axum::extract::rejection::JsonRejection>,
) -> Reply {
    caller.require(&[Role::Administrator])?;
    let b = body(json)?;
    if !matches!(b.kind.as_str(), "touchpoint" | "runtime") {
        return Err(Problem::bad_request(
            "kind: 'touchpoint' (for a channel) or 'runtime' (for a server group)",
        ));
    }
    let secret = cp
        .issue_token(&b.kind, &b.subject, &b.label, &caller.name)
        .await
        .map_err(storage)?;
    cp.audit(
        &caller.name,
        "token",
        &b.subject,
        format!("{} token '{}'", b.kind, b.label),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "token": secret, "kind": b.kind, "for": b.subject })),
    )
        .into_response())
}

async fn list_channels(State(cp): State<Arc<ControlPlane>>) -> Reply {
    let channels = cp.store.channels().await.map_err(storage)?;
    ok(J::Array(
        channels
            .iter()
            .map(|c| json!({ "name": c.name, "revision": c.revision, "updated_by": c.updated_by, "updated_at": time(c.updated_at) }))
            .collect(),
    ))
}

/// Also the fields of the UI's form for the same action.
#[derive(Clone, Deserialize)]
struct ApplyBody {
    /// The file name errors are reported against.
    #[serde(default = "default_file")]
    file: String,
    yaml: String,
}

fn default_file() -> String {
    "channel.yaml".into()
}

async fn apply(
    State(cp): State<Arc<ControlPlane>>,
    Extension(caller): Extension<Caller>,
    json: Result<Json<ApplyBody>, axum::extract::rejection::JsonRejection>,
) -> Reply {
    caller.require(&[Role::Designer])?;
    let b = body(json)?;
    let channel = kairos_model::parse_channel(&b.file, &b.yaml, &cp.schemas().await?)
        .map_err(|e| rejected(&format!("{} was not applied", b.file), e))?;
    let name = channel.name.value.clone();
    let parts = components::split(&channel);
    let revision = cp
        .store
        .replace_channel(&name, &parts, &caller.name, cp.now())
        .await
        .map_err(storage)?;
    cp.audit(
        &caller.name,
        "apply",
        &name,
        format!("{} at revision {revision}", b.file),
    )
    .await?;
    ok(json!({ "channel": name, "revision": revision, "components": parts.len() }))
}

async fn channel(State(cp): State<Arc<ControlPlane>>, Path(channel): Path<String>) -> Reply {
    let info = cp
        .store
        .channel(&channel)
        .await
        .map_err(storage)?
        .ok_or_else(|| not_found(format!("channel '{channel}' does not exist")))?;
    let components = cp.store.components(&channel).await.map_err(storage)?;
    ok(json!({
        "name": info.name,
        "revision": info.revision,
        "updated_by": info.updated_by,
        "updated_at": time(info.updated_at),
        "components": components.iter().map(|c| json!({
            "kind": c.component.kind.name(),
            "name": c.component.name,
            "revision": c.revision,
            "updated_by": c.updated_by,
            "updated_at": time(c.updated_at),
            "body": c.component.body,
        })).collect::<Vec<_>>(),
    }))
}

#[derive(Deserialize)]
struct ExportQuery {
    version: Option<i64>,
}

async fn export(
    State(cp): State<Arc<ControlPlane>>,
    Path(channel): Path<String>,
    query: Result<Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
) -> Reply {
    let yaml = match query?.0.version {
        Some(n) => cp.version(&channel, n).await?.yaml,
        None => {
            let design = cp.design(&channel).await?;
            let assembled = components::assemble(&channel, &design);
            // The design may be mid-edit: export whatever has the right shape.
            let read = kairos_model::read_channel("design", &assembled.text)
                .map_err(|e| rejected("the design cannot be exported", e))?;
            kairos_model::to_yaml(&read)
        }
    };
    Ok(([(header::CONTENT_TYPE, "application/yaml")], yaml).into_response())
}

async fn validate(State(cp): State<Arc<ControlPlane>>, Path(channel): Path<String>) -> Reply {
    let errors = cp.design_errors(&channel).await?;
    ok(json!({ "valid": errors.is_empty(), "errors": errors }))
}

fn kind_of(kind: &str) -> Result<Kind, Problem> {
    Kind::from_name(kind).ok_or_else(|| {
        let kinds: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
        not_found(format!(
            "'{kind}' is not a component kind; kinds are {}",
            kinds.join(", ")
        ))
    })
}

fn etag(revision: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{revision}\"")).expect("digits make a valid header")
}

/// `If-Match: "7"` edits revision 7 only; `If-None-Match: *` creates only; neither
/// overwrites whatever is there.
fn expect_of(headers: &HeaderMap) -> Result<Expect, Problem> {
    if let Some(v) = headers.get(header::IF_MATCH) {
        let text = v.to_str().unwrap_or_default().trim().trim_matches('"');
        return text.parse().map(Expect::Revision).map_err(|_| {
            Problem::bad_request("if-match: a revision in quotes, as the ETag gave it")
        });
    }
    if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v == "*") {
        return Ok(Expect::Absent);
    }
    Ok(Expect::Any)
}

async fn get_component(
    State(cp): State<Arc<ControlPlane>>,
    Path((channel, kind, name)): Path<(String, String, String)>,
) -> Reply {
    let kind = kind_of(&kind)?;
    let found = cp
        .store
        .components(&channel)
        .await
        .map_err(storage)?
        .into_iter()
        .find(|c| c.component.kind == kind && c.component.name == name)
        .ok_or_else(|| not_found(format!("{channel} has no {}/{name}", kind.name())))?;
    let mut response = Json(found.component.body).into_response();
    response
        .headers_mut()
        .insert(header::ETAG, etag(found.revision));
    Ok(response)
}

async fn put_component(
    State(cp): State<Arc<ControlPlane>>,
    Extension(caller): Extension<Caller>,
    Path((channel, kind, name)): Path<(String, String, String)>,
    headers: HeaderMap,
    json: Result<Json<J>, axum::extract::rejection::JsonRejection>,
) -> Reply {
    caller.require(&[Role::Designer])?;
    let kind = kind_of(&kind)?;
    let body = body(json)?;
    if kind == Kind::Settings && name != SETTINGS {
        return Err(Problem::bad_request(format!(
            "name: a channel's settings are named '{SETTINGS}'"
        )));
    }
    let component = Component { kind, name, body };
    let revision = cp
        .store
        .put_component(
            &channel,
            &component,
            expect_of(&headers)?,
            &caller.name,
            cp.now(),
        )
        .await
        .map_err(storage)?;
    cp.audit(
        &caller.name,
        "edit",
        &format!("{channel}/{}", component.path()),
        format!("revision {revision}"),
    )
    .await?;
    // Saved either way (a design may be mid-edit); the errors say what blocks a deploy.
    let errors = cp.design_errors(&channel).await?;
    let mut response = Json(json!({ "revision": revision, "errors": errors })).into_response();
    response.headers_mut().insert(header::ETAG, etag(revision));
    Ok(response)
}

async fn delete_component(
    State(cp): State<Arc<ControlPlane>>,
    Extension(caller): Extension<Caller>,
    Path((channel, kind, name)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Reply {
    caller.require(&[Role::Designer])?;
    let kind = kind_of(&kind)?;
    let revision = cp
        .store
        .delete_component(
            &channel,
            kind,
            &name,
            expect_of(&headers)?,
            &caller.name,
            cp.now(),
        )
        .await
        .map_err(storage)?;
    cp.audit(
        &caller.name,
        "delete",
        &format!("{channel}/{}/{name}", kind.name()),
        format!("revision {revision}"),
    )
    .await?;
    ok(json!({ "revision": revision }))
}

/// Where a channel's versions have run and run now: read once for all its versions.
struct Deployments {
    activations: Vec<Activation>,
    /// (group, version active there).
    active: Vec<(String, i64)>,
}

impl Deployments {
    async fn of(cp: &ControlPlane, channel: &str) -> Result<Deployments, Problem> {
        let mut active = Vec::new();
        for g in cp.store.groups().await.map_err(storage)? {
            let running = cp.store.active(&g.name).await.map_err(storage)?;
            if let Some((_, n)) = running.into_iter().find(|(c, _)| c == channel) {
                active.push((g.name, n));
            }
        }
        Ok(Deployments {
            activations: cp.store.activations(channel, None).await.map_err(storage)?,
            active,
        })
    }
}

async fn version_json(
    cp: &ControlPlane,
    v: &Version,
    with_yaml: bool,
    deployments: &Deployments,
) -> Result<J, Problem> {
    let active_in: Vec<&str> = deployments
        .active
        .iter()
        .filter(|(_, n)| *n == v.number)
        .map(|(g, _)| g.as_str())
        .collect();
    let deployed_to: Vec<J> = deployments
        .activations
        .iter()
        .filter(|a| a.version == v.number)
        .map(|a| json!({ "group": a.group, "by": a.by, "at": time(a.at), "action": a.action, "reason": a.reason }))
        .collect();
    let reviews = cp
        .store
        .reviews(&v.channel, v.number)
        .await
        .map_err(storage)?;
    let results = cp
        .store
        .results(&v.channel, v.number)
        .await
        .map_err(storage)?;
    let mut doc = json!({
        "channel": v.channel,
        "number": v.number,
        "hash": v.hash,
        "author": v.author,
        "created_at": time(v.created_at),
        "note": v.note,
        "report": v.report,
        "active_in": active_in,
        "deployments": deployed_to,
        "reviews": reviews.iter().map(|r| json!({
            "reviewer": r.reviewer, "decision": if r.approved { "approved" } else { "rejected" },
            "comment": r.comment, "at": time(r.at),
        })).collect::<Vec<_>>(),
        "results": results.iter().map(|r| json!({
            "group": r.group, "kind": r.kind, "passed": r.passed, "summary": r.summary,
            "by": r.by, "at": time(r.at),
        })).collect::<Vec<_>>(),
    });
    if with_yaml {
        doc["yaml"] = J::String(v.yaml.clone());
    }
    Ok(doc)
}

async fn list_versions(State(cp): State<Arc<ControlPlane>>, Path(channel): Path<String>) -> Reply {
    let deployments = Deployments::of(&cp, &channel).await?;
    let mut out = Vec::new();
    for v in cp.store.versions(&channel).await.map_err(storage)? {
        out.push(version_json(&cp, &v, false, &deployments).await?);
    }
    ok(J::Array(out))
}

async fn get_version(
    State(cp): State<Arc<ControlPlane>>,
    Path((channel, number)): Path<(String, i64)>,
) -> Reply {
    let v = cp.version(&channel, number).await?;
    let deployments = Deployments::of(&cp, &channel).await?;
    ok(version_json(&cp, &v, true, &deployments).await?)
}

#[derive(Deserialize, Default)]
struct NoteBody {
    #[serde(default)]
    note: String,
}

async fn create_version(
    State(cp): State<Arc<ControlPlane>>,
    Extension(caller): Extension<Caller>,
    Path(channel): Path<String>,
    json: Result<Json<NoteBody>, axum::extract::rejection::JsonRejection>,
) -> Reply {
    caller.require(&[Role::Designer, Role::Administrator, Role::Manager])?;
    let b = body(json)?;
    let (v, created) = cp.snapshot(&channel, &b.note, &caller.name).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let deployments = Deployments::of(&cp, &channel).await?;
    Ok((
        status,
        Json(version_json(&cp, &v, false, &deployments).await?),
    )
        .into_response())
}

/// Also the fields of the UI's form for the same action.
#[derive(Deserialize)]
struct ReviewBody {
    /// `approve` or `reject`.
    decision: String,
    #[serde(default)]
    comment: String,
}

async fn review(
    State(cp): State<Arc<ControlPlane>>,
    Extension(caller): Extension<Caller>,
    Path((channel, number)): Path<(String, i64)>,
    json: Result<Json<ReviewBody>, axum::extract::rejection::JsonRejection>,
) -> Reply {
    caller.require(&[Role::Reviewer])?;
    let b = body(json)?;
    let approved = match b.decision.as_str() {
        "approve" => true,
        "reject" => false,
        other => {
            return Err(Problem::bad_request(format!(
                "decision: 'approve' or 'reject', not '{other}'"
            )));
        }
    };
    cp.version(&channel, number).await?;
    let review = Review {
        reviewer: caller.name.clone(),
        approved,
        comment: b.comment,
        at: cp.now(),
    };
    cp.store
        .add_review(&channel, number, &review)
        .await
        .map_err(storage)?;
    cp.audit(
        &caller.name,
        if approved { "approve" } else { "reject" },
        &format!("{channel} v{number}"),
        review.comment,
    )
    .await?;
    ok(json!({ "channel": channel, "version": number, "decision": b.decision }))
}

#[derive(Deserialize)]
struct ResultBody {
    group: String,
    /// `scenarios` or `loadtest`.
    kind: String,
    passed: bool,
    #[serde(default)]
    summary: J,
}

async fn attach_result(
    State(cp): State<Arc<ControlPlane>>,
    Extension(caller): Extension<Caller>,
    Path((channel, number)): Path<(String, i64)>,
    json: Result<Json<ResultBody>, axum::extract::rejection::JsonRejection>,
) -> Reply {
    caller.require(&Role::ALL)?;
    let b = body(json)?;
    if !matches!(b.kind.as_str(), "scenarios" | "loadtest") {
        return Err(Problem::bad_request("kind: 'scenarios' or 'loadtest'"));
    }
    cp.version(&channel, number).await?;
    let result = TestResult {
        group: b.group,
        kind: b.kind,
        passed: b.passed,
        summary: b.summary,
        by: caller.name.clone(),
        at: cp.now(),
    };
    cp.store
        .add_result(&channel, number, &result)
        .await
        .map_err(storage)?;
    cp.audit(
        &caller.name,
        "test result",
        &format!("{channel} v{number}"),
        format!(
            "{} on {}: {}",
            result.kind,
            result.group,
            if result.passed { "passed" } else { "failed" }
        ),
    )
    .await?;
    Ok(StatusCode::CREATED.into_response())
}

#[derive(Deserialize)]
struct ReportQuery {
    /// Impact: the group whose active version is compared (default `production`), or a
    /// version number.
    against: Option<String>,
    /// Impact: offers asked for at every interaction point.
    #[serde(default = "three")]
    count: usize,
    /// The audience level whose profile table is the population (default: the channel's).
    level: Option<String>,
    /// At most this many rows of each table.
    #[serde(default = "sample_rows")]
    limit: i64,
}

fn three() -> usize {
    3
}

fn sample_rows() -> i64 {
    100_000
}

impl ControlPlane {
    /// A version compiled against the default data source's tables.
    async fn compiled(
        &self,
        channel: &str,
        number: i64,
        schemas: &Schemas,
    ) -> Result<kairos_engine::Deployment, Problem> {
        let v = self.version(channel, number).await?;
        let parsed = kairos_model::parse_channel(&format!("{channel} v{number}"), &v.yaml, schemas)
            .map_err(|e| rejected("the version no longer checks against the tables", e))?;
        kairos_engine::Deployment::compile(&parsed, schemas, number as u64)
            .map_err(|e| Problem::new(Code::InvalidChannelFile, e.to_string()))
    }

    /// The default data source's tables in memory, prepared for `deployments`.
    async fn population_tables(
        &self,
        deployments: &[&kairos_engine::Deployment],
        limit: i64,
    ) -> Result<MemoryTables, Problem> {
        let mut tables = Vec::new();
        for schema in self.profiles.schemas().await.map_err(storage)? {
            tables.push(
                self.profiles
                    .table(&schema, limit.clamp(1, 1_000_000))
                    .await
                    .map_err(storage)?,
            );
        }
        let mut tables = MemoryTables::new(tables);
        for dep in deployments {
            tables.prepare(dep);
        }
        Ok(tables)
    }
}

fn report_failed(e: impl std::fmt::Display) -> Problem {
    Problem::new(Code::NoPopulation, e.to_string())
}

/// For reviewers: over the profile table's visitors, which offers gain or lose how many
/// visitors, and which segments change size, if this version replaced the one `against` runs.
async fn impact_report(
    State(cp): State<Arc<ControlPlane>>,
    Path((channel, number)): Path<(String, i64)>,
    query: Result<Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Reply {
    let q = query?.0;
    let against = q.against.unwrap_or_else(|| "production".into());
    let current_number = match against.parse::<i64>() {
        Ok(n) => n,
        Err(_) => {
            group_named(&cp, &against).await?;
            cp.store
                .active(&against)
                .await
                .map_err(storage)?
                .into_iter()
                .find(|(c, _)| *c == channel)
                .map(|(_, n)| n)
                .ok_or_else(|| {
                    Problem::new(
                        Code::NothingActive,
                        format!("{against} runs no version of {channel}: nothing to compare with"),
                    )
                })?
        }
    };
    let schemas = cp.schemas().await?;
    let candidate = cp.compiled(&channel, number, &schemas).await?;
    let current = cp.compiled(&channel, current_number, &schemas).await?;
    let tables = cp
        .population_tables(&[&current, &candidate], q.limit)
        .await?;
    let now = cp.now();
    let count = q.count.clamp(1, 100);
    // Thousands of sessions: off the async workers.
    let (level, table, report) = tokio::task::spawn_blocking(move || {
        let p = population(&tables, &candidate, q.level.as_deref())?;
        let report = impact(&current, &candidate, p.visitors, count, now);
        Ok::<_, String>((p.level, p.table, report))
    })
    .await
    .map_err(report_failed)?
    .map_err(report_failed)?;
    let rows = |rows: &[(String, u64, u64)]| -> Vec<J> {
        rows.iter()
            .map(|(name, now, next)| json!({ "name": name, "current": now, "candidate": next }))
            .collect()
    };
    ok(json!({
        "channel": channel,
        "version": number,
        "against": { "name": against, "version": current_number },
        "level": level,
        "table": table,
        "visitors": report.visitors,
        "offers": rows(&report.offers),
        "segments": rows(&report.segments),
    }))
}

/// A flowchart test run of a version over the profile table: segment sizes and path counts.
async fn segments_report(
    State(cp): State<Arc<ControlPlane>>,
    Path((channel, number)): Path<(String, i64)>,
    query: Result<Query<ReportQuery>, axum::extract::rejection::QueryRejection>,
) -> Reply {
    let q = query?.0;
    let schemas = cp.schemas().await?;
    let dep = cp.compiled(&channel, number, &schemas).await?;
    let tables = cp.population_tables(&[&dep], q.limit).await?;
    let now = cp.now();
    let (level, table, counts) = tokio::task::spawn_blocking(move || {
        let p = population(&tables, &dep, q.level.as_deref())?;
        let counts = segment_counts(&dep, p.visitors, now);
        Ok::<_, String>((p.level, p.table, counts))
    })
    .await
    .map_err(report_failed)?
    .map_err(report_failed)?;
    let pairs = |rows: &[(String, u64)]| -> Vec<J> {
        rows.iter()
            .map(|(name, n)| json!({ "name": name, "visitors": n }))
            .collect()
    };
    ok(json!({
        "channel": channel,
        "version": number,
        "level": level,
        "table": table,
        "visitors": counts.visitors,
        "rejected": counts.rejected,
        "segments": pairs(&counts.segments),
        "branches": pairs(&counts.branches),
    }))
}

#[derive(Deserialize)]
struct DiffQuery {
    from: String,
    #[serde(default = "design")]
    to: String,
}

fn design() -> String {
    "design".into()
}

async fn diff(
    State(cp): State<Arc<ControlPlane>>,
    Path(channel): Path<String>,
    query: Result<Query<DiffQuery>, axum::extract::rejection::QueryRejection>,
) -> Reply {
    let q = query?.0;
    let old = cp.components_of(&channel, &q.from).await?;
    let new = cp.components_of(&channel, &q.to).await?;
    ok(json!({ "from": q.from, "to": q.to, "changes": components::diff(&old, &new) }))
}

async fn list_groups(State(cp): State<Arc<ControlPlane>>) -> Reply {
    let now = cp.now();
    let mut out = Vec::new();
    for g in cp.store.groups().await.map_err(storage)? {
        let active = cp.store.active(&g.name).await.map_err(storage)?;
        let instances = cp.store.instances(&g.name).await.map_err(storage)?;
        out.push(json!({
            "name": g.name,
            "production": g.production,
            "gates": g.gates,
            "data": g.data,
            "history": g.history,
            "active": active.iter().map(|(c, n)| json!({ "channel": c, "version": n })).collect::<Vec<_>>(),
            "instances": instances.iter().map(|i| json!({
                "instance": i.instance,
                "address": i.address,
                "running": i.running,
                "stats": i.stats,
                "seen_at": time(i.seen_at),
                "seconds_since_seen": (now.0 - i.seen_at.0) / 1_000_000_000,
            })).collect::<Vec<_>>(),
        }));
    }
    ok(J::Array(out))
}

#[derive(Deserialize)]
struct GroupBody {
    #[serde(default)]
    production: Option<bool>,
    /// Gate settings: `staged`, `scenarios`, `loadtest` (booleans), `approvals` (a count).
    #[serde(default)]
    gates: Option<J>,
    /// The group's own data source (`sqlite://...`, `postgres://...`), or null to share the
    /// default one.
    #[serde(default)]
    data: Option<String>,
    /// Where its runtimes keep history (for reports); absent keeps it, "" forgets it.
    #[serde(default)]
    history: Option<String>,
}

/// Creates a server group or changes one.
async fn put_group(
    State(cp): State<Arc<ControlPlane>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    json: Result<Json<GroupBody>, axum::extract::rejection::JsonRejection>,
) -> Reply {
    caller.require(&[Role::Administrator])?;
    let b = body(json)?;
    let valid_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid_name {
        return Err(Problem::bad_request(
            "group: letters, digits, '-' and '_' only",
        ));
    }
    if let Some(gates) = &b.gates
        && !gates.is_object()
    {
        return Err(Problem::bad_request(
            "gates: an object such as {\"approvals\": 2}",
        ));
    }
    if let Some(url) = &b.data {
        // Opened now, so a wrong URL is refused here rather than at the first import.
        ProfileStore::open(url)
            .await
            .map_err(|e| Problem::bad_request(format!("data: {e}")))?;
    }
    let existing = cp.store.group(&name).await.map_err(storage)?;
    let production = b
        .production
        .or(existing.as_ref().map(|g| g.production))
        .unwrap_or(false);
    let gates = b
        .gates
        .or(existing.as_ref().map(|g| g.gates.clone()))
        .unwrap_or_else(|| {
            if production {
                default_gates()
            } else {
                json!({})
            }
        });
    let group = kairos_store::control::Group {
        name: name.clone(),
        production,
        gates,
        generation: 0,
        data: b.data,
        // Absent keeps it; an empty string forgets it.
        history: match b.history {
            Some(url) if url.is_empty() => None,
            Some(url) => Some(url),
            None => existing.and_then(|g| g.history),
        },
    };
    cp.store.put_group(&group).await.map_err(storage)?;
    cp.signal();
    cp.audit(
        &caller.name,
        "group",
        &name,
        format!(
            "production: {production}, gates: {}, data: {}",
            group.gates,
            group.data.as_deref().unwrap_or("shared")
        ),
    )
    .await?;
    ok(
        json!({ "name": name, "production": production, "gates": group.gates, "data": group.data, "history": group.history }),
    )
}

async fn group_named(
    cp: &ControlPlane,
    name: &str,
) -> Result<kairos_store::control::Group, Problem> {
    cp.store
        .group(name)
        .await
        .map_err(storage)?
        .ok_or_else(|| not_found(format!("there is no server group '{name}'")))
}

#[derive(Deserialize)]
struct DeployBody {
    channel: String,
    /// Without it, the current design is snapshotted as a new version.
    version: Option<i64>,
    #[serde(default)]
    note: String,
    /// An administrator deploying past failed gates must say why.
    override_reason: Option<String>,
}

async fn deploy(
    State(cp): State<Arc<ControlPlane>>,
    Extension(caller): Extension<Caller>,
    Path(group): Path<String>,
    json: Result<Json<DeployBody>, axum::extract::rejection::JsonRejection>,
) -> Reply {
    caller.require(&[Role::Administrator, Role::Manager])?;
    let b = body(json)?;
    let g = group_named(&cp, &group).await?;
    let version = match b.version {
        Some(n) => cp.version(&b.channel, n).await?,
        None => cp.snapshot(&b.channel, &b.note, &caller.name).await?.0,
    };
    let mut reason = None;
    if g.production {
        // A channel has exactly one production group: the first it goes to.
        for other in cp.store.groups().await.map_err(storage)? {
            if !other.production || other.name == g.name {
                continue;
            }
            let runs_it = cp
                .store
                .activations(&b.channel, Some(&other.name))
                .await
                .map_err(storage)?;
            if !runs_it.is_empty() {
                return Err(Problem::new(
                    Code::OneProductionGroup,
                    format!(
                        "{}'s production group is {}; a channel has exactly one",
                        b.channel, other.name
                    ),
                ));
            }
        }
        let failed = cp.failed_gates(&g, &b.channel, version.number).await?;
        if !failed.is_empty() {
            match b
                .override_reason
                .as_deref()
                .map(str::trim)
                .filter(|r| !r.is_empty())
            {
                Some(r) if caller.roles.contains(&Role::Administrator) => {
                    reason = Some(format!("override of [{}]: {r}", failed.join("; ")));
                }
                Some(_) => {
                    return Err(Problem::new(
                        Code::Forbidden,
                        "only an administrator can override gates",
                    )
                    .with_errors(failed));
                }
                None => {
                    return Err(Problem::new(
                        Code::GatesFailed,
                        format!(
                            "version {} of {} cannot go to {group}: {} gate(s) failed",
                            version.number,
                            b.channel,
                            failed.len()
                        ),
                    )
                    .with_errors(failed));
                }
            }
        }
    }
    activate(&cp, &caller, &group, &version, "deploy", reason).await?;
    ok(
        json!({ "group": group, "channel": b.channel, "version": version.number, "hash": version.hash }),
    )
}

async fn activate(
    cp: &ControlPlane,
    caller: &Caller,
    group: &str,
    version: &Version,
    action: &str,
    reason: Option<String>,
) -> Result<(), Problem> {
    cp.store
        .activate(&Activation {
            group: group.to_string(),
            channel: version.channel.clone(),
            version: version.number,
            by: caller.name.clone(),
            at: cp.now(),
            action: action.to_string(),
            reason: reason.clone(),
        })
        .await
        .map_err(storage)?;
    cp.signal();
    cp.audit(
        &caller.name,
        action,
        &format!("{} v{} on {group}", version.channel, version.number),
        reason.unwrap_or_default(),
    )
    .await
}

#[derive(Deserialize)]
struct RollbackBody {
    channel: String,
    to: Option<i64>,
}

async fn rollback(
    State(cp): State<Arc<ControlPlane>>,
    Extension(caller): Extension<Caller>,
    Path(group): Path<String>,
    json: Result<Json<RollbackBody>, axum::extract::rejection::JsonRejection>,
) -> Reply {
    caller.require(&[Role::Administrator, Role::Manager])?;
    let b = body(json)?;
    group_named(&cp, &group).await?;
    let history = cp
        .store
        .activations(&b.channel, Some(&group))
        .await
        .map_err(storage)?;
    let current = cp
        .store
        .active(&group)
        .await
        .map_err(storage)?
        .into_iter()
        .find(|(c, _)| *c == b.channel)
        .map(|(_, n)| n);
    let target = match b.to {
        // Only a version this group has run: anything else goes through deploy and its gates.
        Some(n) if history.iter().any(|a| a.version == n) => n,
        Some(n) => {
            return Err(Problem::new(
                Code::NeverActive,
                format!(
                    "version {n} of {} never ran on {group}; deploy it instead",
                    b.channel
                ),
            ));
        }
        None => history
            .iter()
            .rev()
            .map(|a| a.version)
            .find(|n| Some(*n) != current)
            .ok_or_else(|| {
                Problem::new(
                    Code::NothingToRollBackTo,
                    format!("{group} has run no other version of {}", b.channel),
                )
            })?,
    };
    let version = cp.version(&b.channel, target).await?;
    activate(&cp, &caller, &group, &version, "rollback", None).await?;
    ok(json!({ "group": group, "channel": b.channel, "version": target, "previous": current }))
}

#[derive(Deserialize)]
struct ActiveQuery {
    #[serde(default)]
    after: i64,
    /// Seconds to wait for a change past `after`.
    #[serde(default)]
    wait: u64,
}

/// What a group's runtimes serve. With `after` and `wait`, answers as soon as the group's
/// generation passes `after` (a long poll), or after `wait` seconds with what is current.
async fn active(
    State(cp): State<Arc<ControlPlane>>,
    Extension(caller): Extension<Caller>,
    Path(group): Path<String>,
    query: Result<Query<ActiveQuery>, axum::extract::rejection::QueryRejection>,
) -> Reply {
    if caller.runtime_group.as_deref().is_some_and(|g| g != group) {
        return Err(Problem::new(
            Code::Forbidden,
            format!("this runtime token is not for {group}"),
        ));
    }
    let q = query?.0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(q.wait.min(60));
    let mut changed = cp.changed.subscribe();
    let g = loop {
        let g = group_named(&cp, &group).await?;
        if g.generation > q.after
            || tokio::time::Instant::now() >= deadline
            || cp.stopping.load(std::sync::atomic::Ordering::Relaxed)
        {
            break g;
        }
        // Another control plane instance may have changed it: look again within a second.
        let _ = tokio::time::timeout(
            Duration::from_secs(1).min(deadline - tokio::time::Instant::now()),
            changed.changed(),
        )
        .await;
    };
    let mut deployments = Vec::new();
    let mut channels = Vec::new();
    for (channel, number) in cp.store.active(&group).await.map_err(storage)? {
        let v = cp.version(&channel, number).await?;
        deployments
            .push(json!({ "channel": channel, "version": number, "hash": v.hash, "yaml": v.yaml }));
        channels.push(channel);
    }
    let tokens: Vec<J> = cp
        .store
        .tokens("touchpoint")
        .await
        .map_err(storage)?
        .into_iter()
        .filter(|t| channels.iter().any(|c| c.eq_ignore_ascii_case(&t.subject)))
        .map(|t| J::String(t.digest))
        .collect();
    ok(json!({
        "group": group,
        "generation": g.generation,
        "data": g.data,
        "deployments": deployments,
        "touchpoint_token_digests": tokens,
    }))
}

#[derive(Deserialize)]
struct HeartbeatBody {
    address: String,
    #[serde(default)]
    running: J,
    /// Names touchpoints called since the last report: {channel, kind, name, calls}.
    #[serde(default)]
    unknown: Vec<UnknownBody>,
    /// Throughput and latency: requests_per_second, get_offers_p50_ms, get_offers_p99_ms...
    #[serde(default)]
    stats: J,
}

#[derive(Deserialize)]
struct UnknownBody {
    channel: String,
    kind: String,
    name: String,
    calls: i64,
}

async fn heartbeat(
    State(cp): State<Arc<ControlPlane>>,
    Extension(caller): Extension<Caller>,
    Path((group, instance)): Path<(String, String)>,
    json: Result<Json<HeartbeatBody>, axum::extract::rejection::JsonRejection>,
) -> Reply {
    if caller.runtime_group.as_deref() != Some(group.as_str()) {
        caller.require(&[Role::Administrator])?;
    }
    let b = body(json)?;
    group_named(&cp, &group).await?;
    let now = cp.now();
    cp.store
        .report_instance(&Instance {
            group: group.clone(),
            instance,
            address: b.address,
            running: b.running,
            stats: b.stats,
            seen_at: now,
        })
        .await
        .map_err(storage)?;
    for u in b.unknown {
        cp.store
            .report_unknown(&UnknownName {
                channel: u.channel,
                kind: u.kind,
                name: u.name,
                calls: u.calls,
                last_at: now,
            })
            .await
            .map_err(storage)?;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct TablesQuery {
    /// A group with its own data source; the default one otherwise.
    group: Option<String>,
}

async fn list_tables(
    State(cp): State<Arc<ControlPlane>>,
    query: Result<Query<TablesQuery>, axum::extract::rejection::QueryRejection>,
) -> Reply {
    let group = query?.0.group;
    let profiles = cp.profiles_for(group.as_deref()).await?;
    let schemas = profiles.schemas().await.map_err(storage)?;
    ok(J::Array(
        schemas
            .iter()
            .map(|s| json!({
                "name": s.name,
                "columns": s.columns.iter().map(|c| json!({ "name": c.name, "type": c.ty.name() })).collect::<Vec<_>>(),
            }))
            .collect(),
    ))
}

#[derive(Deserialize)]
struct PerformanceQuery {
    group: String,
    /// `offer`, `segment`, `zone` or `day`.
    #[serde(default = "by_offer")]
    by: String,
    /// The last this many days.
    #[serde(default = "thirty")]
    days: i64,
}

fn by_offer() -> String {
    "offer".into()
}

fn thirty() -> i64 {
    30
}

/// Offer performance from a group's history: contacts, accepts, rejects and the acceptance
/// rate with its 95% interval (the Beta posterior learning draws from), by offer, segment,
/// zone or day.
async fn performance_report(
    State(cp): State<Arc<ControlPlane>>,
    query: Result<Query<PerformanceQuery>, axum::extract::rejection::QueryRejection>,
) -> Reply {
    let q = query?.0;
    if !matches!(q.by.as_str(), "offer" | "segment" | "zone" | "day") {
        return Err(Problem::bad_request("by: offer, segment, zone or day"));
    }
    let g = group_named(&cp, &q.group).await?;
    let url = g.history.ok_or_else(|| {
        Problem::new(
            Code::NoHistory,
            format!(
                "group {} has no history source for reports: kairos group {} --history URL",
                q.group, q.group
            ),
        )
    })?;
    let history = {
        let mut open = cp.histories.lock().await;
        match open.get(&url) {
            Some(history) => history.clone(),
            None => {
                let history = Arc::new(kairos_store::Sql::open(&url).await.map_err(storage)?);
                open.insert(url, history.clone());
                history
            }
        }
    };
    let days = q.days.clamp(1, 3660);
    let since = Timestamp(cp.now().0 - days * 86_400 * 1_000_000_000);
    let mut totals: std::collections::BTreeMap<String, [u64; 3]> = Default::default();
    for row in history.performance(since).await.map_err(storage)? {
        let key = match q.by.as_str() {
            "offer" => row.offer,
            "segment" if row.segment.is_empty() => "(every visitor)".into(),
            "segment" => row.segment,
            "zone" => row.zone,
            _ => {
                let (y, m, d) = kairos_rules::time::civil_from_days(row.day);
                format!("{y:04}-{m:02}-{d:02}")
            }
        };
        let slot = match row.kind.as_str() {
            "contact" => 0,
            "accept" => 1,
            _ => 2,
        };
        totals.entry(key).or_default()[slot] += row.count as u64;
    }
    let mut rows: Vec<(String, [u64; 3])> = totals.into_iter().collect();
    if q.by != "day" {
        rows.sort_by(|a, b| b.1[0].cmp(&a.1[0]).then(a.0.cmp(&b.0)));
    }
    let rows: Vec<J> = rows
        .into_iter()
        .map(|(key, [contacts, accepts, rejects])| {
            let p = kairos_engine::learning::summarize(kairos_engine::world::Stats {
                contacts,
                accepts,
            });
            json!({
                "key": key, "contacts": contacts, "accepts": accepts, "rejects": rejects,
                "rate": p.mean, "low": p.low, "high": p.high,
            })
        })
        .collect();
    ok(json!({ "group": q.group, "by": q.by, "days": days, "rows": rows }))
}

#[derive(Deserialize)]
struct ImportQuery {
    key: String,
    /// Into this group's own data source.
    group: Option<String>,
    /// Column types instead of inferring them: COLUMN:TYPE,...
    schema: Option<String>,
}

/// `COLUMN:TYPE,...` as declared column types.
pub fn declared_types(
    spec: Option<&str>,
) -> Result<HashMap<String, kairos_model::table::ColumnType>, String> {
    let mut types = HashMap::new();
    for item in spec
        .into_iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.trim().is_empty())
    {
        let Some((column, ty)) = item.split_once(':') else {
            return Err(format!(
                "schema: COLUMN:TYPE pairs separated by commas, got '{item}'"
            ));
        };
        let Some(ty) = kairos_model::table::ColumnType::from_name(ty.trim()) else {
            return Err(format!(
                "schema: '{ty}' is not a type; use int, double, bool, timestamp or string"
            ));
        };
        types.insert(column.trim().to_string(), ty);
    }
    Ok(types)
}

async fn import_table(
    State(cp): State<Arc<ControlPlane>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    query: Result<Query<ImportQuery>, axum::extract::rejection::QueryRejection>,
    csv: String,
) -> Reply {
    caller.require(&[Role::DataAdministrator])?;
    let q = query?.0;
    let types = declared_types(q.schema.as_deref()).map_err(Problem::bad_request)?;
    let table = kairos_model::table::read_csv(&name, csv.as_bytes(), &types)
        .map_err(|e| Problem::bad_request(format!("body: {e}")))?;
    let profiles = cp.profiles_for(q.group.as_deref()).await?;
    let rows = profiles.import(&table, &q.key).await.map_err(|e| match e {
        StoreError::Corrupt(m) => Problem::bad_request(m),
        other => storage(other),
    })?;
    let into = q
        .group
        .as_deref()
        .map_or_else(String::new, |g| format!(" for group {g}"));
    cp.audit(
        &caller.name,
        "import",
        &name,
        format!("{rows} rows, key {}{into}", q.key),
    )
    .await?;
    let columns: Vec<J> = table
        .schema
        .columns
        .iter()
        .map(|c| json!({ "name": c.name, "type": c.ty.name() }))
        .collect();
    ok(json!({ "table": name, "rows": rows, "key": q.key, "columns": columns, "group": q.group }))
}

async fn unknown_names(State(cp): State<Arc<ControlPlane>>) -> Reply {
    let names = cp.store.unknown_names().await.map_err(storage)?;
    ok(J::Array(
        names
            .iter()
            .map(|u| json!({ "channel": u.channel, "kind": u.kind, "name": u.name, "calls": u.calls, "last_at": time(u.last_at) }))
            .collect(),
    ))
}

#[derive(Deserialize)]
struct AuditQuery {
    #[serde(default = "hundred")]
    limit: i64,
}

fn hundred() -> i64 {
    100
}

async fn audit_log(
    State(cp): State<Arc<ControlPlane>>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Reply {
    let limit = query?.0.limit.clamp(1, 10_000);
    let log = cp.store.audit_log(limit).await.map_err(storage)?;
    ok(J::Array(
        log.iter()
            .map(|e| json!({ "at": time(e.at), "actor": e.actor, "action": e.action, "target": e.target, "detail": e.detail }))
            .collect(),
    ))
}
