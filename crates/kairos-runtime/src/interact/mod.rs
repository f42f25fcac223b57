//! Unica Interact compatibility: the JSON `RestServlet` batch endpoint and the REST v2 paths
//! (`v2.rs`), with name/value pairs (`nvp.rs`), Interact's numeric status and message codes,
//! translated onto the same runtime operations as the native API. An Interact touchpoint
//! switches by changing its base URL.
//!
//! Every request form is read into a [`Call`]; every call answers a [`Response`], an error
//! included (Interact clients read `statusCode` and `messages`, not the HTTP status). A batch
//! runs every command, as HCL documents, each answering for itself.

mod nvp;
mod v2;

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use kairos_api::extract::{is_json, media_type, read_body, read_value};
use kairos_api::interact::{
    BatchResponse, Command, ERROR, GetOfferRequest, Message, NvpIn, Offer, OfferList, Response,
    ServletRequest, WARNING,
};
use kairos_api::{Code, Problem};
use kairos_engine::world::AudienceId;
use kairos_engine::{Level, OfferRequest, OffersRequest, OffersResponse};
use kairos_rules::Value;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as J};

use crate::access::Access;
use crate::native::{JsonOut, offer_count};
use crate::runtime::{Runtime, StartCall, limit_exceeded};

pub use v2::v2;

type Shared = State<Arc<Runtime>>;

/// One Interact command, read from whichever form it came in.
enum Call {
    Start {
        channel: String,
        audience: AudienceId,
        params: Vec<(String, Value)>,
        rely_on_existing_session: bool,
        debug: bool,
    },
    Offers {
        requests: Vec<OfferRequest>,
        params: Vec<(String, Value)>,
        /// Warnings about what the request asked that Kairos does not do.
        notes: Vec<Message>,
    },
    Event {
        event: String,
        params: Vec<(String, Value)>,
    },
    Audience {
        audience: AudienceId,
        params: Vec<(String, Value)>,
    },
    Profile,
    End,
    Debug(bool),
    Version,
}

fn malformed(detail: String) -> Problem {
    Problem::new(Code::MalformedRequest, detail)
}

fn params(field: &str, pairs: Option<&[NvpIn]>) -> Result<Vec<(String, Value)>, Problem> {
    nvp::values(field, pairs).map_err(malformed)
}

fn audience(level: Option<String>, pairs: Option<&[NvpIn]>) -> Result<AudienceId, Problem> {
    let fields = params("audienceID", pairs)?;
    if fields.is_empty() {
        return Err(Problem::new(
            Code::InvalidAudienceId,
            "audienceID: give the audience ID as name/value pairs",
        ));
    }
    Ok(AudienceId {
        level: level.unwrap_or_default(),
        fields,
    })
}

/// A get offers for several interaction points, with Interact's duplication policies per
/// request: NO_DUPLICATION (1) leaves out the offers of the requests before it,
/// ALLOW_DUPLICATION (2) does not.
fn offer_requests(
    requests: &[GetOfferRequest],
    params: Vec<(String, Value)>,
) -> Result<Call, Problem> {
    if requests.is_empty() {
        return Err(malformed(
            "getOfferRequests: name at least one interaction point".to_string(),
        ));
    }
    let mut notes = Vec::new();
    let requests = requests
        .iter()
        .enumerate()
        .map(|(i, r)| {
            if r.offer_attributes.is_some() {
                notes.push(Message::new(
                    Code::MalformedRequest,
                    WARNING,
                    &format!("getOfferRequests[{i}].offerAttributes: offer attribute requirements are not applied"),
                ));
            }
            Ok(OfferRequest {
                allow_duplicates: match r.dup_policy.map(|p| p.0) {
                    Some(1) => Some(false),
                    Some(2) => Some(true),
                    _ => None,
                },
                ..OfferRequest::new(r.ip.clone(), offer_count(r.number_requested.map(|n| n.0), || {
                    format!("getOfferRequests[{i}].numberRequested")
                })?)
            })
        })
        .collect::<Result<_, Problem>>()?;
    Ok(Call::Offers {
        requests,
        params,
        notes,
    })
}

/// A RestServlet command as a call.
fn servlet_call(cmd: Command) -> Result<Call, Problem> {
    let required = |value: Option<String>, field: &str, what: &str| {
        value
            .filter(|v| !v.is_empty())
            .ok_or_else(|| malformed(format!("{field}: {what} is required")))
    };
    let parameters = || params("parameters", cmd.parameters.as_deref());
    Ok(match cmd.action.as_str() {
        "startSession" => Call::Start {
            channel: required(cmd.ic.clone(), "ic", "the interactive channel")?,
            audience: audience(cmd.audience_level.clone(), cmd.audience_id.as_deref())?,
            params: parameters()?,
            rely_on_existing_session: cmd.rely_on_existing_session.is_some_and(|f| f.0),
            debug: cmd.debug.is_some_and(|f| f.0),
        },
        "getOffers" => Call::Offers {
            requests: vec![OfferRequest::new(
                required(cmd.ip.clone(), "ip", "the interaction point")?,
                offer_count(cmd.number_requested.map(|n| n.0), || {
                    "numberRequested".into()
                })?,
            )],
            params: parameters()?,
            notes: Vec::new(),
        },
        "getOffersForMultipleInteractionPoints" => offer_requests(
            cmd.get_offer_requests.as_deref().ok_or_else(|| {
                malformed("getOfferRequests: a list of { ip, numberRequested } is required".into())
            })?,
            parameters()?,
        )?,
        "postEvent" => Call::Event {
            event: required(cmd.event.clone(), "event", "the event name")?,
            params: parameters()?,
        },
        "setAudience" => Call::Audience {
            audience: audience(cmd.audience_level.clone(), cmd.audience_id.as_deref())?,
            params: parameters()?,
        },
        "getProfile" => Call::Profile,
        "endSession" => Call::End,
        "setDebug" => Call::Debug(cmd.debug.is_none_or(|f| f.0)),
        "getVersion" => Call::Version,
        other => {
            return Err(Problem::new(
                Code::UnknownCommand,
                format!(
                    "action: '{other}' is not an Interact command (startSession, getOffers, \
                     getOffersForMultipleInteractionPoints, postEvent, setAudience, getProfile, \
                     endSession, setDebug, getVersion)"
                ),
            ));
        }
    })
}

/// The engine's messages as Interact's. A contact, accept or reject without its treatment
/// code is an error here, as HCL documents it (the native API keeps it a warning).
fn messages(messages: &[kairos_engine::Message]) -> Vec<Message> {
    messages
        .iter()
        .map(|m| {
            let code = Code::from(m.code);
            let level = match m.level {
                Level::Error => ERROR,
                Level::Warning if code == Code::MissingTreatmentCode => ERROR,
                Level::Warning => WARNING,
            };
            Message::new(code, level, &m.message)
        })
        .collect()
}

fn offer_lists(r: &OffersResponse) -> Vec<OfferList> {
    r.offer_lists
        .iter()
        .map(|l| OfferList {
            ip: l.ip.to_string(),
            default_string: l.default.clone().unwrap_or_default(),
            offers: l
                .offers
                .iter()
                .map(|o| Offer {
                    n: o.name().unwrap_or(o.code()).to_string(),
                    code: vec![o.code().to_string()],
                    treatment_code: o.treatment_code.as_str().to_string(),
                    score: o.score.round() as i64,
                    desc: o.name().unwrap_or_default().to_string(),
                    attributes: o.attributes().iter().map(|(k, v)| nvp::nvp(k, v)).collect(),
                })
                .collect(),
        })
        .collect()
}

/// Runs one call on the session `session_id` names (a start sets it).
async fn run(rt: &Runtime, access: &Access, session_id: &mut String, call: Call) -> Response {
    match answer(rt, access, session_id, call).await {
        Ok(response) => response,
        Err(problem) => Response::failed(session_id, problem.code, &problem.detail),
    }
}

async fn answer(
    rt: &Runtime,
    access: &Access,
    session_id: &mut String,
    call: Call,
) -> Result<Response, Problem> {
    let done = |id: &str| Response::with_messages(id, Vec::new());
    Ok(match call {
        Call::Start {
            channel,
            audience,
            params,
            rely_on_existing_session,
            debug,
        } => {
            let started = rt
                .start_session(
                    StartCall {
                        session_id: (!session_id.is_empty()).then(|| session_id.clone()),
                        channel,
                        audience,
                        params,
                        rely_on_existing_session,
                        debug,
                    },
                    access,
                )
                .await?;
            *session_id = started.session_id.clone();
            Response::with_messages(session_id, messages(&started.messages))
        }
        Call::Offers {
            requests,
            params,
            mut notes,
        } => {
            let request = OffersRequest {
                requests,
                params,
                allow_duplicates: false,
            };
            let (result, _) = rt.get_offers(session_id, access, request).await?;
            notes.extend(messages(&result.messages));
            Response {
                offer_lists: Some(offer_lists(&result)),
                ..Response::with_messages(session_id, notes)
            }
        }
        Call::Event { event, params } => {
            let result = rt.post_event(session_id, access, &event, params).await?;
            Response::with_messages(session_id, messages(&result.messages))
        }
        Call::Audience { audience, params } => {
            let said = rt
                .set_audience(session_id, access, audience, params)
                .await?;
            Response::with_messages(session_id, messages(&said))
        }
        Call::Profile => {
            let view = rt.get_profile(session_id, access).await?;
            Response {
                profile: Some(
                    view.profile
                        .iter()
                        .chain(view.params.iter())
                        .map(|(k, v)| nvp::nvp(k, v))
                        .collect(),
                ),
                ..done(session_id)
            }
        }
        Call::End => {
            rt.end_session(session_id, access).await?;
            done(session_id)
        }
        Call::Debug(on) => {
            rt.set_debug(session_id, access, on).await?;
            done(session_id)
        }
        Call::Version => Response {
            version: Some(kairos_api::interact::version()),
            ..done(session_id)
        },
    })
}

/// Runs every call in order, each answering for itself, as HCL documents a batch. A batch of
/// more commands than the limit runs none; a command whose answer would take the batch's
/// past its limit answers that instead.
async fn batch(
    rt: &Runtime,
    access: &Access,
    session_id: String,
    calls: Vec<Result<Call, Problem>>,
) -> Result<BatchResponse, Problem> {
    let limits = rt.config.limits;
    if calls.len() > limits.batch_commands {
        return Err(limit_exceeded(format!(
            "commands: {} commands, more than the limit of {}",
            calls.len(),
            limits.batch_commands
        )));
    }
    // The commands hold their session: with shared sessions it is read and stored once.
    rt.holding_sessions(run_batch(rt, access, session_id, calls))
        .await
}

async fn run_batch(
    rt: &Runtime,
    access: &Access,
    mut session_id: String,
    calls: Vec<Result<Call, Problem>>,
) -> BatchResponse {
    let limits = rt.config.limits;
    let mut responses = Vec::with_capacity(calls.len());
    let mut answer_bytes = 0;
    for (i, call) in calls.into_iter().enumerate() {
        let mut response = match call {
            Ok(call) => run(rt, access, &mut session_id, call).await,
            Err(problem) => Response::failed(
                &session_id,
                problem.code,
                &format!("commands[{i}]: {}", problem.detail),
            ),
        };
        answer_bytes += serde_json::to_vec(&response).map_or(0, |b| b.len());
        if answer_bytes > limits.answer_bytes {
            let detail = format!(
                "commands[{i}]: the answer would pass the limit of {} bytes",
                limits.answer_bytes
            );
            response = Response::failed(&session_id, Code::LimitExceeded, &detail);
        }
        responses.push(response);
    }
    BatchResponse::new(responses)
}

/// RestServlet commands as calls, each read in turn: one that cannot be read fails alone.
fn servlet_calls(commands: Vec<Map<String, J>>) -> Vec<Result<Call, Problem>> {
    commands
        .into_iter()
        .map(|c| read_value::<Command>(J::Object(c), "").and_then(servlet_call))
        .collect()
}

/// A request body as Interact clients send it: JSON, also as `text/plain` (sendBeacon,
/// XHR without a content type) or with no content type; an empty body reads as `T`'s
/// default where there is one.
fn lenient_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: &Bytes,
    empty: impl FnOnce() -> Option<T>,
) -> Result<T, Problem> {
    let readable = match media_type(headers) {
        None | Some("") => true,
        Some(mime) => mime.eq_ignore_ascii_case("text/plain") || is_json(mime),
    };
    if !readable {
        return Err(Problem {
            status: axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ..Problem::new(
                Code::BadRequest,
                "the body is JSON: send it as application/json or text/plain",
            )
        });
    }
    if body.iter().all(u8::is_ascii_whitespace)
        && let Some(default) = empty()
    {
        return Ok(default);
    }
    read_body(body)
}

/// `POST /interact/servlet/RestServlet`
pub async fn servlet(
    State(rt): Shared,
    Extension(access): Extension<Access>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<JsonOut<BatchResponse>, Problem> {
    let request: ServletRequest = lenient_body(&headers, &body, || None)?;
    let session_id = request.session_id.map(|s| s.0).unwrap_or_default();
    Ok(JsonOut(
        batch(&rt, &access, session_id, servlet_calls(request.commands)).await?,
    ))
}
