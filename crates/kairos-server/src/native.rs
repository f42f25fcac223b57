//! The native runtime API (v1), as `runtime-api.md` specifies it.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use kairos_engine::world::AudienceId;
use kairos_engine::{
    EventResponse, IpExplain, Message, OfferRequest, OffersRequest, OffersResponse, ProfileView,
};
use kairos_rules::Value;
use kairos_rules::time::format_timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as J, json};

use crate::problem::Problem;
use crate::runtime::{Runtime, StartCall, Started};

pub type Shared = State<Arc<Runtime>>;
type JsonResult = Result<JsonOut<J>, Problem>;

/// A JSON response serialized into one buffer sized for a typical answer: axum's `Json`
/// grows its buffer from 128 bytes, and the copies showed up on the get offers path.
pub struct JsonOut<T>(pub T);

impl<T: Serialize> IntoResponse for JsonOut<T> {
    fn into_response(self) -> Response {
        let mut body = Vec::with_capacity(1024);
        match serde_json::to_writer(&mut body, &self.0) {
            Ok(()) => (
                [(
                    axum::http::header::CONTENT_TYPE,
                    axum::http::HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response(),
            Err(e) => Problem::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                format!("the response could not be written: {e}"),
            )
            .into_response(),
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

pub fn value_json(v: &Value) -> J {
    match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Double(d) => serde_json::Number::from_f64(*d).map_or(J::Null, J::Number),
        Value::String(s) => J::String(s.to_string()),
        Value::Timestamp(t) => J::String(format_timestamp(*t)),
        Value::Duration(d) => J::String(kairos_rules::time::format_duration(*d)),
        Value::List(items) => J::Array(items.iter().map(value_json).collect()),
        Value::Map(pairs) => J::Object(
            pairs
                .iter()
                .map(|(k, v)| {
                    (
                        match k {
                            Value::String(s) => s.to_string(),
                            other => other.to_string(),
                        },
                        value_json(v),
                    )
                })
                .collect(),
        ),
    }
}

pub fn messages_json(messages: &[Message]) -> J {
    J::Array(
        messages
            .iter()
            .map(|m| json!({ "code": m.code, "level": m.level.name(), "message": m.message }))
            .collect(),
    )
}

fn explain_json(explain: &[IpExplain]) -> J {
    J::Array(
        explain
            .iter()
            .map(|ip| {
                json!({
                    "ip": ip.ip,
                    "control_group": ip.control_group,
                    "explored": ip.explored,
                    "candidates": ip.candidates.iter().map(|c| json!({
                        "offer": c.offer,
                        "rule": c.rule,
                        "removed_by": c.removed_by.map(|f| f.name()),
                        "detail": c.detail,
                        "score": c.score,
                        "final_score": c.final_score,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

/// A value serialized as JSON without building a `serde_json::Value` first.
struct ValueOut<'a>(&'a Value);

impl Serialize for ValueOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Double(d) if d.is_finite() => s.serialize_f64(*d),
            Value::String(text) => s.serialize_str(text),
            other => value_json(other).serialize(s),
        }
    }
}

struct AttributesOut<'a>(&'a [(String, Value)]);

impl Serialize for AttributesOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, &ValueOut(v))?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct OfferOut<'a> {
    code: &'a str,
    name: Option<&'a str>,
    category: Option<&'a str>,
    treatment_code: &'a str,
    score: f64,
    attributes: AttributesOut<'a>,
}

#[derive(Serialize)]
struct ListOut<'a> {
    ip: &'a str,
    default: Option<&'a str>,
    offers: Vec<OfferOut<'a>>,
}

#[derive(Serialize)]
struct MessageOut<'a> {
    code: &'a str,
    level: &'a str,
    message: &'a str,
}

/// The get offers response: serialized straight from the engine's result (the hot path).
#[derive(Serialize)]
pub struct OffersOut<'a> {
    offer_lists: Vec<ListOut<'a>>,
    messages: Vec<MessageOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    explain: Option<J>,
}

impl<'a> OffersOut<'a> {
    pub fn new(r: &'a OffersResponse) -> Self {
        OffersOut {
            offer_lists: r
                .offer_lists
                .iter()
                .map(|l| ListOut {
                    ip: &l.ip,
                    default: l.default.as_deref(),
                    offers: l
                        .offers
                        .iter()
                        .map(|o| OfferOut {
                            code: &o.code,
                            name: o.name.as_deref(),
                            category: o.category.as_deref(),
                            treatment_code: &o.treatment_code,
                            score: o.score,
                            attributes: AttributesOut(&o.attributes),
                        })
                        .collect(),
                })
                .collect(),
            messages: r
                .messages
                .iter()
                .map(|m| MessageOut {
                    code: m.code,
                    level: m.level.name(),
                    message: &m.message,
                })
                .collect(),
            explain: r.explain.as_deref().map(explain_json),
        }
    }
}

pub fn offers_json(r: &OffersResponse) -> J {
    serde_json::to_value(OffersOut::new(r)).unwrap_or(J::Null)
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
}

/// At most this many offers per interaction point in one request.
const MAX_COUNT: usize = 100;

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
            .map(|(i, r)| match r.count.unwrap_or(1) {
                0 => Err(Problem::bad_request(format!(
                    "requests[{i}].count: must be at least 1"
                ))),
                n if n > MAX_COUNT => Err(Problem::bad_request(format!(
                    "requests[{i}].count: at most {MAX_COUNT}"
                ))),
                n => Ok(OfferRequest { ip: r.ip, count: n }),
            })
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
    let response = rt.get_offers(&id, body.into_request()?).await?;
    Ok(JsonOut(OffersOut::new(&response)).into_response())
}

/// `ip=hero&count=2`, read by hand: on the hot path, serde's form decoding cost more than
/// the engine's arbitration. Other parameters are ignored, as the form decoder did.
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
    Ok(RequestItem { ip, count })
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
    let body = OffersBody {
        requests: vec![offers_query(query.as_deref().unwrap_or(""))?],
        params: None,
        allow_duplicates: None,
    };
    let response = rt.get_offers(&id, body.into_request()?).await?;
    Ok(JsonOut(OffersOut::new(&response)).into_response())
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
    JsonOut(json!({ "version": env!("CARGO_PKG_VERSION"), "channels": channels }))
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
                responses.push(json!({ "error": problem.to_json() }));
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
            Ok(offers_json(
                &rt.get_offers(&id()?, body.into_request()?).await?,
            ))
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
