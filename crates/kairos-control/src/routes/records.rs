//! `/api/tables`, `/api/reports/performance`, `/api/unknown-names`, `/api/audit`.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use kairos_api::Problem;
use kairos_api::control::{
    AuditQuery, AuditView, ImportQuery, Imported, PerformanceQuery, PerformanceReport, TableView,
    TablesQuery, UnknownNameView,
};

use super::{Params, Shared};
use crate::service::Caller;

pub async fn tables(
    State(cp): Shared,
    Params(query): Params<TablesQuery>,
) -> Result<Json<Vec<TableView>>, Problem> {
    Ok(Json(cp.tables(query.group.as_deref()).await?))
}

/// The body is the table as CSV text.
pub async fn import_table(
    State(cp): Shared,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Params(query): Params<ImportQuery>,
    csv: String,
) -> Result<Json<Imported>, Problem> {
    Ok(Json(cp.import_table(&caller, &name, query, &csv).await?))
}

pub async fn performance(
    State(cp): Shared,
    Params(query): Params<PerformanceQuery>,
) -> Result<Json<PerformanceReport>, Problem> {
    Ok(Json(cp.performance(query).await?))
}

pub async fn unknown_names(State(cp): Shared) -> Result<Json<Vec<UnknownNameView>>, Problem> {
    Ok(Json(cp.unknown_names().await?))
}

pub async fn audit_log(
    State(cp): Shared,
    Params(query): Params<AuditQuery>,
) -> Result<Json<Vec<AuditView>>, Problem> {
    Ok(Json(cp.audit_log(query.limit).await?))
}
