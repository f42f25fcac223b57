//! The native runtime API (v1), as `runtime-api.md` specifies it.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use kairos_engine::world::AudienceId;
use kairos_engine::{EventResponse, OfferRequest, OffersRequest, OffersResponse, ProfileView};
use kairos_rules::Value;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as J, json};

use kairos_api::{Problem, value_json};

use crate::offers_json::{messages_json, offers_body, offers_json};
use crate::runtime::{Loaded, Runtime, StartCall, Started};

pub type Shared = State<Arc<Runtime>>;
type JsonResult = Result<JsonOut<J>, Problem>;

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

pub fn params(field: &str, map: Option<&Map<String, J>>) -> Result<Vec<(String, Value)>, Problem> {
    map.into_iter()
        .flatten()
        .map(|(k, v)| Ok((k.clone(), param_value(&format!("{field}.{k}"), v)?)))
        .collect()
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

pub fn event_json(r: &EventResponse) -> J {
    let mut body = json!({ "messages": messages_json(&r.messages) });
    if let Some(segments) = &r.segments {
        body["segments"] = json!(segments);
    }
    if let Some(patterns) = &r.patterns {
        body["patterns"] = json!(patterns);
    }
    body
}

pub fn profile_json(p: &ProfileView) -> J {
    let map = |m: &BTreeMap<String, Value>| {
        m.iter()
            .map(|(k, v)| (k.clone(), value_json(v)))
            .collect::<Map<_, _>>()
    };
    json!({
        "audience_level": p.audience_level,
        "audience_id": p.audience_id.iter().map(|(k, v)| (k.clone(), value_json(v))).collect::<Map<_, _>>(),
        "profile": map(&p.profile),
        "params": map(&p.params),
        "segments": p.segments,
        // Every response carries its messages (the runtime API's contract); reading a
        // profile raises none.
        "messages": [],
    })
}

pub fn started_json(s: &Started) -> J {
    let mut body = json!({ "session_id": s.session_id, "messages": messages_json(&s.messages) });
    if let Some(segments) = &s.segments {
        body["segments"] = json!(segments);
    }
    body
}

#[derive(Deserialize)]
pub struct StartBody {
    session_id: Option<String>,
    channel: String,
    audience_level: Option<String>,
    audience_id: Map<String, J>,
    params: Option<Map<String, J>>,
    rely_on_existing_session: Option<bool>,
    debug: Option<bool>,
}

impl StartBody {
    pub fn into_call(self, session_id: Option<String>) -> Result<StartCall, Problem> {
        if self.audience_id.is_empty() {
            return Err(Problem::bad_request(
                "audience_id: give the audience ID fields, like { \"customer_id\": 1001 }",
            ));
        }
        Ok(StartCall {
            session_id: self.session_id.or(session_id),
            channel: self.channel,
            audience: AudienceId {
                level: self.audience_level.unwrap_or_default(),
                fields: params("audience_id", Some(&self.audience_id))?,
            },
            params: params("params", self.params.as_ref())?,
            rely_on_existing_session: self.rely_on_existing_session.unwrap_or(false),
            debug: self.debug.unwrap_or(false),
        })
    }
}

pub async fn start_session(
    State(rt): Shared,
    body: Result<Json<StartBody>, JsonRejection>,
) -> JsonResult {
    let Json(body) = body?;
    let started = rt.start_session(body.into_call(None)?).await?;
    Ok(JsonOut(started_json(&started)))
}

#[derive(Deserialize)]
pub struct RequestItem {
    ip: String,
    count: Option<usize>,
    /// This point's own duplicate policy, over the call's.
    allow_duplicates: Option<bool>,
}

/// At most this many offers per interaction point in one request.
const MAX_COUNT: usize = 100;

impl RequestItem {
    /// The request with its count checked; `field` names the count in errors.
    fn checked(self, field: impl Fn() -> String) -> Result<OfferRequest, Problem> {
        match self.count.unwrap_or(1) {
            0 => Err(Problem::bad_request(format!(
                "{}: must be at least 1",
                field()
            ))),
            n if n > MAX_COUNT => Err(Problem::bad_request(format!(
                "{}: at most {MAX_COUNT}",
                field()
            ))),
            n => Ok(OfferRequest {
                allow_duplicates: self.allow_duplicates,
                ..OfferRequest::new(self.ip, n)
            }),
        }
    }
}

#[derive(Deserialize)]
pub struct OffersBody {
    requests: Vec<RequestItem>,
    params: Option<Map<String, J>>,
    allow_duplicates: Option<bool>,
}

impl OffersBody {
    pub fn into_request(self) -> Result<OffersRequest, Problem> {
        if self.requests.is_empty() {
            return Err(Problem::bad_request(
                "requests: name at least one interaction point",
            ));
        }
        let requests = self
            .requests
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.checked(|| format!("requests[{i}].count")))
            .collect::<Result<_, _>>()?;
        Ok(OffersRequest {
            requests,
            params: params("params", self.params.as_ref())?,
            allow_duplicates: self.allow_duplicates.unwrap_or(false),
        })
    }
}

pub async fn get_offers_post(
    State(rt): Shared,
    Path(id): Path<String>,
    body: Result<Json<OffersBody>, JsonRejection>,
) -> Result<Response, Problem> {
    let Json(body) = body?;
    Ok(offers_response(
        &rt.get_offers(&id, body.into_request()?).await?,
    ))
}

/// `ip=hero&count=2`, read by hand: on the hot path, serde's form decoding took 5% of a
/// call's instructions. Other parameters are ignored, as the form decoder did.
fn offers_query(query: &str) -> Result<RequestItem, Problem> {
    let (mut ip, mut count) = (None, None);
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "ip" => ip = Some(percent_decode(value, "ip")?),
            "count" => {
                count = Some(value.parse::<usize>().map_err(|_| {
                    Problem::bad_request(format!(
                        "count: '{value}' is not a whole number of offers"
                    ))
                })?)
            }
            _ => {}
        }
    }
    let ip = ip.ok_or_else(|| {
        Problem::bad_request("ip: missing; name the interaction point: ?ip=NAME&count=N")
    })?;
    Ok(RequestItem {
        ip,
        count,
        allow_duplicates: None,
    })
}

/// Decodes `%XX` escapes and `+` (a space in a form-encoded query).
fn percent_decode(text: &str, field: &str) -> Result<String, Problem> {
    if !text.contains(['%', '+']) {
        return Ok(text.to_string());
    }
    let bad = || Problem::bad_request(format!("{field}: malformed percent-encoding"));
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.bytes();
    while let Some(b) = rest.next() {
        bytes.push(match b {
            b'+' => b' ',
            b'%' => {
                let hex = [rest.next().ok_or_else(bad)?, rest.next().ok_or_else(bad)?];
                std::str::from_utf8(&hex)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(bad)?
            }
            other => other,
        });
    }
    String::from_utf8(bytes).map_err(|_| Problem::bad_request(format!("{field}: not UTF-8")))
}

pub async fn get_offers_get(
    State(rt): Shared,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, Problem> {
    get_offers_by_query(&rt, &id, query.as_deref()).await
}

/// Get offers by GET, for the router and for the server's direct path to it.
pub async fn get_offers_by_query(
    rt: &Runtime,
    id: &str,
    query: Option<&str>,
) -> Result<Response, Problem> {
    let request = OffersRequest {
        requests: vec![offers_query(query.unwrap_or(""))?.checked(|| "count".into())?],
        params: Vec::new(),
        allow_duplicates: false,
    };
    Ok(offers_response(&rt.get_offers(id, request).await?))
}

#[derive(Deserialize)]
pub struct EventBody {
    event: String,
    params: Option<Map<String, J>>,
}

impl EventBody {
    pub fn parts(self) -> Result<(String, Vec<(String, Value)>), Problem> {
        Ok((self.event, params("params", self.params.as_ref())?))
    }
}

pub async fn post_event(
    State(rt): Shared,
    Path(id): Path<String>,
    body: Result<Json<EventBody>, JsonRejection>,
) -> JsonResult {
    let Json(body) = body?;
    let (event, params) = body.parts()?;
    let response = rt.post_event(&id, &event, params).await?;
    Ok(JsonOut(event_json(&response)))
}

#[derive(Deserialize)]
pub struct AudienceBody {
    audience_level: Option<String>,
    audience_id: Map<String, J>,
    params: Option<Map<String, J>>,
}

impl AudienceBody {
    pub fn parts(self) -> Result<(AudienceId, Vec<(String, Value)>), Problem> {
        let audience = AudienceId {
            level: self.audience_level.unwrap_or_default(),
            fields: params("audience_id", Some(&self.audience_id))?,
        };
        Ok((audience, params("params", self.params.as_ref())?))
    }
}

pub async fn set_audience(
    State(rt): Shared,
    Path(id): Path<String>,
    body: Result<Json<AudienceBody>, JsonRejection>,
) -> JsonResult {
    let Json(body) = body?;
    let (audience, params) = body.parts()?;
    let messages = rt.set_audience(&id, audience, params).await?;
    Ok(JsonOut(json!({ "messages": messages_json(&messages) })))
}

pub async fn get_profile(State(rt): Shared, Path(id): Path<String>) -> JsonResult {
    let view = rt.get_profile(&id).await?;
    Ok(JsonOut(profile_json(&view)))
}

pub async fn end_session(State(rt): Shared, Path(id): Path<String>) -> JsonResult {
    rt.end_session(&id).await?;
    Ok(JsonOut(json!({ "messages": [] })))
}

pub async fn version(State(rt): Shared) -> JsonOut<J> {
    let channels: Map<String, J> = rt
        .channels()
        .values()
        .map(|l| {
            (
                l.deployment.channel.clone(),
                json!({ "deployment": l.deployment.version, "hash": l.hash }),
            )
        })
        .collect();
    JsonOut(json!({ "version": env!("CARGO_PKG_VERSION"), "channels": channels, "messages": [] }))
}

/// `GET /v1/channels/{name}`: what a touchpoint may call on a deployed channel (its audience
/// levels, interaction points and events), for touchpoint developers and load tests.
pub async fn channel(State(rt): Shared, Path(name): Path<String>) -> JsonResult {
    let channels = rt.channels();
    let loaded = channels
        .get(&name.to_ascii_lowercase())
        .ok_or_else(|| Problem::channel_not_found(&name))?;
    let dep = &loaded.deployment;
    let levels: Vec<J> = dep
        .audience_levels()
        .map(|level| {
            let fields = dep
                .profile_tables(level)
                .map(|t| t.id_fields.to_vec())
                .unwrap_or_default();
            json!({ "name": level, "id_fields": fields })
        })
        .collect();
    let events: Vec<J> = dep
        .events()
        .map(|(name, logs_contact)| json!({ "name": name, "logs_contact": logs_contact }))
        .collect();
    Ok(JsonOut(json!({
        "channel": dep.channel,
        "deployment": dep.version,
        "hash": loaded.hash,
        "default_audience_level": dep.default_audience_level(),
        "audience_levels": levels,
        "interaction_points": dep.interaction_points().collect::<Vec<_>>(),
        "events": events,
        "messages": [],
    })))
}

#[derive(Deserialize)]
pub struct BatchBody {
    session_id: Option<String>,
    commands: Vec<Map<String, J>>,
}

/// Runs commands in order on one session; stops at the first that fails.
pub async fn batch(State(rt): Shared, body: Result<Json<BatchBody>, JsonRejection>) -> JsonResult {
    let Json(body) = body?;
    let mut session_id = body.session_id;
    let mut responses = Vec::new();
    for (i, command) in body.commands.into_iter().enumerate() {
        let result = run_command(&rt, &mut session_id, i, command).await;
        match result {
            Ok(response) => responses.push(response),
            Err(problem) => {
                let error = problem.document();
                responses.push(json!({ "messages": error.messages, "error": error }));
                break;
            }
        }
    }
    Ok(JsonOut(
        json!({ "session_id": session_id, "responses": responses }),
    ))
}

async fn run_command(
    rt: &Runtime,
    session_id: &mut Option<String>,
    i: usize,
    command: Map<String, J>,
) -> Result<J, Problem> {
    let [(name, args)] = <[(String, J); 1]>::try_from(command.into_iter().collect::<Vec<_>>())
        .map_err(|_| {
            Problem::bad_request(format!(
                "commands[{i}]: one command per item, like {{ \"get_offers\": {{...}} }}"
            ))
        })?;
    let parse = |what: &str| -> Result<J, Problem> {
        if args.is_object() {
            Ok(args.clone())
        } else {
            Err(Problem::bad_request(format!(
                "commands[{i}].{what}: must be an object"
            )))
        }
    };
    let field = |e: serde_json::Error| Problem::bad_request(format!("commands[{i}].{name}: {e}"));
    let id = || {
        session_id.clone().ok_or_else(|| {
            Problem::bad_request(format!(
                "commands[{i}]: no session: start one first or give session_id"
            ))
        })
    };
    match name.as_str() {
        "start_session" => {
            let body: StartBody = serde_json::from_value(parse(&name)?).map_err(field)?;
            let started = rt
                .start_session(body.into_call(session_id.clone())?)
                .await?;
            *session_id = Some(started.session_id.clone());
            Ok(started_json(&started))
        }
        "get_offers" => {
            let body: OffersBody = serde_json::from_value(parse(&name)?).map_err(field)?;
            let (response, loaded) = rt.get_offers(&id()?, body.into_request()?).await?;
            Ok(offers_json(&response, &loaded.fragments))
        }
        "post_event" => {
            let body: EventBody = serde_json::from_value(parse(&name)?).map_err(field)?;
            let (event, params) = body.parts()?;
            Ok(event_json(&rt.post_event(&id()?, &event, params).await?))
        }
        "set_audience" => {
            let body: AudienceBody = serde_json::from_value(parse(&name)?).map_err(field)?;
            let (audience, params) = body.parts()?;
            Ok(
                json!({ "messages": messages_json(&rt.set_audience(&id()?, audience, params).await?) }),
            )
        }
        "get_profile" => Ok(profile_json(&rt.get_profile(&id()?).await?)),
        "end_session" => {
            rt.end_session(&id()?).await?;
            Ok(json!({ "messages": [] }))
        }
        other => Err(Problem::bad_request(format!(
            "commands[{i}]: unknown command '{other}'; commands are start_session, get_offers, post_event, set_audience, get_profile, end_session"
        ))),
    }
}
