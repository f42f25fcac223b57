//! `/api/channels`: the design repository. A component's revision is its ETag; an edit sends
//! `If-Match` with the revision it read, a create `If-None-Match: *`.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use kairos_api::Problem;
use kairos_api::control::{
    Applied, ApplyRequest, ChannelSummary, ChannelView, ComponentDeleted, ComponentSaved, Diff,
    DiffQuery, ExportQuery, Validation,
};
use kairos_model::components::Component;
use kairos_store::control::Expect;
use serde_json::Value as J;

use super::{Body, ChannelPath, ComponentPath, Params, Shared};
use crate::service::{Caller, kind_of};

/// `If-None-Match: *`, the only value the API takes: create, unless it exists.
#[derive(utoipa::ToSchema)]
pub(crate) enum CreateOnly {
    #[schema(rename = "*")]
    Any,
}

impl CreateOnly {
    fn read(value: &HeaderValue) -> Result<CreateOnly, Problem> {
        match value.as_bytes() {
            b"*" => Ok(CreateOnly::Any),
            _ => Err(Problem::bad_request(
                "if-none-match: only * (create, unless it exists)",
            )),
        }
    }
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
    if let Some(v) = headers.get(header::IF_NONE_MATCH) {
        return match CreateOnly::read(v)? {
            CreateOnly::Any => Ok(Expect::Absent),
        };
    }
    Ok(Expect::Any)
}

#[utoipa::path(get, path = "/api/channels", tag = "design",
    responses((status = 200, description = "Every channel of the design repository", body = Vec<ChannelSummary>)))]
pub async fn channels(State(cp): Shared) -> Result<Json<Vec<ChannelSummary>>, Problem> {
    Ok(Json(cp.channels().await?))
}

#[utoipa::path(post, path = "/api/channels/apply", tag = "design", request_body = ApplyRequest,
    responses((status = 200, description = "Each component of the file is a new revision", body = Applied)))]
pub async fn apply(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
    Body(request): Body<ApplyRequest>,
) -> Result<Json<Applied>, Problem> {
    Ok(Json(cp.apply(&caller, request).await?))
}

#[utoipa::path(get, path = "/api/channels/{channel}", tag = "design", params(ChannelPath),
    responses((status = 200, description = "The channel with every component", body = ChannelView)))]
pub async fn channel(
    State(cp): Shared,
    Path(ChannelPath { channel }): Path<ChannelPath>,
) -> Result<Json<ChannelView>, Problem> {
    Ok(Json(cp.channel(&channel).await?))
}

#[utoipa::path(get, path = "/api/channels/{channel}/export", tag = "design", params(ChannelPath, ExportQuery),
    responses((status = 200, description = "A channel file", body = serde_json::Value, content_type = "application/yaml")))]
pub async fn export(
    State(cp): Shared,
    Path(ChannelPath { channel }): Path<ChannelPath>,
    Params(query): Params<ExportQuery>,
) -> Result<Response, Problem> {
    let yaml = cp.export(&channel, query.version).await?;
    Ok(([(header::CONTENT_TYPE, "application/yaml")], yaml).into_response())
}

#[utoipa::path(get, path = "/api/channels/{channel}/validate", tag = "design", params(ChannelPath),
    responses((status = 200, description = "Every error of the design, in its component", body = Validation)))]
pub async fn validate(
    State(cp): Shared,
    Path(ChannelPath { channel }): Path<ChannelPath>,
) -> Result<Json<Validation>, Problem> {
    Ok(Json(cp.validate(&channel).await?))
}

#[utoipa::path(get, path = "/api/channels/{channel}/components/{kind}/{name}", tag = "design",
    params(ComponentPath),
    responses((status = 200, description = "The component's body; its revision is the ETag",
        body = serde_json::Value, headers(("ETag" = String, description = "The revision, in quotes")))))]
pub async fn component(
    State(cp): Shared,
    Path(ComponentPath {
        channel,
        kind,
        name,
    }): Path<ComponentPath>,
) -> Result<Response, Problem> {
    let (body, revision) = cp.component(&channel, kind_of(&kind)?, &name).await?;
    Ok(([(header::ETAG, etag(revision))], Json(body)).into_response())
}

#[utoipa::path(put, path = "/api/channels/{channel}/components/{kind}/{name}", tag = "design",
    params(ComponentPath,
        ("If-Match" = Option<String>, Header, nullable = false, pattern = r#"^"?[0-9]{1,18}"?$"#,
            description = "Edit only this revision (the ETag read), else 409"),
        ("If-None-Match" = Option<CreateOnly>, Header, nullable = false,
            description = "`*`: create only, else 409")),
    request_body(content = serde_json::Value,
        description = "The body, shaped like the component's entry in a channel file (a segment's is its expression)"),
    responses((status = 200, description = "Saved, whatever its errors; they say what blocks a deploy",
        body = ComponentSaved, headers(("ETag" = String, description = "The new revision, in quotes")))))]
pub async fn put_component(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
    Path(ComponentPath {
        channel,
        kind,
        name,
    }): Path<ComponentPath>,
    headers: HeaderMap,
    // Any JSON: a segment's body is its expression, a string.
    body: Result<Json<J>, JsonRejection>,
) -> Result<Response, Problem> {
    let Json(body) = body?;
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

#[utoipa::path(delete, path = "/api/channels/{channel}/components/{kind}/{name}", tag = "design",
    params(ComponentPath,
        ("If-Match" = Option<String>, Header, nullable = false, pattern = r#"^"?[0-9]{1,18}"?$"#,
            description = "Delete only this revision, else 409")),
    responses((status = 200, description = "Deleted: the channel's new revision", body = ComponentDeleted)))]
pub async fn delete_component(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
    Path(ComponentPath {
        channel,
        kind,
        name,
    }): Path<ComponentPath>,
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

#[utoipa::path(get, path = "/api/channels/{channel}/diff", tag = "design", params(ChannelPath, DiffQuery),
    responses((status = 200, description = "What changed, component by component", body = Diff)))]
pub async fn diff(
    State(cp): Shared,
    Path(ChannelPath { channel }): Path<ChannelPath>,
    Params(query): Params<DiffQuery>,
) -> Result<Json<Diff>, Problem> {
    Ok(Json(cp.diff(&channel, query).await?))
}
