//! `/api/groups/{group}/test-runs` and `/api/test-runs/{id}`: scenario files and load tests
//! the control plane runs against a group's runtime, for the gates.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use kairos_api::Problem;
use kairos_api::testrun::{TestRun, TestRunRequest};

use super::{Body, GroupPath, Shared};
use crate::service::Caller;

#[utoipa::path(post, path = "/api/groups/{group}/test-runs", tag = "groups", params(GroupPath),
    request_body = TestRunRequest,
    responses((status = 202, description = "The run started; follow it at /api/test-runs/{id}", body = TestRun)))]
pub async fn start_test_run(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
    Path(GroupPath { group }): Path<GroupPath>,
    Body(request): Body<TestRunRequest>,
) -> Result<(StatusCode, Json<TestRun>), Problem> {
    let run = cp.start_test_run(&caller, &group, request).await?;
    Ok((StatusCode::ACCEPTED, Json(run)))
}

#[utoipa::path(get, path = "/api/test-runs/{id}", tag = "groups",
    params(("id" = String, Path, description = "The run's ID, as its start answered")),
    responses((status = 200, description = "The run as far as it has got", body = TestRun)))]
pub async fn test_run(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<TestRun>, Problem> {
    Ok(Json(cp.test_run(&caller, &id)?))
}
