//! The Interact REST v2 paths, in every request form HCL documents: a session started with
//! its channel and audience in the query and the ID's value in `auIdParams`, a batch of named
//! commands (`{"getOffers":{...},"getProfile":true}`) or of a `commands` list. A body Kairos
//! does not understand is an error, never an empty success.

use axum::extract::{Path, Query};
use axum::http::{HeaderValue, Method};
use axum::response::{IntoResponse, Response as HttpResponse};
use kairos_api::interact::{
    Flag, NvpIn, ServletRequest, V2Audience, V2Batch, V2Event, V2MultipleOffers, V2Query, V2Start,
};

use super::*;

/// The audience of a start or a set audience: its level from the query or the body, its ID
/// from `audienceID`, or from `auIdParams` whose pairs without a name take the query's
/// `audienceIDField`.
fn audience_of(
    query: &V2Query,
    level: Option<String>,
    audience_id: Option<Vec<NvpIn>>,
    au_id_params: Option<Vec<NvpIn>>,
) -> Result<AudienceId, Problem> {
    let pairs = match (audience_id, au_id_params) {
        (Some(pairs), _) => pairs,
        (None, Some(mut pairs)) => {
            for pair in pairs.iter_mut().filter(|p| p.n.is_none()) {
                pair.n.clone_from(&query.audience_id_field);
            }
            pairs
        }
        (None, None) => Vec::new(),
    };
    audience(query.audience_level.clone().or(level), Some(&pairs))
}

fn start(body: V2Start, query: &V2Query) -> Result<Call, Problem> {
    let channel = query
        .ic
        .clone()
        .or(body.ic)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| malformed("ic: the interactive channel is required".into()))?;
    Ok(Call::Start {
        channel,
        audience: audience_of(
            query,
            body.audience_level,
            body.audience_id,
            body.au_id_params,
        )?,
        params: params("parameters", body.parameters.as_deref())?,
        rely_on_existing_session: body.rely_on_existing_session.is_some_and(|f| f.0),
        debug: body.debug.is_some_and(|f| f.0),
    })
}

fn set_audience(body: V2Audience, query: &V2Query) -> Result<Call, Problem> {
    Ok(Call::Audience {
        audience: audience_of(
            query,
            body.audience_level,
            body.audience_id,
            body.au_id_params,
        )?,
        params: params("parameters", body.parameters.as_deref())?,
    })
}

fn event(name: Option<String>, body: V2Event) -> Result<Call, Problem> {
    Ok(Call::Event {
        event: name
            .or(body.event)
            .filter(|e| !e.is_empty())
            .ok_or_else(|| malformed("event: the event name is required".into()))?,
        params: params("parameters", body.parameters.as_deref())?,
    })
}

fn get_offers(
    ip: Option<String>,
    number: Option<u32>,
    pairs: Option<&[NvpIn]>,
) -> Result<Call, Problem> {
    let ip = ip
        .filter(|ip| !ip.is_empty())
        .ok_or_else(|| malformed("interationPointID: the interaction point is required".into()))?;
    Ok(Call::Offers {
        requests: vec![OfferRequest::new(
            ip,
            offer_count(number, || "numberRequested".into())?,
        )],
        params: params("parameters", pairs)?,
        notes: Vec::new(),
    })
}

fn multiple_offers(body: V2MultipleOffers) -> Result<Call, Problem> {
    offer_requests(
        &body.get_offer_requests,
        params("parameters", body.parameters.as_deref())?,
    )
}

/// A batch of named commands, in the order a visit makes them: start, audience, debug, the
/// event, offers, profile, version, end. Each is read when its turn comes.
fn named_batch(batch: V2Batch) -> Result<Vec<Result<Call, Problem>>, Problem> {
    let on = |flag: Option<Flag>| flag.is_some_and(|f| f.0);
    let query = V2Query::default();
    let mut calls = Vec::new();
    if let Some(body) = batch.start_session {
        calls.push(start(body, &query));
    }
    if let Some(body) = batch.set_audience {
        calls.push(set_audience(body, &query));
    }
    if let Some(body) = batch.set_debug {
        calls.push(Ok(Call::Debug(body.debug.0)));
    }
    if let Some(body) = batch.post_event {
        calls.push(event(None, body));
    }
    if let Some(body) = batch.get_offers {
        calls.push(get_offers(
            body.interaction_point,
            body.number_requested.map(|n| n.0),
            body.parameters.as_deref(),
        ));
    }
    if let Some(body) = batch.get_offers_for_multiple_interaction_points {
        calls.push(multiple_offers(body));
    }
    if on(batch.get_profile) {
        calls.push(Ok(Call::Profile));
    }
    if on(batch.get_version) {
        calls.push(Ok(Call::Version));
    }
    if on(batch.end_session) {
        calls.push(Ok(Call::End));
    }
    if calls.is_empty() {
        return Err(malformed(
            "the batch names no command: give startSession, setAudience, setDebug, postEvent, \
             getOffers, getOffersForMultipleInteractionPoints, getProfile, getVersion or \
             endSession (or a commands list)"
                .into(),
        ));
    }
    Ok(calls)
}

/// A v2 batch body: a `commands` list as the RestServlet takes, or HCL's named commands.
fn batch_calls(headers: &HeaderMap, body: &Bytes) -> Result<Vec<Result<Call, Problem>>, Problem> {
    let value: Map<String, J> = lenient_body(headers, body, || None)?;
    if value.contains_key("commands") {
        let request: ServletRequest = read_value(J::Object(value), "")?;
        return Ok(servlet_calls(request.commands));
    }
    named_batch(read_value(J::Object(value), "")?)
}

/// A body that may be left out: none reads as no fields.
fn fields<T: DeserializeOwned + Default>(headers: &HeaderMap, body: &Bytes) -> Result<T, Problem> {
    lenient_body(headers, body, || Some(T::default()))
}

/// The REST v2 paths: each is one command with the same value objects, or a batch.
pub async fn v2(
    State(rt): Shared,
    Extension(access): Extension<Access>,
    method: Method,
    Path(path): Path<String>,
    Query(query): Query<V2Query>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<HttpResponse, Problem> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let (call, session_id) = match (method.as_str(), parts.as_slice()) {
        ("POST", ["sessions", id]) => (start(fields(&headers, &body)?, &query), *id),
        ("DELETE", ["sessions", id]) => (Ok(Call::End), *id),
        ("PUT", ["audiences", id]) => (set_audience(fields(&headers, &body)?, &query), *id),
        ("GET", ["offers", id, ip]) => (
            get_offers(Some(ip.to_string()), query.number.map(|n| n.0), None),
            *id,
        ),
        ("POST", ["offers", id]) => (multiple_offers(fields(&headers, &body)?), *id),
        ("POST", ["events", id, name]) => {
            (event(Some(name.to_string()), fields(&headers, &body)?), *id)
        }
        ("GET", ["profiles", id]) => (Ok(Call::Profile), *id),
        ("POST", ["batch", id]) => {
            let calls = batch_calls(&headers, &body)?;
            let answer = batch(&rt, &access, id.to_string(), calls).await?;
            return Ok(JsonOut(answer).into_response());
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
    let mut id = session_id.to_string();
    let response = match call {
        Ok(call) => run(&rt, &access, &mut id, call).await,
        Err(problem) => kairos_api::interact::Response::failed(&id, problem.code, &problem.detail),
    };
    Ok(JsonOut(response).into_response())
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
