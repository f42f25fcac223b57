//! `/api/groups`: server groups, deployments, rollback, and the runtimes' long poll and
//! status reports.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use kairos_api::Problem;
use kairos_api::control::{
    ActiveAnswer, ActiveQuery, DeployRequest, Deployed, GroupRequest, GroupSaved, GroupView,
    Heartbeat, RollbackRequest, RolledBack,
};

use super::{Body, GroupPath, InstancePath, Params, Shared};
use crate::service::Caller;

#[utoipa::path(get, path = "/api/groups", tag = "groups",
    responses((status = 200, description = "Every server group, what it runs, its instances", body = Vec<GroupView>)))]
pub async fn groups(State(cp): Shared) -> Result<Json<Vec<GroupView>>, Problem> {
    Ok(Json(cp.groups().await?))
}

#[utoipa::path(put, path = "/api/groups/{group}", tag = "groups", params(GroupPath), request_body = GroupRequest,
    responses((status = 200, description = "The group, created or changed", body = GroupSaved)))]
pub async fn put_group(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
    Path(GroupPath { group }): Path<GroupPath>,
    Body(request): Body<GroupRequest>,
) -> Result<Json<GroupSaved>, Problem> {
    Ok(Json(cp.put_group(&caller, &group, request).await?))
}

#[utoipa::path(post, path = "/api/groups/{group}/deployments", tag = "groups", params(GroupPath),
    request_body = DeployRequest,
    responses((status = 200, description = "The version is active on the group", body = Deployed)))]
pub async fn deploy(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
    Path(GroupPath { group }): Path<GroupPath>,
    Body(request): Body<DeployRequest>,
) -> Result<Json<Deployed>, Problem> {
    Ok(Json(cp.deploy(&caller, &group, request).await?))
}

#[utoipa::path(post, path = "/api/groups/{group}/rollback", tag = "groups", params(GroupPath),
    request_body = RollbackRequest,
    responses((status = 200, description = "The group runs the earlier version again", body = RolledBack)))]
pub async fn rollback(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
    Path(GroupPath { group }): Path<GroupPath>,
    Body(request): Body<RollbackRequest>,
) -> Result<Json<RolledBack>, Problem> {
    Ok(Json(cp.rollback(&caller, &group, request).await?))
}

#[utoipa::path(get, path = "/api/groups/{group}/active", tag = "groups", params(GroupPath, ActiveQuery),
    responses((status = 200, description = "What the group's runtimes serve", body = ActiveAnswer)))]
pub async fn active(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
    Path(GroupPath { group }): Path<GroupPath>,
    Params(query): Params<ActiveQuery>,
) -> Result<Json<ActiveAnswer>, Problem> {
    Ok(Json(cp.active(&caller, &group, query).await?))
}

#[utoipa::path(post, path = "/api/groups/{group}/instances/{instance}", tag = "groups",
    params(InstancePath),
    request_body = Heartbeat,
    responses((status = 204, description = "The report is recorded")))]
pub async fn heartbeat(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
    Path(InstancePath { group, instance }): Path<InstancePath>,
    Body(report): Body<Heartbeat>,
) -> Result<StatusCode, Problem> {
    cp.heartbeat(&caller, &group, &instance, report).await?;
    Ok(StatusCode::NO_CONTENT)
}
