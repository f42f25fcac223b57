//! The Kairos runtime: the touchpoint APIs (native v1 and Unica Interact) over the decision
//! engine, sessions (in memory or shared in Redis), durable history, live reload, and
//! following a server group's control plane ([`follow`]). [`run`] serves a [`Runtime`] on a
//! listener until `shutdown` completes; tests start it on port 0. It never links the control
//! plane, its UI or password hashing.

pub mod access;
pub mod follow;
mod group;
mod held;
pub mod interact;
mod live;
mod metrics;
pub mod native;
mod offers_json;
mod openapi;
pub mod profiles;
pub mod runtime;
mod sessions;
pub mod shared;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::Listener;
use tower::ServiceExt;
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};
use tower_layer::Layer;
use tracing::Instrument;

pub use access::Access;
pub use runtime::{Config, Limits, ProfileSource, Runtime};

use crate::metrics::Metrics;
use kairos_api::{Code, Problem};

/// Serves until `shutdown` resolves, then ends every session, writing what it holds.
pub async fn run<L>(
    listener: L,
    runtime: Arc<Runtime>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: Listener,
    L::Addr: Clone + Send + Sync + 'static,
{
    let sweep_every = (runtime.config.idle_timeout / 4)
        .clamp(Duration::from_millis(100), Duration::from_secs(10));
    let sweeper_runtime = runtime.clone();
    // Drives idle expiry on a timer: an idle session expires even if no request comes. And
    // learning statistics written last, with no write after them, get published.
    let sweeper = tokio::spawn(async move {
        let mut tick = tokio::time::interval(sweep_every);
        loop {
            tick.tick().await;
            sweeper_runtime.expire_idle().await;
            sweeper_runtime.live.publish_changes();
        }
    });
    let group = runtime
        .live
        .follow_group(runtime.store.clone(), runtime.config.clock)
        .map(tokio::spawn);
    // Timing, panic catching, tokens and the body limit wrap the router once rather than each
    // route, as `Router::layer` would: a route's layers are cloned for every request it serves.
    let routes = DefaultBodyLimit::max(runtime.config.body_limit).layer(router(runtime.clone()));
    let checked = middleware::from_fn_with_state(runtime.clone(), authenticate).layer(routes);
    let app = middleware::from_fn_with_state(runtime.clone(), observe).layer(checked);
    let result =
        kairos_api::serve::serve(listener, app, runtime.config.limits.connections, shutdown).await;
    sweeper.abort();
    if let Some(group) = group {
        group.abort();
    }
    runtime.close_all().await;
    result
}

/// CORS for pages of the origins the group (or the command line) allows: their preflights
/// answered, their credentials headers (a bearer token, Interact's `m_tokenId`,
/// `m_user_name` and `m_user_password`) allowed, a cookie-free credentialed call allowed.
fn cors(origins: Arc<arc_swap::ArcSwap<access::Origins>>) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            origins.load().allow(origin.as_bytes())
        }))
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allow_headers(AllowHeaders::mirror_request())
        .allow_credentials(true)
        .expose_headers([header::HeaderName::from_static("m_tokenid")])
        .max_age(Duration::from_secs(600))
}

fn router(runtime: Arc<Runtime>) -> Router {
    let api = Router::new()
        .route("/v1/sessions", post(native::start_session))
        .route(
            "/v1/sessions/{id}",
            axum::routing::delete(native::end_session),
        )
        .route(
            "/v1/sessions/{id}/offers",
            post(native::get_offers_post).get(native::get_offers_get),
        )
        .route("/v1/sessions/{id}/events", post(native::post_event))
        .route(
            "/v1/sessions/{id}/audience",
            axum::routing::put(native::set_audience),
        )
        .route("/v1/sessions/{id}/profile", get(native::get_profile))
        .route("/v1/batch", post(native::batch))
        .route("/v1/version", get(native::version))
        .route("/v1/channels/{name}", get(native::channel));
    let interact = Router::new()
        .route("/interact/servlet/RestServlet", post(interact::servlet))
        .route("/interact/v2/{*path}", axum::routing::any(interact::v2));
    Router::new()
        .merge(api)
        .merge(interact)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route(
            "/openapi.json",
            get(|| async { axum::Json(openapi::document()) }),
        )
        .fallback(|| async { Problem::new(Code::NotFound, "no such endpoint; see /openapi.json") })
        .with_state(runtime)
}

/// The process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "`ok`", body = String, content_type = "text/plain")))]
async fn healthz() -> &'static str {
    "ok\n"
}

/// The runtime can serve: a deployment is loaded and its stores answer.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "`ready`", body = String, content_type = "text/plain")))]
async fn readyz(State(rt): State<Arc<Runtime>>) -> Response {
    match rt.readiness().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(problem) => problem.into_response(),
    }
}

/// Prometheus metrics: requests and latency per call, sessions, offers served, unknown names,
/// the history writer, records the group's shared counts missed.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text", body = String, content_type = "text/plain")))]
async fn metrics(State(rt): State<Arc<Runtime>>) -> impl IntoResponse {
    // Unknown when the shared session store cannot be reached: NaN, not a made-up zero.
    let live = rt.live_sessions().await.ok();
    let body = rt.metrics.render(
        live,
        &rt.store.writer_stats(),
        rt.live.group_uncounted_records(),
    );
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body)
}

/// Touchpoint tokens: `Authorization: Bearer <token>` on the native API (`/v1/`); Interact
/// clients may send theirs as `m_tokenId` or `m_user_password`. What the token reaches goes
/// with the request; each call checks its channel against it.
async fn authenticate(
    State(rt): State<Arc<Runtime>>,
    mut request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if !path.starts_with("/v1/") && !path.starts_with("/interact/") {
        return next.run(request).await;
    }
    match access_of(&rt, &request) {
        Ok(access) => {
            request.extensions_mut().insert(access);
            next.run(request).await
        }
        Err(problem) => problem.into_response(),
    }
}

fn access_of(rt: &Runtime, request: &Request) -> Result<Access, Problem> {
    if rt.is_open() {
        return Ok(Access::Any);
    }
    // Read from the request itself: a `HeaderMap` extractor would copy every header.
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    let bearer = header(header::AUTHORIZATION.as_str()).and_then(|v| v.strip_prefix("Bearer "));
    if !request.uri().path().starts_with("/interact/") {
        return rt.access(bearer);
    }
    let given = [bearer, header("m_tokenId"), header("m_user_password")];
    // Interact answers bad credentials with 401, whatever was wrong with them.
    rt.access(given.into_iter().flatten())
        .map_err(|refused| match refused.code {
            _ if given.iter().all(Option::is_none) => Problem::new(
                Code::Unauthorized,
                "send m_tokenId (or m_user_name and m_user_password) with a touchpoint token",
            ),
            Code::Forbidden => Problem::new(Code::Unauthorized, refused.detail),
            _ => refused,
        })
}

/// Get offers by GET is the hottest call: it is answered here, past the router's matching,
/// path-parameter map and extractor layers, a fifth of its instructions. Only the plain
/// form `/v1/sessions/{id}/offers` with an ID that needs no decoding comes this way; any
/// other request, or any other spelling of this one, goes through the router.
async fn dispatch(rt: &Runtime, request: Request, next: Next) -> Response {
    // Browsers mark their calls with `Origin`: only those go through CORS (a preflight is
    // answered before any token is asked for; answers carry its headers). Calls from servers,
    // most touchpoints' and the hot path's, skip it and its headers.
    if request.headers().contains_key(header::ORIGIN) {
        let Ok(response) = rt.cors().layer(next).oneshot(request).await;
        return response.into_response();
    }
    let direct = (request.method() == Method::GET)
        .then(|| plain_offers_path(request.uri().path()))
        .flatten();
    let Some(id) = direct else {
        return next.run(request).await;
    };
    let access = match access_of(rt, &request) {
        Ok(access) => access,
        Err(problem) => return problem.into_response(),
    };
    native::get_offers_by_query(rt, id, &access, request.uri().query())
        .await
        .into_response()
}

/// The session ID of `/v1/sessions/{id}/offers`, when it is one segment with nothing to
/// percent-decode.
fn plain_offers_path(path: &str) -> Option<&str> {
    let id = path
        .strip_prefix("/v1/sessions/")?
        .strip_suffix("/offers")?;
    (!id.is_empty() && !id.contains(['/', '%'])).then_some(id)
}

fn call_of(method: &Method, path: &str) -> usize {
    let call = if path.starts_with("/interact") {
        "interact"
    } else if path == "/v1/sessions" && method == Method::POST {
        "start_session"
    } else if path.starts_with("/v1/sessions/") {
        match (method, path.rsplit('/').next()) {
            (_, Some("offers")) => "get_offers",
            (_, Some("events")) => "post_event",
            (_, Some("audience")) => "set_audience",
            (_, Some("profile")) => "get_profile",
            (&Method::DELETE, _) => "end_session",
            _ => "other",
        }
    } else if path == "/v1/batch" {
        "batch"
    } else if path == "/v1/version" {
        "version"
    } else {
        "other"
    };
    Metrics::call_index(call)
}

/// A call's ID: logged with everything the call logs, and answered in this header.
const REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");

/// Times every request, runs it in a `request` span with its ID (logged by the call's name,
/// not its path, which may hold a session ID), and turns a panic into a 500 problem instead
/// of a dropped connection.
async fn observe(State(rt): State<Arc<Runtime>>, request: Request, next: Next) -> Response {
    let call = call_of(request.method(), request.uri().path());
    let started = Instant::now();
    let id = request_id(&rt, &request);
    let span = tracing::info_span!(
        "request",
        id = id.to_str().unwrap_or_default(),
        call = metrics::CALLS[call]
    );
    let running = dispatch(&rt, request, next).instrument(span.clone());
    let response = match CatchUnwind(Box::pin(running)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::error!(parent: &span, "the call panicked; answered 500");
            Problem::internal("the server failed on this request; it has been counted")
                .into_response()
        }
    };
    let mut response = kairos_api::problem::bare_error_as_problem(response).await;
    let status = response.status().as_u16();
    rt.metrics.observe(call, status, started.elapsed());
    tracing::debug!(parent: &span, status, micros = started.elapsed().as_micros() as u64, "answered");
    response.headers_mut().insert(REQUEST_ID, id);
    response
}

/// The caller's `x-request-id` when it is a short token, so that a touchpoint's own ID reaches
/// these logs; else a new one.
fn request_id(rt: &Runtime, request: &Request) -> header::HeaderValue {
    if let Some(given) = request.headers().get(&REQUEST_ID)
        && (1..=64).contains(&given.len())
        && given
            .as_bytes()
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b))
    {
        return given.clone();
    }
    header::HeaderValue::from_str(&rt.request_id()).expect("hex digits make a header value")
}

struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}
