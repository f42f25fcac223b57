//! Unica Interact compatibility: the JSON `RestServlet` batch endpoint and the REST v2 paths,
//! with name/value pairs, numeric status codes and advisory messages, translated onto the same
//! runtime operations as the native API. An Interact touchpoint switches by changing its base
//! URL.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use kairos_engine::world::AudienceId;
use kairos_engine::{Level, Message, OfferRequest, OffersRequest, OffersResponse};
use kairos_rules::Value;
use kairos_rules::time::{format_timestamp, parse_instant};
use serde_json::{Map, Value as J, json};

use crate::access::Access;
use crate::native::JsonOut;
use crate::runtime::{Runtime, StartCall, limit_exceeded};
use kairos_api::{Code, Problem};

type Shared = State<Arc<Runtime>>;

const SUCCESS: u8 = 0;
const WARNING: u8 = 1;
const ERROR: u8 = 2;

/// `[{ "n": name, "t": "string" | "numeric" | "datetime", "v": value }]` to parameters.
fn nvps(field: &str, list: Option<&J>) -> Result<Vec<(String, Value)>, String> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    let items = list
        .as_array()
        .ok_or_else(|| format!("{field}: must be a list of name/value pairs"))?;
    items
        .iter()
        .enumerate()
        .map(|(i, nvp)| {
            let name = nvp["n"]
                .as_str()
                .ok_or_else(|| format!("{field}[{i}].n: a name is required"))?
                .to_string();
            let v = &nvp["v"];
            let value = match nvp["t"]
                .as_str()
                .unwrap_or("string")
                .to_ascii_lowercase()
                .as_str()
            {
                "numeric" => match v {
                    J::Number(n) => n
                        .as_i64()
                        .map_or_else(|| Value::Double(n.as_f64().unwrap_or(f64::NAN)), Value::Int),
                    J::String(s) => s
                        .parse::<i64>()
                        .map(Value::Int)
                        .or_else(|_| s.parse::<f64>().map(Value::Double))
                        .map_err(|_| format!("{field}[{i}].v: '{s}' is not numeric"))?,
                    other => return Err(format!("{field}[{i}].v: {other} is not numeric")),
                },
                "datetime" => {
                    let text = v
                        .as_str()
                        .ok_or_else(|| format!("{field}[{i}].v: a datetime is a string"))?;
                    parse_instant(text)
                        .map(|p| Value::Timestamp(p.at))
                        .unwrap_or_else(|_| Value::string(text))
                }
                "string" => match v {
                    J::String(s) => Value::string(s.as_str()),
                    J::Null => Value::string(""),
                    other => Value::string(other.to_string()),
                },
                other => {
                    return Err(format!(
                        "{field}[{i}].t: '{other}' is not string, numeric or datetime"
                    ));
                }
            };
            Ok((name, value))
        })
        .collect()
}

fn nvp(name: &str, value: &Value) -> J {
    match value {
        Value::Int(i) => json!({ "n": name, "t": "numeric", "v": i }),
        Value::Double(d) => json!({ "n": name, "t": "numeric", "v": d }),
        Value::Timestamp(t) => json!({ "n": name, "t": "datetime", "v": format_timestamp(*t) }),
        Value::String(s) => json!({ "n": name, "t": "string", "v": s.as_ref() }),
        // Interact has no boolean type: booleans travel as the strings "true" and "false".
        Value::Bool(b) => json!({ "n": name, "t": "string", "v": b.to_string() }),
        Value::Null => json!({ "n": name, "t": "string", "v": null }),
        // Durations, lists (a profile's dimension rows) and maps have no Interact type either:
        // the native API's value as text (JSON text for lists and maps), so that a "string"
        // always holds a string.
        Value::Duration(_) | Value::List(_) | Value::Map(_) => {
            let text = match kairos_api::value_json(value) {
                J::String(text) => text,
                json => json.to_string(),
            };
            json!({ "n": name, "t": "string", "v": text })
        }
    }
}

fn message_json(m: &Message) -> J {
    let level = match m.level {
        Level::Warning => WARNING,
        Level::Error => ERROR,
    };
    json!({ "msgCode": m.code.name(), "msgLevel": level, "msg": m.message, "detailMsg": m.message })
}

fn status_of(messages: &[Message]) -> u8 {
    messages
        .iter()
        .map(|m| {
            if m.level == Level::Error {
                ERROR
            } else {
                WARNING
            }
        })
        .max()
        .unwrap_or(SUCCESS)
}

fn response(session_id: &str, messages: &[Message]) -> J {
    json!({ "sessionId": session_id, "statusCode": status_of(messages), "messages": messages.iter().map(message_json).collect::<Vec<_>>() })
}

fn failure(session_id: &str, code: &str, detail: &str) -> J {
    json!({
        "sessionId": session_id,
        "statusCode": ERROR,
        "messages": [ { "msgCode": code, "msgLevel": ERROR, "msg": detail, "detailMsg": detail } ],
    })
}

fn offer_lists_json(r: &OffersResponse) -> J {
    J::Array(
        r.offer_lists
            .iter()
            .map(|l| {
                json!({
                    "ip": l.ip,
                    "defaultString": l.default.clone().unwrap_or_default(),
                    "offers": l.offers.iter().map(|o| json!({
                        "n": o.name().unwrap_or(o.code()),
                        "code": [o.code()],
                        "treatmentCode": o.treatment_code.as_str(),
                        "score": o.score.round() as i64,
                        "desc": o.name().unwrap_or_default(),
                        "attributes": o.attributes().iter().map(|(k, v)| nvp(k, v)).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

/// One Interact command, run against the runtime.
async fn command(rt: &Runtime, access: &Access, session_id: &mut String, cmd: &J) -> J {
    match run(rt, access, session_id, cmd).await {
        Ok(response) => response,
        Err(problem) => failure(session_id, problem.code.name(), &problem.detail),
    }
}

async fn run(
    rt: &Runtime,
    access: &Access,
    session_id: &mut String,
    cmd: &J,
) -> Result<J, Problem> {
    let bad = |e: String| Problem::bad_request(e);
    let action = cmd["action"]
        .as_str()
        .ok_or_else(|| Problem::bad_request("action: every command names its action"))?;
    let text = |key: &str| cmd[key].as_str().map(str::to_string);
    let number = |key: &str| {
        cmd[key]
            .as_u64()
            .or_else(|| cmd[key].as_str().and_then(|s| s.parse().ok()))
    };
    match action {
        "startSession" => {
            let channel = text("ic")
                .ok_or_else(|| Problem::bad_request("ic: the interactive channel is required"))?;
            let audience = AudienceId {
                level: text("audienceLevel").unwrap_or_default(),
                fields: nvps("audienceID", cmd.get("audienceID")).map_err(bad)?,
            };
            if audience.fields.is_empty() {
                return Err(Problem::bad_request(
                    "audienceID: give the audience ID as name/value pairs",
                ));
            }
            let started = rt
                .start_session(
                    StartCall {
                        session_id: (!session_id.is_empty()).then(|| session_id.clone()),
                        channel,
                        audience,
                        params: nvps("parameters", cmd.get("parameters")).map_err(bad)?,
                        rely_on_existing_session: cmd["relyOnExistingSession"]
                            .as_bool()
                            .unwrap_or(false),
                        debug: cmd["debug"].as_bool().unwrap_or(false),
                    },
                    access,
                )
                .await?;
            *session_id = started.session_id.clone();
            Ok(response(session_id, &started.messages))
        }
        "getOffers" | "getOffersForMultipleInteractionPoints" => {
            let requests: Vec<OfferRequest> = if action == "getOffers" {
                let ip = text("ip")
                    .ok_or_else(|| Problem::bad_request("ip: the interaction point is required"))?;
                let count = number("numberRequested").unwrap_or(1).clamp(1, 100) as usize;
                vec![OfferRequest::new(ip, count)]
            } else {
                cmd["getOfferRequests"]
                    .as_array()
                    .ok_or_else(|| {
                        Problem::bad_request(
                            "getOfferRequests: a list of { ip, numberRequested } is required",
                        )
                    })?
                    .iter()
                    .map(|r| OfferRequest {
                        ip: r["ip"].as_str().unwrap_or_default().to_string(),
                        count: r["numberRequested"].as_u64().unwrap_or(1).clamp(1, 100) as usize,
                        // Interact's duplication policies, per request: NO_DUPLICATION (1)
                        // leaves out the offers of the requests before it, ALLOW_DUPLICATION
                        // (2) does not.
                        allow_duplicates: match r["dupPolicy"].as_i64() {
                            Some(1) => Some(false),
                            Some(2) => Some(true),
                            _ => None,
                        },
                    })
                    .collect()
            };
            let request = OffersRequest {
                requests,
                params: nvps("parameters", cmd.get("parameters")).map_err(bad)?,
                allow_duplicates: false,
            };
            let (result, _) = rt.get_offers(session_id, access, request).await?;
            let mut body = response(session_id, &result.messages);
            body["offerLists"] = offer_lists_json(&result);
            Ok(body)
        }
        "postEvent" => {
            let event = text("event")
                .ok_or_else(|| Problem::bad_request("event: the event name is required"))?;
            let result = rt
                .post_event(
                    session_id,
                    access,
                    &event,
                    nvps("parameters", cmd.get("parameters")).map_err(bad)?,
                )
                .await?;
            Ok(response(session_id, &result.messages))
        }
        "setAudience" => {
            let audience = AudienceId {
                level: text("audienceLevel").unwrap_or_default(),
                fields: nvps("audienceID", cmd.get("audienceID")).map_err(bad)?,
            };
            let messages = rt
                .set_audience(
                    session_id,
                    access,
                    audience,
                    nvps("parameters", cmd.get("parameters")).map_err(bad)?,
                )
                .await?;
            Ok(response(session_id, &messages))
        }
        "getProfile" => {
            let view = rt.get_profile(session_id, access).await?;
            let mut body = response(session_id, &[]);
            body["profile"] = J::Array(
                view.profile
                    .iter()
                    .chain(view.params.iter())
                    .map(|(k, v)| nvp(k, v))
                    .collect(),
            );
            Ok(body)
        }
        "endSession" => {
            rt.end_session(session_id, access).await?;
            Ok(response(session_id, &[]))
        }
        "setDebug" => {
            rt.set_debug(session_id, access, cmd["debug"].as_bool().unwrap_or(true))
                .await?;
            Ok(response(session_id, &[]))
        }
        "getVersion" => {
            let mut body = response(session_id, &[]);
            body["version"] = J::String(env!("CARGO_PKG_VERSION").to_string());
            Ok(body)
        }
        other => Err(Problem::bad_request(format!(
            "action: '{other}' is not an Interact action"
        ))),
    }
}

fn batch_json(responses: Vec<J>) -> J {
    let status = responses
        .iter()
        .filter_map(|r| r["statusCode"].as_u64())
        .max()
        .unwrap_or(0);
    json!({ "batchStatusCode": status, "responses": responses })
}

/// Runs commands in order; stops after the first that fails (statusCode 2), or whose answer
/// would take the batch's past its limit. A batch of more commands than the limit runs none.
async fn execute(
    rt: &Runtime,
    access: &Access,
    mut session_id: String,
    commands: &[J],
) -> Result<Vec<J>, Problem> {
    let limits = rt.config.limits;
    if commands.len() > limits.batch_commands {
        return Err(limit_exceeded(format!(
            "commands: {} commands, more than the limit of {}",
            commands.len(),
            limits.batch_commands
        )));
    }
    let mut responses = Vec::new();
    let mut answer_bytes = 0;
    for cmd in commands {
        let mut r = command(rt, access, &mut session_id, cmd).await;
        answer_bytes += r.to_string().len();
        if answer_bytes > limits.answer_bytes {
            let detail = format!(
                "the answer would pass the limit of {} bytes",
                limits.answer_bytes
            );
            r = failure(&session_id, Code::LimitExceeded.name(), &detail);
        }
        let failed = r["statusCode"] == ERROR;
        responses.push(r);
        if failed {
            break;
        }
    }
    Ok(responses)
}

/// `POST /interact/servlet/RestServlet`
pub async fn servlet(
    State(rt): Shared,
    Extension(access): Extension<Access>,
    body: Result<Json<J>, JsonRejection>,
) -> Result<JsonOut<J>, Problem> {
    let Json(body) = body?;
    let commands = body["commands"]
        .as_array()
        .ok_or_else(|| Problem::bad_request("commands: a list of commands is required"))?;
    let session_id = body["sessionId"].as_str().unwrap_or_default().to_string();
    Ok(JsonOut(batch_json(
        execute(&rt, &access, session_id, commands).await?,
    )))
}

/// The REST v2 paths: each is one command with the same value objects.
pub async fn v2(
    State(rt): Shared,
    Extension(access): Extension<Access>,
    method: axum::http::Method,
    Path(path): Path<String>,
    Query(query): Query<Map<String, J>>,
    // No body (a GET or DELETE) is no fields; a body that is not JSON is a problem document,
    // as on every other path.
    body: Result<Option<Json<J>>, JsonRejection>,
) -> Result<Response, Problem> {
    let mut cmd = body?.map(|Json(b)| b).unwrap_or_else(|| json!({}));
    if !cmd.is_object() {
        return Err(Problem::bad_request("the body must be a JSON object"));
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let (action, session_id) = match (method.as_str(), parts.as_slice()) {
        ("POST", ["sessions", id]) => ("startSession", *id),
        ("DELETE", ["sessions", id]) => ("endSession", *id),
        ("PUT", ["audiences", id]) => ("setAudience", *id),
        ("GET", ["offers", id, ip]) => {
            cmd["ip"] = json!(ip);
            cmd["numberRequested"] = query.get("number").cloned().unwrap_or(json!(1));
            ("getOffers", *id)
        }
        ("POST", ["offers", id]) => ("getOffersForMultipleInteractionPoints", *id),
        ("POST", ["events", id, event]) => {
            cmd["event"] = json!(event);
            ("postEvent", *id)
        }
        ("GET", ["profiles", id]) => ("getProfile", *id),
        ("POST", ["batch", id]) => {
            let commands = cmd["commands"].as_array().cloned().unwrap_or_default();
            return Ok(JsonOut(batch_json(
                execute(&rt, &access, id.to_string(), &commands).await?,
            ))
            .into_response());
        }
        (_, shape) => {
            let detail = format!("no Interact v2 endpoint {method} /interact/v2/{path}");
            return match allowed_methods(shape) {
                // The path is one of Interact's, the method is not.
                Some(allow) => {
                    let mut refused = Problem::new(Code::MethodNotAllowed, detail).into_response();
                    refused
                        .headers_mut()
                        .insert(header::ALLOW, HeaderValue::from_static(allow));
                    Ok(refused)
                }
                None => Err(Problem::new(Code::NotFound, detail)),
            };
        }
    };
    cmd["action"] = json!(action);
    let mut id = session_id.to_string();
    Ok(JsonOut(command(&rt, &access, &mut id, &cmd).await).into_response())
}

/// The methods an Interact v2 path of this shape takes, if it is one.
fn allowed_methods(parts: &[&str]) -> Option<&'static str> {
    match parts {
        ["sessions", _] => Some("POST, DELETE"),
        ["audiences", _] => Some("PUT"),
        ["offers", _, _] | ["profiles", _] => Some("GET"),
        ["offers", _] | ["events", _, _] | ["batch", _] => Some("POST"),
        _ => None,
    }
}
