//! The control plane's API under `/api/`: thin routes, one file per resource, each reading
//! its request, calling the service and writing its answer. Roles, checks and the audit log
//! are the service's.

pub(crate) mod access;
pub(crate) mod design;
pub(crate) mod groups;
pub(crate) mod records;
pub(crate) mod testruns;
pub(crate) mod versions;

use std::future::Future;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::serve::Listener;
use axum::{Json, Router};
use kairos_api::serve::ConnectionLimits;
use kairos_api::{Code, Problem};
use serde::de::DeserializeOwned;

use crate::service::{Caller, ControlPlane};

type Shared = State<Arc<ControlPlane>>;

/// The path of a channel's routes, read and documented.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct ChannelPath {
    /// The channel's name.
    pub channel: String,
}

/// The path of a component's routes.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct ComponentPath {
    /// The channel's name.
    pub channel: String,
    /// settings, audience_levels, zones, offers, segments, flowcharts, rules, events,
    /// event_patterns.
    pub kind: String,
    /// The component's name (`channel` for the settings).
    pub name: String,
}

/// The path of a version's routes.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct VersionPath {
    /// The channel's name.
    pub channel: String,
    /// The version's number.
    pub number: i64,
}

/// The path of a server group's routes.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct GroupPath {
    /// The server group's name: letters, digits, `-` and `_`.
    #[param(pattern = "^[A-Za-z0-9_-]+$")]
    pub group: String,
}

/// The path of a runtime instance's status reports.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct InstancePath {
    /// The server group's name.
    pub group: String,
    /// The runtime instance's name.
    pub instance: String,
}

/// The path of a table's import.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct TablePath {
    /// The table's name.
    pub name: String,
}

pub(crate) use kairos_api::extract::Body;

/// A query string, its rejection a problem document.
pub(crate) struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Problem> {
        let query: Result<axum::extract::Query<T>, QueryRejection> =
            axum::extract::Query::from_request_parts(parts, state).await;
        Ok(Params(query?.0))
    }
}

/// Serves the control plane until `shutdown` resolves, its connections bounded as the
/// runtime's are by default.
pub async fn run<L>(
    listener: L,
    control: Arc<ControlPlane>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: Listener,
    L::Addr: Clone + Send + Sync + 'static,
{
    let stopping = control.clone();
    let stopped = async move {
        shutdown.await;
        stopping.stop();
    };
    kairos_api::serve::serve(
        listener,
        router(control),
        ConnectionLimits::default(),
        stopped,
    )
    .await
}

pub fn router(control: Arc<ControlPlane>) -> Router {
    // What any holder of a valid token may call: who they are, ending their own tokens,
    // and a runtime's side of its group.
    let any_caller = Router::new()
        .route("/api/me", get(access::me))
        .route("/api/logout", post(access::logout))
        .route("/api/tokens/{id}", axum::routing::delete(access::revoke))
        .route("/api/groups/{group}/active", get(groups::active))
        .route(
            "/api/groups/{group}/instances/{instance}",
            post(groups::heartbeat),
        )
        .route_layer(middleware::from_fn_with_state(
            control.clone(),
            authenticate::<false>,
        ));
    let api = Router::new()
        .route("/api/users", get(access::users).post(access::create_user))
        .route(
            "/api/users/{user}",
            axum::routing::delete(access::delete_user),
        )
        .route("/api/users/{user}/disabled", put(access::set_user_disabled))
        .route(
            "/api/tokens",
            get(access::tokens).post(access::create_token),
        )
        .route("/api/channels", get(design::channels))
        .route("/api/channels/apply", post(design::apply))
        .route("/api/channels/{channel}", get(design::channel))
        .route("/api/channels/{channel}/export", get(design::export))
        .route("/api/channels/{channel}/validate", get(design::validate))
        .route(
            "/api/channels/{channel}/components/{kind}/{name}",
            get(design::component)
                .put(design::put_component)
                .delete(design::delete_component),
        )
        .route("/api/channels/{channel}/diff", get(design::diff))
        .route(
            "/api/channels/{channel}/versions",
            get(versions::versions).post(versions::create_version),
        )
        .route(
            "/api/channels/{channel}/versions/{number}",
            get(versions::version),
        )
        .route(
            "/api/channels/{channel}/versions/{number}/reviews",
            post(versions::review),
        )
        .route(
            "/api/channels/{channel}/versions/{number}/impact",
            get(versions::impact),
        )
        .route(
            "/api/channels/{channel}/versions/{number}/segments",
            get(versions::segments),
        )
        .route("/api/groups", get(groups::groups))
        .route("/api/groups/{group}", put(groups::put_group))
        .route("/api/groups/{group}/deployments", post(groups::deploy))
        .route("/api/groups/{group}/rollback", post(groups::rollback))
        .route(
            "/api/groups/{group}/test-runs",
            post(testruns::start_test_run),
        )
        .route("/api/test-runs/{id}", get(testruns::test_run))
        .route("/api/tables", get(records::tables))
        .route("/api/tables/{name}", post(records::import_table))
        .route("/api/unknown-names", get(records::unknown_names))
        .route("/api/reports/performance", get(records::performance))
        .route("/api/audit", get(records::audit_log))
        .route_layer(middleware::from_fn_with_state(
            control.clone(),
            authenticate::<true>,
        ));
    Router::new()
        .merge(api)
        .merge(any_caller)
        .merge(crate::ui::routes(control.clone()))
        .route("/api/login", post(access::login))
        .route(
            "/api/openapi.json",
            get(|| async { Json(crate::openapi::document()) }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .fallback(|| async {
            Problem::new(Code::NotFound, "no such endpoint; see /api/openapi.json")
        })
        .layer(DefaultBodyLimit::max(32 * 1024 * 1024))
        .layer(middleware::map_response(
            kairos_api::problem::bare_error_as_problem,
        ))
        .layer(middleware::map_response(crate::ui::security_headers))
        .with_state(control)
}

/// Ready to serve: the design database answers (503 `STORAGE_UNAVAILABLE` when it does not).
async fn readyz(State(control): State<Arc<ControlPlane>>) -> Result<&'static str, Problem> {
    control.ready().await.map(|()| "ready\n")
}

/// Every route but login needs a token: `Authorization: Bearer <token>`; the caller it
/// belongs to goes with the request. `READER`: the route reads or changes the design,
/// versions, groups or records, which only a user with a role may (see
/// [`Caller::may_read`]); the service checks which role each action needs.
async fn authenticate<const READER: bool>(
    State(cp): Shared,
    mut request: Request,
    next: Next,
) -> Response {
    let given = request
        .headers()
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
    let caller = match cp.caller(secret).await {
        Ok(caller) => caller,
        Err(problem) => return problem.into_response(),
    };
    if READER && let Err(problem) = caller.may_read() {
        return problem.into_response();
    }
    request.extensions_mut().insert::<Caller>(caller);
    next.run(request).await
}
