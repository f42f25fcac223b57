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

use super::{Body, Params, Shared};
use crate::service::Caller;

pub async fn groups(State(cp): Shared) -> Result<Json<Vec<GroupView>>, Problem> {
    Ok(Json(cp.groups().await?))
}

pub async fn put_group(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
    Path(group): Path<String>,
    Body(request): Body<GroupRequest>,
) -> Result<Json<GroupSaved>, Problem> {
    Ok(Json(cp.put_group(&caller, &group, request).await?))
}

pub async fn deploy(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
    Path(group): Path<String>,
    Body(request): Body<DeployRequest>,
) -> Result<Json<Deployed>, Problem> {
    Ok(Json(cp.deploy(&caller, &group, request).await?))
}

pub async fn rollback(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
    Path(group): Path<String>,
    Body(request): Body<RollbackRequest>,
) -> Result<Json<RolledBack>, Problem> {
    Ok(Json(cp.rollback(&caller, &group, request).await?))
}

pub async fn active(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
    Path(group): Path<String>,
    Params(query): Params<ActiveQuery>,
) -> Result<Json<ActiveAnswer>, Problem> {
    Ok(Json(cp.active(&caller, &group, query).await?))
}

pub async fn heartbeat(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
    Path((group, instance)): Path<(String, String)>,
    Body(report): Body<Heartbeat>,
) -> Result<StatusCode, Problem> {
    cp.heartbeat(&caller, &group, &instance, report).await?;
    Ok(StatusCode::NO_CONTENT)
}
