//! `/api/channels`: the design repository. A component's revision is its ETag; an edit sends
//! `If-Match` with the revision it read, a create `If-None-Match: *`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use kairos_api::Problem;
use kairos_api::control::{
    Applied, ApplyRequest, ChannelSummary, ChannelView, ComponentDeleted, Diff, DiffQuery,
    ExportQuery, Validation,
};
use kairos_model::components::Component;
use kairos_store::control::Expect;
use serde_json::Value as J;

use super::{Body, Params, Shared};
use crate::service::{Caller, kind_of};

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

pub async fn channels(State(cp): Shared) -> Result<Json<Vec<ChannelSummary>>, Problem> {
    Ok(Json(cp.channels().await?))
}

pub async fn apply(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
    Body(request): Body<ApplyRequest>,
) -> Result<Json<Applied>, Problem> {
    Ok(Json(cp.apply(&caller, request).await?))
}

pub async fn channel(
    State(cp): Shared,
    Path(channel): Path<String>,
) -> Result<Json<ChannelView>, Problem> {
    Ok(Json(cp.channel(&channel).await?))
}

pub async fn export(
    State(cp): Shared,
    Path(channel): Path<String>,
    Params(query): Params<ExportQuery>,
) -> Result<Response, Problem> {
    let yaml = cp.export(&channel, query.version).await?;
    Ok(([(header::CONTENT_TYPE, "application/yaml")], yaml).into_response())
}

pub async fn validate(
    State(cp): Shared,
    Path(channel): Path<String>,
) -> Result<Json<Validation>, Problem> {
    Ok(Json(cp.validate(&channel).await?))
}

pub async fn component(
    State(cp): Shared,
    Path((channel, kind, name)): Path<(String, String, String)>,
) -> Result<Response, Problem> {
    let (body, revision) = cp.component(&channel, kind_of(&kind)?, &name).await?;
    Ok(([(header::ETAG, etag(revision))], Json(body)).into_response())
}

pub async fn put_component(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
    Path((channel, kind, name)): Path<(String, String, String)>,
    headers: HeaderMap,
    Body(body): Body<J>,
) -> Result<Response, Problem> {
    let component = Component {
        kind: kind_of(&kind)?,
        name,
        body,
    };
    let saved = cp
        .put_component(&caller, &channel, component, expect_of(&headers)?)
        .await?;
    Ok(([(header::ETAG, etag(saved.revision))], Json(saved)).into_response())
}

pub async fn delete_component(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
    Path((channel, kind, name)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Json<ComponentDeleted>, Problem> {
    let deleted = cp
        .delete_component(
            &caller,
            &channel,
            kind_of(&kind)?,
            &name,
            expect_of(&headers)?,
        )
        .await?;
    Ok(Json(deleted))
}

pub async fn diff(
    State(cp): Shared,
    Path(channel): Path<String>,
    Params(query): Params<DiffQuery>,
) -> Result<Json<Diff>, Problem> {
    Ok(Json(cp.diff(&channel, query).await?))
}
