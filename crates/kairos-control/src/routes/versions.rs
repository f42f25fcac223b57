//! `/api/channels/{channel}/versions`: versions, reviews, test results, reports.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use kairos_api::Problem;
use kairos_api::control::{
    ImpactQuery, ImpactReport, NoteRequest, ReviewRequest, Reviewed, SegmentsQuery, SegmentsReport,
    VersionView,
};

use super::{Body, ChannelPath, Params, Shared, VersionPath};
use crate::service::Caller;

#[utoipa::path(get, path = "/api/channels/{channel}/versions", tag = "versions", params(ChannelPath),
    responses((status = 200, description = "Every version, oldest first", body = Vec<VersionView>)))]
pub async fn versions(
    State(cp): Shared,
    Path(ChannelPath { channel }): Path<ChannelPath>,
) -> Result<Json<Vec<VersionView>>, Problem> {
    Ok(Json(cp.versions(&channel).await?))
}

#[utoipa::path(get, path = "/api/channels/{channel}/versions/{number}", tag = "versions", params(VersionPath),
    responses((status = 200, description = "The version with its channel file", body = VersionView)))]
pub async fn version(
    State(cp): Shared,
    Path(VersionPath { channel, number }): Path<VersionPath>,
) -> Result<Json<VersionView>, Problem> {
    Ok(Json(cp.version(&channel, number).await?))
}

/// 201 with a new version; 200 with the newest one when the design has not changed.
#[utoipa::path(post, path = "/api/channels/{channel}/versions", tag = "versions", params(ChannelPath),
    request_body = NoteRequest,
    responses(
        (status = 201, description = "A new version of the design", body = VersionView),
        (status = 200, description = "The design is unchanged: its newest version", body = VersionView)))]
pub async fn create_version(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
    Path(ChannelPath { channel }): Path<ChannelPath>,
    Body(request): Body<NoteRequest>,
) -> Result<(StatusCode, Json<VersionView>), Problem> {
    let (version, created) = cp.create_version(&caller, &channel, request).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(version)))
}

#[utoipa::path(post, path = "/api/channels/{channel}/versions/{number}/reviews", tag = "versions",
    params(VersionPath), request_body = ReviewRequest,
    responses((status = 200, description = "The review is recorded", body = Reviewed)))]
pub async fn review(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
    Path(VersionPath { channel, number }): Path<VersionPath>,
    Body(request): Body<ReviewRequest>,
) -> Result<Json<Reviewed>, Problem> {
    Ok(Json(cp.review(&caller, &channel, number, request).await?))
}

#[utoipa::path(get, path = "/api/channels/{channel}/versions/{number}/impact", tag = "versions",
    params(VersionPath, ImpactQuery),
    responses((status = 200, description = "Which offers and segments change, over the profile table", body = ImpactReport)))]
pub async fn impact(
    State(cp): Shared,
    Path(VersionPath { channel, number }): Path<VersionPath>,
    Params(query): Params<ImpactQuery>,
) -> Result<Json<ImpactReport>, Problem> {
    Ok(Json(cp.impact(&channel, number, query).await?))
}

#[utoipa::path(get, path = "/api/channels/{channel}/versions/{number}/segments", tag = "versions",
    params(VersionPath, SegmentsQuery),
    responses((status = 200, description = "Segment sizes and flowchart paths over the profile table", body = SegmentsReport)))]
pub async fn segments(
    State(cp): Shared,
    Path(VersionPath { channel, number }): Path<VersionPath>,
    Params(query): Params<SegmentsQuery>,
) -> Result<Json<SegmentsReport>, Problem> {
    Ok(Json(cp.segments(&channel, number, query).await?))
}
