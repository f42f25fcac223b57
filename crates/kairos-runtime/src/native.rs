//! The native runtime API (v1), as `runtime-api.md` specifies it: requests and answers are
//! the types of `kairos_api::runtime`.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use kairos_api::extract::{Body, read_value};
use kairos_api::runtime::{
    AudienceRequest, BatchAnswer, ChannelAnswer, Command, EventAnswer, EventRequest, EventView,
    LevelView, MessagesAnswer, OfferAsk, ProfileAnswer, ServedChannel, StartRequest, Values,
    VersionAnswer,
};
use kairos_api::{Code, Problem, runtime as wire, value_json};
use kairos_engine::world::AudienceId;
use kairos_engine::{EventResponse, OfferRequest, OffersRequest, OffersResponse, ProfileView};
use kairos_rules::Value;
use serde::Serialize;
use serde_json::{Map, Value as J};

use crate::access::Access;
use crate::offers_json::{messages, offers_body, offers_json};
use crate::runtime::{Loaded, Runtime, StartCall, Started, limit_exceeded};

pub type Shared = State<Arc<Runtime>>;

/// A JSON response serialized into one buffer sized for a typical answer: axum's `Json`
/// grows its buffer from 128 bytes, copying it each time.
pub struct JsonOut<T>(pub T);

impl<T: Serialize> IntoResponse for JsonOut<T> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(1024);
        match serde_json::to_writer(&mut body, &self.0) {
            Ok(()) => json_bytes(body),
            Err(e) => {
                Problem::internal(format!("the response could not be written: {e}")).into_response()
            }
        }
    }
}

/// A JSON parameter value: strings, numbers and booleans only (runtime callers never send
/// code, nor structures).
fn param_value(field: &str, v: &J) -> Result<Value, Problem> {
    match v {
        J::String(s) => Ok(Value::string(s.as_str())),
        J::Bool(b) => Ok(Value::Bool(*b)),
        J::Number(n) => Ok(n
            .as_i64()
            .map_or_else(|| Value::Double(n.as_f64().unwrap_or(f64::NAN)), Value::Int)),
        J::Null => Err(Problem::bad_request(format!(
            "{field}: null is not a value; leave the parameter out"
        ))),
        J::Array(_) | J::Object(_) => Err(Problem::bad_request(format!(
            "{field}: must be a string, number or boolean"
        ))),
    }
}

/// Named values as rule values; `field` names them in errors.
pub fn params(field: &str, values: Option<&Values>) -> Result<Vec<(String, Value)>, Problem> {
    values
        .into_iter()
        .flat_map(|v| &v.0)
        .map(|(k, v)| Ok((k.clone(), param_value(&format!("{field}.{k}"), v)?)))
        .collect()
}

fn values_json<'a>(pairs: impl Iterator<Item = (&'a String, &'a Value)>) -> Map<String, J> {
    pairs.map(|(k, v)| (k.clone(), value_json(v))).collect()
}

/// The get offers answer as an HTTP response.
fn offers_response((r, loaded): &(OffersResponse, Arc<Loaded>)) -> Response {
    json_bytes(offers_body(r, &loaded.fragments))
}

fn json_bytes(body: Vec<u8>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

fn event_answer(r: EventResponse) -> EventAnswer {
    EventAnswer {
        messages: messages(&r.messages),
        segments: r.segments,
        patterns: r
            .patterns
            .map(|p| J::Object(p.into_iter().map(|(k, v)| (k, J::Bool(v))).collect())),
    }
}

fn profile_answer(p: &ProfileView) -> ProfileAnswer {
    ProfileAnswer {
        audience_level: p.audience_level.clone(),
        audience_id: values_json(p.audience_id.iter().map(|(k, v)| (k, v))),
        profile: values_json(p.profile.iter()),
        params: values_json(p.params.iter()),
        segments: p.segments.clone(),
        // Every response carries its messages (the runtime API's contract); reading a
        // profile raises none.
        messages: Vec::new(),
    }
}

fn started_answer(s: Started) -> wire::Started {
    wire::Started {
        messages: messages(&s.messages),
        session_id: s.session_id,
        segments: s.segments,
    }
}

/// A start session request as the runtime's call; `session_id` is the batch's, when the
/// request names none.
pub fn start_call(request: StartRequest, session_id: Option<String>) -> Result<StartCall, Problem> {
    if request.audience_id.0.is_empty() {
        return Err(Problem::bad_request(
            "audience_id: give the audience ID fields, like { \"customer_id\": 1001 }",
        ));
    }
    Ok(StartCall {
        session_id: request.session_id.or(session_id),
        channel: request.channel,
        audience: audience(request.audience_level, &request.audience_id)?,
        params: params("params", request.params.as_ref())?,
        rely_on_existing_session: request.rely_on_existing_session.unwrap_or(false),
        debug: request.debug.unwrap_or(false),
    })
}

#[utoipa::path(post, path = "/v1/sessions", tag = "native", request_body = StartRequest,
    responses((status = 200, description = "The session, started (or, with rely_on_existing_session, kept)", body = wire::Started)))]
pub async fn start_session(
    State(rt): Shared,
    Extension(access): Extension<Access>,
    Body(body): Body<StartRequest>,
) -> Result<JsonOut<wire::Started>, Problem> {
    let started = rt.start_session(start_call(body, None)?, &access).await?;
    Ok(JsonOut(started_answer(started)))
}

/// At most this many offers per interaction point in one request.
const MAX_COUNT: u32 = 100;

/// How many offers an interaction point asks for (1 when unsaid), checked against the
/// bounds; `field` names it in errors (made only then: get offers is the hot path). The
/// Interact paths check theirs the same way.
pub(crate) fn offer_count(
    given: Option<u32>,
    field: impl FnOnce() -> String,
) -> Result<usize, Problem> {
    match given.unwrap_or(1) {
        0 => Err(Problem::bad_request(format!(
            "{}: must be at least 1",
            field()
        ))),
        n if n > MAX_COUNT => Err(Problem::bad_request(format!(
            "{}: at most {MAX_COUNT}",
            field()
        ))),
        n => Ok(n as usize),
    }
}

/// An interaction point's ask with its count checked; `field` names the count in errors.
fn checked(ask: OfferAsk, field: impl FnOnce() -> String) -> Result<OfferRequest, Problem> {
    Ok(OfferRequest {
        allow_duplicates: ask.allow_duplicates,
        ..OfferRequest::new(ask.ip, offer_count(ask.count, field)?)
    })
}

fn offers_request(body: wire::OffersRequest) -> Result<OffersRequest, Problem> {
    if body.requests.is_empty() {
        return Err(Problem::bad_request(
            "requests: name at least one interaction point",
        ));
    }
    let requests = body
        .requests
        .into_iter()
        .enumerate()
        .map(|(i, r)| checked(r, || format!("requests[{i}].count")))
        .collect::<Result<_, _>>()?;
    Ok(OffersRequest {
        requests,
        params: params("params", body.params.as_ref())?,
        allow_duplicates: body.allow_duplicates.unwrap_or(false),
    })
}

#[utoipa::path(post, path = "/v1/sessions/{id}/offers", tag = "native", params(("id" = String, Path, description = "The session's ID")),
    request_body = wire::OffersRequest,
    responses((status = 200, description = "The offers of each interaction point asked for", body = wire::OffersAnswer)))]
pub async fn get_offers_post(
    State(rt): Shared,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
    Body(body): Body<wire::OffersRequest>,
) -> Result<Response, Problem> {
    Ok(offers_response(
        &rt.get_offers(&id, &access, offers_request(body)?).await?,
    ))
}

#[utoipa::path(get, path = "/v1/sessions/{id}/offers", tag = "native", params(("id" = String, Path, description = "The session's ID"),
        ("ip" = String, Query, min_length = 1, description = "The interaction point"),
        ("count" = Option<u32>, Query, minimum = 1, maximum = 100, description = "How many offers (1 by default)")),
    responses((status = 200, description = "The offers of the interaction point", body = wire::OffersAnswer)))]
pub async fn get_offers_get(
    State(rt): Shared,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    get_offers_by_query(&rt, &id, &access, query.as_deref()).await
}

/// Get offers by GET, for the router and for the server's direct path to it.
pub async fn get_offers_by_query(
    rt: &Runtime,
    id: &str,
    access: &Access,
    query: Option<&str>,
) -> Result<Response, Problem> {
    let request = OffersRequest {
        requests: vec![checked(OfferAsk::from_query(query.unwrap_or(""))?, || {
            "count".into()
        })?],
        params: Vec::new(),
        allow_duplicates: false,
    };
    Ok(offers_response(&rt.get_offers(id, access, request).await?))
}

#[utoipa::path(post, path = "/v1/sessions/{id}/events", tag = "native", params(("id" = String, Path, description = "The session's ID")),
    request_body = EventRequest,
    responses((status = 200, description = "The event, run: its actions taken, its records on disk", body = EventAnswer)))]
pub async fn post_event(
    State(rt): Shared,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
    Body(body): Body<EventRequest>,
) -> Result<JsonOut<EventAnswer>, Problem> {
    let params = params("params", body.params.as_ref())?;
    let response = rt.post_event(&id, &access, &body.event, params).await?;
    Ok(JsonOut(event_answer(response)))
}

/// An audience ID as the engine takes it: the level (the channel's default when absent) and
/// the ID fields as values.
fn audience(level: Option<String>, id: &Values) -> Result<AudienceId, Problem> {
    Ok(AudienceId {
        level: level.unwrap_or_default(),
        fields: params("audience_id", Some(id))?,
    })
}

fn audience_parts(body: AudienceRequest) -> Result<(AudienceId, Vec<(String, Value)>), Problem> {
    let audience = audience(body.audience_level, &body.audience_id)?;
    Ok((audience, params("params", body.params.as_ref())?))
}

#[utoipa::path(put, path = "/v1/sessions/{id}/audience", tag = "native", params(("id" = String, Path, description = "The session's ID")),
    request_body = AudienceRequest,
    responses((status = 200, description = "The session's visitor, changed and segmented again", body = MessagesAnswer)))]
pub async fn set_audience(
    State(rt): Shared,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
    Body(body): Body<AudienceRequest>,
) -> Result<JsonOut<MessagesAnswer>, Problem> {
    let (audience, params) = audience_parts(body)?;
    let raised = rt.set_audience(&id, &access, audience, params).await?;
    Ok(JsonOut(MessagesAnswer {
        messages: messages(&raised),
    }))
}

#[utoipa::path(get, path = "/v1/sessions/{id}/profile", tag = "native", params(("id" = String, Path, description = "The session's ID")),
    responses((status = 200, description = "What the session knows of its visitor", body = ProfileAnswer)))]
pub async fn get_profile(
    State(rt): Shared,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
) -> Result<JsonOut<ProfileAnswer>, Problem> {
    let view = rt.get_profile(&id, &access).await?;
    Ok(JsonOut(profile_answer(&view)))
}

#[utoipa::path(delete, path = "/v1/sessions/{id}", tag = "native", params(("id" = String, Path, description = "The session's ID")),
    responses((status = 200, description = "The session, ended; what it held written", body = MessagesAnswer)))]
pub async fn end_session(
    State(rt): Shared,
    Extension(access): Extension<Access>,
    Path(id): Path<String>,
) -> Result<JsonOut<MessagesAnswer>, Problem> {
    rt.end_session(&id, &access).await?;
    Ok(JsonOut(MessagesAnswer::default()))
}

#[utoipa::path(get, path = "/v1/version", tag = "native",
    responses((status = 200, description = "Kairos's version and the channels served", body = VersionAnswer)))]
pub async fn version(State(rt): Shared) -> JsonOut<VersionAnswer> {
    let channels = rt
        .channels()
        .values()
        .map(|l| {
            let served = ServedChannel {
                deployment: l.deployment.version,
                hash: l.hash.clone(),
            };
            (l.deployment.channel.clone(), served)
        })
        .collect();
    JsonOut(VersionAnswer {
        version: env!("CARGO_PKG_VERSION").to_string(),
        channels,
        messages: Vec::new(),
    })
}

/// `GET /v1/channels/{name}`: what a touchpoint may call on a deployed channel (its audience
/// levels, interaction points and events), for touchpoint developers and load tests.
#[utoipa::path(get, path = "/v1/channels/{name}", tag = "native",
    params(("name" = String, Path, description = "The channel")),
    responses((status = 200, description = "What a touchpoint may call on the channel", body = ChannelAnswer)))]
pub async fn channel(
    State(rt): Shared,
    Path(name): Path<String>,
) -> Result<JsonOut<ChannelAnswer>, Problem> {
    let channels = rt.channels();
    let loaded = channels
        .get(&name.to_ascii_lowercase())
        .ok_or_else(|| Problem::channel_not_found(&name))?;
    let dep = &loaded.deployment;
    let audience_levels = dep
        .audience_levels()
        .map(|level| {
            let tables = dep.profile_tables(level);
            LevelView {
                name: level.to_string(),
                id_fields: tables
                    .as_ref()
                    .map(|t| t.id_fields.to_vec())
                    .unwrap_or_default(),
                profile_table: tables.and_then(|t| t.table.map(str::to_string)),
            }
        })
        .collect();
    let events = dep
        .events()
        .map(|(name, logs_contact)| EventView {
            name: name.to_string(),
            logs_contact,
        })
        .collect();
    Ok(JsonOut(ChannelAnswer {
        channel: dep.channel.clone(),
        deployment: dep.version,
        hash: loaded.hash.clone(),
        default_audience_level: dep.default_audience_level().map(str::to_string),
        audience_levels,
        interaction_points: dep.interaction_points().map(str::to_string).collect(),
        events,
        offers: dep.offer_codes().map(str::to_string).collect(),
        segments: dep.segment_names().map(str::to_string).collect(),
        messages: Vec::new(),
    }))
}

/// Runs commands in order on one session; stops at the first that fails. A batch whose
/// command failed answers with that command's status: its problem document, with the
/// answers of the commands before it.
#[utoipa::path(post, path = "/v1/batch", tag = "native", request_body = wire::BatchRequest,
    responses((status = 200, description = "One answer per command, every one run", body = BatchAnswer)))]
pub async fn batch(
    State(rt): Shared,
    Extension(access): Extension<Access>,
    Body(body): Body<wire::BatchRequest>,
) -> Result<Response, Problem> {
    let limits = rt.config.limits;
    if body.commands.len() > limits.batch_commands {
        return Err(limit_exceeded(format!(
            "commands: {} commands, more than the limit of {}",
            body.commands.len(),
            limits.batch_commands
        )));
    }
    // The commands hold their session: with shared sessions it is read and stored once.
    rt.holding_sessions(run_batch(&rt, &access, body)).await?
}

async fn run_batch(
    rt: &Runtime,
    access: &Access,
    body: wire::BatchRequest,
) -> Result<Response, Problem> {
    let limits = rt.config.limits;
    let mut session_id = body.session_id;
    let mut responses = Vec::new();
    let mut answer_bytes = 0;
    for (i, command) in body.commands.into_iter().enumerate() {
        let answered = run_command(rt, access, &mut session_id, i, command)
            .await
            .and_then(|response| {
                answer_bytes += serde_json::to_vec(&response).map_err(internal)?.len();
                if answer_bytes > limits.answer_bytes {
                    return Err(limit_exceeded(format!(
                        "commands[{i}]: the answer would pass the limit of {} bytes",
                        limits.answer_bytes
                    )));
                }
                Ok(response)
            });
        match answered {
            Ok(response) => responses.push(response),
            Err(problem) => {
                let failed = FailedBatch {
                    problem: problem.document(),
                    session_id,
                    responses,
                };
                let body = serde_json::to_vec(&failed).map_err(internal)?;
                return Ok((
                    problem.status,
                    [(header::CONTENT_TYPE, "application/problem+json")],
                    body,
                )
                    .into_response());
            }
        }
    }
    Ok(JsonOut(BatchAnswer {
        session_id,
        responses,
    })
    .into_response())
}

/// A batch's failed command: its problem, with the session and the answers of the commands
/// before it.
#[derive(Serialize)]
struct FailedBatch {
    #[serde(flatten)]
    problem: kairos_api::problem::ProblemDocument,
    session_id: Option<String>,
    responses: Vec<J>,
}

fn internal(e: serde_json::Error) -> Problem {
    Problem::internal(format!("the response could not be written: {e}"))
}

async fn run_command(
    rt: &Runtime,
    access: &Access,
    session_id: &mut Option<String>,
    i: usize,
    command: Map<String, J>,
) -> Result<J, Problem> {
    let command: Command = read_value(J::Object(command), &format!("commands[{i}]."))?;
    let at = |p: Problem| Problem {
        detail: format!("commands[{i}]: {}", p.detail),
        ..p
    };
    run_parsed(rt, access, session_id, command)
        .await
        .map_err(at)
}

async fn run_parsed(
    rt: &Runtime,
    access: &Access,
    session_id: &mut Option<String>,
    command: Command,
) -> Result<J, Problem> {
    let id = || {
        session_id.clone().ok_or_else(|| {
            Problem::new(
                Code::InvalidSessionId,
                "no session: start one first or give session_id",
            )
        })
    };
    let answer = match command {
        Command::StartSession(body) => {
            let started = rt
                .start_session(start_call(body, session_id.clone())?, access)
                .await?;
            *session_id = Some(started.session_id.clone());
            serde_json::to_value(started_answer(started))
        }
        Command::GetOffers(body) => {
            let (response, loaded) = rt.get_offers(&id()?, access, offers_request(body)?).await?;
            return Ok(offers_json(&response, &loaded.fragments));
        }
        Command::PostEvent(body) => {
            let params = params("params", body.params.as_ref())?;
            serde_json::to_value(event_answer(
                rt.post_event(&id()?, access, &body.event, params).await?,
            ))
        }
        Command::SetAudience(body) => {
            let (audience, params) = audience_parts(body)?;
            let raised = rt.set_audience(&id()?, access, audience, params).await?;
            serde_json::to_value(MessagesAnswer {
                messages: messages(&raised),
            })
        }
        Command::GetProfile(_) => {
            serde_json::to_value(profile_answer(&rt.get_profile(&id()?, access).await?))
        }
        Command::EndSession(_) => {
            rt.end_session(&id()?, access).await?;
            serde_json::to_value(MessagesAnswer::default())
        }
    };
    answer.map_err(internal)
}
