//! `/api/channels/{channel}/versions`: versions, reviews, test results, reports.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use kairos_api::Problem;
use kairos_api::control::{
    ImpactReport, NoteRequest, ReportQuery, ResultRequest, ReviewRequest, Reviewed, SegmentsReport,
    VersionView,
};

use super::{Body, Params, Shared};
use crate::service::Caller;

pub async fn versions(
    State(cp): Shared,
    Path(channel): Path<String>,
) -> Result<Json<Vec<VersionView>>, Problem> {
    Ok(Json(cp.versions(&channel).await?))
}

pub async fn version(
    State(cp): Shared,
    Path((channel, number)): Path<(String, i64)>,
) -> Result<Json<VersionView>, Problem> {
    Ok(Json(cp.version(&channel, number).await?))
}

/// 201 with a new version; 200 with the newest one when the design has not changed.
pub async fn create_version(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
    Path(channel): Path<String>,
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

pub async fn review(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
    Path((channel, number)): Path<(String, i64)>,
    Body(request): Body<ReviewRequest>,
) -> Result<Json<Reviewed>, Problem> {
    Ok(Json(cp.review(&caller, &channel, number, request).await?))
}

pub async fn attach_result(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
    Path((channel, number)): Path<(String, i64)>,
    Body(request): Body<ResultRequest>,
) -> Result<StatusCode, Problem> {
    cp.attach_result(&caller, &channel, number, request).await?;
    Ok(StatusCode::CREATED)
}

pub async fn impact(
    State(cp): Shared,
    Path((channel, number)): Path<(String, i64)>,
    Params(query): Params<ReportQuery>,
) -> Result<Json<ImpactReport>, Problem> {
    Ok(Json(cp.impact(&channel, number, query).await?))
}

pub async fn segments(
    State(cp): Shared,
    Path((channel, number)): Path<(String, i64)>,
    Params(query): Params<ReportQuery>,
) -> Result<Json<SegmentsReport>, Problem> {
    Ok(Json(cp.segments(&channel, number, query).await?))
}
